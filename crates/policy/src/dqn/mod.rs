//! Deep Q-learning (Mnih et al., 2015) on candle, for any env with a
//! feature-vector observation and discrete actions.
//!
//! The algorithm follows cleanrl's `dqn.py` in shape:
//!
//! ```text
//! every transition (s, a, r, s', terminated)  → replay buffer
//! every train_freq transitions, once learning_starts are stored:
//!     sample a minibatch (uniform, or prioritized)
//!     y = r + γ · (1 − terminated) · Q_target(s', a*)
//!         a* = argmax_b Q_target(s', b)                (DQN)
//!         a* = argmax_b Q_online(s', b)                (Double DQN)
//!     loss = mean_i w_i · huber(Q_online(s_i, a_i) − y_i)
//!     Adam step on the online network, gradients clipped to a global norm
//! every target_update_interval transitions:
//!     θ_target ← τ · θ_online + (1 − τ) · θ_target     (τ = 1: hard copy)
//! ```
//!
//! Only true termination cuts the bootstrap: a transition that ends an
//! episode by a time limit or the end of a season (`truncated`) is stored as
//! not done, so its target still bootstraps from `s'`.
//!
//! Inputs are the observation's features rescaled to `[−1, 1]` by the
//! observation space's bounds. Rewards are multiplied by `reward_scale`
//! before learning (Q-values are reported back in reward units).
//! Exploration is ε-greedy with a linear schedule over training episodes, or
//! softmax (Boltzmann) selection `π(a|s) ∝ exp(Q(s, a)/τ)` with a scheduled
//! temperature. Until `learning_starts` transitions are stored, actions are
//! uniformly random.
//!
//! **Determinism.** Weights come from the policy's seeded generator (see
//! [`network`]); parameters are always visited in sorted name order; and
//! matrix products run on the calling thread ([`dense`]), so a run's bytes
//! do not depend on `RAYON_NUM_THREADS`. Parallelism comes
//! from running many seeds at once.
//!
//! **Failure.** A non-finite loss or Q-value stops learning and is reported
//! through [`Policy::divergence`], which stops the run with its reason.

mod config;
pub mod dense;
pub(crate) mod input;
mod kind;
pub mod network;
pub mod replay;

pub use config::{
    DqnConfig, Exploration, MAX_BATCH, MAX_BUFFER, MAX_GRADIENT_STEPS, MAX_INTERVAL, MAX_LAYERS,
    MAX_ONE_HOT, MAX_WIDTH, QEncoder,
};
use input::{Input, encode, inputs};
pub use kind::DqnKind;

use crate::{
    CheckpointError, LearningStats, Policy, PolicyError, Transition, schedule::LinearSchedule,
};
use candle_core::Tensor;
use network::{
    Architecture, NetError, NetResult, Params, QNetwork, forward, matrix, soft_update, to_vec,
};
use rand::RngExt;
use replay::{Batch, ReplayBuffer};
use shoplab_env::{
    Observation, ObservationSpace,
    seed::{SimRng, derive_seed, rng_from_seed},
};

/// Sums of a Q-learner's training statistics since they were last read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StatsSum {
    updates: u64,
    loss: f64,
    mean_q: f64,
}

impl StatsSum {
    /// Counts one update whose loss and mean Q are in scaled rewards
    /// (`scale` = `reward_scale`); they are kept in reward units.
    pub(crate) fn add(&mut self, loss: f64, mean_q: f64, scale: f64) {
        self.updates += 1;
        self.loss += loss / (scale * scale);
        self.mean_q += mean_q / scale;
    }

    /// The statistics since the last read, with the exploration level in
    /// force, and a fresh start.
    pub(crate) fn take(&mut self, exploration: f64) -> LearningStats {
        let s = std::mem::take(self);
        LearningStats::from_sums(s.updates, s.loss, s.mean_q, exploration)
    }
}

/// A deep Q-learner.
#[derive(Debug)]
pub struct Dqn {
    config: DqnConfig,
    net: QNetwork,
    target: Params,
    buffer: ReplayBuffer,
    batch: Batch,
    /// How each feature becomes inputs.
    encoding: Vec<Input>,
    /// Network inputs per observation.
    input_dim: usize,
    n_actions: usize,
    transitions: u64,
    /// ε, temperature, β and learning rate of the current episode.
    knobs: Knobs,
    stats: StatsSum,
    diverged: Option<String>,
    rng: SimRng,
    obs_buffer: Vec<f32>,
    next_buffer: Vec<f32>,
}

