//! Scenario families: what a kind of scenario tells the harness and the
//! policies, so that neither ever names it.
//!
//! A family comes in two parts, the way Gymnasium separates an env's
//! registration from the env:
//! - a [`FamilyKind`] names the family's table in scenario files
//!   (`[pricing]`), owns its config type (serde, unknown keys refused) and
//!   validates a config into a
//! - [`Family`]: the validated scenario, which builds fresh envs (single or
//!   batched, [`EnvBox`]) and says how to report them — the return's label,
//!   the summary [`Ratio`]s of its metrics, the exact optimum where one is
//!   known, the chart of a policy's greedy action over a grid of states
//!   ([`GreedyTable`]), how a batch episode's sessions are counted
//!   ([`Sessions`]) — and what policies may rely on: facts such as
//!   [`Family::expected_rewards`], and typed *setups* such as the price
//!   grid ([`PriceGrid`]) or the solved pricing MDP, read with
//!   [`Family::get`].
//!
//! Generic code asks the family; it never matches on a family's name or
//! looks up a metric by string. A metric's position is known only to the
//! family that defines it, which hands out indices ([`Ratio`], [`Sessions`]).

use crate::{
    ActionSpace, Env, Observation, ObservationSpace, batch::BatchEnv, config::ConfigError,
    cost::EpisodeCost,
};
use serde::{Serialize, de::DeserializeOwned};
use std::{
    any::{Any, TypeId},
    fmt::Debug,
    path::{Path, PathBuf},
    sync::Arc,
};

/// An env of a scenario: one session at a time, or many at once.
pub enum EnvBox {
    /// A Gymnasium-style env.
    Single(Box<dyn Env>),
    /// A batched env (Gymnasium's vector env with auto-reset).
    Batch(Box<dyn BatchEnv>),
}

impl EnvBox {
    /// The observation space.
    pub fn observation_space(&self) -> &ObservationSpace {
        match self {
            Self::Single(e) => e.observation_space(),
            Self::Batch(e) => e.observation_space(),
        }
    }

    /// The action space.
    pub fn action_space(&self) -> &ActionSpace {
        match self {
            Self::Single(e) => e.action_space(),
            Self::Batch(e) => e.action_space(),
        }
    }

    /// The metric names.
    pub fn metric_names(&self) -> &[&'static str] {
        match self {
            Self::Single(e) => e.metric_names(),
            Self::Batch(e) => e.metric_names(),
        }
    }
}

/// A summary quantity computed from two summed metrics,
/// `Σ numerator / Σ denominator` (a click-through rate, a cost per click).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Column name in the summary.
    pub name: &'static str,
    /// Index of the metric summed above the line.
    pub numerator: usize,
    /// Index of the metric summed below the line.
    pub denominator: usize,
}

impl Ratio {
    /// The ratio `name` of the metrics called `numerator` and `denominator`
    /// in `metrics` (a family's own metric names).
    ///
    /// # Panics
    /// When either name is not in `metrics`: a family's ratios are fixed
    /// when it is written, so this is a bug in the family, found by its tests.
    pub fn of(metrics: &[&str], name: &'static str, numerator: &str, denominator: &str) -> Self {
        Self {
            name,
            numerator: metric_index(metrics, numerator),
            denominator: metric_index(metrics, denominator),
        }
    }
}

/// Position of `name` in a family's own `metrics`.
///
/// # Panics
/// When `name` is not there (a bug in the family that asks).
pub fn metric_index(metrics: &[&str], name: &str) -> usize {
    metrics
        .iter()
        .position(|&m| m == name)
        .unwrap_or_else(|| panic!("the family has no metric `{name}` (it has {metrics:?})"))
}

/// How a batched family counts sessions, so reports can give reward per
/// session and warn when too few sessions end in an episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sessions {
    /// Index of the metric that counts sessions that ended.
    pub ended_metric: usize,
    /// Index, among [`Family::ratios`], of the mean session length.
    pub length_ratio: usize,
    /// Ticks in a batch episode.
    pub ticks: u32,
}

/// A policy's greedy action over a grid of states, for charts: `values[row][col]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyTable {
    /// Name of the row variable.
    pub row_name: String,
    /// Name of the column variable.
    pub col_name: String,
    /// What the greedy action's value is (`price`).
    pub value_name: String,
    /// Row values.
    pub rows: Vec<f64>,
    /// Column values.
    pub cols: Vec<f64>,
    /// The value of the greedy action (a price) in each cell.
    pub values: Vec<Vec<f64>>,
    /// Whether the policy learned anything about each cell's state, for
    /// tabular learners (none for the others): a cell never visited shows
    /// an untrained default, not a choice.
    pub visited: Option<Vec<Vec<bool>>>,
}

