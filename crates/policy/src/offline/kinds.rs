//! The offline learners as scenario files name them: `bc`, `offline_dqn`,
//! `fqi`, `cql`, `bcq` and `seed_article`.
//!
//! They learn from the scenario's `[offline]` data, handed to them in
//! [`BuildContext::offline`], never from the env: the harness plays them
//! like any policy, and each training episode is preceded by its share of
//! the gradient steps — before episode `e` of `E`, the learner has taken
//! `⌊G·(e + 1)/E⌋` of its `G` steps — so a training episode is an online
//! evaluation of the greedy policy after that many steps, and the run's
//! learning curve is the online value against gradient steps. What the env
//! shows them ([`Policy::learn`]) is ignored.

use super::{
    Transitions,
    neural::{Algorithm, OfflineConfig, OfflineLearner, Sampling},
};
use crate::{
    LearningStats, Policy, PolicyError,
    registry::{BuildContext, Built, PolicyKind},
};
use serde::{Deserialize, Serialize};
use shoplab_env::{Observation, cost::PolicyCost};
use std::sync::Arc;

/// The logged data offline learners train on.
#[derive(Debug, Clone)]
pub struct OfflineData {
    /// The transitions.
    pub transitions: Arc<Transitions>,
    /// Where they came from, for messages (`log pricing-medium.parquet`).
    pub source: String,
}

/// Most gradient steps one learner may take.
pub const MAX_GRADIENT_STEPS: u64 = 10_000_000;

fn default_gradient_steps() -> u64 {
    10_000
}
fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_batch() -> usize {
    256
}
fn default_learning_rate() -> f64 {
    1e-3
}
fn default_gamma() -> f64 {
    0.99
}
fn default_max_grad_norm() -> f64 {
    10.0
}

/// Settings of `bc`, `offline_dqn`, `fqi`, `cql` and `bcq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineSettings {
    /// Gradient steps over the run, in 1 ..= 10,000,000.
    #[serde(default = "default_gradient_steps")]
    pub gradient_steps: u64,
    /// Hidden layer widths.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Minibatch size.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Discount of the TD targets (unused by `bc`).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Gradient steps between target-network copies — for `fqi`, the
    /// steps of one iteration's regression. Default 500, `fqi` 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_update_interval: Option<u64>,
    /// Largest global gradient norm.
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// CQL's weight α ≥ 0 of the conservative term (`cql` only; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// BCQ's threshold τ in [0, 1) (`bcq` only; default 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
}

impl Default for OfflineSettings {
    fn default() -> Self {
        Self {
            gradient_steps: default_gradient_steps(),
            hidden: default_hidden(),
            batch_size: default_batch(),
            learning_rate: default_learning_rate(),
            gamma: default_gamma(),
            target_update_interval: None,
            max_grad_norm: default_max_grad_norm(),
            alpha: None,
            tau: None,
        }
    }
}

/// Which offline learner a kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learner {
    /// Behaviour cloning.
    Bc,
    /// Naive offline DQN.
    Dqn,
    /// Neural fitted Q iteration: the TD regression with the target held
    /// for a whole iteration (`target_update_interval` steps, 2000 by default).
    Fqi,
    /// Discrete CQL.
    Cql,
    /// Discrete BCQ.
    Bcq,
}

/// The kind of one of the offline learners.
#[derive(Debug, Clone, Copy)]
pub struct OfflineKind(pub Learner);

impl OfflineKind {
    fn config(&self, s: &OfflineSettings, seed: u64) -> Result<OfflineConfig, PolicyError> {
        let kind = self.kind_name();
        let only = |key: &str, owner: &str| {
            Err(PolicyError::invalid(
                key,
                format!("is a setting of kind `{owner}`, not of `{kind}`"),
            ))
        };
        if s.alpha.is_some() && self.0 != Learner::Cql {
            return only("alpha", "cql");
        }
        if s.tau.is_some() && self.0 != Learner::Bcq {
            return only("tau", "bcq");
        }
        if !(1..=MAX_GRADIENT_STEPS).contains(&s.gradient_steps) {
            return Err(PolicyError::invalid(
                "gradient_steps",
                format!(
                    "must be in 1 ..= {MAX_GRADIENT_STEPS} (found {})",
                    s.gradient_steps
                ),
            ));
        }
        let algorithm = match self.0 {
            Learner::Bc => Algorithm::Bc,
            Learner::Dqn | Learner::Fqi => Algorithm::Dqn,
            Learner::Cql => Algorithm::Cql {
                alpha: s.alpha.unwrap_or(1.0),
            },
            Learner::Bcq => Algorithm::Bcq {
                tau: s.tau.unwrap_or(0.3),
            },
        };
        let interval = if self.0 == Learner::Fqi { 2000 } else { 500 };
        let config = OfflineConfig {
            algorithm,
            hidden: s.hidden.clone(),
            batch_size: s.batch_size,
            learning_rate: s.learning_rate,
            gamma: s.gamma,
            target_update_interval: s.target_update_interval.unwrap_or(interval),
            max_grad_norm: s.max_grad_norm,
            sampling: Sampling::Uniform,
            seed,
        };
        config.validate()?;
        Ok(config)
    }