impl Dqn {
    /// A learner over `space` with `n_actions` actions, seeded with `seed`:
    /// the weights come from `derive_seed(seed, "dqn/init", 0)`, exploration
    /// and replay sampling from `derive_seed(seed, "dqn/act", 0)`.
    pub fn new(
        config: DqnConfig,
        space: &ObservationSpace,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        config.validate()?;
        if config.encoder != QEncoder::Mlp {
            return Err(PolicyError::invalid(
                "encoder",
                "this deep Q-learner is the MLP; `transformer` is built by `kind = \"dqn\"` \
                 over a family with history_1, history_2, … features",
            ));
        }
        if n_actions == 0 || space.is_empty() {
            return Err(PolicyError::invalid(
                "",
                "deep Q-learning needs at least one feature and one action",
            ));
        }
        let encoding = inputs(space, &config.one_hot)?;
        let input_dim = config.input_dim(space)?;
        let arch = Architecture {
            inputs: input_dim,
            hidden: config.hidden.clone(),
            outputs: n_actions,
            dueling: config.dueling,
        };
        let mut init = rng_from_seed(derive_seed(seed, "dqn/init", 0));
        let net =
            QNetwork::new(arch, &mut init).map_err(|e| PolicyError::invalid("", e.to_string()))?;
        let target = net
            .snapshot()
            .map_err(|e| PolicyError::invalid("", e.to_string()))?;
        let prioritized = config
            .prioritized
            .then_some((config.priority_alpha, config.priority_epsilon));
        Ok(Self {
            buffer: ReplayBuffer::new(config.buffer_size, input_dim, prioritized),
            batch: Batch::default(),
            encoding,
            input_dim,
            n_actions,
            transitions: 0,
            knobs: config.knobs(0, 1),
            stats: StatsSum::default(),
            diverged: None,
            rng: rng_from_seed(derive_seed(seed, "dqn/act", 0)),
            obs_buffer: Vec::new(),
            next_buffer: Vec::new(),
            net,
            target,
            config,
        })
    }

    /// The online network.
    pub fn network(&self) -> &QNetwork {
        &self.net
    }

    /// The exploration probability now in force.
    pub fn epsilon(&self) -> f64 {
        self.knobs.epsilon
    }

