//! RecSim's interest-evolution environment, ported: the like-for-like
//! workload of shoplab's RecSim benchmark, and a scenario family of its own
//! (`[interest_evolution]`).
//!
//! Every step, each user is offered `candidates` freshly drawn videos and
//! the policy shows a slate of `slate_size` of them. The model is RecSim's
//! `interest_evolution.create_environment` with its
//! `UtilityModelVideoSampler` and `UtilityModelUserSampler` (the defaults
//! below are RecSim's):
//! - **videos**: a cluster `c` uniform over `clusters`, its features the
//!   one-hot vector of `c`, a fixed `video_length`, and a hidden quality
//!   drawn `Normal(mean_c, quality_std)`, the cluster means spaced evenly
//!   from `min_utility` to 0 over the first `⌊trashy_share · clusters⌋`
//!   clusters and from 0 to `max_utility` over the rest;
//! - **users**: interests uniform in `[−1, 1]` per cluster (observed), a
//!   time budget of `time_budget` minutes;
//! - **choice** (RecSim's multinomial proportional model): video `i` of the
//!   slate scores `s_i = interests · features_i − min_normalizer`, no click
//!   scores `no_click_mass − min_normalizer`, and the user picks one in
//!   proportion to the scores;
//! - **response and dynamics**: a clicked video is watched for
//!   `w = min(budget, video_length)` minutes (the reward); the interests
//!   move by `α(x) = y₀ − (y₀/x₀)·|x|` times `features · (features −
//!   interests)`, toward the video with probability
//!   `(interests + 1)/2 · features` and away otherwise, clipped to
//!   `[−1, 1]`; the budget falls by `w` and rises by `budget_alpha · w ·
//!   (user_quality_factor · s + document_quality_factor · quality)`; a step
//!   without a click costs `step_penalty`; the session ends when the budget
//!   is spent, and a new user takes the slot.
//!
//! The observation is RecSim's: the user's interests and every candidate's
//! features (`candidates × clusters`), plus the last response (clicked
//! position, watch time). Users are ECS entities, each with its own
//! generator seeded from the episode seed, the slot and the session count,
//! so no draw depends on query order and one user per call (RecSim's unit
//! of work) gives the same trajectory as that user in a batch.

mod env;
pub mod family;
#[cfg(test)]
mod tests;

pub use env::*;

use crate::config::{
    ConfigError, above, at_least, bounded, in_range, scale, unit_interval, within,
};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, LazyLock};

/// Most candidates offered per step.
pub const MAX_CANDIDATES: u32 = 500;
/// Most clusters (features per video).
pub const MAX_CLUSTERS: u32 = 50;

/// The `[interest_evolution]` table. Everything but the batch shape has
/// RecSim's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterestEvolutionConfig {
    /// Users stepped together, one slot each (1 = RecSim's one user per call).
    pub concurrent_sessions: u32,
    /// Steps in a batch episode; sessions still running then are truncated.
    pub ticks: u32,
    /// Videos drawn afresh for each user at every step.
    #[serde(default = "default_candidates")]
    pub candidates: u32,
    /// Videos shown per step.
    #[serde(default = "default_slate_size")]
    pub slate_size: u32,
    /// Clusters, and so features per video and interests per user.
    #[serde(default = "default_clusters")]
    pub clusters: u32,
    /// Minutes a new user has to spend.
    #[serde(default = "default_time_budget")]
    pub time_budget: f64,
    /// Minutes of every video.
    #[serde(default = "default_video_length")]
    pub video_length: f64,
    /// Minutes lost by a step without a click.
    #[serde(default = "default_step_penalty")]
    pub step_penalty: f64,
    /// Score of not clicking, before the normaliser.
    #[serde(default = "default_no_click_mass")]
    pub no_click_mass: f64,
    /// Subtracted from every score so that all are positive (at most −1,
    /// since a score can be as low as −1).
    #[serde(default = "default_min_normalizer")]
    pub min_normalizer: f64,
    /// Mean quality of the worst cluster.
    #[serde(default = "default_min_utility")]
    pub min_utility: f64,
    /// Mean quality of the best cluster.
    #[serde(default = "default_max_utility")]
    pub max_utility: f64,
    /// Standard deviation of a video's quality around its cluster's mean.
    #[serde(default = "default_quality_std")]
    pub quality_std: f64,
    /// Share of clusters whose mean quality is at most 0.
    #[serde(default = "default_trashy_share")]
    pub trashy_share: f64,
    /// `x₀` of the interest step size `α(x) = y₀ − (y₀/x₀)·|x|`.
    #[serde(default = "default_alpha_x_intercept")]
    pub alpha_x_intercept: f64,
    /// `y₀` of the interest step size.
    #[serde(default = "default_alpha_y_intercept")]
    pub alpha_y_intercept: f64,
    /// Share of a watched video's minutes its utility returns to the budget
    /// per unit of utility (RecSim: 0.9 / 3.4).
    #[serde(default = "default_budget_alpha")]
    pub budget_alpha: f64,
    /// Weight of the user's score in a watched video's utility.
    #[serde(default)]
    pub user_quality_factor: f64,
    /// Weight of the video's quality in its utility.
    #[serde(default = "one")]
    pub document_quality_factor: f64,
}

