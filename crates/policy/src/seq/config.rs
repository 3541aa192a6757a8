//! Settings of the softmax policy over the catalog ([`super::softmax`]),
//! `kind = "reinforce"` in scenario files, and their rules.

use super::encoder::EncoderConfig;
use crate::PolicyError;
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ObservationSpace,
    config::{self, unit_interval},
    cost::PolicyCost,
};

/// Largest minibatch, in decisions.
pub const MAX_BATCH: usize = 65_536;

/// How item embeddings start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemEmbeddings {
    /// `U(−0.02·√3, 0.02·√3)`, as every embedding of the encoder.
    Random,
    /// Each item's feature vector from the catalog (`f` values, `f ≤ dim`)
    /// in the first `f` columns, scaled to unit length, zeros after.
    Catalog,
}

/// Most items a sampled softmax draws per minibatch.
pub const MAX_NEGATIVES: usize = 1 << 20;

/// Settings of the REINFORCE softmax policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReinforceConfig {
    /// The session encoder (the transformer over the shopper's history).
    pub encoder: EncoderConfig,
    /// Softmax temperature `τ` of `π(a | s) = softmax(z(s) / τ)`.
    pub temperature: f64,
    /// `K` of the top-K correction; unset: the env's slate size (1 for
    /// single-action envs: plain REINFORCE).
    pub top_k: Option<usize>,
    /// Weight `c` of the entropy bonus.
    pub entropy: f64,
    /// Cap `ω_max` of the importance weight `π/β` (learning from logs).
    pub weight_cap: f64,
    /// The discount factor γ of the returns, in `[0, 1]`.
    pub gamma: f64,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Largest global L2 norm of the gradients.
    pub max_grad_norm: f64,
    /// Decisions per gradient step.
    pub batch_size: usize,
    /// Rewards are multiplied by this before learning.
    pub reward_scale: f64,
    /// Weight of the value head's squared error (the learned baseline).
    pub value_weight: f64,
    /// Whether the observation's other features (segment, step, …) move the
    /// start token, so attention reads them beside the items.
    pub context: bool,
    /// Context features encoded one-hot over their integer values instead
    /// of scaled to `[−1, 1]`.
    pub one_hot: Vec<String>,
    /// Items drawn per minibatch for a sampled softmax
    /// ([`super::reinforce::Objective::sampled_loss`]): uniformly, with
    /// replacement, shared by the minibatch's decisions. 0 (the default),
    /// or at least the catalog's size: the full softmax over every item.
    pub negatives: usize,
    /// How item embeddings start: `random` (small uniform values) or
    /// `catalog` (the catalog's feature vectors, where the scenario's
    /// family has them: items that look alike start out alike).
    pub item_embeddings: ItemEmbeddings,
    /// Learn from the scenario's logged data (its `[offline]` table)
    /// instead of the env: this many gradient steps over the run, spread
    /// over its episodes as the offline learners' are, on minibatches of
    /// logged decisions weighted by `min(π/β, weight_cap)` with the log's
    /// propensities `β` (the off-policy correction). Unset: learn online.
    pub log_steps: Option<u64>,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderConfig::default(),
            temperature: 1.0,
            top_k: None,
            entropy: 0.01,
            weight_cap: 10.0,
            gamma: 0.95,
            learning_rate: 1e-3,
            max_grad_norm: 1.0,
            batch_size: 256,
            reward_scale: 1.0,
            value_weight: 0.5,
            context: true,
            one_hot: Vec::new(),
            negatives: 0,
            item_embeddings: ItemEmbeddings::Random,
            log_steps: None,
        }
    }
}

