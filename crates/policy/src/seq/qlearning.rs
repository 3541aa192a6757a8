//! Deep Q-learning over the session encoder (`kind = "dqn"` with
//! `encoder = "transformer"`): the state is the transformer's `h(s)` of
//! the shopper's clicked items, the context moving its start token
//! ([`super::state`]), and the Q-values are two-tower,
//! `Q(s, i) = h(s)·e_i + b_i` with the encoder's own item embeddings
//! `e_i` (tied), so a catalog of any size costs one product per state and
//! no per-item output layer.
//!
//! The algorithm is the MLP learner's ([`crate::dqn`]): a replay buffer
//! (uniform or prioritized) of the observations' raw features, the TD
//! target `r + γ·(1 − terminated)·Q_target(s', a*)` with `a*` the target's
//! (or, Double DQN, the online network's) best item over the whole
//! catalog, a Huber loss on the taken item's Q, Adam with gradients
//! clipped to a global norm, and a target network (encoder and heads)
//! copied or Polyak-averaged every `target_update_interval` transitions.
//! Exploration is ε-greedy (a uniformly random slate with probability ε)
//! or Boltzmann (slates drawn without replacement from
//! `softmax(Q / temperature)`), both scheduled over the training episodes;
//! until `learning_starts` transitions are stored, slates are random.
//! Dueling heads are the MLP's and are refused here.
//!
//! Every session of a step is scored in one batched forward pass
//! ([`Policy::act_slates`]). Weights come from `derive_seed(seed,
//! "dqn/init", 0)`, exploration and replay sampling from `derive_seed(seed,
//! "dqn/act", 0)`; products run on the calling thread, so a run's bytes do
//! not depend on the thread count.

use super::{
    catalog::score_states, encoder::SessionEncoder, reinforce::sample_slate, sessions::State,
    state::StateReader,
};
use crate::{
    CheckpointError, LearningStats, Mode, Policy, PolicyError, Transition,
    adam::Adam,
    dqn::{
        DqnConfig, Exploration, Knobs, QEncoder, StatsSum, huber_loss, replay::Batch,
        replay::ReplayBuffer,
    },
};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngExt;
use shoplab_env::{
    Observation, ObservationSpace,
    seed::{SimRng, derive_seed, rng_from_seed},
};
use std::collections::BTreeMap;

/// Scores computed at once when acting: a block of states × the catalog.
const SCORE_BLOCK: usize = 1 << 21;

fn err(e: candle_core::Error) -> String {
    e.to_string()
}

/// A deep Q-learner over the session transformer.
#[derive(Debug)]
pub struct SequenceDqn {
    config: DqnConfig,
    reader: StateReader,
    online: SessionEncoder,
    target: SessionEncoder,
    /// The online parameters (the encoder's under `encoder.`, the heads').
    params: BTreeMap<String, Var>,
    /// The target network's, under the same names.
    target_params: BTreeMap<String, Var>,
    adam: Adam,
    buffer: ReplayBuffer,
    batch: Batch,
    items: usize,
    /// Features per observation (what the buffer stores).
    features: usize,
    transitions: u64,
    /// ε, temperature, β and learning rate of the current episode.
    knobs: Knobs,
    stats: StatsSum,
    diverged: Option<String>,
    rng: SimRng,
    /// Scratch: a block of states' Q-values, and a slate draw's sums.
    scores: Vec<f32>,
    sums: Vec<f64>,
}

/// What the transformer Q-learner refuses besides [`DqnConfig::validate`]
/// (checked when a run is costed, before any work, and when it is built):
/// dueling heads, the encoder's own rules for a catalog of `items`, a
/// space without `history_1`. Returns the state reader.
pub(crate) fn check(
    config: &DqnConfig,
    space: &ObservationSpace,
    items: usize,
) -> Result<StateReader, PolicyError> {
    if config.dueling {
        return Err(PolicyError::invalid(
            "dueling",
            "dueling heads are the MLP's: with encoder = \"transformer\" the Q-values are \
             two-tower, h(s)·e_i + b_i; set dueling = false",
        ));
    }
    config.transformer.validate("transformer", items)?;
    StateReader::new(space, &config.one_hot, true, items)
}

