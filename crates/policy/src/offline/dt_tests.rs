//! Decision Transformer: return conditioning, reading earlier actions,
//! determinism, checkpoints, refusals.

use super::{
    Transitions,
    dt::{DecisionTransformer, DtConfig, StepInput, Trajectories},
    dt_kind::{DtPolicy, DtSettings},
    neural::standardisation,
};
use crate::Policy;
use rand::RngExt;
use shoplab_env::seed::rng_from_seed;
use std::sync::Arc;

/// A log of sessions, each a list of `(observation, action, reward)`.
fn log(sessions: &[Vec<(Vec<f32>, u32, f64)>]) -> Transitions {
    let dim = sessions[0][0].0.len();
    let mut t = Transitions {
        dim,
        ..Transitions::default()
    };
    for session in sessions {
        for (j, (obs, action, reward)) in session.iter().enumerate() {
            let row = t.action.len();
            t.obs.extend_from_slice(obs);
            t.action.push(*action);
            t.reward.push(*reward);
            t.next.push((j + 1 < session.len()).then_some(row + 1));
        }
    }
    t
}

fn config(context: usize, seed: u64) -> DtConfig {
    DtConfig {
        context,
        dim: 16,
        heads: 2,
        layers: 1,
        batch_size: 64,
        learning_rate: 3e-3,
        max_grad_norm: 1.0,
        return_scale: 1.0,
        seed,
    }
}

fn train(
    data: &Transitions,
    config: DtConfig,
    n_actions: usize,
    steps: u64,
) -> DecisionTransformer {
    let trajectories = Trajectories::new(data).unwrap();
    let (mean, scale) = standardisation(data);
    let standardise = |x: &[f32]| -> Vec<f32> {
        x.iter()
            .zip(mean.iter().zip(&scale))
            .map(|(v, (m, s))| (v - m) / s)
            .collect()
    };
    let mut model = DecisionTransformer::new(config, data.dim, n_actions).unwrap();
    for _ in 0..steps {
        model.train_step(data, &trajectories, &standardise).unwrap();
    }
    model
}

/// One-step sessions: context `x` in {0, 1}, actions uniform over 4, a
/// reward of 1 exactly when the action is `1 + x`.
fn bandit_log(sessions: usize, seed: u64) -> Transitions {
    let mut rng = rng_from_seed(seed);
    let sessions: Vec<_> = (0..sessions)
        .map(|_| {
            let x = rng.random_range(0..2u32);
            let a = rng.random_range(0..4u32);
            vec![(vec![x as f32], a, f64::from(u8::from(a == 1 + x)))]
        })
        .collect();
    log(&sessions)
}

fn step(state: f32, to_go: f64, previous: Option<u32>, data: &Transitions) -> StepInput {
    let (mean, scale) = standardisation(data);
    StepInput {
        state: vec![(state - mean[0]) / scale[0]],
        to_go,
        previous,
    }
}

#[test]
fn conditioning_on_the_return_picks_the_actions_that_earned_it() {
    let data = bandit_log(2_000, 1);
    let model = train(&data, config(2, 7), 4, 400);
    for x in [0u32, 1] {
        // Asked for a return of 1: the action that earns it in context x.
        let best = model.act(&[step(x as f32, 1.0, None, &data)]).unwrap();
        assert_eq!(best, 1 + x as usize, "context {x}");
        // Asked for 0: an action that earns nothing.
        let none = model.act(&[step(x as f32, 0.0, None, &data)]).unwrap();
        assert_ne!(none, 1 + x as usize, "context {x}");
    }
}

#[test]
fn the_window_reads_the_earlier_action() {
    // Two steps: any first action (no reward), then a reward of 1 exactly
    // when the second action repeats the first. The second state is the
    // same for everyone, so only the previous-action token tells.
    let mut rng = rng_from_seed(2);
    let sessions: Vec<_> = (0..3_000)
        .map(|_| {
            let (a, b) = (rng.random_range(0..3u32), rng.random_range(0..3u32));
            vec![
                (vec![0.0], a, 0.0),
                (vec![1.0], b, f64::from(u8::from(a == b))),
            ]
        })
        .collect();
    let data = log(&sessions);
    let model = train(&data, config(4, 8), 3, 600);
    for a in 0..3u32 {
        let window = [step(0.0, 1.0, None, &data), step(1.0, 1.0, Some(a), &data)];
        assert_eq!(model.act(&window).unwrap(), a as usize, "after action {a}");
    }
}

