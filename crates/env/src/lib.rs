//! The environment API shared by every shoplab scenario and policy.
//!
//! The shape follows Gymnasium, which reinforcement-learning users already know:
//! an [`Env`] is [`reset`](Env::reset) with a seed and returns the first
//! [`Observation`] and an [`Info`]; each [`step`](Env::step) takes a discrete action index and
//! returns a [`Step`] with the next observation, the reward, and the two ways an
//! episode can end — `terminated` (the MDP reached a terminal state, so nothing
//! is bootstrapped past it) and `truncated` (the episode was cut short by a time
//! limit, so learners must still bootstrap from the next observation).
//!
//! Observations carry an `f32` feature vector described by an
//! [`ObservationSpace`]: neural policies read the vector directly, tabular
//! policies discretise it with a [`Discretiser`], using the bin counts the
//! environment suggests for each feature unless the scenario overrides them.
//!
//! Everything random descends from one seed through [`seed::derive_seed`], and
//! [`check`] holds reusable determinism checks that every scenario's tests call.
//! [`mdp`] holds small tabular MDPs with exact value iteration, used to test
//! learners against known optimal values.
//!
//! Scenarios with many concurrent sessions implement [`batch::BatchEnv`]
//! instead: Gymnasium's vector envs with auto-reset.
//!
//! A scenario *family* (pricing, recommendation, ads, or one of a user's own)
//! is a [`FamilyKind`] — the name of its table in scenario files, its config
//! type and its validation — that prepares a [`Family`]: everything the
//! harness asks of a validated scenario (its envs, metrics, references and
//! charts) and everything policies may ask of it ([`family`]). [`config`]
//! holds the validators and the error every family reports with.
//!
//! This crate knows nothing of bevy (the simulator) or candle (neural policies):
//! both sides depend on it, and not on each other.
#![deny(missing_docs)]

pub mod batch;
pub mod check;
pub mod checker;
pub mod config;
pub mod cost;
pub mod family;
pub mod input;
pub mod inventory;
pub mod mdp;
pub mod seed;
mod space;

pub use family::{EnvBox, Family, FamilyKind};
pub use space::{ActionSpace, Discretiser, DiscretiserError, Feature, ObservationSpace};

/// Per-step metrics, aligned with [`Env::metric_names`] (Gymnasium's `info`).
pub type Info = Vec<f64>;

/// One observation: the feature vector described by the env's [`ObservationSpace`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Feature values, in the order of [`ObservationSpace::features`].
    pub features: Vec<f32>,
}

/// What one call to [`Env::step`] returns, as in Gymnasium.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The observation after the action.
    pub obs: Observation,
    /// The reward for the action.
    pub reward: f64,
    /// The MDP reached a terminal state: learners must not bootstrap past it.
    pub terminated: bool,
    /// The episode was cut by a limit outside the MDP: learners still bootstrap.
    pub truncated: bool,
    /// Per-step metrics, aligned with [`Env::metric_names`]; additive over an episode.
    pub info: Info,
}

impl Step {
    /// True when the episode is over, for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A reinforcement-learning environment with a discrete action space.
///
/// Implementations own their random number generator and reseed it on every
/// [`reset`](Env::reset), so that a trajectory depends only on the seed and the
/// actions taken.
pub trait Env: Send {
    /// Describes the observation's features.
    fn observation_space(&self) -> &ObservationSpace;
    /// Describes the actions.
    fn action_space(&self) -> &ActionSpace;
    /// Names of the per-step metrics reported in [`Step::info`].
    fn metric_names(&self) -> &[&'static str];
    /// Starts a new episode from `seed` and returns the first observation and
    /// the metrics so far (zero at the start, for every env shoplab ships).
    fn reset(&mut self, seed: u64) -> (Observation, Info);
    /// Applies `action` (an index into the action space) and advances one step.
    ///
    /// # Panics
    /// Implementations may panic when `action` is out of range or when called
    /// after the episode ended without a [`reset`](Env::reset).
    fn step(&mut self, action: usize) -> Step;
    /// What an oracle would have earned in the episode just finished — an
    /// exact optimum or an upper bound in hindsight — where the env can tell;
    /// learners never see it, reports measure regret against it.
    fn episode_reference(&self) -> Option<f64> {
        None
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