/// A deterministic rule that picks actions from an observation: a reference
/// policy the harness can play itself, beside the policies of a scenario, on
/// the same episodes. It writes the actions it would take into the vector,
/// best first: the first is its action in a single-action env, the first
/// `k` its slate of `k` (filled with the next actions by index when it
/// lists fewer).
pub type ActionRule = Arc<dyn Fn(&Observation, &mut Vec<usize>) + Send + Sync>;

/// An [`ActionRule`] that always takes `action`.
pub fn constant_rule(action: usize) -> ActionRule {
    Arc::new(move |_: &Observation, out: &mut Vec<usize>| {
        out.clear();
        out.push(action);
    })
}

/// An [`ActionRule`] that always shows `slate`, best first.
pub fn fixed_slate_rule(slate: Vec<usize>) -> ActionRule {
    Arc::new(move |_: &Observation, out: &mut Vec<usize>| {
        out.clone_from(&slate);
    })
}

/// Calibration episodes for a batch family whose episode is `ticks` steps
/// of `sessions` slots: enough for 200,000 decisions, at least 2 and at
/// most 20 (the default's count).
pub fn calibration_episodes(ticks: u32, sessions: u32) -> u32 {
    let per_episode = f64::from(ticks) * f64::from(sessions);
    (200_000.0 / per_episode).ceil().clamp(2.0, 20.0) as u32
}

/// The strongest simple policy of a family: the reference a learner has to
/// beat before its sophistication is worth anything (a well-chosen fixed
/// price, the best fixed bid multiplier).
#[derive(Clone)]
pub struct Baseline {
    /// What it is, for reports (`best fixed price 3`).
    pub name: String,
    /// Its expected return (or score) per episode.
    pub value: f64,
    /// How `value` is known, for reports (`exact`, or the episodes it is a
    /// mean over).
    pub basis: String,
    /// Its rule, so evaluations can play it on their own episodes.
    pub rule: ActionRule,
}

impl Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("basis", &self.basis)
            .finish_non_exhaustive()
    }
}

/// The prices a pricing family's actions post, in action order: the setup
/// that fixed-price policies read.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceGrid(pub Vec<f64>);

/// The shape of a budgeted-bidding family's actions: action `a` bids with
/// multiplier `bid_multipliers[a / n_creatives]` and shows creative
/// `a % n_creatives`, over a day of `periods` periods. Paced bidders read it.
#[derive(Debug, Clone, PartialEq)]
pub struct BidGrid {
    /// The bid multipliers λ on the grid, in action order (how λ scales a
    /// bid is the family's to say).
    pub bid_multipliers: Vec<f64>,
    /// Creatives to choose from.
    pub n_creatives: usize,
    /// Periods in a day.
    pub periods: u32,
}

/// Each action's feature vector, where actions are items of a catalog
/// (row `a` describes action `a`): what policies that embed items may start
/// their embeddings from. The features are what the shop knows of its
/// items (content), not the shoppers' hidden tastes.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFeatures {
    /// Values per item.
    pub dim: usize,
    /// `actions × dim`, row-major.
    pub values: Vec<f32>,
}

/// A validated scenario of one family: what the harness and policies ask of it.
pub trait Family: Send + Sync {
    /// The family's name: the table it is configured by (`pricing`).
    fn name(&self) -> &'static str;

    /// A fresh env of the scenario.
    fn make_env(&self) -> EnvBox;

    /// What an episode costs in decisions, work and memory, for the
    /// harness's estimate of a whole run before it starts
    /// ([`crate::cost`]).
    fn episode_cost(&self) -> EpisodeCost;

    /// What an episode's return measures, for reports
    /// (`return per episode (season profit)`).
    fn return_label(&self) -> &'static str;

    /// Summary ratios of summed metrics, in report order.
    fn ratios(&self) -> Vec<Ratio> {
        Vec::new()
    }

    /// The optimal expected return of an episode, where it is known exactly.
    fn optimal_value(&self) -> Option<f64> {
        None
    }

    /// The metric, by index, that the episode's reference bounds, where the
    /// reference bounds not the realised return but its expectation given
    /// what the policy did (the ads hindsight optimum values impressions at
    /// their expected reward, so it bounds the expected reward of the
    /// impressions won, day by day, but not the conversions that happened).
    /// Reports then score "% of" the reference, regret and gap on this
    /// metric's per-episode sum instead of the return.
    fn score_metric(&self) -> Option<usize> {
        None
    }