    /// Transitions seen so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    fn scale_into(&self, features: &[f32], out: &mut Vec<f32>) {
        encode(&self.encoding, features, out);
    }

    fn q_of(&self, params: &Params, obs: &Observation) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.input_dim);
        self.scale_into(&obs.features, &mut x);
        let values = matrix(&x, 1, x.len(), self.net.device())
            .and_then(|x| forward(self.net.architecture(), params, &x))
            .and_then(|q| to_vec(&q));
        self.unscaled(values)
    }

    fn unscaled(&self, values: NetResult<Vec<f32>>) -> Vec<f64> {
        match values {
            Ok(q) => q
                .into_iter()
                .map(|v| f64::from(v) / self.config.reward_scale)
                .collect(),
            Err(e) => panic!("the Q-network failed: {e}"),
        }
    }

    /// The online network's Q-values of `obs`, in reward units.
    pub fn q_values(&self, obs: &Observation) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.input_dim);
        self.scale_into(&obs.features, &mut x);
        let mut q = Vec::with_capacity(self.n_actions);
        let result = self.net.forward_one(&x, &mut q).map(|()| q);
        self.unscaled(result)
    }

    /// The online network's Q-values of `obs` through the batched candle
    /// graph that training uses (a check on [`q_values`](Self::q_values)).
    pub fn q_values_batched(&self, obs: &Observation) -> Vec<f64> {
        self.q_of(self.net.detached(), obs)
    }

    /// The target network's Q-values of `obs`, in reward units.
    pub fn target_q_values(&self, obs: &Observation) -> Vec<f64> {
        self.q_of(&self.target, obs)
    }

    fn learning(&self) -> bool {
        self.buffer.len() >= self.config.learning_starts.max(self.config.batch_size)
    }

    /// A softmax sample over `q / temperature`, skipping `taken` actions.
    fn boltzmann(&mut self, q: &[f64], taken: &[usize]) -> usize {
        let top = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = q
            .iter()
            .enumerate()
            .map(|(a, &v)| {
                if taken.contains(&a) {
                    0.0
                } else {
                    ((v - top) / self.knobs.temperature).exp()
                }
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        for (a, &w) in weights.iter().enumerate() {
            if w > 0.0 && u < w {
                return a;
            }
            u -= w;
        }
        // Rounding left mass over: the last action still available.
        (0..q.len()).rev().find(|a| !taken.contains(a)).unwrap_or(0)
    }

    /// One gradient update on a minibatch sampled from the replay buffer
    /// (what [`Policy::learn`] does every `train_freq` transitions once
    /// learning has started); the buffer must hold a batch. Public for
    /// benchmarks.
    pub fn train_step(&mut self) -> NetResult<()> {
        if self.buffer.len() < self.config.batch_size {
            return Err(NetError(format!(
                "the replay buffer holds {} transitions, fewer than a batch of {}",
                self.buffer.len(),
                self.config.batch_size
            )));
        }
        let (b, d) = (self.config.batch_size, self.input_dim);
        let n = self.n_actions;
        self.buffer
            .sample(&mut self.rng, b, self.knobs.beta, &mut self.batch);
        let device = self.net.device().clone();
        let arch = self.net.architecture().clone();
        let next = matrix(&self.batch.next_obs, b, d, &device)?;
        let next_target = to_vec(&forward(&arch, &self.target, &next)?)?;
        let chooser = if self.config.double {
            to_vec(&forward(&arch, self.net.detached(), &next)?)?
        } else {
            next_target.clone()
        };
        let gamma = self.config.gamma as f32;
        let targets: Vec<f32> = (0..b)
            .map(|i| {
                let row = &chooser[i * n..(i + 1) * n];
                let best = (1..n).fold(0, |best, a| if row[a] > row[best] { a } else { best });
                self.batch.rewards[i] + gamma * self.batch.not_done[i] * next_target[i * n + best]
            })
            .collect();
        let err = |e: candle_core::Error| NetError(e.to_string());
        let obs = matrix(&self.batch.obs, b, d, &device)?;
        let q_all = forward(&arch, self.net.tracked(), &obs)?;
        let actions = Tensor::from_slice(&self.batch.actions, (b, 1), &device).map_err(err)?;
        let q = q_all
            .gather(&actions, 1)
            .and_then(|q| q.squeeze(1))
            .map_err(err)?;
        let y = Tensor::from_slice(&targets, b, &device).map_err(err)?;
        let td = (&q - &y).map_err(err)?;
        let weights = self
            .config
            .prioritized
            .then_some(self.batch.weights.as_slice());
        let loss = huber_loss(&td, self.config.huber_delta, weights).map_err(err)?;
        let loss_value = f64::from(loss.to_scalar::<f32>().map_err(err)?);
        let td_values = to_vec(&td)?;
        let mean_q = td_values
            .iter()
            .zip(&targets)
            .map(|(&t, &y)| f64::from(t + y))
            .sum::<f64>()
            / b as f64;
        if !loss_value.is_finite() || !mean_q.is_finite() {
            return Err(NetError(format!(
                "after {} transitions the loss is {loss_value} and the mean Q is {mean_q}",
                self.transitions
            )));
        }
        self.net
            .adam_step(&loss, self.knobs.learning_rate, self.config.max_grad_norm)?;
        self.buffer
            .update_priorities(&self.batch.indices, &td_values);
        self.stats.add(loss_value, mean_q, self.config.reward_scale);
        Ok(())
    }

    /// Loads network weights from a checkpoint made by [`Policy::checkpoint`];
    /// the target network is set to the same weights.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.net.load_safetensors(bytes)?;
        self.target = self.net.snapshot()?;
        Ok(())
    }
}

/// The mean Huber loss of TD errors `td` (`[batch]`), each weighted by
/// `weights` when given (prioritized replay's importance weights):
/// `huber(x) = ½·min(|x|, δ)² + δ·(|x| − min(|x|, δ))`.
pub(crate) fn huber_loss(
    td: &Tensor,
    delta: f64,
    weights: Option<&[f32]>,
) -> candle_core::Result<Tensor> {
    let abs = td.abs()?;
    let quadratic = abs.clamp(0f32, delta as f32)?;
    let linear = (&abs - &quadratic)?;
    let per_sample = ((quadratic.sqr()? * 0.5)? + (linear * delta)?)?;
    match weights {
        Some(w) => (per_sample * Tensor::from_slice(w, w.len(), td.device())?)?.mean_all(),
        None => per_sample.mean_all(),
    }
}

impl DqnConfig {
    /// The exploration level a learning report shows: ε, or the Boltzmann
    /// temperature.
    pub(crate) fn exploration_level(&self, epsilon: f64, temperature: f64) -> f64 {
        match self.exploration {
            Exploration::EpsilonGreedy => epsilon,
            Exploration::Boltzmann => temperature,
        }
    }

    /// The exploration and learning knobs in force during training episode
    /// `episode` of `total`: ε, the Boltzmann temperature, prioritized
    /// replay's β, and the learning rate (annealed to
    /// `final_learning_rate` when set).
    pub(crate) fn knobs(&self, episode: usize, total: usize) -> Knobs {
        let learning_rate = match self.final_learning_rate {
            Some(end) => LinearSchedule {
                start: self.learning_rate,
                end,
                decay_fraction: 1.0,
            }
            .value(episode, total),
            None => self.learning_rate,
        };
        Knobs {
            epsilon: self.epsilon.value(episode, total),
            temperature: self.temperature.value(episode, total),
            beta: self.priority_beta.value(episode, total),
            learning_rate,
        }
    }
}

