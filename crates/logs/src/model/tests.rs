//! Tests of the reward model.

use super::{system::System, *};

/// A log of one-step sessions with features `x`, actions, positions
/// and rewards.
fn log(x: &[Vec<f32>], action: &[u32], position: &[u16], reward: &[f64]) -> Log {
    let n = action.len();
    Log {
        features: (0..x.first().map_or(0, Vec::len))
            .map(|j| format!("x{j}"))
            .collect(),
        episode: (0..n as u64).collect(),
        session: vec![0; n],
        step: vec![0; n],
        x: x.concat(),
        action: action.to_vec(),
        position: position.to_vec(),
        reward: reward.to_vec(),
        propensity: vec![0.5; n],
        terminated: vec![true; n],
        truncated: vec![false; n],
    }
}

/// Noise-free linear rewards, a different line per action, are
/// recovered by ridge with a tiny penalty (to 10⁻⁶: the penalty 10⁻⁹
/// moves the weights by about λ/n relative).
#[test]
fn ridge_recovers_a_line_per_action() {
    let xs: Vec<Vec<f32>> = (0..40).map(|i| vec![(i % 10) as f32]).collect();
    let action: Vec<u32> = (0..40).map(|i| (i / 10 % 2) as u32).collect();
    let truth = |x: f64, a: u32| if a == 0 { 2.0 + 3.0 * x } else { 1.0 - x };
    let reward: Vec<f64> = xs
        .iter()
        .zip(&action)
        .map(|(x, &a)| truth(f64::from(x[0]), a))
        .collect();
    let l = log(&xs, &action, &[0; 40], &reward);
    let model = RewardModel::fit(&l, None, 2, ModelKind::Ridge, 1e-9).unwrap();
    let mut q = [0.0; 2];
    for x in [0.0f32, 4.5, 9.0, 12.0] {
        model.predict(&[x], 0, &mut q);
        for a in 0..2 {
            assert!(
                (q[a] - truth(f64::from(x), a as u32)).abs() < 1e-6,
                "{x} {a}: {q:?}"
            );
        }
    }
}

/// Without features, logistic regression with a per-action intercept
/// and a tiny penalty predicts each action's empirical click rate
/// (the maximum-likelihood estimate), and position terms each
/// position's shift.
#[test]
fn logistic_without_features_gives_each_actions_click_rate() {
    let n = 300;
    let action: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    // Action 0 clicks 1 in 5, action 1 1 in 2, action 2 1 in 10.
    let reward: Vec<f64> = (0..n)
        .map(|i| {
            let j = i / 3;
            f64::from(u8::from(match i % 3 {
                0 => j % 5 == 0,
                1 => j % 2 == 0,
                _ => j % 10 == 0,
            }))
        })
        .collect();
    let l = log(&vec![vec![]; n], &action, &vec![0; n], &reward);
    let model = RewardModel::fit(&l, None, 3, ModelKind::Logistic, 1e-8).unwrap();
    let mut q = [0.0; 3];
    model.predict(&[], 0, &mut q);
    for (a, rate) in [0.2, 0.5, 0.1].into_iter().enumerate() {
        assert!((q[a] - rate).abs() < 1e-6, "{a}: {q:?}");
    }
}

/// The intercept is unpenalised, so at the optimum the residuals sum
/// to 0 — mean prediction equals mean reward — for both links and any
/// penalty (to the solver's tolerance).
#[test]
fn the_unpenalised_intercept_calibrates_the_mean() {
    let n = 500;
    let xs: Vec<Vec<f32>> = (0..n)
        .map(|i| vec![(i % 7) as f32, ((i * 13) % 11) as f32 * 0.3])
        .collect();
    let action: Vec<u32> = (0..n).map(|i| ((i * 7) % 4) as u32).collect();
    let position: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
    let reward: Vec<f64> = (0..n)
        .map(|i| f64::from(u8::from((i * 31 + i / 3) % 9 < 2)))
        .collect();
    let l = log(&xs, &action, &position, &reward);
    for kind in [ModelKind::Logistic, ModelKind::Ridge] {
        for l2 in [0.1, 10.0] {
            let model = RewardModel::fit(&l, None, 4, kind, l2).unwrap();
            let mut q = [0.0; 4];
            let total: f64 = (0..n)
                .map(|i| {
                    model.predict(&xs[i], usize::from(position[i]), &mut q);
                    reward[i] - q[action[i] as usize]
                })
                .sum();
            assert!(
                total.abs() < 1e-6,
                "{kind:?} λ = {l2}: residuals sum to {total}"
            );
        }
    }
}

