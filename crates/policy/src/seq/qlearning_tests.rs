//! The sequence Q-learner: two-tower Q-values, learning a rule of history
//! and context, bootstrapping through the target network, batched acting
//! equal to acting one state at a time, bytes independent of the thread
//! count, checkpoints, and refused settings.

use super::*;
use crate::seq::encoder::EncoderConfig;
use shoplab_env::Feature;

const ITEMS: usize = 8;

fn space() -> ObservationSpace {
    let mut features = vec![Feature {
        name: "segment",
        low: 0.0,
        high: 2.0,
        integer: true,
        suggested_bins: 3,
    }];
    for name in ["history_1", "history_2"] {
        features.push(Feature {
            name,
            low: 0.0,
            high: ITEMS as f32,
            integer: true,
            suggested_bins: 1,
        });
    }
    ObservationSpace { features }
}

fn config() -> DqnConfig {
    DqnConfig {
        encoder: QEncoder::Transformer,
        transformer: EncoderConfig {
            dim: 16,
            heads: 2,
            layers: 1,
            history: 2,
        },
        batch_size: 32,
        buffer_size: 5_000,
        learning_starts: 500,
        train_freq: 4,
        target_update_interval: 200,
        learning_rate: 3e-3,
        gamma: 0.9,
        one_hot: vec!["segment".into()],
        ..DqnConfig::default()
    }
}

fn obs(features: &[f32]) -> Observation {
    Observation {
        features: features.to_vec(),
    }
}

/// One-step episodes where the rewarded item is `(last item + segment) mod
/// 8`: neither the history nor the context alone tells it (a uniform
/// choice is right one time in eight). `steps` steps of 32 sessions, ε
/// from 1 to 0.05 over the first half.
fn train_rule(config: DqnConfig, seed: u64, steps: usize) -> SequenceDqn {
    let mut p = SequenceDqn::new(config, &space(), ITEMS, seed).unwrap();
    let mut rng = rng_from_seed(99);
    let mut slates = Vec::new();
    for step in 0..steps {
        p.begin_episode(step, steps);
        let batch: Vec<Observation> = (0..32)
            .map(|_| {
                let segment = rng.random_range(0..3) as f32;
                let last = rng.random_range(0..ITEMS) as f32;
                let before = rng.random_range(0..=ITEMS) as f32;
                obs(&[segment, last, before])
            })
            .collect();
        p.act_slates(&batch, 1, ITEMS, Mode::Train, &mut slates)
            .unwrap();
        for (slot, (o, &a)) in batch.iter().zip(&slates).enumerate() {
            let right = (o.features[1] + o.features[0]) as usize % ITEMS;
            p.learn(&Transition {
                obs: o,
                action: a,
                reward: f64::from(u8::from(a == right)),
                next_obs: o,
                terminated: true,
                truncated: false,
                slot,
            });
        }
    }
    p
}

/// The states (of 24) where `p`'s greedy item is the rule's.
fn states_right(p: &SequenceDqn) -> usize {
    let mut right = 0;
    for segment in 0..3 {
        for last in 0..ITEMS {
            let o = obs(&[segment as f32, last as f32, 8.0]);
            right += usize::from(p.greedy(&o) == (last + segment) % ITEMS);
        }
    }
    right
}

/// Q-learning's greedy items follow the rule in (nearly) every state, for
/// DQN and Double DQN, after 12,800 decisions (about 3,000 updates), and
/// the learned Q of the right item nears its expected reward of 1 (within
/// 0.25; the others near 0).
#[test]
fn learns_a_rule_of_history_and_context() {
    for (double, seed) in [(false, 1), (true, 3)] {
        let p = train_rule(DqnConfig { double, ..config() }, seed, 400);
        assert!(p.divergence().is_none());
        let right = states_right(&p);
        assert!(
            right >= 22,
            "double {double}, seed {seed}: {right} of 24 right"
        );
        let q = p.q_values(&obs(&[1.0, 3.0, 8.0]));
        assert!((q[4] - 1.0).abs() < 0.25, "Q of the right item {}", q[4]);
        let others = q.iter().enumerate().filter(|&(a, _)| a != 4);
        assert!(others.map(|(_, v)| v.abs()).fold(0.0, f64::max) < 0.3);
    }
}

