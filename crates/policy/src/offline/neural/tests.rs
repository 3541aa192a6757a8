//! Tests of the neural offline learners.

use super::*;

/// One-step sessions: state `x = i mod 4`, the logged action and reward
/// from `pick(i)`.
fn bandit(rows: usize, pick: impl Fn(usize) -> (u32, f64)) -> Transitions {
    let (action, reward) = (0..rows).map(pick).unzip();
    Transitions {
        dim: 1,
        obs: (0..rows).map(|i| (i % 4) as f32).collect(),
        action,
        reward,
        next: vec![None; rows],
        ..Default::default()
    }
}

fn learner(algorithm: Algorithm, data: &Transitions) -> OfflineLearner {
    let config = OfflineConfig {
        algorithm,
        hidden: vec![32],
        batch_size: 64,
        learning_rate: 3e-3,
        seed: 4,
        ..OfflineConfig::default()
    };
    OfflineLearner::new(config, data, 3).unwrap()
}

/// Bad settings are refused with their key and rule.
#[test]
fn bad_settings_name_their_key() {
    let with = |algorithm, f: fn(&mut OfflineConfig)| {
        let mut c = OfflineConfig {
            algorithm,
            ..OfflineConfig::default()
        };
        f(&mut c);
        c.validate().map_err(|e| e.to_string())
    };
    assert!(with(Algorithm::Cql { alpha: 0.0 }, |_| {}).is_ok());
    for (algorithm, f, key) in [
        (
            Algorithm::Cql { alpha: -1.0 },
            (|_| {}) as fn(&mut OfflineConfig),
            "alpha",
        ),
        (Algorithm::Bcq { tau: 1.0 }, |_| {}, "tau"),
        (Algorithm::Bcq { tau: -0.1 }, |_| {}, "tau"),
        (Algorithm::Bc, |c| c.hidden.clear(), "hidden"),
        (Algorithm::Dqn, |c| c.batch_size = 0, "batch_size"),
        (Algorithm::Dqn, |c| c.learning_rate = 0.0, "learning_rate"),
        (Algorithm::Dqn, |c| c.gamma = 1.5, "gamma"),
        (
            Algorithm::Dqn,
            |c| c.target_update_interval = 0,
            "target_update_interval",
        ),
    ] {
        let err = with(algorithm, f).unwrap_err();
        assert!(err.contains(key), "{err}");
    }
}

/// Behaviour cloning recovers the behaviour's usual action in each
/// state (action `x mod 3`, taken 4 times in 5).
#[test]
fn behaviour_cloning_learns_the_usual_action() {
    let data = bandit(2000, |i| {
        let x = i % 4;
        let a = if (i / 4) % 5 == 0 { (x + 1) % 3 } else { x % 3 };
        (a as u32, 0.0)
    });
    let mut bc = learner(Algorithm::Bc, &data);
    for _ in 0..400 {
        bc.train_step(&data).unwrap();
    }
    for x in 0..4 {
        assert_eq!(bc.act(&[x as f32]).unwrap(), x % 3, "state {x}");
    }
}

/// Narrow data: only action 0 is ever logged (reward 1). CQL pushes
/// the unlogged actions' values below the logged one's, which it fits
/// near 1; BCQ with τ = 0.3 only takes the logged action; both act 0.
#[test]
fn cql_and_bcq_stay_on_the_data() {
    let data = bandit(1000, |_| (0, 1.0));
    let mut cql = learner(Algorithm::Cql { alpha: 1.0 }, &data);
    let mut bcq = learner(Algorithm::Bcq { tau: 0.3 }, &data);
    for _ in 0..600 {
        cql.train_step(&data).unwrap();
        bcq.train_step(&data).unwrap();
    }
    for x in 0..4 {
        let q = cql.values(&[x as f32]).unwrap();
        assert!((q[0] - 1.0).abs() < 0.3, "state {x}: {q:?}");
        assert!(q[1] < q[0] - 0.5 && q[2] < q[0] - 0.5, "state {x}: {q:?}");
        assert_eq!(cql.act(&[x as f32]).unwrap(), 0);
        assert_eq!(bcq.act(&[x as f32]).unwrap(), 0);
    }
}

/// Training is a function of the seed: two learners, the same losses.
#[test]
fn training_is_reproducible() {
    let data = bandit(500, |i| ((i % 3) as u32, (i % 7) as f64 / 7.0));
    let run = || {
        let mut l = learner(Algorithm::Cql { alpha: 0.5 }, &data);
        (0..50)
            .map(|_| l.train_step(&data).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
