//! Reusable determinism checks, in the spirit of Gymnasium's
//! `check_reset_seed_determinism` and `check_step_determinism`.
//!
//! Every scenario's tests call [`check_determinism`]: the same seed and actions
//! must give the same trajectory bit for bit, also on a second instance of the
//! env and after the env has been used for another episode, and a different
//! seed must give a different trajectory.

use crate::{Env, Observation, batch::BatchEnv, seed::rng_from_seed};
use rand::RngExt;
use thiserror::Error;

/// How a determinism check failed.
#[derive(Debug, Error, PartialEq)]
pub enum DeterminismError {
    /// Two runs with the same seed and actions differ.
    #[error("same seed {seed} gave different trajectories ({what}), first at step {step}")]
    SameSeedDiffers {
        /// The seed.
        seed: u64,
        /// Which comparison failed.
        what: &'static str,
        /// First step at which they differ (0 is the reset observation).
        step: usize,
    },
    /// Two different seeds gave the same trajectory.
    #[error("seeds {a} and {b} gave identical trajectories over {steps} steps")]
    SeedIgnored {
        /// First seed.
        a: u64,
        /// Second seed.
        b: u64,
        /// Steps compared.
        steps: usize,
    },
}

/// One recorded step: observation bits, reward bits, flags and metric bits.
type Record = (Vec<u32>, u64, bool, bool, Vec<u64>);

fn bits(obs: &Observation) -> Vec<u32> {
    obs.features.iter().map(|x| x.to_bits()).collect()
}

/// Runs one episode of at most `max_steps` steps from `seed`, taking actions
/// drawn uniformly from a generator seeded with `action_seed`, and records it
/// bit for bit.
pub fn trajectory<E: Env + ?Sized>(
    env: &mut E,
    seed: u64,
    action_seed: u64,
    max_steps: usize,
) -> Vec<Record> {
    let n = env.action_space().n();
    let mut actions = rng_from_seed(action_seed);
    let (first, _) = env.reset(seed);
    let mut out = vec![(bits(&first), 0, false, false, Vec::new())];
    for _ in 0..max_steps {
        let step = env.step(actions.random_range(0..n));
        let done = step.done();
        out.push((
            bits(&step.obs),
            step.reward.to_bits(),
            step.terminated,
            step.truncated,
            step.info.iter().map(|x| x.to_bits()).collect(),
        ));
        if done {
            break;
        }
    }
    out
}

fn first_difference<R: PartialEq>(a: &[R], b: &[R]) -> Option<usize> {
    (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
}

/// The determinism check over any recorder of trajectories: `record(twin,
/// seed)` plays one episode from `seed` on the env (or, with `twin`, on the
/// second instance) with the same actions every time, and records it.
fn check_with<R: PartialEq>(
    seed: u64,
    other_seed: u64,
    mut record: impl FnMut(bool, u64) -> Vec<R>,
) -> Result<(), DeterminismError> {
    let first = record(false, seed);
    let other = record(false, other_seed);
    let again = record(false, seed);
    if let Some(step) = first_difference(&first, &again) {
        return Err(DeterminismError::SameSeedDiffers {
            seed,
            what: "reset on the same instance",
            step,
        });
    }
    if let Some(step) = first_difference(&first, &record(true, seed)) {
        return Err(DeterminismError::SameSeedDiffers {
            seed,
            what: "a second instance",
            step,
        });
    }
    if first_difference(&first, &other).is_none() {
        return Err(DeterminismError::SeedIgnored {
            a: seed,
            b: other_seed,
            steps: first.len(),
        });
    }
    Ok(())
}

/// Checks that `seed` reproduces its trajectory on `env` (reset twice, with
/// another episode in between) and on the fresh instance `twin`, and that
/// `other_seed` gives a different trajectory.
pub fn check_determinism<E: Env + ?Sized>(
    env: &mut E,
    twin: &mut E,
    seed: u64,
    other_seed: u64,
    max_steps: usize,
) -> Result<(), DeterminismError> {
    check_with(seed, other_seed, |on_twin, s| {
        let env = if on_twin { &mut *twin } else { &mut *env };
        trajectory(env, s, seed ^ 0xA5A5, max_steps)
    })
}

/// A batch episode under random slates drawn from `action_seed`, as one
/// digest per tick of every observation, reward, metric and ending (bit
/// patterns, so NaNs compare): a batch of wide observations would take
/// gigabytes to keep whole, and two runs differ exactly when some tick's
/// digest does (up to a 64-bit collision).
pub fn batch_trajectory<E: BatchEnv + ?Sized>(
    env: &mut E,
    seed: u64,
    action_seed: u64,
) -> Vec<u64> {
    use std::hash::Hasher;
    let digest = |obs: &[crate::Observation], extra: &mut dyn FnMut(&mut dyn Hasher)| {
        // SipHash with fixed keys: the same in every run of one build.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        for o in obs {
            for x in &o.features {
                h.write_u32(x.to_bits());
            }
        }
        extra(&mut h);
        h.finish()
    };
    let (n, k, actions) = (env.batch_size(), env.slate_size(), env.action_space().n());
    let mut rng = rng_from_seed(action_seed);
    let (first, _) = env.reset(seed);
    let mut out = vec![digest(&first, &mut |_| {})];
    let mut slates = Vec::with_capacity(n * k);
    loop {
        slates.clear();
        for _ in 0..n {
            let start = slates.len();
            while slates.len() < start + k {
                let a = rng.random_range(0..actions);
                if !slates[start..].contains(&a) {
                    slates.push(a);
                }
            }
        }
        let step = env.step(&slates);
        out.push(digest(&step.obs, &mut |h| {
            for x in step
                .rewards
                .iter()
                .chain(&step.item_rewards)
                .chain(&step.info)
            {
                h.write_u64(x.to_bits());
            }
            for &b in step.terminated.iter().chain(&step.truncated) {
                h.write_u8(u8::from(b));
            }
        }));
        if step.episode_over {
            return out;
        }
    }
}

/// [`check_determinism`] for batch envs: the same seed reproduces a whole batch
/// episode (on the same instance after another episode, and on `twin`), and
/// `other_seed` changes it.
pub fn check_batch_determinism<E: BatchEnv + ?Sized>(
    env: &mut E,
    twin: &mut E,
    seed: u64,
    other_seed: u64,
) -> Result<(), DeterminismError> {
    check_with(seed, other_seed, |on_twin, s| {
        let env = if on_twin { &mut *twin } else { &mut *env };
        batch_trajectory(env, s, seed ^ 0x5A5A)
    })
}
