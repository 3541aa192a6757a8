//! Scenario files: parsing, defaults and validation.
//!
//! A scenario file is TOML with a `[run]` table (seeds, episodes, statistics),
//! one scenario-family table (`[pricing]`, `[recommendation]` or `[ads]`), and a
//! `[[policies]]` list. Every struct refuses unknown keys. [`read`] parses a
//! file and [`crate::load`] validates it as well; both report the first problem
//! as a [`ScenarioError`] naming the file, the key and the rule, before any
//! work starts.

use serde::{Deserialize, Serialize};
use shoplab_policy::{
    dqn::DqnConfig,
    epsilon_greedy::EpsilonGreedyConfig,
    linucb::LinUcbConfig,
    paced_bidding::{CreativeBandit, CreativeRule},
    tabular_q::TabularQConfig,
    ucb::Ucb1Config,
};
use shoplab_sim::{
    ads::AdsConfig, config::ConfigError, pricing::PricingConfig,
    recommendation::RecommendationConfig,
};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest number of episode rows a run may write (policies × seeds × episodes).
pub const MAX_EPISODE_ROWS: u64 = 5_000_000;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name of the scenario and of its folder under `results/`; defaults to the file's stem.
    #[serde(default)]
    pub name: String,
    /// What the scenario is about, for people.
    #[serde(default)]
    pub description: String,
    /// Seeds, episodes and statistics.
    pub run: RunConfig,
    /// The dynamic-pricing scenario family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingConfig>,
    /// The recommendation scenario family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<RecommendationConfig>,
    /// The ad bidding scenario family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ads: Option<AdsConfig>,
    /// The policies to train and compare.
    pub policies: Vec<PolicySpec>,
}

/// The `[run]` table: what to run and how to summarise it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// One independent run of every policy per seed; all randomness descends from these.
    pub seeds: Vec<u64>,
    /// Training episodes per run.
    pub episodes: u32,
    /// Confidence level of the reported intervals, in `(0, 1)`.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Bootstrap resamples behind each interval.
    #[serde(default = "default_resamples")]
    pub bootstrap_resamples: u32,
    /// Share of the last episodes that make up a run's final performance, in `(0, 1]`.
    #[serde(default = "default_final_fraction")]
    pub final_fraction: f64,
    /// Points on the learning curves: episodes are averaged in this many windows.
    #[serde(default = "default_curve_points")]
    pub curve_points: u32,
    /// Greedy evaluation episodes at each evaluation point (0: no evaluation).
    #[serde(default)]
    pub eval_episodes: u32,
    /// Training episodes between greedy evaluations (evaluations follow
    /// every multiple of it, and the last episode); 0 evaluates only once,
    /// after training.
    #[serde(default)]
    pub eval_every: u32,
}

fn one_period() -> u32 {
    1
}
fn default_control() -> String {
    "level".into()
}
fn default_kp() -> f64 {
    0.3
}
fn default_ki() -> f64 {
    0.02
}
fn one() -> f64 {
    1.0
}

/// `_creative_2`, `_thompson` or `_ucb1`, for policy names.
fn creative_suffix(rule: &CreativeRule) -> String {
    match rule {
        CreativeRule::Index(c) => format!("_creative_{c}"),
        CreativeRule::Bandit(CreativeBandit::Ucb1) => "_ucb1".into(),
        CreativeRule::Bandit(CreativeBandit::Thompson) => "_thompson".into(),
    }
}

fn default_confidence() -> f64 {
    0.95
}
fn default_resamples() -> u32 {
    2_000
}
fn default_final_fraction() -> f64 {
    0.1
}
fn default_curve_points() -> u32 {
    100
}