    /// The rule of the policy that earns [`optimal_value`](Family::optimal_value),
    /// where it can be played from observations: greedy evaluations play it
    /// on their own episodes, so each policy is also scored against the
    /// optimum on identical episodes (common random numbers).
    fn oracle(&self) -> Option<ActionRule> {
        None
    }

    /// The strongest simple policy, where the family knows it exactly:
    /// reports give each policy's share of the gap between it and the
    /// optimum, `(return − baseline) / (optimum − baseline)`.
    fn baseline(&self) -> Option<Baseline> {
        None
    }

    /// Simple policies to choose the baseline from, where the family cannot
    /// value them exactly (no [`baseline`](Family::baseline)): the harness
    /// plays each on the same calibration episodes, seeded from the
    /// scenario's first seed and disjoint from training and evaluation, and
    /// takes the one with the best mean score as the baseline, its value
    /// that mean (the best fixed bid multiplier over all days).
    /// `seed` descends from the scenario's first seed, for candidates that
    /// are themselves found by sampling.
    fn baseline_candidates(&self, seed: u64) -> Vec<(String, ActionRule)> {
        let _ = seed;
        Vec::new()
    }

    /// Calibration episodes each baseline candidate is played on (200 by
    /// default; a batch family whose episode holds many sessions needs fewer).
    fn calibration_episodes(&self) -> u32 {
        200
    }

    /// The greedy action (as a number: a price, a multiplier) of a policy
    /// over a grid of states, built through the env's own observation
    /// constructor, for families whose state fits a chart.
    fn greedy_table(&self, greedy: &dyn Fn(&Observation) -> usize) -> Option<GreedyTable> {
        let _ = greedy;
        None
    }

    /// The exact expected return per episode of the deterministic policy
    /// that plays `greedy` on every observation, for families that can
    /// evaluate a policy exactly (by dynamic programming over the states
    /// its observations can take). At most
    /// [`optimal_value`](Family::optimal_value), up to rounding.
    fn exact_value(&self, greedy: &dyn Fn(&Observation) -> usize) -> Option<f64> {
        let _ = greedy;
        None
    }

    /// How sessions are counted, for batched families.
    fn sessions(&self) -> Option<Sessions> {
        None
    }

    /// Many sessions step together, so one learner sees their transitions
    /// interleaved (methods that need whole episodes one at a time, such as
    /// Monte Carlo control, do not apply).
    fn interleaved_sessions(&self) -> bool {
        false
    }

    /// Each reward is a shopper's response to what was shown (a click or
    /// a purchase, a success when positive), so Beta–Bernoulli models apply.
    fn binary_feedback(&self) -> bool {
        false
    }

    /// The env can tell a myopic oracle the true expected immediate reward
    /// of every action ([`BatchEnv::expected_rewards`]).
    fn expected_rewards(&self) -> bool {
        false
    }

    /// The family's setup of type `type_id`, if it has one: read it with
    /// [`get`](Family::get). Setups carry what a family-specific policy
    /// needs (a [`PriceGrid`], a [`BidGrid`], the solved pricing MDP, the
    /// catalog's [`ItemFeatures`]).
    fn setup(&self, type_id: TypeId) -> Option<&dyn Any> {
        let _ = type_id;
        None
    }
}

impl dyn Family + '_ {
    /// The family's setup of type `T`, if it has one.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.setup(TypeId::of::<T>())?.downcast_ref()
    }
}

/// A kind of scenario family: its table name, config type and validation.
/// Register it with the harness's registry to make `[name]` tables valid.
pub trait FamilyKind: Send + Sync + 'static {
    /// The family's config: the `[name]` table. Refuse unknown keys
    /// (`#[serde(deny_unknown_fields)]`) so typos are caught.
    type Config: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// The table's name in scenario files, also the family's name.
    fn name(&self) -> &'static str;

    /// Validates `config` and prepares the family. `base` is the folder of
    /// the scenario file, against which relative paths are read; the config
    /// may be rewritten (a path made absolute) so that the resolved scenario
    /// saved in the run folder reads the same from anywhere. Errors name the
    /// key relative to the table (`segments[0].share`).
    fn prepare(
        &self,
        config: &mut Self::Config,
        base: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError>;

    /// Calls `f` on every input file the config names (a catalog CSV),
    /// each with its key relative to the table (`catalog.path`), and puts
    /// back the path `f` returns: how the harness copies a run's inputs
    /// into its run folder and points the resolved scenario at the copies.
    /// Nothing by default.
    fn map_paths(&self, config: &mut Self::Config, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        let _ = (config, f);
    }
}
