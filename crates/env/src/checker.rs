//! The env checker, after Gymnasium's `utils/env_checker.py`: plays a few
//! seeded episodes with random actions and checks every promise the env's
//! declared spaces make.
//!
//! Rules, each a [`CheckError`] variant when broken:
//! - the action space has at least one action, and one category per action
//!   where it has categories;
//! - a batch env's slates fit the action space (`1 ≤ slate_size ≤ actions`,
//!   so slates of distinct items exist), and every batch step returns one
//!   entry per slot (observations, rewards, flags) and per shown item;
//! - every observation — the reset's, every step's, terminal ones included —
//!   has one value per declared feature, inside `[low, high]`, a whole
//!   number for integer features;
//! - every `info` has one value per metric name, and every reward is finite;
//! - `terminated` and `truncated` are never both set; a batch episode that is
//!   over has ended every slot; a single episode ends within a step limit;
//! - the same seed reproduces the trajectory, on the same instance and a
//!   fresh one, and another seed changes it ([`crate::check`]).

use crate::{
    Env, EnvBox, Info, Observation, ObservationSpace,
    batch::BatchEnv,
    check::{DeterminismError, check_batch_determinism, check_determinism},
    seed::rng_from_seed,
};
use rand::RngExt;
use thiserror::Error;

/// Steps after which a single episode that has not ended breaks the rules.
pub const MAX_CHECK_STEPS: usize = 1_000_000;

/// A broken rule, with where it was found: `step` 0 is the reset, `slot` the
/// batch slot (0 for single envs).
#[derive(Debug, Error, PartialEq)]
pub enum CheckError {
    /// The action space is empty.
    #[error("the action space has no actions")]
    NoActions,
    /// Categories are given, but not one per action.
    #[error("the action space has {found} categories for {actions} actions (want one per action)")]
    Categories {
        /// Actions.
        actions: usize,
        /// Categories given.
        found: usize,
    },
    /// A batch env's slate size does not fit the action space.
    #[error("slates of {slate} distinct actions cannot be drawn from {actions} actions")]
    SlateSize {
        /// The slate size.
        slate: usize,
        /// Actions.
        actions: usize,
    },
    /// A batch step returned the wrong number of entries.
    #[error("step {step}: {what} has {found} entries, expected {expected}")]
    BatchShape {
        /// The step.
        step: usize,
        /// Which part of the step (`rewards`, `item_rewards`, …).
        what: &'static str,
        /// Entries expected.
        expected: usize,
        /// Entries found.
        found: usize,
    },
    /// An observation has the wrong number of features.
    #[error(
        "step {step}, slot {slot}: the observation has {found} features, the space declares {expected}"
    )]
    ObservationLength {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
        /// Features declared.
        expected: usize,
        /// Features found.
        found: usize,
    },
    /// A feature lies outside its declared range.
    #[error(
        "step {step}, slot {slot}{terminal}: feature `{feature}` = {value} lies outside its declared range [{low}, {high}]",
        terminal = if *terminal { " (terminal observation)" } else { "" }
    )]
    OutsideSpace {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
        /// The observation ended its episode.
        terminal: bool,
        /// The feature's name.
        feature: &'static str,
        /// The value found.
        value: f32,
        /// Declared lower bound.
        low: f32,
        /// Declared upper bound.
        high: f32,
    },
    /// An integer feature holds a fraction.
    #[error(
        "step {step}, slot {slot}: integer feature `{feature}` = {value} is not a whole number"
    )]
    NotInteger {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
        /// The feature's name.
        feature: &'static str,
        /// The value found.
        value: f32,
    },
    /// An `info` has the wrong length.
    #[error("step {step}: info has {found} values, but the env names {expected} metrics")]
    InfoLength {
        /// The step.
        step: usize,
        /// Metric names.
        expected: usize,
        /// Values found.
        found: usize,
    },
    /// A reward is NaN or infinite.
    #[error("step {step}, slot {slot}: the reward is not finite ({reward})")]
    NonFiniteReward {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
        /// The reward.
        reward: f64,
    },
    /// Both `terminated` and `truncated` are set.
    #[error("step {step}, slot {slot}: terminated and truncated are both set")]
    BothEnded {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
    },
    /// A batch episode is over while a slot's session goes on.
    #[error(
        "step {step}: the batch episode is over, but slot {slot} neither terminated nor was truncated"
    )]
    LiveSlotAtEnd {
        /// The step.
        step: usize,
        /// The slot.
        slot: usize,
    },
    /// An episode did not end.
    #[error("an episode did not end within {steps} steps")]
    NeverEnds {
        /// The step limit.
        steps: usize,
    },
    /// The env is not deterministic in its seed.
    #[error("determinism: {0}")]
    Determinism(#[from] DeterminismError),
}

/// What a passed check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckSummary {
    /// Episodes played.
    pub episodes: usize,
    /// Steps taken (batch steps count once).
    pub steps: usize,
    /// Observations checked against the space.
    pub observations: usize,
}

