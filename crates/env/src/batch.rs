//! Batched environments: many independent sessions stepped together.
//!
//! A [`BatchEnv`] holds `batch_size` slots, each a session of its own (a
//! shopper, say), and steps them all at once — Gymnasium's vector envs, with
//! auto-reset: when a slot's session ends, the slot starts a new session at
//! once and its next observation is the new session's first. A batch episode
//! lasts a fixed number of ticks; at its end every live session is truncated.
//!
//! Each slot recommends a slate of `slate_size` distinct actions (1 for a
//! single action).

use crate::{ActionSpace, Info, Observation, ObservationSpace};

/// What one tick of a [`BatchEnv`] returns, slot by slot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchStep {
    /// Each slot's next observation (a new session's first after a termination).
    pub obs: Vec<Observation>,
    /// Each slot's reward.
    pub rewards: Vec<f64>,
    /// The reward credited to each shown action (`batch_size × slate_size`,
    /// slot by slot): the slot's reward for the action the session responded
    /// to, and the env's no-response reward for the others. With slates of
    /// one it equals `rewards`; learners use it for item-wise credit.
    pub item_rewards: Vec<f64>,
    /// The slot's session reached a terminal state (do not bootstrap).
    pub terminated: Vec<bool>,
    /// The slot's session was cut by the end of the batch episode (bootstrap).
    pub truncated: Vec<bool>,
    /// Metrics summed over the slots, aligned with [`BatchEnv::metric_names`].
    pub info: Info,
    /// The batch episode is over: every slot is done.
    pub episode_over: bool,
}

impl BatchStep {
    /// A tick's result for `slots` slots of slates of `k` before the env
    /// fills it in: empty observations, zero rewards, `no_response` credited
    /// to every shown item, no session ended, `metrics` zeros.
    pub fn blank(
        slots: usize,
        k: usize,
        metrics: usize,
        no_response: f64,
        episode_over: bool,
    ) -> Self {
        Self {
            obs: vec![Observation::default(); slots],
            rewards: vec![0.0; slots],
            item_rewards: vec![no_response; slots * k],
            terminated: vec![false; slots],
            truncated: vec![false; slots],
            info: vec![0.0; metrics],
            episode_over,
        }
    }
}

/// Many sessions of one scenario, stepped together.
pub trait BatchEnv: Send {
    /// Describes each slot's observation.
    fn observation_space(&self) -> &ObservationSpace;
    /// Describes the actions a slate is drawn from.
    fn action_space(&self) -> &ActionSpace;
    /// Actions per slate, distinct, ≥ 1.
    fn slate_size(&self) -> usize;
    /// Number of slots.
    fn batch_size(&self) -> usize;
    /// Names of the metrics in [`BatchStep::info`].
    fn metric_names(&self) -> &[&'static str];
    /// Starts a batch episode from `seed`: every slot gets a new session.
    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info);
    /// Steps every slot; `slates` holds `batch_size × slate_size` actions,
    /// slot by slot.
    fn step(&mut self, slates: &[usize]) -> BatchStep;
    /// Privileged knowledge for myopic oracles: fills `out` with the true
    /// expected immediate reward of showing each single action to each slot
    /// now (`batch_size × n_actions`, slot by slot) and returns true; envs
    /// that cannot tell return false.
    fn expected_rewards(&mut self, out: &mut Vec<f64>) -> bool {
        let _ = out;
        false
    }
}
