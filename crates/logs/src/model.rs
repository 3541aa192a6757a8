//! shoplab's own reward model for DM and the doubly robust estimators: a
//! regularised linear model of the reward on context × action features.
//!
//! For a row with context `x ∈ ℝᵈ` (each feature standardised by the log's
//! mean and standard deviation), action `a` of `m` and slate position `k` of
//! `K`, the features are
//!
//! `φ(x, a, k) = [1, x, eₐ, eₖ, x ⊗ eₐ]`
//!
//! — an intercept, a slope shared by all actions, an intercept per action,
//! one per position (when there are several), and a slope per action — so
//! `p = 1 + d + m + K + d·m` weights, the intercept unpenalised and every
//! other weight under the penalty `(λ/2)‖w‖²`. With rewards in [0, 1]
//! (clicks, conversions) the model is logistic, `q̂ = σ(wᵀφ)`, fitted by
//! Newton's method on the penalised log-loss (with step halving, to a step
//! under 10⁻⁹); otherwise it is ridge regression, `q̂ = wᵀφ`, solved in
//! closed form. Both solve `p × p` systems by Cholesky, so `p` is capped at
//! [`MAX_PARAMETERS`].
//!
//! [`fit_predict`] fits on the whole log by default (obp's `n_folds=1`) or
//! cross-fits over `folds` groups of sessions (session `j` of the log, in
//! order of first appearance, in group `j mod folds`), each group's rows
//! predicted by the model fitted on the others, which keeps the DR
//! estimators' model independent of the rows it corrects.

use crate::Log;

/// The most weights a reward model may have (a 2,500 × 2,500 system is
/// about 2·10¹⁰ operations to factor once).
pub const MAX_PARAMETERS: usize = 2_500;

/// The reward model's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Logistic regression, for rewards in [0, 1].
    Logistic,
    /// Ridge (linear least squares with an L2 penalty).
    Ridge,
}

impl ModelKind {
    /// Logistic when every reward is in [0, 1], ridge otherwise.
    pub fn for_rewards(rewards: &[f64]) -> Self {
        if rewards.iter().all(|r| (0.0..=1.0).contains(r)) {
            Self::Logistic
        } else {
            Self::Ridge
        }
    }

    /// The model's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::Ridge => "ridge",
        }
    }
}

/// Why a reward model could not be fitted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// More weights than [`MAX_PARAMETERS`].
    #[error(
        "the reward model would have {p} weights (1 + {d} features + {m} actions + {k} positions + {d}·{m} interactions), more than {max}; give estimated rewards with --rewards instead"
    )]
    TooLarge {
        /// Weights it would have.
        p: usize,
        /// Context features.
        d: usize,
        /// Actions.
        m: usize,
        /// Positions.
        k: usize,
        /// The cap.
        max: usize,
    },
    /// Logistic regression asked of rewards outside [0, 1].
    #[error("logistic regression needs rewards in [0, 1]; this log has a reward of {0}")]
    RewardOutOfRange(f64),
    /// The penalty is not a positive finite number.
    #[error("the L2 penalty must be a positive finite number (found {0})")]
    Penalty(f64),
    /// More folds than sessions, or none.
    #[error(
        "cross-fitting needs between 1 and {sessions} folds (the log's sessions); found {folds}"
    )]
    Folds {
        /// Folds asked.
        folds: usize,
        /// Sessions in the log.
        sessions: usize,
    },
}

/// A fitted reward model.
#[derive(Debug, Clone)]
pub struct RewardModel {
    kind: ModelKind,
    weights: Vec<f64>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    n_actions: usize,
    positions: usize,
}

/// The shape of the feature vector.
#[derive(Debug, Clone, Copy)]
struct Layout {
    d: usize,
    m: usize,
    k: usize,
}

impl Layout {
    fn parameters(self) -> usize {
        1 + self.d + self.m + self.k + self.d * self.m
    }

    /// The non-zero entries of `φ(x, a, k)`: (index, value) pairs.
    fn nonzeros(self, x: &[f64], a: usize, k: usize, out: &mut Vec<(usize, f64)>) {
        out.clear();
        out.push((0, 1.0));
        out.extend(x.iter().enumerate().map(|(j, &v)| (1 + j, v)));
        out.push((1 + self.d + a, 1.0));
        if self.k > 1 {
            out.push((1 + self.d + self.m + k, 1.0));
        }
        let base = 1 + self.d + self.m + self.k + a * self.d;
        out.extend(x.iter().enumerate().map(|(j, &v)| (base + j, v)));
    }
}