/// The block elimination solves the same system as dense Gaussian
/// elimination of the assembled matrix (to 10⁻⁹ on weights of order 1).
#[test]
fn block_solve_equals_a_dense_solve() {
    let layout = Layout { d: 2, m: 3, k: 2 };
    let mut system = System::new(layout);
    let mut shared = Vec::new();
    for r in 0..40 {
        let x = [((r * 7) % 5) as f64 - 2.0, ((r * 3) % 4) as f64 * 0.5];
        layout.shared(&x, r % 2, &mut shared);
        system.add(
            &shared,
            r % 3,
            &x,
            0.5 + (r % 4) as f64 * 0.1,
            (r % 3) as f64 - 0.7,
        );
    }
    system.penalise(0.3, 1e-10);
    // The full matrix, in the weights' order.
    let (nc, nb, p) = (layout.core(), layout.block(), layout.parameters());
    let mut h = vec![0.0; p * p];
    let mut g = system.rhs_c.clone();
    g.extend_from_slice(&system.rhs_b);
    for i in 0..nc {
        for j in 0..nc {
            h[i * p + j] = system.c[i * nc + j];
        }
    }
    for a in 0..3 {
        for i in 0..nc {
            for j in 0..nb {
                let v = system.f[(a * nc + i) * nb + j];
                h[i * p + nc + a * nb + j] = v;
                h[(nc + a * nb + j) * p + i] = v;
            }
        }
        for i in 0..nb {
            for j in 0..nb {
                h[(nc + a * nb + i) * p + nc + a * nb + j] = system.g[a * nb * nb + i * nb + j];
            }
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..p {
        let pivot = (col..p)
            .max_by(|&a, &b| h[a * p + col].abs().total_cmp(&h[b * p + col].abs()))
            .unwrap();
        for j in 0..p {
            h.swap(col * p + j, pivot * p + j);
        }
        g.swap(col, pivot);
        for r in col + 1..p {
            let f = h[r * p + col] / h[col * p + col];
            for j in col..p {
                h[r * p + j] -= f * h[col * p + j];
            }
            g[r] -= f * g[col];
        }
    }
    let mut dense = vec![0.0; p];
    for i in (0..p).rev() {
        let dot: f64 = (i + 1..p).map(|j| h[i * p + j] * dense[j]).sum();
        dense[i] = (g[i] - dot) / h[i * p + i];
    }
    let blocks = system.solve();
    for (a, b) in dense.iter().zip(&blocks) {
        assert!((a - b).abs() < 1e-9, "{dense:?}\n{blocks:?}");
    }
}

/// Cross-fitted predictions of a row never depend on its own reward.
#[test]
fn cross_fitting_keeps_rows_out_of_their_own_model() {
    let n = 60;
    let xs: Vec<Vec<f32>> = (0..n).map(|i| vec![(i % 5) as f32]).collect();
    let action: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let reward: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
    let l = log(&xs, &action, &vec![0; n], &reward);
    let before = fit_predict(&l, 2, ModelKind::Logistic, 1.0, 3).unwrap();
    let mut changed = l.clone();
    changed.reward[0] = 1.0 - changed.reward[0];
    let after = fit_predict(&changed, 2, ModelKind::Logistic, 1.0, 3).unwrap();
    assert_eq!(before[..2], after[..2]);
    assert_ne!(before, after);
    assert!(matches!(
        fit_predict(&l, 2, ModelKind::Logistic, 1.0, 61),
        Err(ModelError::Folds { .. })
    ));
}
