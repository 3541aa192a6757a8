//! Settings of [`Dqn`](super::Dqn), with cleanrl-like defaults, and their rules.

use crate::{PolicyError, schedule::LinearSchedule, seq::encoder::EncoderConfig};
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ObservationSpace,
    config::{self, fraction, unit_interval},
    cost::PolicyCost,
};

/// Largest replay buffer, in transitions.
pub const MAX_BUFFER: usize = 10_000_000;

/// Largest hidden layer width.
pub const MAX_WIDTH: usize = 4_096;

/// Most values of a one-hot encoded feature.
pub const MAX_ONE_HOT: usize = 4_096;

/// Most hidden layers.
pub const MAX_LAYERS: usize = 64;

/// Largest minibatch, in transitions.
pub const MAX_BATCH: usize = 65_536;

/// Most gradient updates each time training happens.
pub const MAX_GRADIENT_STEPS: usize = 1_000;

/// Largest count of transitions between training or target updates.
pub const MAX_INTERVAL: usize = 100_000_000;

/// How actions are explored while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exploration {
    /// A uniformly random action with probability ε, else the greedy one.
    EpsilonGreedy,
    /// Softmax over `Q / temperature`.
    Boltzmann,
}

/// The Q-network's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QEncoder {
    /// An MLP over the scaled (or one-hot) features, one output per action.
    #[default]
    Mlp,
    /// The session transformer over the `history_1, history_2, …`
    /// features, the other features moving its start token, and two-tower
    /// Q-values `Q(s, i) = h(s)·e_i + b_i` ([`crate::seq::qlearning`]).
    Transformer,
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
    /// The Q-network: `"mlp"` (`hidden`) or `"transformer"` (`transformer`).
    pub encoder: QEncoder,
    /// The transformer's settings, with `encoder = "transformer"`.
    pub transformer: EncoderConfig,
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
            encoder: QEncoder::Mlp,
            transformer: EncoderConfig::default(),
        }
    }
}

/// Checks `value` is in `(0, max]`: beyond the upper bounds, settings
/// only produce overflowing weights and NaN losses.
fn between(key: &str, value: f64, max: f64) -> Result<(), PolicyError> {
    if !(value > 0.0 && value <= max) {
        return Err(PolicyError::invalid(
            key,
            format!("must be in (0, {max}] (found {value})"),
        ));
    }
    Ok(())
}

/// Checks a count is in `1..=max`.
fn count(key: &str, value: usize, max: usize) -> Result<(), PolicyError> {
    Ok(config::in_range(key, value as u64, 1, max as u64)?)
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
        if self.hidden.len() > MAX_LAYERS {
            return Err(PolicyError::invalid(
                "hidden",
                format!(
                    "must list at most {MAX_LAYERS} hidden layers (found {})",
                    self.hidden.len()
                ),
            ));
        }
        if let Some(&w) = self.hidden.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(PolicyError::invalid(
                "hidden",
                format!("widths must be between 1 and {MAX_WIDTH} (found {w})"),
            ));
        }
        between("learning_rate", self.learning_rate, 1.0)?;
        if let Some(rate) = self.final_learning_rate {
            between("final_learning_rate", rate, 1.0)?;
        }
        unit_interval("gamma", self.gamma)?;
        count("batch_size", self.batch_size, MAX_BATCH)?;
        count("train_freq", self.train_freq, MAX_INTERVAL)?;
        count("gradient_steps", self.gradient_steps, MAX_GRADIENT_STEPS)?;
        count(
            "target_update_interval",
            self.target_update_interval,
            MAX_INTERVAL,
        )?;
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
        between("huber_delta", self.huber_delta, 1e6)?;
        between("max_grad_norm", self.max_grad_norm, 1e6)?;
        between("reward_scale", self.reward_scale, 1e6)?;
        between("priority_epsilon", self.priority_epsilon, 1.0)?;
        unit_interval("priority_alpha", self.priority_alpha)?;
        self.epsilon.validate_probability("epsilon")?;
        self.priority_beta.validate_probability("priority_beta")?;
        between("temperature.start", self.temperature.start, 1e6)?;
        between("temperature.end", self.temperature.end, 1e6)?;
        fraction(
            "temperature.decay_fraction",
            self.temperature.decay_fraction,
        )?;
        Ok(())
    }
}