impl RewardModel {
    /// Fits the model to the rows `rows` of `log` (all rows when `None`).
    pub fn fit(
        log: &Log,
        rows: Option<&[usize]>,
        n_actions: usize,
        kind: ModelKind,
        l2: f64,
    ) -> Result<Self, ModelError> {
        if !(l2.is_finite() && l2 > 0.0) {
            return Err(ModelError::Penalty(l2));
        }
        let d = log.features.len();
        let positions = log
            .position
            .iter()
            .map(|&p| usize::from(p) + 1)
            .max()
            .unwrap_or(1);
        let layout = Layout {
            d,
            m: n_actions,
            k: if positions > 1 { positions } else { 0 },
        };
        let p = layout.parameters();
        if p > MAX_PARAMETERS {
            return Err(ModelError::TooLarge {
                p,
                d,
                m: n_actions,
                k: layout.k,
                max: MAX_PARAMETERS,
            });
        }
        if kind == ModelKind::Logistic
            && let Some(&r) = log.reward.iter().find(|r| !(0.0..=1.0).contains(*r))
        {
            return Err(ModelError::RewardOutOfRange(r));
        }
        let all: Vec<usize>;
        let rows = match rows {
            Some(rows) => rows,
            None => {
                all = (0..log.len()).collect();
                &all
            }
        };
        let (mean, scale) = standardisation(log, rows);
        let mut model = Self {
            kind,
            weights: vec![0.0; p],
            mean,
            scale,
            n_actions,
            positions,
        };
        // Each row's features, standardised, once.
        let mut x = vec![0.0; rows.len() * d];
        for (r, &i) in rows.iter().enumerate() {
            model.standardise(log.features_of(i), &mut x[r * d..(r + 1) * d]);
        }
        let row = |r: usize, nz: &mut Vec<(usize, f64)>| {
            let i = rows[r];
            layout.nonzeros(
                &x[r * d..(r + 1) * d],
                log.action[i] as usize,
                usize::from(log.position[i]),
                nz,
            );
        };
        let penalty = |j: usize| if j == 0 { 0.0 } else { l2 };
        let mut nz = Vec::with_capacity(2 * d + 3);
        match kind {
            ModelKind::Ridge => {
                let mut h = vec![0.0; p * p];
                let mut g = vec![0.0; p];
                for (r, &i) in rows.iter().enumerate() {
                    row(r, &mut nz);
                    accumulate(&mut h, &mut g, p, &nz, 1.0, log.reward[i]);
                }
                for j in 0..p {
                    h[j * p + j] += penalty(j);
                }
                model.weights = solve(h, g, p);
            }
            ModelKind::Logistic => {
                let objective = |w: &[f64], nz: &mut Vec<(usize, f64)>| {
                    let mut total = 0.0;
                    for (r, &i) in rows.iter().enumerate() {
                        row(r, nz);
                        let z: f64 = nz.iter().map(|&(j, v)| w[j] * v).sum();
                        let y = log.reward[i];
                        total += softplus(z) - y * z;
                    }
                    total
                        + w.iter()
                            .enumerate()
                            .map(|(j, v)| 0.5 * penalty(j) * v * v)
                            .sum::<f64>()
                };
                let mut w = vec![0.0; p];
                let mut current = objective(&w, &mut nz);
                for _ in 0..100 {
                    let mut h = vec![0.0; p * p];
                    let mut g = vec![0.0; p];
                    for (r, &i) in rows.iter().enumerate() {
                        row(r, &mut nz);
                        let z: f64 = nz.iter().map(|&(j, v)| w[j] * v).sum();
                        let s = sigmoid(z);
                        let y = log.reward[i];
                        // Newton's step δ solves H δ = −∇: H = Σ s(1−s) φφᵀ + λ,
                        // −∇ = Σ (y − s) φ − λ w.
                        accumulate(&mut h, &mut g, p, &nz, (s * (1.0 - s)).max(1e-12), y - s);
                    }
                    for j in 0..p {
                        h[j * p + j] += penalty(j) + if j == 0 { 1e-10 } else { 0.0 };
                        g[j] -= penalty(j) * w[j];
                    }
                    let step = solve(h, g, p);
                    let mut t = 1.0;
                    let mut next: Vec<f64>;
                    let mut value;
                    loop {
                        next = w.iter().zip(&step).map(|(a, b)| a + t * b).collect();
                        value = objective(&next, &mut nz);
                        if value <= current || t < 1e-6 {
                            break;
                        }
                        t *= 0.5;
                    }
                    let size = step.iter().fold(0.0f64, |a, b| a.max((t * b).abs()));
                    w = next;
                    current = value;
                    if size < 1e-9 {
                        break;
                    }
                }
                model.weights = w;
            }
        }
        Ok(model)
    }

