//! A scenario's `[offline]` table: the logged data its offline learners
//! (`bc`, `offline_dqn`, `fqi`, `cql`, `bcq`, `seed_article`) train on.
//!
//! Either a log file, in the log format (CSV or Parquet):
//!
//! ```toml
//! [offline]
//! log = "logs/medium.parquet"           # relative to the scenario file
//! sha256 = "…"                          # optional: refused if the file differs
//! ```
//!
//! or one dataset of the suite ([`crate::datasets`]), built from the
//! scenario's own policies when the scenario is loaded — deterministically,
//! from `seed`, so the file alone reproduces it:
//!
//! ```toml
//! [offline]
//! dataset = "medium"        # random, medium, medium-replay, expert or mixed
//! medium = "q_learning"     # a policy of the file (medium, medium-replay, mixed)
//! medium_episodes = 300
//! expert = "oracle"         # a policy of the file (expert, mixed)
//! expert_episodes = 0       # its training before it is frozen (0: as built)
//! epsilon = 0.1             # the noise of medium and expert
//! episodes = 1000           # episodes of random, medium and expert
//! seed = 0                  # default: the first run seed
//! ```
//!
//! The resolved scenario of a run folder records the log's absolute path
//! and SHA-256, or the dataset's every setting, so `reproduce` trains on the
//! same bytes or refuses. The data is read (or built) and checked before any
//! run starts: a log of another env (other features), actions outside the
//! env's, a log of slates (offline learners take one action a decision), a
//! missing column or a bad value is refused with the file, key and rule.

use crate::{
    datasets::{self, SuiteSpec},
    prepared::Prepared,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shoplab_env::config::ConfigError;
use shoplab_logs::{Log, ReadOptions};
use shoplab_policy::offline::kinds::OfflineData;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

pub mod report;

/// The datasets of the suite, by name.
pub const DATASETS: [&str; 5] = ["random", "medium", "medium-replay", "expert", "mixed"];

/// The `[offline]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineSpec {
    /// A log file (CSV or Parquet), relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// The log's SHA-256, hex; filled in when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A dataset of the suite, built from the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The policy behind `medium` and `medium-replay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// Its training episodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium_episodes: Option<u32>,
    /// The policy behind `expert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<String>,
    /// Its training episodes before it is frozen (default 0: as built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_episodes: Option<u32>,
    /// The noise of `medium` and `expert`, in [0, 1] (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// Episodes of `random`, `medium` and `expert` (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episodes: Option<u32>,
    /// The suite's seed (default: the first run seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The off-policy estimators each trained learner is judged by from
    /// the log, next to its online value: `pdis`, `wpdis` and `fqe`
    /// (default `["wpdis", "fqe"]`; `[]` for none).
    #[serde(default = "default_ope")]
    pub ope: Vec<String>,
}

fn default_ope() -> Vec<String> {
    vec!["wpdis".into(), "fqe".into()]
}

/// The off-policy estimators a run folder can report.
pub const ESTIMATORS: [&str; 3] = ["pdis", "wpdis", "fqe"];

/// Most rows offline data may hold.
pub const MAX_ROWS: f64 = 2e7;

/// The data, read or built and checked.
#[derive(Debug, Clone)]
pub struct Offline {
    /// What offline learners are built with.
    pub data: OfflineData,
    /// The log itself.
    pub log: Arc<Log>,
    /// What played it, where known (a dataset's behaviour).
    pub behaviour: String,
    /// Mean session return of the data and its standard error: the
    /// behaviour's value for on-policy datasets.
    pub value: (f64, f64),
    /// The estimators of the table's `ope` list.
    pub ope: Vec<String>,
}

fn invalid(key: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError {
        key: format!("offline.{key}"),
        rule: rule.into(),
    }
}

