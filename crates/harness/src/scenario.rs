//! Scenario files: parsing, defaults and validation.
//!
//! A scenario file is TOML with a `[run]` table (seeds, episodes, statistics),
//! one scenario-family table (named after its family, as registered), and
//! a `[[policies]]` list, each entry chosen by its `kind`. Families and policy
//! kinds are looked up in a [`Registry`]; every table refuses unknown keys.
//! [`read`] parses a file and [`crate::load`] validates it as well; both
//! report the first problem as a [`ScenarioError`] naming the file, the key
//! path and its line, and the rule, before any work starts.
//!
//! Each family table and each policy entry is read on its own, from the
//! document's spanned tree, so an error inside one names its own key and
//! line (`policies[3].q.epsilon.start (line 41)`).

use crate::registry::{FamilySpec, PolicySpec, Registry, TableError};
use text::{joined, line_of, listed, location, plain_rule, record_lines};

mod text;
use serde::{Deserialize, Serialize};
use shoplab_env::config::ConfigError;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use thiserror::Error;
use toml::{
    Spanned,
    de::{DeTable, DeValue, ValueDeserializer},
};

/// Largest number of episode rows a run may write (policies × seeds × episodes).
pub const MAX_EPISODE_ROWS: u64 = 5_000_000;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name of the scenario and of its folder under `results/`; defaults to the file's stem.
    pub name: String,
    /// What the scenario is about, for people.
    pub description: String,
    /// Seeds, episodes and statistics.
    pub run: RunConfig,
    /// The scenario family's table.
    pub family: FamilySpec,
    /// The policies to train and compare.
    pub policies: Vec<PolicySpec>,
    /// The logged data offline learners train on ([`crate::offline`]).
    pub offline: Option<crate::offline::OfflineSpec>,
    /// The `[sweep]` table: the configurations to run ([`crate::sweep`]);
    /// none in a configuration itself.
    pub sweep: Option<crate::sweep::SweepSpec>,
    /// The line of every key in the file the scenario was read from
    /// (`run.seeds` → 12, `policies[2].epsilon` → 31), so errors found after parsing
    /// still point at a line; empty for scenarios built in code.
    pub key_lines: BTreeMap<String, usize>,
}

/// The keys of a scenario file other than the family table and the policies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    run: RunConfig,
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
    /// Draw each seed's learning curve under the mean in the curves charts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seed_traces: bool,
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

/// Why a scenario file was refused.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read (missing, not a regular file, too large).
    #[error("{file}: the scenario file {reason}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why (kept out of the error chain, as the message already says it).
        reason: shoplab_env::input::InputError,
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
    #[error("{file}: key `{key}`{}: {rule}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted path of the key.
        key: String,
        /// The key's line, where known.
        line: Option<usize>,
        /// The rule broken, with the value found.
        rule: String,
    },
    /// A configuration of the scenario's sweep was refused.
    #[error("{refusal} (in sweep configuration {configuration})")]
    Sweep {
        /// The configuration's id and values.
        configuration: String,
        /// Why it was refused (its message is this error's; it is not
        /// repeated as a cause).
        refusal: Box<ScenarioError>,
    },
}

impl ScenarioError {
    /// An `Invalid` error for `file` from a config error, at the line of its
    /// key (or of the nearest enclosing key) in `key_lines`.
    pub fn invalid(file: &Path, error: ConfigError, key_lines: &BTreeMap<String, usize>) -> Self {
        Self::Invalid {
            file: file.to_path_buf(),
            line: line_of_key(key_lines, &error.key),
            key: error.key,
            rule: error.rule,
        }
    }
}

/// The line of `key`, or of the nearest enclosing key that has one.
pub fn line_of_key(key_lines: &BTreeMap<String, usize>, key: &str) -> Option<usize> {
    let mut key = key;
    loop {
        if let Some(&line) = key_lines.get(key) {
            return Some(line);
        }
        let cut = key.rfind(['.', '['])?;
        key = &key[..cut];
    }
}