/// See [`DqnConfig::knobs`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    pub(crate) epsilon: f64,
    pub(crate) temperature: f64,
    pub(crate) beta: f64,
    pub(crate) learning_rate: f64,
}

impl Policy for Dqn {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        self.knobs = self.config.knobs(episode, total);
    }

    fn act(&mut self, obs: &Observation) -> usize {
        if !self.learning() {
            return self.rng.random_range(0..self.n_actions);
        }
        match self.config.exploration {
            Exploration::EpsilonGreedy => {
                if self.rng.random_bool(self.knobs.epsilon) {
                    self.rng.random_range(0..self.n_actions)
                } else {
                    self.greedy(obs)
                }
            }
            Exploration::Boltzmann => {
                let q = self.q_values(obs);
                self.boltzmann(&q, &[])
            }
        }
    }

    /// Uniform before learning starts; then ε-greedy's `ε/n` plus `1 − ε`
    /// on the greedy action, or Boltzmann's softmax of `Q / temperature`.
    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let n = self.n_actions;
        if !self.learning() {
            probs.clear();
            probs.resize(n, 1.0 / n as f64);
            return true;
        }
        match self.config.exploration {
            Exploration::EpsilonGreedy => {
                crate::epsilon_greedy_probabilities(self.knobs.epsilon, self.greedy(obs), n, probs);
            }
            Exploration::Boltzmann => {
                let q = self.q_values(obs);
                let top = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                probs.clear();
                probs.extend(
                    q.iter()
                        .map(|&v| ((v - top) / self.knobs.temperature).exp()),
                );
                let total: f64 = probs.iter().sum();
                probs.iter_mut().for_each(|p| *p /= total);
            }
        }
        true
    }

    fn act_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        let explore = !self.learning()
            || (self.config.exploration == Exploration::EpsilonGreedy
                && self.rng.random_bool(self.knobs.epsilon));
        if explore {
            crate::random_slate(&mut self.rng, n, k, slate);
            return;
        }
        let q = self.q_values(obs);
        match self.config.exploration {
            Exploration::EpsilonGreedy => crate::top_k(&q, k, slate),
            Exploration::Boltzmann => {
                slate.clear();
                while slate.len() < k.min(n) {
                    let a = self.boltzmann(&q, slate);
                    slate.push(a);
                }
            }
        }
    }

    fn greedy(&self, obs: &Observation) -> usize {
        crate::argmax(&self.q_values(obs))
    }

    fn greedy_slate(&mut self, obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        crate::top_k(&self.q_values(obs), k, slate);
    }

    fn learn(&mut self, t: &Transition<'_>) {
        if self.diverged.is_some() {
            return;
        }
        let mut obs = std::mem::take(&mut self.obs_buffer);
        let mut next = std::mem::take(&mut self.next_buffer);
        self.scale_into(&t.obs.features, &mut obs);
        self.scale_into(&t.next_obs.features, &mut next);
        let reward = (t.reward * self.config.reward_scale) as f32;
        // Only termination cuts the bootstrap; a truncated transition is not done.
        self.buffer
            .push(&obs, t.action, reward, &next, t.terminated);
        self.obs_buffer = obs;
        self.next_buffer = next;
        self.transitions += 1;
        if !self.learning() {
            return;
        }
        if self
            .transitions
            .is_multiple_of(self.config.train_freq as u64)
        {
            for _ in 0..self.config.gradient_steps {
                if let Err(reason) = self.train_step() {
                    self.diverged = Some(reason.to_string());
                    return;
                }
            }
        }
        if self
            .transitions
            .is_multiple_of(self.config.target_update_interval as u64)
            && let Err(e) = soft_update(&mut self.target, self.net.detached(), self.config.tau)
        {
            self.diverged = Some(format!("the target update failed: {e}"));
        }
    }

    fn divergence(&self) -> Option<String> {
        self.diverged.clone()
    }

    fn learning_stats(&mut self) -> Option<LearningStats> {
        let level = self
            .config
            .exploration_level(self.knobs.epsilon, self.knobs.temperature);
        Some(self.stats.take(level))
    }

    fn checkpoint(&self) -> Option<Result<Vec<u8>, CheckpointError>> {
        let arch = self.net.architecture();
        let metadata = format!(
            "{{\"policy\":\"dqn\",\"inputs\":{},\"hidden\":{:?},\"outputs\":{},\"dueling\":{},\"transitions\":{}}}",
            arch.inputs, arch.hidden, arch.outputs, arch.dueling, self.transitions
        );
        Some(self.net.to_safetensors(metadata))
    }

    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.load(bytes)
    }
}

#[cfg(test)]
mod tests;