fn default_candidates() -> u32 {
    100
}
fn default_slate_size() -> u32 {
    10
}
fn default_clusters() -> u32 {
    20
}
fn default_time_budget() -> f64 {
    200.0
}
fn default_video_length() -> f64 {
    4.0
}
fn default_step_penalty() -> f64 {
    0.5
}
fn default_no_click_mass() -> f64 {
    1.0
}
fn default_min_normalizer() -> f64 {
    -1.0
}
fn default_min_utility() -> f64 {
    -3.0
}
fn default_max_utility() -> f64 {
    3.0
}
fn default_quality_std() -> f64 {
    0.1
}
fn default_trashy_share() -> f64 {
    0.7
}
fn default_alpha_x_intercept() -> f64 {
    1.0
}
fn default_alpha_y_intercept() -> f64 {
    0.3
}
fn default_budget_alpha() -> f64 {
    0.9 / 3.4
}
fn one() -> f64 {
    1.0
}

impl InterestEvolutionConfig {
    /// The RecSim defaults with the given batch shape.
    pub fn recsim(concurrent_sessions: u32, ticks: u32) -> Self {
        Self {
            concurrent_sessions,
            ticks,
            candidates: default_candidates(),
            slate_size: default_slate_size(),
            clusters: default_clusters(),
            time_budget: default_time_budget(),
            video_length: default_video_length(),
            step_penalty: default_step_penalty(),
            no_click_mass: default_no_click_mass(),
            min_normalizer: default_min_normalizer(),
            min_utility: default_min_utility(),
            max_utility: default_max_utility(),
            quality_std: default_quality_std(),
            trashy_share: default_trashy_share(),
            alpha_x_intercept: default_alpha_x_intercept(),
            alpha_y_intercept: default_alpha_y_intercept(),
            budget_alpha: default_budget_alpha(),
            user_quality_factor: 0.0,
            document_quality_factor: 1.0,
        }
    }

    /// Checks every rule and builds the model.
    pub fn validate(&self) -> Result<InterestEvolutionModel, ConfigError> {
        in_range(
            "concurrent_sessions",
            self.concurrent_sessions.into(),
            1,
            100_000,
        )?;
        in_range("ticks", self.ticks.into(), 1, 1_000_000)?;
        in_range(
            "candidates",
            self.candidates.into(),
            1,
            MAX_CANDIDATES.into(),
        )?;
        in_range(
            "slate_size",
            self.slate_size.into(),
            1,
            self.candidates.min(100).into(),
        )?;
        in_range("clusters", self.clusters.into(), 1, MAX_CLUSTERS.into())?;
        // Sessions × candidate features are held twice (state, observation).
        let floats = u64::from(self.concurrent_sessions)
            * u64::from(self.candidates)
            * u64::from(self.clusters);
        if floats > 50_000_000 {
            return Err(ConfigError::new(
                "concurrent_sessions",
                format!(
                    "concurrent_sessions × candidates × clusters must be at most 50,000,000 \
                     (the observations' features; found {floats})"
                ),
            ));
        }
        above("time_budget", self.time_budget, 0.0)?;
        above("video_length", self.video_length, 0.0)?;
        at_least("step_penalty", self.step_penalty, 0.0)?;
        // Long sessions still end: either steps cost time or videos do.
        if self.step_penalty == 0.0 && self.budget_alpha * self.quality_bound() >= 1.0 {
            return Err(ConfigError::new(
                "step_penalty",
                "must be above 0 when a watched video can return its own minutes \
                 (budget_alpha × the largest utility ≥ 1): sessions would never end",
            ));
        }
        within("min_normalizer", self.min_normalizer, -1e6, -1.0)?;
        bounded("no_click_mass", self.no_click_mass)?;
        if self.no_click_mass - self.min_normalizer < 0.0 {
            return Err(ConfigError::new(
                "no_click_mass",
                format!(
                    "must be at least min_normalizer ({}) so the no-click score is not negative \
                     (found {})",
                    self.min_normalizer, self.no_click_mass
                ),
            ));
        }
        within("min_utility", self.min_utility, -1e3, 0.0)?;
        within("max_utility", self.max_utility, 0.0, 1e3)?;
        within("quality_std", self.quality_std, 0.0, 1e3)?;
        unit_interval("trashy_share", self.trashy_share)?;
        scale("alpha_x_intercept", self.alpha_x_intercept, 1e6)?;
        within("alpha_y_intercept", self.alpha_y_intercept, 0.0, 1.0)?;
        within("budget_alpha", self.budget_alpha, 0.0, 10.0)?;
        within("user_quality_factor", self.user_quality_factor, -10.0, 10.0)?;
        within(
            "document_quality_factor",
            self.document_quality_factor,
            -10.0,
            10.0,
        )?;
        Ok(InterestEvolutionModel {
            cluster_means: cluster_means(
                self.clusters as usize,
                self.trashy_share,
                self.min_utility,
                self.max_utility,
            )
            .into(),
            config: Arc::new(self.clone()),
        })
    }