/// Parses scenario text against `registry`; `file` names it in errors, and
/// its stem is the default name.
pub fn parse(text: &str, file: &Path, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let error =
        |key: &str, span: Option<std::ops::Range<usize>>, message: String| ScenarioError::Parse {
            file: file.to_path_buf(),
            location: location(text, key, span),
            message,
        };
    // A refusal inside `table` (read by `reparse`), its vague type names
    // replaced by what is accepted ([`crate::accepted`]).
    let table_error =
        |prefix: &str,
         e: TableError,
         table: &Spanned<DeValue<'_>>,
         reparse: &dyn Fn(Spanned<DeValue<'_>>) -> Result<(), TableError>| {
            let key = joined(prefix, &e.path().to_string());
            let message = crate::accepted::explain(e.inner().message(), table, e.path(), reparse);
            error(&key, e.inner().span(), plain_rule(&message))
        };
    let root = DeTable::parse(text).map_err(|e| error("", e.span(), plain_rule(e.message())))?;
    let root_span = root.span();
    let mut key_lines = BTreeMap::new();
    for (key, value) in root.get_ref() {
        let name: &str = key.get_ref();
        key_lines.insert(name.to_string(), line_of(text, key.span().start));
        record_lines(text, name.to_string(), value, &mut key_lines);
    }
    let mut header = DeTable::new();
    let mut family: Option<(String, Spanned<DeValue<'_>>)> = None;
    let mut policies = None;
    let mut offline = None;
    let mut sweep = None;
    for (key, value) in root.into_inner() {
        let name: &str = key.get_ref();
        match name {
            "name" | "description" | "run" => {
                header.insert(key, value);
            }
            "policies" => policies = Some(value),
            "offline" => offline = Some(value),
            "sweep" => sweep = Some(value),
            _ if registry.has_family(name) => {
                if let Some((first, _)) = &family {
                    return Err(error(
                        name,
                        Some(key.span()),
                        format!(
                            "a scenario has one family table, not several ([{first}] and [{name}])"
                        ),
                    ));
                }
                family = Some((name.to_string(), value));
            }
            _ => {
                return Err(error(
                    name,
                    Some(key.span()),
                    format!(
                        "unknown key `{name}`: expected `name`, `description`, `run`, `policies`, \
                         `offline`, `sweep` or a family table: {}",
                        listed(&registry.family_names())
                    ),
                ));
            }
        }
    }
    let header = Spanned::new(root_span.clone(), DeValue::Table(header));
    let read_header = |v: Spanned<DeValue<'_>>| {
        serde_path_to_error::deserialize::<_, Header>(ValueDeserializer::from(v))
    };
    let header: Header = read_header(header.clone())
        .map_err(|e| table_error("", e, &header, &|v| read_header(v).map(drop)))?;
    let (family_name, table) = family.ok_or_else(|| {
        error(
            "",
            None,
            format!(
                "the scenario needs a family table: {}",
                listed(&registry.family_names())
            ),
        )
    })?;
    let read_family = |v: Spanned<DeValue<'_>>| {
        registry
            .parse_family(&family_name, ValueDeserializer::from(v))
            .expect("the family is registered")
    };
    let family = read_family(table.clone())
        .map_err(|e| table_error(&family_name, e, &table, &|v| read_family(v).map(drop)))?;
    let policies = policies.ok_or_else(|| error("", None, "missing field `policies`".into()))?;
    let span = policies.span();
    let DeValue::Array(entries) = policies.into_inner() else {
        return Err(error(
            "policies",
            Some(span),
            "must be a list of policies ([[policies]] tables, each with a kind)".into(),
        ));
    };
    let kinds = registry.policy_kinds();
    let mut specs = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("policies[{i}]");
        let span = entry.span();
        let DeValue::Table(table) = entry.into_inner() else {
            return Err(error(&at, Some(span), "must be a table with a kind".into()));
        };
        let mut kind = None;
        let mut label = None;
        let mut settings = DeTable::new();
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "kind" => kind = Some(value),
                "name" => {
                    let at_name = format!("{at}.name");
                    let Some(name) = value.get_ref().as_str() else {
                        return Err(error(
                            &at_name,
                            Some(value.span()),
                            "must be a string (the policy's report name)".into(),
                        ));
                    };
                    if name.is_empty()
                        || name.len() > 64
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    {
                        return Err(error(
                            &at_name,
                            Some(value.span()),
                            format!(
                                "must be 1 to 64 letters, digits, '_', '-' or '.' (found {name:?})"
                            ),
                        ));
                    }
                    label = Some(name.to_string());
                }
                _ => {
                    settings.insert(key, value);
                }
            }
        }
        let kind =
            kind.ok_or_else(|| error(&at, Some(span.clone()), "missing field `kind`".into()))?;
        let unknown = |found: String| {
            error(
                &format!("{at}.kind"),
                Some(kind.span()),
                format!(
                    "unknown variant {found}, expected one of {}",
                    listed(&kinds)
                ),
            )
        };
        let Some(name) = kind.get_ref().as_str() else {
            return Err(unknown(format!("({})", kind.get_ref().type_str())));
        };
        let settings = Spanned::new(span, DeValue::Table(settings));
        let read_policy = |v: Spanned<DeValue<'_>>| {
            registry
                .parse_policy(name, ValueDeserializer::from(v))
                .expect("the kind is registered")
        };
        if !kinds.contains(&name) {
            return Err(unknown(format!("`{name}`")));
        }
        let spec = read_policy(settings.clone()).map_err(|e| {
            // A kind that does not apply is refused as such, not for the
            // settings it lacks (a price to post where nothing is priced).
            let base = file.parent().unwrap_or(Path::new("."));
            match registry.kind_does_not_apply(name, &family, base) {
                Some(why) => error(
                    &at,
                    Some(kind.span()),
                    format!(
                        "kind `{name}` does not apply to the {} family: {why}",
                        family.name()
                    ),
                ),
                None => table_error(&at, e, &settings, &|v| read_policy(v).map(drop)),
            }
        })?;
        let mut spec = spec;
        spec.set_label(label);
        specs.push(spec);
    }
    let read_offline = |v: Spanned<DeValue<'_>>| {
        serde_path_to_error::deserialize::<_, crate::offline::OfflineSpec>(ValueDeserializer::from(
            v,
        ))
    };
    let offline = offline
        .map(|table| {
            read_offline(table.clone())
                .map_err(|e| table_error("offline", e, &table, &|v| read_offline(v).map(drop)))
        })
        .transpose()?;
    let read_sweep = |v: Spanned<DeValue<'_>>| {
        serde_path_to_error::deserialize::<_, crate::sweep::SweepSpec>(ValueDeserializer::from(v))
    };
    let sweep = sweep
        .map(|table| {
            read_sweep(table.clone())
                .map_err(|e| table_error("sweep", e, &table, &|v| read_sweep(v).map(drop)))
        })
        .transpose()?;
    let mut scenario = Scenario {
        name: header.name,
        description: header.description,
        run: header.run,
        family,
        policies: specs,
        offline,
        sweep,
        key_lines,
    };
    if scenario.name.is_empty() {
        scenario.name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    Ok(scenario)
}

