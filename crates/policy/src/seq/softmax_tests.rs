//! The REINFORCE softmax policy: returns per session (discounting,
//! item-wise credit in slates, bootstrapping a cut session), learning a
//! rule that needs both the history and the context, bytes independent of
//! the thread count, checkpoints, and refused settings.

use super::*;
use crate::seq::encoder::EncoderConfig;
use shoplab_env::Feature;

const ITEMS: usize = 8;

fn space(history: usize) -> ObservationSpace {
    let mut features = vec![Feature {
        name: "segment",
        low: 0.0,
        high: 2.0,
        integer: true,
        suggested_bins: 3,
    }];
    for name in ["history_1", "history_2", "history_3"]
        .into_iter()
        .take(history)
    {
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

fn config() -> ReinforceConfig {
    ReinforceConfig {
        encoder: EncoderConfig {
            dim: 16,
            heads: 2,
            layers: 1,
            history: 2,
        },
        batch_size: 64,
        learning_rate: 3e-3,
        one_hot: vec!["segment".into()],
        ..ReinforceConfig::default()
    }
}

fn obs(features: &[f32]) -> Observation {
    Observation {
        features: features.to_vec(),
    }
}

/// A session of `rewards.len()` steps on slot 0 with slates of `k`,
/// ended by termination or truncation.
fn play_session(p: &mut Reinforce, rewards: &[Vec<f64>], terminated: bool) {
    let k = rewards[0].len();
    let states: Vec<Observation> = (0..=rewards.len())
        .map(|i| obs(&[1.0, i as f32, 8.0]))
        .collect();
    let mut slate = Vec::new();
    for (i, step) in rewards.iter().enumerate() {
        p.act_slate(&states[i], k, ITEMS, &mut slate);
        for (j, &r) in step.iter().enumerate() {
            let last = i + 1 == rewards.len();
            p.learn(&Transition {
                obs: &states[i],
                action: slate[j],
                reward: r,
                next_obs: &states[i + 1],
                terminated: last && terminated,
                truncated: last && !terminated,
                slot: 0,
            });
        }
    }
}

#[test]
fn returns_are_discounted_per_session_with_item_wise_credit() {
    let mut c = config();
    c.gamma = 0.5;
    c.batch_size = 1_000;
    let mut p = Reinforce::new(c, &space(2), ITEMS, 1).unwrap();
    play_session(&mut p, &[vec![1.0], vec![2.0], vec![3.0]], true);
    let returns: Vec<f64> = p.ready.iter().map(|d| d.ret).collect();
    assert_eq!(
        returns,
        [1.0 + 0.5 * (2.0 + 0.5 * 3.0), 2.0 + 0.5 * 3.0, 3.0]
    );
    // The states are what the policy read: item 0 then items 0, 1 clicked.
    assert_eq!(p.ready[1].state.items, [1]);
    p.ready.clear();
    // A slate of two: each item's own reward, then the discounted total
    // of the steps after.
    play_session(&mut p, &[vec![1.0, 0.5], vec![2.0, 0.0]], true);
    let returns: Vec<f64> = p.ready.iter().map(|d| d.ret).collect();
    assert_eq!(returns, [1.0 + 0.5 * 2.0, 0.5 + 0.5 * 2.0, 2.0, 0.0]);
    p.ready.clear();
    // Cut by a limit: nothing is queued until the next action scores the
    // last state, and then the returns bootstrap from V of it.
    play_session(&mut p, &[vec![1.0], vec![1.0]], false);
    assert!(p.ready.is_empty());
    let last = p.state(&obs(&[1.0, 2.0, 8.0]));
    let v = f64::from(p.score(&[&last]).unwrap().1[0]);
    p.act(&obs(&[0.0, 8.0, 8.0]));
    let returns: Vec<f64> = p.ready.iter().map(|d| d.ret).collect();
    assert_eq!(returns, [1.0 + 0.5 * (1.0 + 0.5 * v), 1.0 + 0.5 * v]);
}

/// One-step sessions where the rewarded item is `(last item + segment) mod 8`:
/// neither the history nor the context alone tells it. After 40,000
/// decisions the greedy choice is right in most states (a uniform policy
/// is right one time in eight, 3 of 24). Policy gradient can settle on a
/// wrong item in a state it rarely gets right by chance, so a seed may
/// miss a few states: seeds 1–8 got 22, 19, 24, 23, 24, 24, 24, 24 of 24
/// with the fused encoder kernels (22, 20, 22, 23, 24, 23, 24, 24 with the
/// composed ops before them). The test asks each of seeds 1–3 for 18 and
/// the three together for 62 of 72.
fn train_rule(seed: u64) -> Reinforce {
    train_rule_with(config(), seed)
}

fn train_rule_with(config: ReinforceConfig, seed: u64) -> Reinforce {
    let mut p = Reinforce::new(config, &space(2), ITEMS, seed).unwrap();
    let mut rng = rng_from_seed(99);
    let mut slates = Vec::new();
    for _ in 0..1250 {
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
fn states_right(p: &Reinforce) -> usize {
    let mut right = 0;
    for segment in 0..3 {
        for last in 0..ITEMS {
            let o = obs(&[segment as f32, last as f32, 8.0]);
            right += usize::from(p.greedy(&o) == (last + segment) % ITEMS);
        }
    }
    right
}

#[test]
fn learns_a_rule_of_history_and_context() {
    let mut total = 0;
    for seed in [1, 2, 3] {
        let p = train_rule(seed);
        assert!(p.divergence().is_none());
        let right = states_right(&p);
        assert!(right >= 18, "seed {seed}: {right} of 24 states right");
        total += right;
    }
    assert!(total >= 62, "{total} of 72 states right over seeds 1-3");
    let p = train_rule(3);
    let probs = p.probabilities(&obs(&[1.0, 3.0, 8.0]));
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    assert_eq!(crate::argmax(&probs), 4);
}

/// A sampled softmax (3 of the 8 items drawn per minibatch) and no
/// baseline (`value_weight = 0`: the value head is not trained) learn the
/// rule too, and a sampled policy trains the same bytes on any thread
/// count.
#[test]
fn learns_the_rule_with_a_sampled_softmax_and_without_a_baseline() {
    let sampled = ReinforceConfig {
        negatives: 3,
        ..config()
    };
    let bare = ReinforceConfig {
        value_weight: 0.0,
        ..config()
    };
    for (name, c) in [("sampled", sampled.clone()), ("no baseline", bare)] {
        let p = train_rule_with(c, 1);
        assert!(p.divergence().is_none(), "{name}");
        let right = states_right(&p);
        assert!(right >= 20, "{name}: {right} of 24 states right");
    }
    let bytes = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                train_rule_with(sampled.clone(), 2)
                    .checkpoint()
                    .unwrap()
                    .unwrap()
            })
    };
    assert_eq!(bytes(1), bytes(2));
}

/// `item_embeddings = "catalog"`: each item's embedding starts as its
/// feature vector at unit length, zeros after; wrong sizes are refused.
#[test]
fn item_embeddings_start_from_catalog_features() {
    let mut p = Reinforce::new(config(), &space(2), ITEMS, 3).unwrap();
    let features = ItemFeatures {
        dim: 2,
        values: (0..ITEMS).flat_map(|i| [i as f32 + 1.0, 2.0]).collect(),
    };
    p.init_items_from_catalog(&features).unwrap();
    let table: Vec<Vec<f32>> = p.params["encoder.embed.items"]
        .as_tensor()
        .to_vec2()
        .unwrap();
    for i in 0..ITEMS {
        let (x, y) = (i as f32 + 1.0, 2.0f32);
        let norm = (x * x + y * y).sqrt();
        let row = &table[i + 2];
        assert!((row[0] - x / norm).abs() < 1e-6 && (row[1] - y / norm).abs() < 1e-6);
        assert!(row[2..].iter().all(|&v| v == 0.0));
    }
    let short = ItemFeatures {
        dim: 2,
        values: vec![1.0; 2 * ITEMS - 2],
    };
    assert!(p.init_items_from_catalog(&short).is_err());
    let wide = ItemFeatures {
        dim: 17,
        values: vec![1.0; 17 * ITEMS],
    };
    assert!(p.init_items_from_catalog(&wide).is_err());
}

#[test]
fn training_bytes_do_not_depend_on_the_thread_count() {
    let bytes = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train_rule(5).checkpoint().unwrap().unwrap())
    };
    let one = bytes(1);
    assert_eq!(one, bytes(3));
    assert_ne!(one, train_rule(6).checkpoint().unwrap().unwrap());
    // A checkpoint restores the same policy; another catalog's is refused.
    let mut fresh = Reinforce::new(config(), &space(2), ITEMS, 77).unwrap();
    fresh.load_checkpoint(&one).unwrap();
    let o = obs(&[2.0, 5.0, 1.0]);
    assert_eq!(fresh.probabilities(&o), train_rule(5).probabilities(&o));
    let mut other = Reinforce::new(config(), &space(2), ITEMS + 1, 77).unwrap();
    assert!(other.load_checkpoint(&one).is_err());
}