    fn kind_name(&self) -> &'static str {
        match self.0 {
            Learner::Bc => "bc",
            Learner::Dqn => "offline_dqn",
            Learner::Fqi => "fqi",
            Learner::Cql => "cql",
            Learner::Bcq => "bcq",
        }
    }
}

/// The data of the context, checked against the env: the error a scenario
/// without an `[offline]` table, or with data of another shape, gets.
pub(crate) fn data_of<'a>(
    kind: &str,
    cx: &BuildContext<'a>,
) -> Result<&'a OfflineData, PolicyError> {
    let data = cx.offline.ok_or_else(|| {
        PolicyError::invalid(
            "",
            format!(
                "kind `{kind}` learns from logged data: the scenario needs an [offline] table \
                 naming a log (log = \"…\") or a dataset of the suite (dataset = \"medium\")"
            ),
        )
    })?;
    let (dim, n) = (cx.observation_space.features.len(), cx.action_space.n());
    if data.transitions.dim != dim {
        return Err(PolicyError::invalid(
            "",
            format!(
                "the {} has {} features per row, the env's observations {dim}",
                data.source, data.transitions.dim
            ),
        ));
    }
    if let Some(&a) = data.transitions.action.iter().find(|&&a| a as usize >= n) {
        return Err(PolicyError::invalid(
            "",
            format!(
                "the {} holds action {a}, outside the env's {n} actions",
                data.source
            ),
        ));
    }
    if data.transitions.is_empty() {
        return Err(PolicyError::invalid(
            "",
            format!("the {} has no rows", data.source),
        ));
    }
    Ok(data)
}

/// Memory and work of a learner: four copies of the weights (online,
/// target, Adam's two moments; twice for BCQ), and `6 · batch · weights`
/// operations per gradient step spread over the run's decisions.
fn learner_cost(
    config: &OfflineConfig,
    cx: &BuildContext<'_>,
    steps: u64,
    training_decisions: f64,
) -> PolicyCost {
    let mut widths = vec![cx.observation_space.features.len()];
    widths.extend(&config.hidden);
    widths.push(cx.action_space.n());
    let weights: f64 = widths
        .windows(2)
        .map(|w| (w[0] as f64 + 1.0) * w[1] as f64)
        .sum();
    let nets = if matches!(config.algorithm, Algorithm::Bcq { .. }) {
        2.0
    } else {
        1.0
    };
    let widest = widths.iter().copied().max().unwrap_or(1) as f64;
    PolicyCost {
        bytes: nets * 16.0 * weights + 16.0 * config.batch_size as f64 * widest + 65_536.0,
        train_work: nets * 6.0 * config.batch_size as f64 * weights * steps as f64
            / training_decisions.max(1.0)
            + 2.0 * weights,
        act_work: 2.0 * nets * weights,
    }
}

impl PolicyKind for OfflineKind {
    type Config = OfflineSettings;

    fn kind(&self) -> &'static str {
        self.kind_name()
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn offline_steps(&self, config: &OfflineSettings, _rows: usize) -> Option<u64> {
        Some(config.gradient_steps)
    }

    fn cost(
        &self,
        config: &OfflineSettings,
        cx: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        let c = self.config(config, cx.seed)?;
        Ok(learner_cost(
            &c,
            cx,
            config.gradient_steps,
            training_decisions,
        ))
    }

    fn build(&self, config: &OfflineSettings, cx: &BuildContext<'_>) -> Built {
        let c = self.config(config, cx.seed)?;
        let data = data_of(self.kind_name(), cx)?;
        OfflinePolicy::boxed(
            self.kind_name(),
            c,
            data,
            cx.action_space.n(),
            config.gradient_steps,
        )
    }
}

fn default_epochs() -> u32 {
    100
}
fn article_hidden() -> Vec<usize> {
    vec![128]
}
fn article_batch() -> usize {
    32
}
fn article_gamma() -> f64 {
    0.9
}

/// Which reading of the seed article's code to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleVariant {
    /// The target's logged entry is set to 0: no reward is ever learned.
    AsWritten,
    /// The target's logged entry is `r + γ max Q(s′)`.
    AsIntended,
}

/// Settings of `seed_article`: the article's network and optimiser —
/// 10 → 128 → 100 on a 10-feature, 100-item scenario, ReLU, Adam at 1e-3,
/// mean squared error over the output vector, 100 epochs of Keras's
/// default batches of 32 in a fresh order each epoch; the targets are
/// recomputed at each epoch's start from the network as it stands (γ 0.9,
/// our choice: the article does not state one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticleSettings {
    /// `as_written` or `as_intended`.
    pub variant: ArticleVariant,
    /// Passes over the data, 0 ..= 10,000 (0: the untrained network's
    /// argmax, the reference the as-written variant is no better than).
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    /// Hidden layer widths.
    #[serde(default = "article_hidden")]
    pub hidden: Vec<usize>,
    /// Minibatch size.
    #[serde(default = "article_batch")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Discount of the intended targets.
    #[serde(default = "article_gamma")]
    pub gamma: f64,
}