    /// A generous bound on a watched video's utility: six standard
    /// deviations past the best cluster, plus the largest score.
    fn quality_bound(&self) -> f64 {
        self.document_quality_factor.abs()
            * (self.max_utility.abs().max(self.min_utility.abs()) + 6.0 * self.quality_std)
            + self.user_quality_factor.abs() * (1.0 - self.min_normalizer)
    }
}

/// RecSim's cluster quality means: `⌊share · n⌋` evenly from `low` to 0,
/// the rest evenly from 0 to `high` (numpy's `linspace`).
pub fn cluster_means(n: usize, share: f64, low: f64, high: f64) -> Vec<f64> {
    let trashy = ((share * n as f64).floor() as usize).min(n);
    let linspace = |a: f64, b: f64, k: usize| -> Vec<f64> {
        match k {
            0 => Vec::new(),
            1 => vec![a],
            _ => (0..k)
                .map(|i| a + (b - a) * i as f64 / (k - 1) as f64)
                .collect(),
        }
    };
    let mut means = linspace(low, 0.0, trashy);
    means.extend(linspace(0.0, high, n - trashy));
    means
}

/// A validated interest-evolution scenario.
#[derive(Debug, Clone)]
pub struct InterestEvolutionModel {
    config: Arc<InterestEvolutionConfig>,
    cluster_means: Arc<[f64]>,
}

impl InterestEvolutionModel {
    /// The validated config.
    pub fn config(&self) -> &InterestEvolutionConfig {
        &self.config
    }

    /// Mean quality of each cluster.
    pub fn cluster_means(&self) -> &[f64] {
        &self.cluster_means
    }

    /// Length of an observation: interests, candidate features, and the
    /// last response (clicked position, watch time).
    pub fn observation_len(&self) -> usize {
        let (c, k) = (
            self.config.candidates as usize,
            self.config.clusters as usize,
        );
        k + c * k + 2
    }
}

/// Names of the observation's features, for the largest sizes allowed:
/// `interest_{k}` for each cluster, `candidate_{i}_cluster_{k}` for each
/// candidate's one-hot features. Built once, so spaces can borrow them.
static NAMES: LazyLock<(Vec<String>, Vec<String>)> = LazyLock::new(|| {
    let interests = (0..MAX_CLUSTERS).map(|k| format!("interest_{k}")).collect();
    let candidates = (0..MAX_CANDIDATES)
        .flat_map(|i| (0..MAX_CLUSTERS).map(move |k| format!("candidate_{i}_cluster_{k}")))
        .collect();
    (interests, candidates)
});

/// The name of interest `k`.
fn interest_name(k: usize) -> &'static str {
    &NAMES.0[k]
}

/// The name of feature `k` of candidate `i`.
fn candidate_name(i: usize, k: usize) -> &'static str {
    &NAMES.1[i * MAX_CLUSTERS as usize + k]
}