/// One policy entry of `[[policies]]`, chosen by its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    /// Always the same price.
    Fixed {
        /// The price, which must be on the price grid.
        price: f64,
    },
    /// Always the same bid multiplier (ads).
    FixedMultiplier {
        /// The multiplier λ, which must be on the grid.
        multiplier: f64,
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// Truthful bidding (λ = 1) until the budget runs out (ads).
    Greedy {
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// Even pacing: throttle to the even spend schedule (ads).
    EvenPacing {
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// A PID pacing controller on `log λ` (ads).
    Pid {
        /// Proportional gain.
        #[serde(default = "default_kp")]
        kp: f64,
        /// Integral gain.
        #[serde(default = "default_ki")]
        ki: f64,
        /// Derivative gain.
        #[serde(default)]
        kd: f64,
        /// The multiplier at the start of the day.
        #[serde(default = "one")]
        start_multiplier: f64,
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// Tabular Q-learning pacing (ads): over the multipliers, or over moves
    /// of the multiplier.
    QPacing {
        /// `"level"` (default): learn λ itself from the state; `"step"`: learn
        /// moves of λ (down, stay, up) from the state and the current λ.
        #[serde(default = "default_control")]
        control: String,
        /// With `"level"` control: periods per decision (λ is held between).
        #[serde(default = "one_period")]
        decide_every: u32,
        /// The Q-learning settings.
        #[serde(default)]
        q: TabularQConfig,
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// Deep Q-learning pacing (ads): as `q_pacing`, with a Q-network over
    /// the observation's features instead of a table.
    DqnPacing {
        /// `"level"` (default) or `"step"`, as for `q_pacing`.
        #[serde(default = "default_control")]
        control: String,
        /// With `"level"` control: periods per decision (λ is held between).
        #[serde(default = "one_period")]
        decide_every: u32,
        /// The deep Q-learning settings.
        #[serde(default)]
        dqn: DqnConfig,
        /// The creative: an index, `"ucb1"` or `"thompson"`.
        #[serde(default)]
        creative: CreativeRule,
    },
    /// Uniformly random actions.
    Random {},
    /// ε-greedy bandit over actions.
    EpsilonGreedy(EpsilonGreedyConfig),
    /// UCB1 bandit over actions.
    Ucb1(Ucb1Config),
    /// Tabular Q-learning over the discretised observation.
    QLearning(TabularQConfig),
    /// Deep Q-learning over the observation's features.
    Dqn(DqnConfig),
    /// The actions with the most positive rewards (clicks) so far.
    MostPopular {},
    /// Beta–Bernoulli Thompson sampling over actions.
    Thompson {},
    /// Disjoint LinUCB on the observation's one-hot context.
    #[serde(rename = "linucb")]
    LinUcb(LinUcbConfig),
    /// The exact optimum of the scenario's model (pricing).
    Oracle {},
    /// Greedy on the true expected immediate reward (recommendation).
    MyopicOracle {},
}

impl PolicySpec {
    /// The policy's base name in reports.
    pub fn base_name(&self) -> String {
        match self {
            Self::Fixed { price } => format!("fixed_price_{price}"),
            Self::FixedMultiplier {
                multiplier,
                creative,
            } => format!("fixed_multiplier_{multiplier}{}", creative_suffix(creative)),
            Self::Greedy { creative } => format!("greedy{}", creative_suffix(creative)),
            Self::EvenPacing { creative } => format!("even_pacing{}", creative_suffix(creative)),
            Self::Pid { creative, .. } => format!("pid{}", creative_suffix(creative)),
            Self::QPacing { creative, .. } => format!("q_pacing{}", creative_suffix(creative)),
            Self::DqnPacing { creative, .. } => format!("dqn_pacing{}", creative_suffix(creative)),
            Self::Random {} => "random".into(),
            Self::EpsilonGreedy(_) => "epsilon_greedy".into(),
            Self::Ucb1(_) => "ucb1".into(),
            Self::QLearning(_) => "q_learning".into(),
            Self::Dqn(_) => "dqn".into(),
            Self::MostPopular {} => "most_popular".into(),
            Self::Thompson {} => "thompson".into(),
            Self::LinUcb(_) => "linucb".into(),
            Self::Oracle {} => "oracle".into(),
            Self::MyopicOracle {} => "myopic_oracle".into(),
        }
    }

    /// True for policies whose greedy action depends on the state, worth a
    /// learned-policy chart.
    pub fn is_state_dependent(&self) -> bool {
        matches!(
            self,
            Self::QLearning(_)
                | Self::Dqn(_)
                | Self::Oracle {}
                | Self::QPacing { .. }
                | Self::DqnPacing { .. }
        )
    }
}

/// Why a scenario file was refused.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read the scenario file: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type or an unknown key.
    #[error("{file}: {location}{message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// `key `a.b` (line N): ` where known.
        location: String,
        /// What the parser said.
        message: String,
    },
    /// A value breaks a rule.
    #[error("{file}: key `{key}`: {rule}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted path of the key.
        key: String,
        /// The rule broken, with the value found.
        rule: String,
    },
}

impl ScenarioError {
    /// An `Invalid` error for `file` from a config error.
    pub fn invalid(file: &Path, error: ConfigError) -> Self {
        Self::Invalid {
            file: file.to_path_buf(),
            key: error.key,
            rule: error.rule,
        }
    }
}

/// Rewrites serde's wording for a negative number in an unsigned field as a rule.
fn plain_rule(message: &str) -> String {
    let negative = message
        .strip_prefix("invalid value: integer `-")
        .and_then(|rest| rest.split_once('`'))
        .filter(|(_, tail)| tail.starts_with(", expected u"));
    match negative {
        Some((digits, _)) => format!("must be a whole number ≥ 0 (found -{digits})"),
        None => message.trim().to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses scenario text; `file` names it in errors, and its stem is the default name.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let parse_error = |location: String, e: &toml::de::Error| ScenarioError::Parse {
        file: file.to_path_buf(),
        location,
        message: plain_rule(e.message()),
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| format!("line {}: ", line_of(text, s.start)))
            .unwrap_or_default();
        parse_error(location, &e)
    })?;
    let mut scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let line = e.inner().span().map(|s| line_of(text, s.start));
        let location = match (path.as_str(), line) {
            ("." | "", Some(l)) => format!("line {l}: "),
            ("." | "", None) => String::new(),
            (p, Some(l)) => format!("key `{p}` (line {l}): "),
            (p, None) => format!("key `{p}`: "),
        };
        parse_error(location, e.inner())
    })?;
    if scenario.name.is_empty() {
        scenario.name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    Ok(scenario)
}