impl ReinforceConfig {
    /// Checks the settings for a catalog of `items` items.
    pub fn validate(&self, items: usize) -> Result<(), PolicyError> {
        self.encoder.validate("encoder", items)?;
        let positive = |key: &str, v: f64, high: f64| -> Result<(), PolicyError> {
            if v.is_finite() && v > 0.0 && v <= high {
                Ok(())
            } else {
                Err(PolicyError::invalid(
                    key,
                    format!("must be in (0, {high}], got {v}"),
                ))
            }
        };
        positive("temperature", self.temperature, 1e3)?;
        positive("learning_rate", self.learning_rate, 1.0)?;
        positive("max_grad_norm", self.max_grad_norm, 1e9)?;
        positive("reward_scale", self.reward_scale, 1e9)?;
        for (key, v) in [
            ("entropy", self.entropy),
            ("value_weight", self.value_weight),
        ] {
            if !(v.is_finite() && (0.0..=1e3).contains(&v)) {
                return Err(PolicyError::invalid(
                    key,
                    format!("must be in [0, 1000], got {v}"),
                ));
            }
        }
        if !(self.weight_cap.is_finite() && (1.0..=1e6).contains(&self.weight_cap)) {
            return Err(PolicyError::invalid(
                "weight_cap",
                format!("must be in [1, 1e6], got {}", self.weight_cap),
            ));
        }
        unit_interval("gamma", self.gamma)?;
        config::in_range("batch_size", self.batch_size as u64, 1, MAX_BATCH as u64)?;
        if let Some(steps) = self.log_steps {
            config::in_range(
                "log_steps",
                steps,
                1,
                crate::offline::kinds::MAX_GRADIENT_STEPS,
            )?;
        }
        config::in_range("negatives", self.negatives as u64, 0, MAX_NEGATIVES as u64)?;
        if let Some(k) = self.top_k {
            config::in_range("top_k", k as u64, 1, items.max(1) as u64)?;
        }
        Ok(())
    }

    /// Items a training step scores per decision: the logged action and
    /// the sampled ones, or the whole catalog.
    pub fn scored_per_update(&self, items: usize) -> usize {
        if self.sampled(items) {
            1 + self.negatives
        } else {
            items
        }
    }

    /// Whether training uses a sampled softmax on a catalog of `items`.
    pub fn sampled(&self, items: usize) -> bool {
        self.negatives > 0 && self.negatives < items
    }

    /// What the policy costs ([`shoplab_env::cost`]) on `space` with
    /// `items` items: its parameters five times over (weights, Adam's two
    /// moments, gradients, temporaries), a minibatch's activations, and the
    /// `logged_rows` decisions of a log it learns from. Work per decision: a
    /// forward pass (the encoder and a score per item) to act, and its
    /// share of the updates (three passes' worth, scoring the sampled items
    /// or the catalog, per decision learned from: its own, online;
    /// `log_steps × batch_size` spread over the run's
    /// `training_decisions`, from a log).
    pub fn cost(
        &self,
        space: &ObservationSpace,
        items: usize,
        logged_rows: usize,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        self.validate(items)?;
        let (d, t) = (self.encoder.dim as f64, self.encoder.tokens() as f64);
        let context = space.len() as f64;
        let parameters =
            self.encoder.parameter_count(items) as f64 + d * (context + 1.0) + items as f64;
        let layers = self.encoder.layers as f64;
        // Per token and layer: four d×d projections, the 4d-wide MLP
        // (eight d² multiply-adds in all, 12 d² with attention's), and the
        // scores against the catalog once per state.
        let encode = 2.0 * (12.0 * d * d * layers * t + t * t * d * layers);
        let forward = encode + 2.0 * d * items as f64;
        let scored = self.scored_per_update(items) as f64;
        let update = 3.0 * (encode + 2.0 * d * scored);
        let batch = self.batch_size as f64;
        // From a log: its decisions are kept (the state's items and
        // context, the action, return and propensity).
        let logged = match (self.log_steps, logged_rows) {
            (Some(_), rows) => rows as f64 * (4.0 * (t + context) + 40.0),
            (None, _) => 0.0,
        };
        let activations = batch * (t * d * (14.0 * layers + 2.0) + 3.0 * scored);
        Ok(PolicyCost {
            bytes: 5.0 * 4.0 * parameters + 4.0 * activations + logged + 65_536.0,
            train_work: match self.log_steps {
                Some(steps) => {
                    forward + update * batch * steps as f64 / training_decisions.max(1.0)
                }
                None => forward + update,
            },
            act_work: forward,
        })
    }
}
