//! Policies for shoplab: baselines, bandits, tabular Q-learning and exact oracles.
//!
//! Every algorithm lives in one file and implements [`Policy`]: it chooses a
//! discrete action from an [`Observation`], may [`learn`](Policy::learn) from
//! each [`Transition`], and reports the action it would take without exploring
//! ([`greedy`](Policy::greedy)). A policy owns its random number generator,
//! seeded when it is built, so a run depends only on its seeds.
//!
//! Policies see only the env API ([`shoplab_env`]): never the simulator. Where a
//! scenario's optimum can be computed, its oracle takes the scenario's exact
//! model as plain numbers (see [`pricing_oracle`]).
#![deny(missing_docs)]

pub mod arms;
pub mod epsilon_greedy;
pub mod fixed;
pub mod pricing_oracle;
pub mod random;
pub mod schedule;
pub mod tabular_q;
pub mod ucb;

use shoplab_env::Observation;
use thiserror::Error;

/// One step of experience, as a learner sees it.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// The observation the action was chosen from.
    pub obs: &'a Observation,
    /// The action taken.
    pub action: usize,
    /// The reward received.
    pub reward: f64,
    /// The observation after the action.
    pub next_obs: &'a Observation,
    /// The next state is terminal: do not bootstrap from it.
    pub terminated: bool,
    /// The episode was cut by a limit: still bootstrap from `next_obs`.
    pub truncated: bool,
}

/// A decision rule over a discrete action space, possibly learning.
pub trait Policy: Send {
    /// Called before each training episode; `episode` counts from 0 to `total − 1`.
    /// Schedules (such as ε decay) follow it.
    fn begin_episode(&mut self, episode: usize, total: usize) {
        let _ = (episode, total);
    }
    /// The action to take while training, exploring as the algorithm does.
    fn act(&mut self, obs: &Observation) -> usize;
    /// The action the policy considers best, without exploring.
    fn greedy(&self, obs: &Observation) -> usize;
    /// Learns from one transition; policies that do not learn ignore it.
    fn learn(&mut self, transition: &Transition<'_>) {
        let _ = transition;
    }
    /// Why the policy can no longer be trusted (say its estimates diverged to
    /// NaN or infinity), checked after every episode; the run stops with it.
    fn divergence(&self) -> Option<String> {
        None
    }
}

/// Why a policy could not be built.
#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A parameter breaks a rule.
    #[error("key `{key}`: {rule}")]
    Invalid {
        /// The parameter's name.
        key: String,
        /// The rule broken, with the value found.
        rule: String,
    },
    /// The observation lacks a feature the policy needs.
    #[error("the observation has no feature `{0}`, which this policy needs")]
    MissingFeature(&'static str),
}

impl PolicyError {
    /// An `Invalid` error.
    pub fn invalid(key: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            rule: rule.into(),
        }
    }
}

/// Index of the largest value, the lowest index among ties.
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_takes_lowest_tie() {
        assert_eq!(super::argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(super::argmax(&[5.0]), 0);
    }
}
