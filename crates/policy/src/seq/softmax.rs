//! A softmax policy over the catalog, `π(a | s) = softmax(z(s) / τ)`, its
//! state read by the session encoder and trained by REINFORCE (Williams,
//! 1992) with a learned baseline and the top-K correction of
//! [`super::reinforce`].
//!
//! **State.** The observation's `history_1, history_2, …` features are the
//! items the shopper clicked, most recent first (a value outside the
//! catalog is an empty place); the encoder reads them oldest first. The
//! other features — the context: segment, step, price sensitivity — are
//! encoded as the deep Q-learner encodes features (scaled to `[−1, 1]`,
//! or one-hot) and projected onto the start token's vector
//! ([`SessionEncoder::forward_with_start`]), so attention reads them beside
//! the items. `h(s)` is the encoder's output.
//!
//! **Scores.** Two towers with tied item embeddings: `z_i(s) = h(s)·e_i + b_i`,
//! `e_i` the encoder's embedding of item `i`. A value head
//! `V(s) = h(s)·w + c` is the baseline.
//!
//! **Learning.** The policy follows every session of a batch env by its
//! slot ([`Transition::slot`]); when a session ends, each decision's
//! discounted return `G` is known (item-wise credit within a slate: the
//! item's own reward plus the discounted return of the steps after), and
//! a session cut by a limit (truncated) bootstraps from `V` of its last
//! state. Finished decisions queue up; every `batch_size` of them make one
//! Adam step on `L = L_π(A = G − V) + value_weight · ½ (G − V)²`, `L_π` the
//! objective of [`super::reinforce::Objective`] on-policy (`ω = 1`);
//! `value_weight = 0` leaves the baseline out (`A = G`). From a log, the
//! decisions are weighted by `ω` in both terms. With `negatives` set below
//! the catalog's size the policy term uses a sampled softmax
//! ([`Objective::sampled_loss`]), its items drawn from a generator of
//! their own.
//!
//! **Acting.** [`Policy::act_slates`] encodes every session of a step in
//! one batched forward pass and scores blocks of them against the item
//! table with one product each; training draws slates without replacement
//! from `π` ([`sample_slate`]), evaluation shows the top `k` logits. All
//! randomness comes from the policy's seeded generators.

use super::{
    config::ReinforceConfig,
    encoder::{SessionEncoder, rows_of},
    reinforce::{log_policy, sample_slate},
    sessions::{Decision, SessionStep, State},
    state::StateReader,
};
use crate::{CheckpointError, LearningStats, Mode, Policy, PolicyError, Transition, adam::Adam};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngExt;
use shoplab_env::{
    Observation, ObservationSpace,
    family::ItemFeatures,
    seed::{SimRng, derive_seed, rng_from_seed},
};
use std::collections::{BTreeMap, VecDeque};

pub use super::state::HISTORY_PREFIX;

/// Logits scored at once when acting: a block of states × the catalog.
const SCORE_BLOCK: usize = 1 << 21;

/// Sums of the training statistics since they were last read.
#[derive(Debug, Clone, Copy, Default)]
struct StatsSum {
    updates: u64,
    loss: f64,
    value: f64,
}

/// The REINFORCE softmax policy (`kind = "reinforce"`).
#[derive(Debug)]
pub struct Reinforce {
    config: ReinforceConfig,
    encoder: SessionEncoder,
    /// Every parameter (the encoder's under `encoder.`, the heads'), by name.
    params: BTreeMap<String, Var>,
    /// The parameters Adam steps: all, but the value head's without a
    /// value loss (`value_weight = 0`: no baseline).
    trained: BTreeMap<String, Var>,
    adam: Adam,
    items: usize,
    /// What the policy reads of an observation.
    reader: StateReader,
    /// The slate size of the last step acted on.
    slate_size: usize,
    /// Each slot's session so far, and its step being filled.
    sessions: Vec<(Vec<SessionStep>, Option<SessionStep>)>,
    /// Sessions cut by a limit, waiting for `V` of their last state.
    awaiting: Vec<(Vec<SessionStep>, State)>,
    ready: VecDeque<Decision>,
    stats: StatsSum,
    /// Logged decisions and their propensities, when learning from a log.
    logged: Option<(Vec<Decision>, Vec<f64>)>,
    diverged: Option<String>,
    rng: SimRng,
    /// Draws logged minibatches.
    log_rng: SimRng,
    /// Draws a sampled softmax's items.
    negatives_rng: SimRng,
    /// Scratch: a block of states' logits, and a slate draw's running sums.
    scores: Vec<f32>,
    sums: Vec<f64>,
    /// Features per observation.
    features: usize,
    device: Device,
}