/// The seed article's offline Q-network, as written or as intended.
#[derive(Debug, Clone, Copy)]
pub struct SeedArticleKind;

impl SeedArticleKind {
    fn config(s: &ArticleSettings, rows: usize, seed: u64) -> Result<OfflineConfig, PolicyError> {
        if s.epochs > 10_000 {
            return Err(PolicyError::invalid(
                "epochs",
                format!("must be in 0 ..= 10000 (found {})", s.epochs),
            ));
        }
        let config = OfflineConfig {
            algorithm: Algorithm::Article {
                as_written: s.variant == ArticleVariant::AsWritten,
            },
            hidden: s.hidden.clone(),
            batch_size: s.batch_size,
            learning_rate: s.learning_rate,
            gamma: s.gamma,
            // Targets refreshed at each epoch's start.
            target_update_interval: rows.div_ceil(s.batch_size.max(1)).max(1) as u64,
            // Keras's Adam does not clip.
            max_grad_norm: f64::MAX,
            sampling: Sampling::Epochs,
            seed,
        };
        config.validate()?;
        Ok(config)
    }

    /// Rows the steps are counted from: the data's where known.
    fn rows(cx: &BuildContext<'_>) -> usize {
        cx.offline.map_or(1, |d| d.transitions.len().max(1))
    }
}

impl PolicyKind for SeedArticleKind {
    type Config = ArticleSettings;

    fn kind(&self) -> &'static str {
        "seed_article"
    }

    fn name(&self, config: &ArticleSettings) -> String {
        if config.epochs == 0 {
            return "seed_article_untrained".into();
        }
        match config.variant {
            ArticleVariant::AsWritten => "seed_article_as_written".into(),
            ArticleVariant::AsIntended => "seed_article_as_intended".into(),
        }
    }

    fn state_dependent(&self) -> bool {
        true
    }

    /// `epochs` passes of `⌈rows / batch_size⌉` steps.
    fn offline_steps(&self, config: &ArticleSettings, rows: usize) -> Option<u64> {
        let per_epoch = rows.max(1).div_ceil(config.batch_size.max(1)) as u64;
        Some(per_epoch * u64::from(config.epochs))
    }

    fn cost(
        &self,
        config: &ArticleSettings,
        cx: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        let rows = Self::rows(cx);
        let c = Self::config(config, rows, cx.seed)?;
        let steps = c.target_update_interval * u64::from(config.epochs);
        Ok(learner_cost(&c, cx, steps, training_decisions))
    }

    fn build(&self, config: &ArticleSettings, cx: &BuildContext<'_>) -> Built {
        let data = data_of(self.kind(), cx)?;
        let c = Self::config(config, data.transitions.len(), cx.seed)?;
        let steps = c.target_update_interval * u64::from(config.epochs);
        OfflinePolicy::boxed(self.kind(), c, data, cx.action_space.n(), steps)
    }
}

/// An offline learner as the runner plays it: its gradient steps taken
/// before each training episode, its greedy policy played.
#[derive(Debug)]
pub struct OfflinePolicy {
    kind: &'static str,
    learner: OfflineLearner,
    data: Arc<Transitions>,
    total_steps: u64,
    failure: Option<String>,
}

impl OfflinePolicy {
    /// A learner of `config` on `data` that takes `total_steps` over a
    /// run, boxed as the registry builds it.
    pub fn boxed(
        kind: &'static str,
        config: OfflineConfig,
        data: &OfflineData,
        n_actions: usize,
        total_steps: u64,
    ) -> Result<Box<dyn Policy>, PolicyError> {
        let learner = OfflineLearner::new(config, &data.transitions, n_actions)
            .map_err(|e| PolicyError::invalid("", e.0))?;
        Ok(Box::new(Self {
            kind,
            learner,
            data: Arc::clone(&data.transitions),
            total_steps,
            failure: None,
        }))
    }

    /// Gradient steps taken so far.
    pub fn steps(&self) -> u64 {
        self.learner.steps()
    }
}

impl Policy for OfflinePolicy {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        let total = total.max(1) as u128;
        let due = (u128::from(self.total_steps) * (episode as u128 + 1) / total) as u64;
        while self.failure.is_none() && self.learner.steps() < due.min(self.total_steps) {
            if let Err(e) = self.learner.train_step(&self.data) {
                self.failure = Some(format!("training diverged: {}", e.0));
            }
        }
    }

    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let n = self.learner.n_actions();
        crate::one_hot_probabilities(self.greedy(obs), n, probs);
        true
    }

    fn greedy(&self, obs: &Observation) -> usize {
        Policy::greedy(&self.learner, obs)
    }

    fn divergence(&self) -> Option<String> {
        self.failure.clone()
    }

    fn learning_stats(&mut self) -> Option<LearningStats> {
        Some(self.learner.take_stats())
    }

    fn checkpoint(&self) -> Option<Result<Vec<u8>, crate::CheckpointError>> {
        Some(self.learner.to_safetensors(self.kind))
    }

    /// Restores a trained learner; it then takes no further steps.
    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), crate::CheckpointError> {
        self.learner.load_safetensors(bytes)?;
        self.total_steps = 0;
        Ok(())
    }
}