/// Two-step sessions: the first step pays nothing, and the second pays 1
/// whatever is shown if the first showed item 3. Only bootstrapping from
/// the target network's value of the next state (γ · 1) can tell item 3
/// apart at the first step.
#[test]
fn values_bootstrap_through_the_next_state() {
    let c = DqnConfig {
        train_freq: 2,
        ..config()
    };
    let mut p = SequenceDqn::new(c, &space(), ITEMS, 5).unwrap();
    let mut rng = rng_from_seed(7);
    let first = obs(&[0.0, 8.0, 8.0]);
    let mut slate = Vec::new();
    for episode in 0..2_000 {
        p.begin_episode(episode, 2_000);
        p.act_slate(&first, 1, ITEMS, &mut slate);
        // Half the first steps show a random item, so item 3 is seen.
        let a = if rng.random_bool(0.5) {
            slate[0]
        } else {
            rng.random_range(0..ITEMS)
        };
        let second = obs(&[0.0, a as f32, 8.0]);
        p.learn(&Transition {
            obs: &first,
            action: a,
            reward: 0.0,
            next_obs: &second,
            terminated: false,
            truncated: false,
            slot: 0,
        });
        p.act_slate(&second, 1, ITEMS, &mut slate);
        p.learn(&Transition {
            obs: &second,
            action: slate[0],
            reward: f64::from(u8::from(a == 3)),
            next_obs: &second,
            terminated: true,
            truncated: false,
            slot: 0,
        });
    }
    assert!(p.divergence().is_none());
    let q = p.q_values(&first);
    assert_eq!(crate::argmax(&q), 3, "{q:?}");
    assert!((q[3] - 0.9).abs() < 0.2, "Q(first, 3) = {} (γ = 0.9)", q[3]);
}

/// The Q-values are two-tower: `h(s)·e_i + b_i` with the encoder's own
/// item embeddings; batched greedy slates equal one state's at a time.
#[test]
fn q_values_are_two_tower_and_batching_changes_nothing() {
    let mut p = train_rule(config(), 4, 50);
    let o = obs(&[2.0, 5.0, 1.0]);
    let state = p.reader.state(&o.features);
    let h: Vec<f32> = p
        .encode(&[&state], false, false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let table: Vec<Vec<f32>> = p.params["encoder.embed.items"]
        .as_tensor()
        .to_vec2()
        .unwrap();
    let bias: Vec<f32> = p.params["items.bias"].as_tensor().to_vec1().unwrap();
    let q = p.q_values(&o);
    for i in 0..ITEMS {
        let dot: f64 = h
            .iter()
            .zip(&table[i + 2])
            .map(|(a, b)| f64::from(a * b))
            .sum();
        assert!((q[i] - dot - f64::from(bias[i])).abs() < 1e-5);
    }
    let batch: Vec<Observation> = (0..40)
        .map(|i| obs(&[(i % 3) as f32, (i % 8) as f32, ((i / 8) % 9) as f32]))
        .collect();
    let mut together = Vec::new();
    p.act_slates(&batch, 3, ITEMS, Mode::Greedy, &mut together)
        .unwrap();
    let mut one = Vec::new();
    for (i, o) in batch.iter().enumerate() {
        p.greedy_slate(o, 3, ITEMS, &mut one);
        assert_eq!(one, together[3 * i..3 * i + 3]);
    }
}

#[test]
fn training_bytes_do_not_depend_on_the_thread_count_and_checkpoints_load() {
    let trained = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let c = DqnConfig {
                    prioritized: true,
                    exploration: Exploration::Boltzmann,
                    ..config()
                };
                train_rule(c, 6, 60)
            })
    };
    let p = trained(1);
    let saved = p.checkpoint().unwrap().unwrap();
    assert_eq!(saved, trained(3).checkpoint().unwrap().unwrap());
    let mut fresh = SequenceDqn::new(config(), &space(), ITEMS, 9).unwrap();
    fresh.load_checkpoint(&saved).unwrap();
    let o = obs(&[1.0, 2.0, 3.0]);
    assert_eq!(fresh.q_values(&o), p.q_values(&o));
    // The target network got the loaded weights too.
    for (name, var) in &fresh.params {
        let a: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = fresh.target_params[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(a, b, "{name}");
    }
    let other = SequenceDqn::new(
        DqnConfig {
            transformer: EncoderConfig {
                dim: 8,
                ..config().transformer
            },
            ..config()
        },
        &space(),
        ITEMS,
        9,
    );
    assert!(other.unwrap().load_checkpoint(&saved).is_err());
}

#[test]
fn refuses_what_the_transformer_cannot_take() {
    let refused = |c: DqnConfig, s: &ObservationSpace| {
        SequenceDqn::new(c, s, ITEMS, 1).unwrap_err().to_string()
    };
    let e = refused(
        DqnConfig {
            dueling: true,
            ..config()
        },
        &space(),
    );
    assert!(e.contains("dueling") && e.contains("two-tower"), "{e}");
    let mut odd = config();
    odd.transformer.heads = 3;
    let e = refused(odd, &space());
    assert!(
        e.contains("transformer.heads") && e.contains("multiple"),
        "{e}"
    );
    let mut none = config();
    none.transformer.history = 0;
    let e = refused(none, &space());
    assert!(e.contains("transformer.history"), "{e}");
    let bare = ObservationSpace {
        features: space().features[..1].to_vec(),
    };
    let e = refused(config(), &bare);
    assert!(e.contains("history_1"), "{e}");
    // The MLP learner refuses the transformer's setting.
    let e = crate::dqn::Dqn::new(config(), &space(), ITEMS, 1).unwrap_err();
    assert!(e.to_string().contains("encoder"), "{e}");
}