impl SequenceDqn {
    /// A learner over `space` for a catalog of `n_actions` items, seeded
    /// with `seed`. Refuses settings the transformer cannot take (dueling
    /// heads, an encoder whose dim its heads do not divide, no history)
    /// and a space without `history_1`.
    pub fn new(
        config: DqnConfig,
        space: &ObservationSpace,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        config.validate()?;
        if config.encoder != QEncoder::Transformer {
            return Err(PolicyError::invalid(
                "encoder",
                "the sequence Q-learner is the transformer's",
            ));
        }
        let reader = check(&config, space, n_actions)?;
        let invalid = |e: String| PolicyError::invalid("transformer", e);
        let mut init = rng_from_seed(derive_seed(seed, "dqn/init", 0));
        let online =
            SessionEncoder::new(config.transformer.clone(), n_actions, DType::F32, &mut init)
                .map_err(invalid)?;
        let device = Device::Cpu;
        let mut params: BTreeMap<String, Var> = online
            .vars()
            .iter()
            .map(|(n, v)| (format!("encoder.{n}"), v.clone()))
            .collect();
        let context = reader.context_dim();
        if context > 0 {
            let bound = 1.0 / (context as f32).sqrt();
            let values: Vec<f32> = (0..context * config.transformer.dim)
                .map(|_| init.random_range(-bound..bound))
                .collect();
            let weight = Var::from_vec(values, (context, config.transformer.dim), &device)
                .map_err(|e| invalid(err(e)))?;
            params.insert("context.weight".into(), weight);
        }
        let bias = Var::zeros(n_actions, DType::F32, &device).map_err(|e| invalid(err(e)))?;
        params.insert("items.bias".into(), bias);
        let target = online.duplicate().map_err(invalid)?;
        let mut target_params: BTreeMap<String, Var> = target
            .vars()
            .iter()
            .map(|(n, v)| (format!("encoder.{n}"), v.clone()))
            .collect();
        for (name, var) in params.iter().filter(|(n, _)| !n.starts_with("encoder.")) {
            let copy = var
                .as_tensor()
                .copy()
                .and_then(|t| Var::from_tensor(&t))
                .map_err(|e| invalid(err(e)))?;
            target_params.insert(name.clone(), copy);
        }
        let prioritized = config
            .prioritized
            .then_some((config.priority_alpha, config.priority_epsilon));
        Ok(Self {
            adam: Adam::new(&params),
            buffer: ReplayBuffer::new(config.buffer_size, space.len(), prioritized),
            batch: Batch::default(),
            reader,
            online,
            target,
            params,
            target_params,
            items: n_actions,
            features: space.len(),
            transitions: 0,
            knobs: config.knobs(0, 1),
            stats: StatsSum::default(),
            diverged: None,
            rng: rng_from_seed(derive_seed(seed, "dqn/act", 0)),
            scores: Vec::new(),
            sums: Vec::new(),
            config,
        })
    }