/// Reads and parses a scenario file against `registry` (validation is
/// [`crate::prepared::Prepared::new`]'s job).
pub fn read(file: &Path, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let text = shoplab_env::input::read_text_file(file, shoplab_env::input::MAX_SCENARIO_BYTES)
        .map_err(|reason| ScenarioError::Read {
            file: file.to_path_buf(),
            reason,
        })?;
    parse(&text, file, registry)
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
        shoplab_env::config::in_range("run.episodes", run.episodes.into(), 1, 10_000_000)?;
        if !(run.confidence > 0.0 && run.confidence < 1.0) {
            return Err(ConfigError::new(
                "run.confidence",
                format!("must be in (0, 1) (found {})", run.confidence),
            ));
        }
        shoplab_env::config::in_range(
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
        shoplab_env::config::in_range("run.curve_points", run.curve_points.into(), 1, 10_000)?;
        shoplab_env::config::in_range("run.eval_episodes", run.eval_episodes.into(), 0, 100_000)?;
        for (i, spec) in self.policies.iter().enumerate() {
            let Some(label) = spec.label() else { continue };
            if let Some(j) = self
                .policies
                .iter()
                .enumerate()
                .position(|(j, other)| j != i && other.base_name() == label)
            {
                // Reported at the later entry that gives the name.
                let (at, first) = if j > i && self.policies[j].label().is_some() {
                    (j, i)
                } else {
                    (i, j)
                };
                return Err(ConfigError::new(
                    format!("policies[{at}].name"),
                    format!(
                        "`{label}` is already the name of policies[{first}]: names must differ"
                    ),
                ));
            }
        }
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

    /// Calls `f` on every input file the scenario names — the family's
    /// (a catalog), each policy's (an action table) and the `[offline]`
    /// log — with its full key (`<family>.catalog.path`,
    /// `policies[3].file`, `offline.log`), and puts back the path `f`
    /// returns.
    pub fn map_input_paths(&mut self, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        let family = self.family.name();
        self.family
            .map_paths(&mut |key, path| f(&format!("{family}.{key}"), path));
        for (i, spec) in self.policies.iter_mut().enumerate() {
            spec.map_paths(&mut |key, path| f(&format!("policies[{i}].{key}"), path));
        }
        if let Some(offline) = &mut self.offline
            && let Some(log) = &mut offline.log
        {
            *log = f("offline.log", log);
        }
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
        let mut doc = toml::Table::new();
        doc.insert("name".into(), self.name.clone().into());
        doc.insert("description".into(), self.description.clone().into());
        doc.insert(
            "run".into(),
            toml::Value::try_from(&self.run).expect("the run table serialises"),
        );
        doc.insert(self.family.name().into(), self.family.to_toml());
        if let Some(offline) = &self.offline {
            doc.insert(
                "offline".into(),
                toml::Value::try_from(offline).expect("the offline table serialises"),
            );
        }
        if let Some(sweep) = &self.sweep {
            doc.insert(
                "sweep".into(),
                toml::Value::try_from(sweep).expect("the sweep table serialises"),
            );
        }
        doc.insert(
            "policies".into(),
            toml::Value::Array(self.policies.iter().map(PolicySpec::to_toml).collect()),
        );
        toml::to_string_pretty(&doc).expect("a scenario always serialises")
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