#[test]
fn bad_settings_are_refused_with_their_key() {
    let key = |c: ReinforceConfig, s: &ObservationSpace| match Reinforce::new(c, s, ITEMS, 1) {
        Err(PolicyError::Invalid { key, .. }) => key,
        Err(e) => e.to_string(),
        Ok(_) => "built".into(),
    };
    let mut c = config();
    c.encoder.heads = 3;
    assert_eq!(key(c, &space(2)), "encoder.heads");
    let mut c = config();
    c.encoder.history = 0;
    assert_eq!(key(c, &space(2)), "encoder.history");
    let mut c = config();
    c.temperature = 0.0;
    assert_eq!(key(c, &space(2)), "temperature");
    let mut c = config();
    c.top_k = Some(ITEMS + 1);
    assert_eq!(key(c, &space(2)), "top_k");
    let mut c = config();
    c.one_hot = vec!["colour".into()];
    assert_eq!(key(c, &space(2)), "one_hot");
    assert!(key(config(), &space(0)).contains("history_1"));
    assert_eq!(key(config(), &space(3)), "built");
}

/// From a log of one-step sessions whose logging policy shows item 0 in
/// 65% of decisions and each other item in 5%: item 0 earns 0.2, the
/// rewarded rule's item `(last + segment) mod 8` earns 1. Uncorrected,
/// the log's gradient favours item 0 (0.65 × 0.2 > 0.05 × 1: with the
/// weights left out, this test's policy put probability 1 on item 0 and
/// was right in 3 states of 24); weighted by `π/β`, it is the on-policy
/// gradient, and the greedy policy finds the rule (23 of 24). (With item 0 at 0.4
/// even the corrected policy settles on it: softmax policy gradient's
/// plateau, Mei et al. 2020.)
#[test]
fn learns_from_a_skewed_log_with_the_off_policy_correction() {
    let mut rng = rng_from_seed(21);
    let rows = 20_000;
    let mut data = crate::offline::Transitions {
        dim: 3,
        ..Default::default()
    };
    for _ in 0..rows {
        let segment = rng.random_range(0..3) as f32;
        let last = rng.random_range(0..ITEMS) as f32;
        let action = if rng.random_bool(0.6) {
            0
        } else {
            rng.random_range(0..ITEMS) as u32
        };
        let propensity = if action == 0 { 0.65 } else { 0.05 };
        let right = (last + segment) as u32 % ITEMS as u32;
        let reward = if action == right {
            1.0
        } else if action == 0 {
            0.2
        } else {
            0.0
        };
        data.obs.extend([segment, last, 8.0]);
        data.action.push(action);
        data.reward.push(reward);
        data.next.push(None);
        data.propensity.push(propensity);
    }
    let mut c = config();
    c.log_steps = Some(2_000);
    let mut p = Reinforce::new(c, &space(2), ITEMS, 4).unwrap();
    p.learn_from_log(&data).unwrap();
    for e in 0..4 {
        p.begin_episode(e, 4);
    }
    assert_eq!(p.adam.steps(), 2_000);
    assert!(p.divergence().is_none());
    let right = states_right(&p);
    assert!(right >= 20, "{right} of 24 states right");
    // The env's transitions teach it nothing more.
    let before = p.checkpoint().unwrap().unwrap();
    play_session(&mut p, &[vec![1.0]], true);
    assert_eq!(p.checkpoint().unwrap().unwrap(), before);
    // A log without propensities, or of other observations, is refused.
    let mut q = Reinforce::new(config(), &space(2), ITEMS, 4).unwrap();
    let bare = crate::offline::Transitions {
        propensity: Vec::new(),
        ..data.clone()
    };
    assert!(
        q.learn_from_log(&bare)
            .unwrap_err()
            .contains("propensities")
    );
    let narrow = crate::offline::Transitions { dim: 2, ..data };
    assert!(q.learn_from_log(&narrow).unwrap_err().contains("features"));
}