    /// Transitions seen so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    fn learning(&self) -> bool {
        self.buffer.len() >= self.config.learning_starts.max(self.config.batch_size)
    }

    /// `h(s)` of `states` by the online network (`target = false`) or the
    /// target network, untracked unless `tracked`.
    fn encode(&self, states: &[&State], target: bool, tracked: bool) -> Result<Tensor, String> {
        let (encoder, params) = if target {
            (&self.target, &self.target_params)
        } else {
            (&self.online, &self.params)
        };
        let weight = params.get("context.weight").map(|v| v.as_tensor());
        let h = self.reader.encode(encoder, weight, states)?;
        Ok(if tracked { h } else { h.detach() })
    }

    /// Every item's Q-value (scaled rewards) for each state of `h`, by the
    /// online or the target network, row-major into `out`.
    fn q_into(&self, h: &Tensor, target: bool, out: &mut Vec<f32>) -> Result<(), String> {
        let params = if target {
            &self.target_params
        } else {
            &self.params
        };
        score_states(
            h,
            params["encoder.embed.items"].as_tensor(),
            2,
            params["items.bias"].as_tensor(),
            self.items,
            out,
        )
    }

    /// The online network's Q-values of `obs` over the catalog, in reward
    /// units.
    pub fn q_values(&self, obs: &Observation) -> Vec<f64> {
        let state = self.reader.state(&obs.features);
        let mut q = Vec::new();
        self.encode(&[&state], false, false)
            .and_then(|h| self.q_into(&h, false, &mut q))
            .unwrap_or_else(|e| panic!("the sequence Q-network failed: {e}"));
        q.into_iter()
            .map(|v| f64::from(v) / self.config.reward_scale)
            .collect()
    }

    /// The slate of one state's Q-values `q` (scaled): the top `k`, or a
    /// Boltzmann draw while training with that exploration.
    fn slate_of(&mut self, q: &[f32], k: usize, mode: Mode, slate: &mut Vec<usize>) {
        match (mode, self.config.exploration) {
            (Mode::Train, Exploration::Boltzmann) => {
                // Q / τ in reward units is the scaled Q over τ · scale.
                let temperature = self.knobs.temperature * self.config.reward_scale;
                sample_slate(q, temperature, k, &mut self.rng, &mut self.sums, slate);
            }
            _ => crate::top_k(q, k, slate),
        }
    }

    /// One gradient update on a minibatch from the replay buffer (the
    /// buffer must hold a batch). Public for benchmarks.
    pub fn train_step(&mut self) -> Result<(), String> {
        let b = self.config.batch_size;
        if self.buffer.len() < b {
            return Err(format!(
                "the replay buffer holds {} transitions, fewer than a batch of {b}",
                self.buffer.len()
            ));
        }
        self.buffer
            .sample(&mut self.rng, b, self.knobs.beta, &mut self.batch);
        let read = |rows: &[f32]| -> Vec<State> {
            rows.chunks_exact(self.features)
                .map(|r| self.reader.state(r))
                .collect()
        };
        let (states, nexts) = (read(&self.batch.obs), read(&self.batch.next_obs));
        let next_refs: Vec<&State> = nexts.iter().collect();
        let n = self.items;
        let mut target_q = std::mem::take(&mut self.scores);
        let h_next = self.encode(&next_refs, true, false)?;
        self.q_into(&h_next, true, &mut target_q)?;
        let chooser = if self.config.double {
            let mut online_q = Vec::new();
            let h_next = self.encode(&next_refs, false, false)?;
            self.q_into(&h_next, false, &mut online_q)?;
            Some(online_q)
        } else {
            None
        };
        let gamma = self.config.gamma as f32;
        let targets: Vec<f32> = (0..b)
            .map(|i| {
                let row = &chooser.as_deref().unwrap_or(&target_q)[i * n..(i + 1) * n];
                let best = (1..n).fold(0, |best, a| if row[a] > row[best] { a } else { best });
                self.batch.rewards[i] + gamma * self.batch.not_done[i] * target_q[i * n + best]
            })
            .collect();
        self.scores = target_q;
        let refs: Vec<&State> = states.iter().collect();
        let h = self.encode(&refs, false, true)?;
        let device = Device::Cpu;
        let actions = Tensor::from_slice(&self.batch.actions, b, &device).map_err(err)?;
        let rows = Tensor::from_vec(
            self.batch
                .actions
                .iter()
                .map(|&a| a + 2)
                .collect::<Vec<u32>>(),
            b,
            &device,
        )
        .map_err(err)?;
        let q = self.params["encoder.embed.items"]
            .as_tensor()
            .index_select(&rows, 0)
            .and_then(|e| (h * e)?.sum(1))
            .and_then(|q| {
                q + self.params["items.bias"]
                    .as_tensor()
                    .index_select(&actions, 0)?
            })
            .map_err(err)?;
        let y = Tensor::from_slice(&targets, b, &device).map_err(err)?;
        let td = (&q - &y).map_err(err)?;
        let weights = self
            .config
            .prioritized
            .then_some(self.batch.weights.as_slice());
        let loss = huber_loss(&td, self.config.huber_delta, weights).map_err(err)?;
        let loss_value = f64::from(loss.to_scalar::<f32>().map_err(err)?);
        let td_values: Vec<f32> = td.to_vec1().map_err(err)?;
        let mean_q = td_values
            .iter()
            .zip(&targets)
            .map(|(&t, &y)| f64::from(t + y))
            .sum::<f64>()
            / b as f64;
        if !loss_value.is_finite() || !mean_q.is_finite() {
            return Err(format!(
                "after {} transitions the loss is {loss_value} and the mean Q is {mean_q}",
                self.transitions
            ));
        }
        let grads = loss.backward().map_err(err)?;
        self.adam
            .step(
                &self.params,
                &grads,
                self.knobs.learning_rate,
                self.config.max_grad_norm,
            )
            .map_err(|e| e.0)?;
        self.buffer
            .update_priorities(&self.batch.indices, &td_values);
        self.stats.add(loss_value, mean_q, self.config.reward_scale);
        Ok(())
    }

    /// `target ← τ · online + (1 − τ) · target`, parameter by parameter
    /// (τ = 1 copies).
    fn update_target(&mut self) -> Result<(), String> {
        let tau = self.config.tau;
        for (name, target) in &self.target_params {
            let online = self.params[name].as_tensor();
            let value = if tau >= 1.0 {
                online.copy()
            } else {
                (online * tau).and_then(|o| o + (target.as_tensor() * (1.0 - tau))?)
            };
            value.and_then(|v| target.set(&v)).map_err(err)?;
        }
        Ok(())
    }
}

