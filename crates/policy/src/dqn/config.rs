//! Settings of [`Dqn`](super::Dqn), with cleanrl-like defaults, and their rules.

use crate::{PolicyError, schedule::LinearSchedule};
use serde::{Deserialize, Serialize};
use shoplab_env::config::{self, above, fraction, unit_interval};

/// Largest replay buffer, in transitions.
pub const MAX_BUFFER: usize = 10_000_000;

/// Largest hidden layer width.
pub const MAX_WIDTH: usize = 4_096;

/// Most values of a one-hot encoded feature.
pub const MAX_ONE_HOT: usize = 4_096;

/// How actions are explored while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exploration {
    /// A uniformly random action with probability ε, else the greedy one.
    EpsilonGreedy,
    /// Softmax over `Q / temperature`.
    Boltzmann,
}

/// Settings of [`Dqn`], with cleanrl-like defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Widths of the hidden layers (ReLU).
    pub hidden: Vec<usize>,
    /// Adam's learning rate at the start of training.
    pub learning_rate: f64,
    /// Learning rate at the end of training, reached linearly over the
    /// training episodes (annealing averages out the noise of the last
    /// updates); unset keeps `learning_rate` throughout.
    pub final_learning_rate: Option<f64>,
    /// The discount factor γ, in `[0, 1]`.
    pub gamma: f64,
    /// Transitions per minibatch.
    pub batch_size: usize,
    /// Capacity of the replay buffer, in transitions.
    pub buffer_size: usize,
    /// Transitions stored before learning (and ε-greedy acting) starts.
    pub learning_starts: usize,
    /// Transitions between gradient updates.
    pub train_freq: usize,
    /// Gradient updates each time training happens.
    pub gradient_steps: usize,
    /// Transitions between target-network updates.
    pub target_update_interval: usize,
    /// Polyak coefficient of the target update, in `(0, 1]`; 1 copies.
    pub tau: f64,
    /// Double DQN: the online network picks the bootstrap action.
    pub double: bool,
    /// Dueling value and advantage heads.
    pub dueling: bool,
    /// Huber loss threshold δ: quadratic within it, linear beyond.
    pub huber_delta: f64,
    /// Largest global L2 norm of the gradients (they are scaled down to it).
    pub max_grad_norm: f64,
    /// How actions are explored.
    pub exploration: Exploration,
    /// ε over training episodes (with `exploration = "epsilon_greedy"`).
    pub epsilon: LinearSchedule,
    /// Softmax temperature over training episodes (with `"boltzmann"`), in
    /// reward units of Q.
    pub temperature: LinearSchedule,
    /// Prioritized experience replay.
    pub prioritized: bool,
    /// Priority exponent α of prioritized replay, in `[0, 1]`.
    pub priority_alpha: f64,
    /// Importance-sampling exponent β over training episodes, in `[0, 1]`.
    pub priority_beta: LinearSchedule,
    /// Added to absolute TD errors to form priorities, > 0.
    pub priority_epsilon: f64,
    /// Integer features fed to the network one-hot (one input per value
    /// from the feature's `low` to `high`, at most 4,096) instead of as one
    /// scaled number: categories such as a segment or a topic, whose
    /// numbering means nothing.
    pub one_hot: Vec<String>,
    /// Rewards are multiplied by this before learning, > 0. Choose it so
    /// that TD errors mostly stay below `huber_delta`: beyond it the Huber
    /// loss is minimised by a pseudo-median of the targets, not their mean,
    /// and with skewed rewards Q settles away from Q*.
    pub reward_scale: f64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            learning_rate: 1e-3,
            final_learning_rate: None,
            gamma: 0.99,
            batch_size: 64,
            buffer_size: 50_000,
            learning_starts: 1_000,
            train_freq: 4,
            gradient_steps: 1,
            target_update_interval: 500,
            tau: 1.0,
            double: false,
            dueling: false,
            huber_delta: 1.0,
            max_grad_norm: 10.0,
            exploration: Exploration::EpsilonGreedy,
            epsilon: LinearSchedule {
                start: 1.0,
                end: 0.05,
                decay_fraction: 0.5,
            },
            temperature: LinearSchedule {
                start: 1.0,
                end: 0.01,
                decay_fraction: 0.5,
            },
            prioritized: false,
            priority_alpha: 0.6,
            priority_beta: LinearSchedule {
                start: 0.4,
                end: 1.0,
                decay_fraction: 1.0,
            },
            priority_epsilon: 1e-6,
            one_hot: Vec::new(),
            reward_scale: 1.0,
        }
    }
}

/// Checks `value` is finite and above 0.
fn positive(key: &str, value: f64) -> Result<(), PolicyError> {
    Ok(above(key, value, 0.0)?)
}

/// Checks a count is at least 1.
fn at_least_one(key: &str, value: usize) -> Result<(), PolicyError> {
    Ok(config::at_least_one(key, value as u64)?)
}

impl DqnConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.hidden.is_empty() {
            return Err(PolicyError::invalid(
                "hidden",
                "must list at least one hidden layer width",
            ));
        }
        if let Some(&w) = self.hidden.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(PolicyError::invalid(
                "hidden",
                format!("widths must be between 1 and {MAX_WIDTH} (found {w})"),
            ));
        }
        positive("learning_rate", self.learning_rate)?;
        if let Some(rate) = self.final_learning_rate {
            positive("final_learning_rate", rate)?;
        }
        unit_interval("gamma", self.gamma)?;
        at_least_one("batch_size", self.batch_size)?;
        at_least_one("train_freq", self.train_freq)?;
        at_least_one("gradient_steps", self.gradient_steps)?;
        at_least_one("target_update_interval", self.target_update_interval)?;
        if self.buffer_size < self.batch_size || self.buffer_size > MAX_BUFFER {
            return Err(PolicyError::invalid(
                "buffer_size",
                format!(
                    "must be between batch_size ({}) and {MAX_BUFFER} (found {})",
                    self.batch_size, self.buffer_size
                ),
            ));
        }
        fraction("tau", self.tau)?;
        positive("huber_delta", self.huber_delta)?;
        positive("max_grad_norm", self.max_grad_norm)?;
        positive("reward_scale", self.reward_scale)?;
        positive("priority_epsilon", self.priority_epsilon)?;
        unit_interval("priority_alpha", self.priority_alpha)?;
        self.epsilon.validate_probability("epsilon")?;
        self.priority_beta.validate_probability("priority_beta")?;
        positive("temperature.start", self.temperature.start)?;
        positive("temperature.end", self.temperature.end)?;
        fraction(
            "temperature.decay_fraction",
            self.temperature.decay_fraction,
        )?;
        Ok(())
    }
}