impl DqnConfig {
    /// Input features of the network over `space` (one-hot features count
    /// one input per value).
    pub fn input_dim(&self, space: &ObservationSpace) -> Result<usize, PolicyError> {
        Ok(super::input::inputs(space, &self.one_hot)?
            .iter()
            .map(|i| match i {
                super::input::Input::Scaled { .. } => 1,
                super::input::Input::OneHot { values, .. } => *values,
            })
            .sum())
    }

    /// What a network over `space` with `n_actions` outputs costs, trained
    /// on `training_decisions` decisions ([`shoplab_env::cost`]): the
    /// weights eight times over (online, target, Adam's two moments, the
    /// gradients and the update's temporaries: a run of three 4,096-wide
    /// layers peaked at about six copies), a minibatch's activations through every layer (forward,
    /// backward and the target network's pass), and the replay buffer as
    /// far as training fills it. Work per decision: a forward pass to act
    /// and, every `train_freq` decisions, `gradient_steps` minibatch
    /// updates of about eight multiply-adds per weight per transition.
    pub fn cost(
        &self,
        space: &ObservationSpace,
        n_actions: usize,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        self.validate()?;
        if self.encoder == QEncoder::Transformer {
            return self.transformer_cost(space, n_actions, training_decisions);
        }
        let inputs = self.input_dim(space)? as f64;
        let mut fan_in = inputs;
        let mut parameters = 0.0;
        for &width in &self.hidden {
            parameters += (fan_in + 1.0) * width as f64;
            fan_in = width as f64;
        }
        let heads = n_actions as f64 + if self.dueling { 1.0 } else { 0.0 };
        parameters += (fan_in + 1.0) * heads;
        let units: f64 = self.hidden.iter().map(|&w| w as f64).sum::<f64>() + heads + inputs;
        let batch = self.batch_size as f64;
        let stored = (self.buffer_size as f64).min(training_decisions.max(1.0));
        let transition = 2.0 * 4.0 * inputs + 16.0;
        let priorities = if self.prioritized {
            2.0 * 16.0 * (self.buffer_size as f64).log2().ceil().exp2()
        } else {
            0.0
        };
        let forward = 2.0 * parameters;
        let updates = self.gradient_steps as f64 / self.train_freq as f64;
        let passes = if self.double { 10.0 } else { 8.0 };
        Ok(PolicyCost {
            bytes: 8.0 * 4.0 * parameters
                + 8.0 * 4.0 * batch * units
                + stored * transition
                + priorities
                + 65_536.0,
            train_work: forward + updates * batch * parameters * passes,
            act_work: forward,
        })
    }
}

impl DqnConfig {
    /// [`cost`](Self::cost) of the transformer Q-network over a catalog of
    /// `items`: its parameters eight times over (online, target, Adam's
    /// moments, gradients, temporaries), a minibatch's activations and its
    /// next states' Q-values over the catalog (twice for Double DQN), and
    /// the replay buffer's raw features. Work per update and transition:
    /// the online encoder forward and backward (three passes), the target
    /// encoder and its scores of the catalog (and the online one's for
    /// Double DQN); per decision, one encoder pass and the catalog's scores.
    pub fn transformer_cost(
        &self,
        space: &ObservationSpace,
        items: usize,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        crate::seq::qlearning::check(self, space, items)?;
        let (d, t) = (
            self.transformer.dim as f64,
            self.transformer.tokens() as f64,
        );
        let features = space.len() as f64;
        let parameters =
            self.transformer.parameter_count(items) as f64 + d * features + items as f64;
        let layers = self.transformer.layers as f64;
        let encode = 2.0 * (12.0 * d * d * layers * t + t * t * d * layers);
        let scores = 2.0 * d * items as f64;
        let nexts = if self.double { 2.0 } else { 1.0 };
        let per_transition = 3.0 * encode + nexts * (encode + scores);
        let batch = self.batch_size as f64;
        let stored = (self.buffer_size as f64).min(training_decisions.max(1.0));
        let priorities = if self.prioritized {
            2.0 * 16.0 * (self.buffer_size as f64).log2().ceil().exp2()
        } else {
            0.0
        };
        let activations = batch * (t * d * (14.0 * layers + 2.0) + nexts * items as f64);
        let updates = self.gradient_steps as f64 / self.train_freq as f64;
        Ok(PolicyCost {
            bytes: 8.0 * 4.0 * parameters
                + 4.0 * activations
                + stored * (2.0 * 4.0 * features + 16.0)
                + priorities
                + 65_536.0,
            train_work: encode + scores + updates * batch * per_transition,
            act_work: encode + scores,
        })
    }
}