impl Policy for SequenceDqn {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        self.knobs = self.config.knobs(episode, total);
    }

    fn act(&mut self, obs: &Observation) -> usize {
        let mut slate = Vec::with_capacity(1);
        self.act_slate(obs, 1, self.items, &mut slate);
        slate[0]
    }

    fn act_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if let Err(e) = self.act_slates(std::slice::from_ref(obs), k, n, Mode::Train, slate) {
            panic!("the sequence Q-learner failed: {e}");
        }
    }

    /// Each session's slate in slot order. Training: a slot explores (a
    /// random slate) before learning starts or with probability ε, its
    /// draw made first, slot by slot; the other slots' states go through
    /// the encoder together and get their top `k` (or a Boltzmann draw).
    fn act_slates(
        &mut self,
        obs: &[Observation],
        k: usize,
        n_actions: usize,
        mode: Mode,
        slates: &mut Vec<usize>,
    ) -> Result<(), String> {
        let explore: Vec<bool> = match mode {
            Mode::Greedy => vec![false; obs.len()],
            Mode::Train => {
                let learning = self.learning();
                let epsilon = self.config.exploration == Exploration::EpsilonGreedy;
                (0..obs.len())
                    .map(|_| !learning || (epsilon && self.rng.random_bool(self.knobs.epsilon)))
                    .collect()
            }
        };
        let scored: Vec<usize> = (0..obs.len()).filter(|&i| !explore[i]).collect();
        let states: Vec<State> = scored
            .iter()
            .map(|&i| self.reader.state(&obs[i].features))
            .collect();
        let refs: Vec<&State> = states.iter().collect();
        let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); obs.len()];
        if !refs.is_empty() {
            let h = self.encode(&refs, false, false)?;
            let mut scores = std::mem::take(&mut self.scores);
            let block = (SCORE_BLOCK / self.items).clamp(1, 256);
            for first in (0..refs.len()).step_by(block) {
                let rows = block.min(refs.len() - first);
                let h = h.narrow(0, first, rows).map_err(err)?;
                self.q_into(&h, false, &mut scores)?;
                for (j, row) in scores.chunks(self.items).enumerate() {
                    let mut slate = Vec::with_capacity(k);
                    self.slate_of(row, k, mode, &mut slate);
                    chosen[scored[first + j]] = slate;
                }
            }
            self.scores = scores;
        }
        slates.clear();
        for (i, slate) in chosen.iter_mut().enumerate() {
            if explore[i] {
                crate::random_slate(&mut self.rng, n_actions, k, slate);
            }
            crate::check_slate(slate, k)?;
            slates.extend_from_slice(slate);
        }
        Ok(())
    }

    /// Uniform before learning starts; then ε-greedy's `ε/n` plus `1 − ε`
    /// on the greedy item, or Boltzmann's softmax of `Q / temperature`.
    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let n = self.items;
        if !self.learning() {
            probs.clear();
            probs.resize(n, 1.0 / n as f64);
            return true;
        }
        let q = self.q_values(obs);
        match self.config.exploration {
            Exploration::EpsilonGreedy => {
                crate::epsilon_greedy_probabilities(
                    self.knobs.epsilon,
                    crate::argmax(&q),
                    n,
                    probs,
                );
            }
            Exploration::Boltzmann => {
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

    fn greedy(&self, obs: &Observation) -> usize {
        crate::argmax(&self.q_values(obs))
    }

    fn greedy_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if let Err(e) = self.act_slates(std::slice::from_ref(obs), k, n, Mode::Greedy, slate) {
            panic!("the sequence Q-learner failed: {e}");
        }
    }

    fn learn(&mut self, t: &Transition<'_>) {
        if self.diverged.is_some() {
            return;
        }
        let reward = (t.reward * self.config.reward_scale) as f32;
        // Only termination cuts the bootstrap; a truncated transition is not done.
        self.buffer.push(
            &t.obs.features,
            t.action,
            reward,
            &t.next_obs.features,
            t.terminated,
        );
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
                    self.diverged = Some(reason);
                    return;
                }
            }
        }
        if self
            .transitions
            .is_multiple_of(self.config.target_update_interval as u64)
            && let Err(e) = self.update_target()
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
        let settings = serde_json::json!({
            "policy": "dqn",
            "encoder": "transformer",
            "transformer": self.config.transformer,
            "items": self.items,
            "context": self.reader.context_dim(),
            "transitions": self.transitions,
        });
        Some(crate::vars_to_safetensors(
            &self.params,
            settings.to_string(),
        ))
    }

    /// Loads the online network; the target gets the same weights.
    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let loaded = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        if let Some(extra) = loaded.keys().find(|k| !self.params.contains_key(*k)) {
            return Err(CheckpointError::UnknownTensor(extra.clone()));
        }
        crate::load_vars(&self.params, &loaded, "")?;
        let tau = std::mem::replace(&mut self.config.tau, 1.0);
        let copied = self.update_target();
        self.config.tau = tau;
        copied.map_err(CheckpointError::Format)?;
        self.adam.reset();
        Ok(())
    }
}

#[cfg(test)]
#[path = "qlearning_tests.rs"]
mod tests;