#[test]
fn returns_to_go_and_sessions_come_from_the_next_rows() {
    let data = log(&[
        vec![
            (vec![0.0], 0, 1.0),
            (vec![0.0], 1, 2.0),
            (vec![0.0], 0, 4.0),
        ],
        vec![(vec![0.0], 1, -1.0)],
    ]);
    let t = Trajectories::new(&data).unwrap();
    assert_eq!(t.sessions, vec![vec![0, 1, 2], vec![3]]);
    assert_eq!(t.to_go, vec![7.0, 6.0, 4.0, -1.0]);
    assert_eq!(t.returns().collect::<Vec<_>>(), vec![7.0, -1.0]);
    assert_eq!(t.place[2], (0, 2));
    // A cycle of next rows has no start.
    let mut cyclic = data.clone();
    cyclic.next[2] = Some(0);
    assert!(Trajectories::new(&cyclic).unwrap_err().contains("cycle"));
    let mut twice = data;
    twice.next[3] = Some(1);
    assert!(Trajectories::new(&twice).unwrap_err().contains("two rows"));
}

#[test]
fn training_is_byte_identical_on_any_thread_count() {
    let data = bandit_log(500, 3);
    let bytes = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let model = train(&data, config(3, 9), 4, 20);
                let policy = DtPolicy::new(
                    model,
                    Arc::new(data.clone()),
                    Trajectories::new(&data).unwrap(),
                    1.0,
                    0,
                );
                policy.checkpoint().unwrap().unwrap()
            })
    };
    assert_eq!(bytes(1), bytes(3));
}

#[test]
fn an_episode_lowers_the_return_asked_for_and_a_checkpoint_restores_the_model() {
    let data = bandit_log(2_000, 4);
    let model = train(&data, config(2, 10), 4, 400);
    let trajectories = Trajectories::new(&data).unwrap();
    let mut policy = DtPolicy::new(model, Arc::new(data.clone()), trajectories, 1.0, 0);
    let obs = |x: f32| shoplab_env::Observation { features: vec![x] };
    assert_eq!(policy.act_greedy(&obs(1.0)), 2);
    // The reward is received; the episode ends; the next one asks for 1 again.
    let next = obs(0.0);
    policy.see_greedy_step(&crate::Transition {
        slot: 0,
        obs: &obs(1.0),
        action: 2,
        reward: 1.0,
        next_obs: &next,
        terminated: true,
        truncated: false,
    });
    assert_eq!(policy.act_greedy(&obs(0.0)), 1);
    assert!(!policy.greedy_is_markov());
    let bytes = policy.checkpoint().unwrap().unwrap();
    let fresh = DecisionTransformer::new(config(2, 99), data.dim, 4).unwrap();
    let mut restored = DtPolicy::new(
        fresh,
        Arc::new(data.clone()),
        Trajectories::new(&data).unwrap(),
        1.0,
        0,
    );
    restored.load_checkpoint(&bytes).unwrap();
    for x in [0.0, 1.0] {
        assert_eq!(restored.greedy(&obs(x)), policy.greedy(&obs(x)));
    }
    assert_eq!(restored.checkpoint().unwrap().unwrap(), bytes);
    // Another shape is refused, naming a tensor.
    let wide = DtConfig {
        dim: 32,
        ..config(2, 1)
    };
    let mut other = DtPolicy::new(
        DecisionTransformer::new(wide, data.dim, 4).unwrap(),
        Arc::new(data.clone()),
        Trajectories::new(&data).unwrap(),
        1.0,
        0,
    );
    assert!(other.load_checkpoint(&bytes).is_err());
}

#[test]
fn bad_settings_are_refused_with_their_key() {
    let base: DtSettings = serde_json::from_str("{}").unwrap();
    let refused = |s: DtSettings| -> String { s.check(4, &[1.0, 2.0], 0).unwrap_err().to_string() };
    let with = |f: &dyn Fn(&mut DtSettings)| {
        let mut s = base.clone();
        f(&mut s);
        s
    };
    assert!(refused(with(&|s| (s.dim, s.heads) = (30, 4))).contains("`heads`"));
    assert!(refused(with(&|s| s.context = 1)).contains("`context`"));
    assert!(refused(with(&|s| s.learning_rate = 0.0)).contains("`learning_rate`"));
    assert!(refused(with(&|s| s.return_scale = Some(0.0))).contains("`return_scale`"));
    assert!(refused(with(&|s| s.target_return = Some(f64::NAN))).contains("`target_return`"));
    assert!(refused(with(&|s| s.gradient_steps = 0)).contains("`gradient_steps`"));
    let (c, target) = base.check(4, &[1.0, -3.0, 2.0], 5).unwrap();
    // Defaults: the best session return, the largest |return|.
    assert_eq!((target, c.return_scale, c.context), (2.0, 3.0, 20));
    assert!(serde_json::from_str::<DtSettings>(r#"{"temperature": 1.0}"#).is_err());
}