impl OfflineSpec {
    /// Checks the table's own rules (one source; each key with its source;
    /// the dataset's settings in range) and fills in the dataset's
    /// defaults, `seed` from `first_seed`.
    pub fn resolve(&mut self, first_seed: u64) -> Result<(), ConfigError> {
        for (i, name) in self.ope.iter().enumerate() {
            if !ESTIMATORS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("ope[{i}]"),
                    format!("`{name}` is not an estimator of offline runs: pdis, wpdis or fqe"),
                ));
            }
            if self.ope[..i].contains(name) {
                return Err(invalid(
                    &format!("ope[{i}]"),
                    format!("`{name}` is listed twice"),
                ));
            }
        }
        let dataset_keys = [
            ("medium", self.medium.is_some()),
            ("medium_episodes", self.medium_episodes.is_some()),
            ("expert", self.expert.is_some()),
            ("expert_episodes", self.expert_episodes.is_some()),
            ("epsilon", self.epsilon.is_some()),
            ("episodes", self.episodes.is_some()),
            ("seed", self.seed.is_some()),
        ];
        match (&self.log, &self.dataset) {
            (Some(_), Some(_)) => Err(invalid(
                "dataset",
                "give `log` or `dataset`, not both".to_string(),
            )),
            (None, None) => Err(ConfigError {
                key: "offline".into(),
                rule: "must name its data: `log = \"…\"` (a log file) or `dataset = \"…\"` \
                       (random, medium, medium-replay, expert or mixed)"
                    .into(),
            }),
            (Some(_), None) => match dataset_keys.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(invalid(
                    key,
                    "is a setting of `dataset`; a `log` is read as it is",
                )),
                None => Ok(()),
            },
            (None, Some(name)) => {
                if self.sha256.is_some() {
                    return Err(invalid(
                        "sha256",
                        "pins a `log` file; a dataset is built from its settings",
                    ));
                }
                if !DATASETS.contains(&name.as_str()) {
                    return Err(invalid(
                        "dataset",
                        format!(
                            "`{name}` is not a dataset of the suite: random, medium, \
                             medium-replay, expert or mixed"
                        ),
                    ));
                }
                let needs_medium = matches!(name.as_str(), "medium" | "medium-replay" | "mixed");
                let needs_expert = matches!(name.as_str(), "expert" | "mixed");
                if needs_medium && self.medium.is_none() {
                    return Err(invalid(
                        "medium",
                        format!("dataset `{name}` needs the learning policy that plays it"),
                    ));
                }
                if needs_medium && self.medium_episodes.is_none() {
                    return Err(invalid(
                        "medium_episodes",
                        format!("dataset `{name}` needs the medium policy's training episodes"),
                    ));
                }
                if needs_expert && self.expert.is_none() {
                    return Err(invalid(
                        "expert",
                        format!("dataset `{name}` needs the strong policy that plays it"),
                    ));
                }
                if self.medium_episodes == Some(0) || self.episodes == Some(0) {
                    let key = if self.episodes == Some(0) {
                        "episodes"
                    } else {
                        "medium_episodes"
                    };
                    return Err(invalid(key, "must be at least 1 (found 0)"));
                }
                let epsilon = *self.epsilon.get_or_insert(0.1);
                if !(0.0..=1.0).contains(&epsilon) {
                    return Err(invalid(
                        "epsilon",
                        format!("must be in [0, 1] (found {epsilon})"),
                    ));
                }
                self.episodes.get_or_insert(1000);
                if needs_expert {
                    self.expert_episodes.get_or_insert(0);
                }
                self.seed.get_or_insert(first_seed);
                Ok(())
            }
        }
    }

    /// Reads the log, or builds the dataset, and checks it against the
    /// scenario's env; `base` is the scenario file's folder. Makes the log's
    /// path absolute and records its SHA-256.
    pub fn load(&mut self, prepared: &Prepared, base: &Path) -> Result<Offline, ConfigError> {
        let env = prepared.make_env();
        let n_actions = env.action_space().n();
        let features: Vec<String> = env
            .observation_space()
            .features
            .iter()
            .map(|f| f.name.to_string())
            .collect();
        let (log, behaviour, source, value) = match (&self.log, &self.dataset) {
            (Some(path), _) => {
                let path = base.join(path);
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if bytes as f64 > MAX_ROWS * 64.0 {
                    return Err(invalid(
                        "log",
                        format!(
                            "{}: {bytes} bytes is more than offline data may hold",
                            path.display()
                        ),
                    ));
                }
                let sha = sha256_of(&path).map_err(|e| {
                    invalid("log", format!("{}: could not read it: {e}", path.display()))
                })?;
                if let Some(expected) = &self.sha256
                    && !expected.eq_ignore_ascii_case(&sha)
                {
                    return Err(invalid(
                        "sha256",
                        format!(
                            "{} has SHA-256 {sha}, not the {expected} the scenario pins",
                            path.display()
                        ),
                    ));
                }
                let options = ReadOptions {
                    n_actions: Some(n_actions),
                };
                let log = shoplab_logs::parquet::read_log(&path, &options)
                    .map_err(|e| invalid("log", e.to_string()))?;
                let value = datasets::session_value(&log);
                self.sha256 = Some(sha);
                let absolute = std::fs::canonicalize(&path).unwrap_or(path.clone());
                self.log = Some(absolute);
                let source = format!("log {}", path.display());
                (log, "the log's policy".to_string(), source, value)
            }
            (None, Some(name)) => {
                let find = |key: &str, policy: &Option<String>| -> Result<usize, ConfigError> {
                    let policy = policy.as_deref().unwrap_or_default();
                    prepared
                        .names
                        .iter()
                        .position(|n| n == policy)
                        .ok_or_else(|| {
                            invalid(
                                key,
                                format!(
                                    "`{policy}` is not a policy of this scenario (its policies: {})",
                                    prepared.names.join(", ")
                                ),
                            )
                        })
                };
                let spec = SuiteSpec {
                    medium: match &self.medium {
                        Some(_) => find("medium", &self.medium)?,
                        None => 0,
                    },
                    medium_episodes: self.medium_episodes.unwrap_or(1),
                    expert: match &self.expert {
                        Some(_) => find("expert", &self.expert)?,
                        None => 0,
                    },
                    expert_episodes: self.expert_episodes.unwrap_or(0),
                    epsilon: self.epsilon.unwrap_or(0.1),
                    episodes: self.episodes.unwrap_or(1000),
                    seed: self.seed.unwrap_or(0),
                };
                let per_episode = prepared.family().episode_cost().decisions;
                let rows = per_episode
                    * (2.0 * f64::from(spec.episodes)
                        + f64::from(spec.medium_episodes)
                        + f64::from(spec.expert_episodes));
                if rows > MAX_ROWS {
                    return Err(invalid(
                        "episodes",
                        format!(
                            "the dataset would hold about {rows:.1e} rows, more than {MAX_ROWS:.0e}"
                        ),
                    ));
                }
                let built = datasets::build_one(prepared, &spec, name)
                    .map_err(|e| invalid("dataset", e.to_string()))?;
                let source = format!("dataset `{name}`");
                (built.log, built.behaviour, source, built.value)
            }
            (None, None) => unreachable!("resolve requires a source"),
        };
        if log.features != features {
            return Err(invalid(
                if self.log.is_some() { "log" } else { "dataset" },
                format!(
                    "the {source}'s features [{}] are not the {} env's [{}]: a log of another \
                     family or scenario",
                    log.features.join(", "),
                    prepared.family_name(),
                    features.join(", ")
                ),
            ));
        }
        if let Some(p) = log.position.iter().find(|&&p| p > 0) {
            return Err(invalid(
                "log",
                format!(
                    "the {source} shows slates (position {p}); offline learners take one \
                     action a decision"
                ),
            ));
        }
        if log.is_empty() {
            return Err(invalid("log", format!("the {source} has no rows")));
        }
        Ok(Offline {
            data: OfflineData {
                transitions: Arc::new(log.transitions()),
                source,
            },
            log: Arc::new(log),
            behaviour,
            value,
            ope: self.ope.clone(),
        })
    }
}

/// A file's SHA-256, hex.
fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
