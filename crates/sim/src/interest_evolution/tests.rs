use super::*;
use shoplab_env::batch::BatchEnv;

fn env(sessions: u32, edit: impl FnOnce(&mut InterestEvolutionConfig)) -> InterestEvolutionEnv {
    let mut config = InterestEvolutionConfig::recsim(sessions, 500);
    edit(&mut config);
    InterestEvolutionEnv::new(config.validate().expect("valid config"))
}

#[test]
fn cluster_means_are_recsims() {
    // numpy: linspace(-3, 0, 14) ++ linspace(0, 3, 6).
    let means = cluster_means(20, 0.7, -3.0, 3.0);
    assert_eq!(means.len(), 20);
    assert_eq!(means[0], -3.0);
    assert!((means[1] - (-3.0 + 3.0 / 13.0)).abs() < 1e-12);
    assert_eq!(means[13], 0.0);
    assert_eq!(means[14], 0.0);
    assert!((means[15] - 0.6).abs() < 1e-12);
    assert_eq!(means[19], 3.0);
}

#[test]
fn observations_carry_interests_and_one_hot_candidates() {
    let mut env = env(2, |_| {});
    let (obs, _) = env.reset(7);
    let states = env.user_states();
    for (o, (interests, _, _)) in obs.iter().zip(&states) {
        assert_eq!(o.features.len(), 20 + 100 * 20 + 2);
        for (a, b) in o.features[..20].iter().zip(interests) {
            assert_eq!(*a, *b as f32);
        }
        for i in 0..100 {
            let row = &o.features[20 + i * 20..][..20];
            assert_eq!(row.iter().sum::<f32>(), 1.0, "one cluster per candidate");
            assert!(row.iter().all(|&f| f == 0.0 || f == 1.0));
        }
        assert_eq!(o.features[2020], 10.0, "no click yet");
    }
}

/// Clicks against the choice model's own probabilities: showing one
/// candidate, a click has probability `s / (s + s_none)`, so over `n` steps
/// the click count has mean `Σ p` and variance `Σ p(1 − p)`; 4 standard
/// deviations leave a false alarm rate of 6·10⁻⁵.
#[test]
fn click_rate_matches_the_proportional_choice_model() {
    let mut env = env(200, |c| c.slate_size = 1);
    env.reset(11);
    let mut expected = Vec::new();
    let (mut mean, mut variance, mut clicks) = (0.0, 0.0, 0.0);
    for t in 0..200 {
        env.expected_rewards(&mut expected);
        let states = env.user_states();
        let slates: Vec<usize> = (0..200).map(|s| (s + t) % 100).collect();
        for (s, &i) in slates.iter().enumerate() {
            let watch = states[s].1.min(4.0);
            let p = expected[s * 100 + i] / watch;
            mean += p;
            variance += p * (1.0 - p);
        }
        clicks += env.step(&slates).info[1];
    }
    let z = (clicks - mean) / variance.sqrt();
    assert!(
        z.abs() < 4.0,
        "clicks {clicks}, expected {mean:.1} (z = {z:.2})"
    );
}

/// A click moves only the clicked video's cluster, by `±α(x)·(1 − x)`.
#[test]
fn a_click_moves_the_clicked_cluster_only() {
    let mut env = env(1, |c| {
        c.no_click_mass = -1.0;
        c.slate_size = 1;
    });
    let (obs, _) = env.reset(3);
    let before = env.user_states()[0].0.clone();
    let cluster = obs[0].features[20..40]
        .iter()
        .position(|&f| f == 1.0)
        .unwrap();
    let step = env.step(&[0]);
    let score = before[cluster] + 1.0;
    if score == 0.0 {
        return;
    }
    assert_eq!(step.info[1], 1.0, "no-click mass 0: the user always clicks");
    let after = &env.user_states()[0].0;
    for (j, (a, b)) in after.iter().zip(&before).enumerate() {
        if j == cluster {
            let x = *b;
            let alpha = 0.3 - 0.3 * x.abs();
            let up = (x + alpha * (1.0 - x)).clamp(-1.0, 1.0);
            let down = (x - alpha * (1.0 - x)).clamp(-1.0, 1.0);
            assert!(
                (*a - up).abs() < 1e-12 || (*a - down).abs() < 1e-12,
                "{x} → {a}, expected {up} or {down}"
            );
        } else {
            assert_eq!(a, b, "cluster {j} was not clicked");
        }
    }
}

/// Without clicks a session loses `step_penalty` a step: 200 / 0.5 = 400
/// steps, to the step.
#[test]
fn sessions_without_clicks_last_budget_over_penalty_steps() {
    let mut env = env(5, |c| c.no_click_mass = 1e8);
    env.reset(1);
    for t in 1..=400 {
        let step = env.step(&vec![0; 50]);
        let ended = step.info[4];
        assert_eq!(ended, if t == 400 { 5.0 } else { 0.0 }, "tick {t}");
    }
}

/// One user per call is the same user as slot 0 of a batch.
#[test]
fn one_user_per_call_is_slot_zero_of_a_batch() {
    let mut single = env(1, |_| {});
    let mut batch = env(4, |_| {});
    let (a, _) = single.reset(5);
    let (b, _) = batch.reset(5);
    assert_eq!(a[0], b[0]);
    for t in 0..300 {
        let slate: Vec<usize> = (0..10).map(|i| (i * 7 + t) % 100).collect();
        let mut slates = slate.clone();
        for _ in 1..4 {
            slates.extend_from_slice(&slate);
        }
        let x = single.step(&slate);
        let y = batch.step(&slates);
        assert_eq!(x.obs[0], y.obs[0], "tick {t}");
        assert_eq!(x.rewards[0], y.rewards[0]);
        assert_eq!(x.terminated[0], y.terminated[0]);
    }
}

#[test]
fn bad_configs_name_their_key() {
    let check = |edit: fn(&mut InterestEvolutionConfig), key: &str| {
        let mut c = InterestEvolutionConfig::recsim(10, 10);
        edit(&mut c);
        let err = c.validate().expect_err("invalid");
        assert_eq!(err.key, key, "{err}");
    };
    check(|c| c.candidates = 0, "candidates");
    check(|c| c.slate_size = 101, "slate_size");
    check(|c| c.clusters = 51, "clusters");
    check(|c| c.min_normalizer = -0.5, "min_normalizer");
    check(|c| c.no_click_mass = -2.0, "no_click_mass");
    check(|c| c.time_budget = f64::NAN, "time_budget");
    check(
        |c| {
            c.step_penalty = 0.0;
            c.budget_alpha = 1.0;
        },
        "step_penalty",
    );
    check(|c| c.concurrent_sessions = 100_000, "concurrent_sessions");
}