    fn standardise(&self, x: &[f32], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (f64::from(x[j]) - self.mean[j]) / self.scale[j];
        }
    }

    /// The model's link.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The fitted weights, in the order of `φ` (see the module's docs).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Estimated rewards of every action for features `x` at `position`
    /// (positions the model never saw get no position term).
    pub fn predict(&self, x: &[f32], position: usize, out: &mut [f64]) {
        let d = self.mean.len();
        let m = self.n_actions;
        let k = if self.positions > 1 {
            self.positions
        } else {
            0
        };
        let mut z = vec![0.0; d];
        self.standardise(x, &mut z);
        let w = &self.weights;
        let shared: f64 = w[0]
            + z.iter().enumerate().map(|(j, v)| w[1 + j] * v).sum::<f64>()
            + if position < k {
                w[1 + d + m + position]
            } else {
                0.0
            };
        for (a, o) in out.iter_mut().enumerate().take(m) {
            let base = 1 + d + m + k + a * d;
            let linear = shared
                + w[1 + d + a]
                + z.iter()
                    .enumerate()
                    .map(|(j, v)| w[base + j] * v)
                    .sum::<f64>();
            *o = match self.kind {
                ModelKind::Logistic => sigmoid(linear),
                ModelKind::Ridge => linear,
            };
        }
    }
}

/// Estimated rewards of every action for every row of `log`, at the row's
/// position (`rows × n_actions`), by a model fitted on the whole log
/// (`folds` 1) or cross-fitted over `folds` groups of sessions.
pub fn fit_predict(
    log: &Log,
    n_actions: usize,
    kind: ModelKind,
    l2: f64,
    folds: usize,
) -> Result<Vec<f64>, ModelError> {
    let sessions = log.sessions();
    if folds == 0 || folds > sessions.len().max(1) {
        return Err(ModelError::Folds {
            folds,
            sessions: sessions.len(),
        });
    }
    let mut group = vec![0usize; log.len()];
    for (j, rows) in sessions.iter().enumerate() {
        for &i in rows {
            group[i] = j % folds;
        }
    }
    let mut out = vec![0.0; log.len() * n_actions];
    for fold in 0..folds {
        let train: Vec<usize> = (0..log.len())
            .filter(|&i| folds == 1 || group[i] != fold)
            .collect();
        let model = RewardModel::fit(log, Some(&train), n_actions, kind, l2)?;
        for i in (0..log.len()).filter(|&i| group[i] == fold) {
            model.predict(
                log.features_of(i),
                usize::from(log.position[i]),
                &mut out[i * n_actions..(i + 1) * n_actions],
            );
        }
    }
    Ok(out)
}

/// Each feature's mean and standard deviation over `rows` (1 where a
/// feature is constant).
fn standardisation(log: &Log, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let d = log.features.len();
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for &i in rows {
        for (m, &v) in mean.iter_mut().zip(log.features_of(i)) {
            *m += f64::from(v) / n;
        }
    }
    let mut var = vec![0.0; d];
    for &i in rows {
        for ((s, &v), m) in var.iter_mut().zip(log.features_of(i)).zip(&mean) {
            *s += (f64::from(v) - m).powi(2) / n;
        }
    }
    let scale = var
        .into_iter()
        .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, scale)
}

/// Adds `weight·φφᵀ` to the upper triangle of `h` (the indices of `nz`
/// increase) and `target·φ` to `g`.
fn accumulate(
    h: &mut [f64],
    g: &mut [f64],
    p: usize,
    nz: &[(usize, f64)],
    weight: f64,
    target: f64,
) {
    for (a, &(i, vi)) in nz.iter().enumerate() {
        g[i] += target * vi;
        let row = &mut h[i * p..(i + 1) * p];
        for &(j, vj) in &nz[a..] {
            row[j] += weight * vi * vj;
        }
    }
}

/// Solves `H x = g` for symmetric positive definite `H` given by its upper
/// triangle (the lower one zero), by Cholesky.
fn solve(mut h: Vec<f64>, g: Vec<f64>, p: usize) -> Vec<f64> {
    for i in 0..p {
        for j in i + 1..p {
            h[j * p + i] = h[i * p + j];
        }
    }
    // In-place Cholesky, lower triangle: H = L Lᵀ.
    for j in 0..p {
        let mut diag = h[j * p + j];
        for k in 0..j {
            diag -= h[j * p + k] * h[j * p + k];
        }
        let l = diag.max(1e-300).sqrt();
        h[j * p + j] = l;
        for i in j + 1..p {
            let (upper, lower) = h.split_at_mut(i * p);
            let rj = &upper[j * p..j * p + j];
            let ri = &lower[..j];
            let dot: f64 = ri.iter().zip(rj).map(|(a, b)| a * b).sum();
            lower[j] = (lower[j] - dot) / l;
        }
    }
    let mut y = g;
    for i in 0..p {
        let dot: f64 = (0..i).map(|k| h[i * p + k] * y[k]).sum();
        y[i] = (y[i] - dot) / h[i * p + i];
    }
    for i in (0..p).rev() {
        let dot: f64 = (i + 1..p).map(|k| h[k * p + i] * y[k]).sum();
        y[i] = (y[i] - dot) / h[i * p + i];
    }
    y
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