/// Checks `env` by every rule above, playing `episodes` episodes from seeds
/// `seed, seed + 1, …` with uniformly random actions (distinct slates), and
/// its determinism against the fresh instance `twin`.
pub fn check_env(
    env: &mut EnvBox,
    twin: &mut EnvBox,
    seed: u64,
    episodes: usize,
) -> Result<CheckSummary, CheckError> {
    let actions = env.action_space();
    if actions.n() == 0 {
        return Err(CheckError::NoActions);
    }
    if !actions.categories.is_empty() && actions.categories.len() != actions.n() {
        return Err(CheckError::Categories {
            actions: actions.n(),
            found: actions.categories.len(),
        });
    }
    let mut summary = CheckSummary::default();
    match (env, twin) {
        (EnvBox::Single(env), EnvBox::Single(twin)) => {
            for e in 0..episodes as u64 {
                single_episode(env.as_mut(), seed + e, &mut summary)?;
            }
            check_determinism(env.as_mut(), twin.as_mut(), seed, seed + 1, 10_000)?;
        }
        (EnvBox::Batch(env), EnvBox::Batch(twin)) => {
            let (slate, n) = (env.slate_size(), env.action_space().n());
            if slate == 0 || slate > n {
                return Err(CheckError::SlateSize { slate, actions: n });
            }
            for e in 0..episodes as u64 {
                batch_episode(env.as_mut(), seed + e, &mut summary)?;
            }
            check_batch_determinism(env.as_mut(), twin.as_mut(), seed, seed + 1)?;
        }
        _ => panic!("check_env needs two instances of the same env"),
    }
    Ok(summary)
}

fn observation(
    space: &ObservationSpace,
    obs: &Observation,
    (step, slot, terminal): (usize, usize, bool),
) -> Result<(), CheckError> {
    if obs.features.len() != space.len() {
        return Err(CheckError::ObservationLength {
            step,
            slot,
            expected: space.len(),
            found: obs.features.len(),
        });
    }
    for (f, &value) in space.features.iter().zip(&obs.features) {
        if !(f.low..=f.high).contains(&value) {
            return Err(CheckError::OutsideSpace {
                step,
                slot,
                terminal,
                feature: f.name,
                value,
                low: f.low,
                high: f.high,
            });
        }
        if f.integer && value.fract() != 0.0 {
            return Err(CheckError::NotInteger {
                step,
                slot,
                feature: f.name,
                value,
            });
        }
    }
    Ok(())
}

fn info(metrics: usize, info: &Info, step: usize) -> Result<(), CheckError> {
    if info.len() == metrics {
        Ok(())
    } else {
        Err(CheckError::InfoLength {
            step,
            expected: metrics,
            found: info.len(),
        })
    }
}

fn reward(reward: f64, step: usize, slot: usize) -> Result<(), CheckError> {
    if reward.is_finite() {
        Ok(())
    } else {
        Err(CheckError::NonFiniteReward { step, slot, reward })
    }
}

fn single_episode(
    env: &mut dyn Env,
    seed: u64,
    summary: &mut CheckSummary,
) -> Result<(), CheckError> {
    let space = env.observation_space().clone();
    let (n, metrics) = (env.action_space().n(), env.metric_names().len());
    let mut rng = rng_from_seed(seed ^ 0xC4EC);
    let (first, first_info) = env.reset(seed);
    observation(&space, &first, (0, 0, false))?;
    info(metrics, &first_info, 0)?;
    summary.episodes += 1;
    summary.observations += 1;
    for step in 1..=MAX_CHECK_STEPS {
        let s = env.step(rng.random_range(0..n));
        summary.steps += 1;
        summary.observations += 1;
        if s.terminated && s.truncated {
            return Err(CheckError::BothEnded { step, slot: 0 });
        }
        observation(&space, &s.obs, (step, 0, s.done()))?;
        info(metrics, &s.info, step)?;
        reward(s.reward, step, 0)?;
        if s.done() {
            return Ok(());
        }
    }
    Err(CheckError::NeverEnds {
        steps: MAX_CHECK_STEPS,
    })
}

fn batch_episode(
    env: &mut dyn BatchEnv,
    seed: u64,
    summary: &mut CheckSummary,
) -> Result<(), CheckError> {
    let space = env.observation_space().clone();
    let (slots, k, n) = (env.batch_size(), env.slate_size(), env.action_space().n());
    let metrics = env.metric_names().len();
    let mut rng = rng_from_seed(seed ^ 0xC4EC);
    let shape = |step, what, expected, found| {
        if expected == found {
            Ok(())
        } else {
            Err(CheckError::BatchShape {
                step,
                what,
                expected,
                found,
            })
        }
    };
    let (first, first_info) = env.reset(seed);
    shape(0, "observations", slots, first.len())?;
    info(metrics, &first_info, 0)?;
    for (slot, obs) in first.iter().enumerate() {
        observation(&space, obs, (0, slot, false))?;
    }
    summary.episodes += 1;
    summary.observations += slots;
    let mut slates = Vec::with_capacity(slots * k);
    for step in 1..=MAX_CHECK_STEPS {
        slates.clear();
        for _ in 0..slots {
            let start = slates.len();
            while slates.len() < start + k {
                let a = rng.random_range(0..n);
                if !slates[start..].contains(&a) {
                    slates.push(a);
                }
            }
        }
        let s = env.step(&slates);
        summary.steps += 1;
        summary.observations += slots;
        shape(step, "observations", slots, s.obs.len())?;
        shape(step, "rewards", slots, s.rewards.len())?;
        shape(step, "item_rewards", slots * k, s.item_rewards.len())?;
        shape(step, "terminated", slots, s.terminated.len())?;
        shape(step, "truncated", slots, s.truncated.len())?;
        info(metrics, &s.info, step)?;
        for slot in 0..slots {
            let (terminated, truncated) = (s.terminated[slot], s.truncated[slot]);
            if terminated && truncated {
                return Err(CheckError::BothEnded { step, slot });
            }
            if s.episode_over && !(terminated || truncated) {
                return Err(CheckError::LiveSlotAtEnd { step, slot });
            }
            reward(s.rewards[slot], step, slot)?;
            observation(&space, &s.obs[slot], (step, slot, terminated || truncated))?;
        }
        for (i, &r) in s.item_rewards.iter().enumerate() {
            reward(r, step, i / k)?;
        }
        if s.episode_over {
            return Ok(());
        }
    }
    Err(CheckError::NeverEnds {
        steps: MAX_CHECK_STEPS,
    })
}