/// Reads and parses a scenario file (validation is [`crate::Prepared::new`]'s job).
pub fn read(file: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(&text, file)
}

impl Scenario {
    /// Checks the rules that do not depend on the scenario family.
    pub fn validate_common(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::new(
                "name",
                format!(
                    "must be non-empty and use only letters, digits, '-' and '_' (found {:?})",
                    self.name
                ),
            ));
        }
        let run = &self.run;
        if run.seeds.is_empty() {
            return Err(ConfigError::new("run.seeds", "must list at least one seed"));
        }
        if run.seeds.len() > 10_000 {
            return Err(ConfigError::new(
                "run.seeds",
                format!("must list at most 10000 seeds (found {})", run.seeds.len()),
            ));
        }
        let mut sorted = run.seeds.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::new(
                "run.seeds",
                format!("seeds must be distinct ({} is listed twice)", w[0]),
            ));
        }
        shoplab_sim::config::in_range("run.episodes", run.episodes.into(), 1, 10_000_000)?;
        if !(run.confidence > 0.0 && run.confidence < 1.0) {
            return Err(ConfigError::new(
                "run.confidence",
                format!("must be in (0, 1) (found {})", run.confidence),
            ));
        }
        shoplab_sim::config::in_range(
            "run.bootstrap_resamples",
            run.bootstrap_resamples.into(),
            100,
            100_000,
        )?;
        if !(run.final_fraction > 0.0 && run.final_fraction <= 1.0) {
            return Err(ConfigError::new(
                "run.final_fraction",
                format!("must be in (0, 1] (found {})", run.final_fraction),
            ));
        }
        shoplab_sim::config::in_range("run.curve_points", run.curve_points.into(), 1, 10_000)?;
        shoplab_sim::config::in_range("run.eval_episodes", run.eval_episodes.into(), 0, 100_000)?;
        if self.policies.is_empty() {
            return Err(ConfigError::new(
                "policies",
                "must list at least one policy ([[policies]] with a kind)",
            ));
        }
        let rows = self.policies.len() as u64 * run.seeds.len() as u64 * u64::from(run.episodes);
        if rows > MAX_EPISODE_ROWS {
            return Err(ConfigError::new(
                "run.episodes",
                format!(
                    "policies × seeds × episodes = {rows} episode rows exceed the limit of {MAX_EPISODE_ROWS}"
                ),
            ));
        }
        Ok(())
    }

    /// Report names of the policies, in order, made unique with `_2`, `_3`, … suffixes.
    pub fn policy_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for spec in &self.policies {
            let base = spec.base_name();
            let mut name = base.clone();
            let mut k = 2;
            while names.contains(&name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            names.push(name);
        }
        names
    }

    /// The scenario as TOML, every default spelled out: the run folder's record
    /// of exactly what ran.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a scenario always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_numbers_read_as_rules() {
        assert_eq!(
            plain_rule("invalid value: integer `-5`, expected u32"),
            "must be a whole number ≥ 0 (found -5)"
        );
        assert_eq!(
            plain_rule("invalid type: string \"x\""),
            "invalid type: string \"x\""
        );
    }
}