fn err(e: candle_core::Error) -> String {
    e.to_string()
}

impl Reinforce {
    /// A policy over `space` for a catalog of `n_actions` items, seeded
    /// with `seed`: the weights from `derive_seed(seed, "reinforce/init", 0)`,
    /// slates from `derive_seed(seed, "reinforce/act", 0)`.
    pub fn new(
        config: ReinforceConfig,
        space: &ObservationSpace,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        config.validate(n_actions)?;
        let reader = StateReader::new(space, &config.one_hot, config.context, n_actions)?;
        let context_dim = reader.context_dim();
        let invalid = |e: String| PolicyError::invalid("", e);
        let mut init = rng_from_seed(derive_seed(seed, "reinforce/init", 0));
        let encoder = SessionEncoder::new(config.encoder.clone(), n_actions, DType::F32, &mut init)
            .map_err(invalid)?;
        let device = Device::Cpu;
        let d = config.encoder.dim;
        let mut params: BTreeMap<String, Var> = encoder
            .vars()
            .iter()
            .map(|(n, v)| (format!("encoder.{n}"), v.clone()))
            .collect();
        let mut head = vec![
            ("items.bias".to_string(), vec![n_actions], 0.0),
            ("value.bias".to_string(), vec![1], 0.0),
            (
                "value.weight".to_string(),
                vec![d, 1],
                1.0 / (d as f32).sqrt(),
            ),
        ];
        if context_dim > 0 {
            let bound = 1.0 / (context_dim as f32).sqrt();
            head.push(("context.weight".to_string(), vec![context_dim, d], bound));
        }
        head.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, shape, bound) in head {
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| {
                    if bound > 0.0 {
                        init.random_range(-bound..bound)
                    } else {
                        0.0
                    }
                })
                .collect();
            let var = Var::from_vec(values, shape, &device).map_err(|e| invalid(err(e)))?;
            params.insert(name, var);
        }
        let trained: BTreeMap<String, Var> = params
            .iter()
            .filter(|(name, _)| config.value_weight > 0.0 || !name.starts_with("value."))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        Ok(Self {
            adam: Adam::new(&trained),
            trained,
            params,
            encoder,
            items: n_actions,
            reader,
            slate_size: 1,
            sessions: Vec::new(),
            awaiting: Vec::new(),
            ready: VecDeque::new(),
            stats: StatsSum::default(),
            logged: None,
            diverged: None,
            rng: rng_from_seed(derive_seed(seed, "reinforce/act", 0)),
            log_rng: rng_from_seed(derive_seed(seed, "reinforce/log", 0)),
            negatives_rng: rng_from_seed(derive_seed(seed, "reinforce/negatives", 0)),
            scores: Vec::new(),
            sums: Vec::new(),
            features: space.len(),
            device,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ReinforceConfig {
        &self.config
    }

    /// Starts the item embeddings from the catalog's feature vectors
    /// (`item_embeddings = "catalog"`), each scaled to unit length: items
    /// that look alike score alike from the start, and logits can differ
    /// by several units without the encoder's state growing large (at the
    /// random rows' length, 0.02·√dim, telling one topic's items from
    /// the rest of 100,000 would take thousands of steps of growth).
    pub fn init_items_from_catalog(&mut self, features: &ItemFeatures) -> Result<(), String> {
        if features.dim == 0 || features.values.len() != features.dim * self.items {
            return Err(format!(
                "{} feature values of dimension {} for {} items",
                features.values.len(),
                features.dim,
                self.items
            ));
        }
        let scaled: Vec<f32> = features
            .values
            .chunks_exact(features.dim)
            .flat_map(|row| {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                let k = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                row.iter().map(move |v| v * k)
            })
            .collect();
        self.encoder.init_items_from(&scaled, features.dim)
    }

    fn state(&self, obs: &Observation) -> State {
        self.reader.state(&obs.features)
    }

    /// `h(s)` of each state, `[states, dim]` (tracked).
    fn encode(&self, states: &[&State]) -> Result<Tensor, String> {
        let weight = self.params.get("context.weight").map(|v| v.as_tensor());
        self.reader.encode(&self.encoder, weight, states)
    }

    /// Every item's logit `[states, items]` of `h` (tracked).
    fn logits(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let embeddings = self.params["encoder.embed.items"]
            .as_tensor()
            .narrow(0, 2, self.items)?;
        let rows = h.dim(0)?;
        h.matmul(&embeddings.t()?)? + rows_of(self.params["items.bias"].as_tensor(), rows)?
    }

    /// The values `[states]` of `h`.
    fn values(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let rows = h.dim(0)?;
        (h.matmul(self.params["value.weight"].as_tensor())?
            + rows_of(self.params["value.bias"].as_tensor(), rows)?)?
        .squeeze(1)
    }

    /// Every item's logit for each state of `h` (`[states, dim]`), row-major
    /// into `out`: one product with the item table on the calling thread,
    /// into a buffer the policy keeps (at 100,000 items a state's logits
    /// are 400 kB).
    fn logits_into(&self, h: &Tensor, out: &mut Vec<f32>) -> Result<(), String> {
        super::catalog::score_states(
            h,
            self.params["encoder.embed.items"].as_tensor(),
            2,
            self.params["items.bias"].as_tensor(),
            self.items,
            out,
        )
    }

    /// Logits (row-major `[states, items]`) and values of `states`, untracked.
    fn score(&self, states: &[&State]) -> Result<(Vec<f32>, Vec<f32>), String> {
        let h = self.encode(states)?.detach();
        let mut logits = Vec::new();
        self.logits_into(&h, &mut logits)?;
        let values = self.values(&h).and_then(|v| v.to_vec1()).map_err(err)?;
        Ok((logits, values))
    }

    /// The values of `states`, untracked.
    fn state_values(&self, states: &[&State]) -> Result<Vec<f32>, String> {
        let h = self.encode(states)?.detach();
        self.values(&h).and_then(|v| v.to_vec1()).map_err(err)
    }

    fn score_or_panic(&self, states: &[&State]) -> (Vec<f32>, Vec<f32>) {
        self.score(states)
            .unwrap_or_else(|e| panic!("the softmax policy's network failed: {e}"))
    }

    /// `π(· | s)` at the policy's temperature.
    pub fn probabilities(&self, obs: &Observation) -> Vec<f64> {
        let state = self.state(obs);
        let (logits, _) = self.score_or_panic(&[&state]);
        let z = Tensor::from_vec(logits, (1, self.items), &self.device)
            .and_then(|z| log_policy(&z, self.config.temperature))
            .and_then(|l| l.exp())
            .and_then(|p| p.squeeze(0))
            .and_then(|p| p.to_dtype(DType::F64))
            .and_then(|p| p.to_vec1())
            .unwrap_or_else(|e| panic!("the softmax policy failed: {e}"));
        let total: f64 = z.iter().sum();
        z.into_iter().map(|p| p / total).collect()
    }
}

impl Policy for Reinforce {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        let Some(steps) = self.config.log_steps else {
            return;
        };
        let due = (u128::from(steps) * (episode as u128 + 1) / total.max(1) as u128) as u64;
        while self.diverged.is_none() && self.adam.steps() < due.min(steps) {
            if let Err(e) = self.log_step() {
                self.diverged = Some(e);
            }
        }
    }

    fn act(&mut self, obs: &Observation) -> usize {
        let mut slate = Vec::with_capacity(1);
        self.act_slate(obs, 1, self.items, &mut slate);
        slate[0]
    }

    fn act_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if let Err(e) = self.act_slates(std::slice::from_ref(obs), k, n, Mode::Train, slate) {
            panic!("the softmax policy failed: {e}");
        }
    }

    fn act_slates(
        &mut self,
        obs: &[Observation],
        k: usize,
        _n_actions: usize,
        mode: Mode,
        slates: &mut Vec<usize>,
    ) -> Result<(), String> {
        self.flush();
        self.slate_size = k;
        let states: Vec<State> = obs.iter().map(|o| self.state(o)).collect();
        let refs: Vec<&State> = states.iter().collect();
        let h = self.encode(&refs)?.detach();
        slates.clear();
        let mut slate = Vec::with_capacity(k);
        let mut scores = std::mem::take(&mut self.scores);
        // States in blocks, so the logits buffer stays a few megabytes at
        // a large catalog.
        let block = (SCORE_BLOCK / self.items).clamp(1, 256);
        for first in (0..refs.len()).step_by(block) {
            let rows = block.min(refs.len() - first);
            let h = h.narrow(0, first, rows).map_err(err)?;
            self.logits_into(&h, &mut scores)?;
            for row in scores.chunks(self.items) {
                match mode {
                    Mode::Train => sample_slate(
                        row,
                        self.config.temperature,
                        k,
                        &mut self.rng,
                        &mut self.sums,
                        &mut slate,
                    ),
                    Mode::Greedy => crate::top_k(row, k, &mut slate),
                }
                crate::check_slate(&slate, k)?;
                slates.extend_from_slice(&slate);
            }
        }
        self.scores = scores;
        Ok(())
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        self.flush();
        *probs = self.probabilities(obs);
        true
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let state = self.state(obs);
        let mut best = Vec::with_capacity(1);
        crate::top_k(&self.score_or_panic(&[&state]).0, 1, &mut best);
        best[0]
    }

    fn greedy_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if let Err(e) = self.act_slates(std::slice::from_ref(obs), k, n, Mode::Greedy, slate) {
            panic!("the softmax policy failed: {e}");
        }
    }

    fn learn(&mut self, t: &Transition<'_>) {
        if self.diverged.is_some() || self.logged.is_some() {
            return;
        }
        if self.sessions.len() <= t.slot {
            self.sessions.resize_with(t.slot + 1, Default::default);
        }
        let scaled = t.reward * self.config.reward_scale;
        let k = self.slate_size;
        if self.sessions[t.slot].1.is_none() {
            self.sessions[t.slot].1 = Some(SessionStep {
                state: self.state(t.obs),
                actions: Vec::with_capacity(k),
                rewards: Vec::with_capacity(k),
            });
        }
        let (steps, current) = &mut self.sessions[t.slot];
        let Some(step) = current.as_mut() else {
            return;
        };
        step.actions.push(t.action as u32);
        step.rewards.push(scaled);
        if step.actions.len() < k {
            return;
        }
        steps.extend(current.take());
        if t.terminated {
            let steps = std::mem::take(steps);
            self.finish(steps, 0.0);
        } else if t.truncated {
            let steps = std::mem::take(steps);
            let last = self.state(t.next_obs);
            self.awaiting.push((steps, last));
        }
    }

    fn divergence(&self) -> Option<String> {
        self.diverged.clone()
    }

    fn learning_stats(&mut self) -> Option<LearningStats> {
        let s = std::mem::take(&mut self.stats);
        Some(LearningStats::from_sums(
            s.updates,
            s.loss,
            s.value,
            self.config.temperature,
        ))
    }

    fn checkpoint(&self) -> Option<Result<Vec<u8>, CheckpointError>> {
        let settings = serde_json::json!({
            "policy": "reinforce",
            "encoder": self.config.encoder,
            "items": self.items,
            "context": self.reader.context_dim(),
            "updates": self.adam.steps(),
        });
        Some(crate::vars_to_safetensors(
            &self.params,
            settings.to_string(),
        ))
    }

    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let loaded = candle_core::safetensors::load_buffer(bytes, &self.device)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        if let Some(extra) = loaded.keys().find(|k| !self.params.contains_key(*k)) {
            return Err(CheckpointError::UnknownTensor(extra.clone()));
        }
        crate::load_vars(&self.params, &loaded, "")?;
        self.adam.reset();
        Ok(())
    }
}

#[path = "softmax_learning.rs"]
mod learning;

#[cfg(test)]
#[path = "softmax_tests.rs"]
mod tests;
