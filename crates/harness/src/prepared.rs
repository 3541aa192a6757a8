//! A validated scenario, ready to run: its family prepared, its policies checked.
//!
//! [`Prepared::new`] checks every rule of the scenario file, prepares the
//! family (validating its table and solving its reference where it has one),
//! builds one env to read its spaces, and builds every policy once to catch
//! errors in their settings, all before any run starts. What is specific to
//! a family stays behind the [`Family`] trait: this module only asks.

use crate::scenario::{Scenario, ScenarioError, line_of_key};
use shoplab_env::{
    ActionSpace, EnvBox, Family, ObservationSpace,
    config::ConfigError,
    family::{Baseline, GreedyTable, Ratio, Sessions},
};
use shoplab_policy::{Policy, PolicyError, registry::BuildContext};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// A scenario that passed validation, with its family prepared.
pub struct Prepared {
    /// The scenario, defaults filled in.
    pub scenario: Scenario,
    /// The file it came from.
    pub source: PathBuf,
    /// Unique report names of the policies.
    pub names: Vec<String>,
    family: Arc<dyn Family>,
    /// The env's spaces and metric names, read once from a first env so
    /// building policies and reports needs no further world.
    spaces: (ObservationSpace, ActionSpace, Vec<&'static str>),
    /// The strongest simple policy, where the family has one.
    baseline: Option<Baseline>,
}

impl Prepared {
    /// Validates `scenario` (read from `source`) and prepares its family.
    pub fn new(mut scenario: Scenario, source: &Path) -> Result<Self, ScenarioError> {
        let lines = scenario.key_lines.clone();
        let invalid = |e: ConfigError| ScenarioError::invalid(source, e, &lines);
        scenario.validate_common().map_err(invalid)?;
        let base = source.parent().unwrap_or(Path::new("."));
        let family_name = scenario.family.name();
        let family = scenario
            .family
            .prepare(base)
            .map_err(|e| invalid(e.within(family_name)))?;
        let env = family.make_env();
        let spaces = (
            env.observation_space().clone(),
            env.action_space().clone(),
            env.metric_names().to_vec(),
        );
        let mut prepared = Self {
            names: scenario.policy_names(),
            source: source.to_path_buf(),
            family,
            scenario,
            spaces,
            baseline: None,
        };
        for index in 0..prepared.scenario.policies.len() {
            prepared.check_policy(index).map_err(|(key, rule)| {
                // The key's line, or the entry's kind for the entry as a whole.
                let at = if key.is_empty() {
                    ".kind"
                } else {
                    key.as_str()
                };
                let line = line_of_key(&lines, &format!("policies[{index}]{at}"));
                let key = format!("policies[{index}]{key}");
                ScenarioError::Invalid {
                    file: source.to_path_buf(),
                    key,
                    line,
                    rule,
                }
            })?;
        }
        prepared.baseline =
            crate::runner::choose_baseline(&prepared).map_err(|rule| ScenarioError::Invalid {
                file: source.to_path_buf(),
                key: family_name.to_string(),
                line: line_of_key(&lines, family_name),
                rule: format!("could not play the baseline's candidates: {rule}"),
            })?;
        Ok(prepared)
    }

    /// Checks that policy `index` applies to the family and builds; the
    /// error's key suffix (`.epsilon`) and rule.
    fn check_policy(&self, index: usize) -> Result<(), (String, String)> {
        let spec = &self.scenario.policies[index];
        spec.applies(self.family.as_ref()).map_err(|why| {
            (
                String::new(),
                format!(
                    "kind `{}` does not apply to the {} family: {why}",
                    spec.kind(),
                    self.family.name()
                ),
            )
        })?;
        self.make_policy(index, 0).map(drop).map_err(|e| match e {
            PolicyError::Invalid { key, rule } if key.is_empty() => (String::new(), rule),
            PolicyError::Invalid { key, rule } => (format!(".{key}"), rule),
            other => (String::new(), other.to_string()),
        })
    }

    /// The strongest simple policy and its expected return per episode:
    /// the family's exact baseline, or the best of its candidates on
    /// calibration episodes ([`crate::runner::choose_baseline`]).
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// The scenario's family.
    pub fn family(&self) -> &dyn Family {
        self.family.as_ref()
    }

    /// Names of the env's per-step metrics.
    pub fn metric_names(&self) -> &[&'static str] {
        &self.spaces.2
    }

    /// The scenario family's name.
    pub fn family_name(&self) -> &'static str {
        self.family.name()
    }

    /// How sessions are counted, for batched families.
    pub fn sessions(&self) -> Option<Sessions> {
        self.family.sessions()
    }

    /// What an episode's return measures, for reports.
    pub fn return_label(&self) -> &'static str {
        self.family.return_label()
    }

    /// Summary ratios of summed metrics.
    pub fn ratios(&self) -> Vec<Ratio> {
        self.family.ratios()
    }

    /// A fresh env of the scenario.
    pub fn make_env(&self) -> EnvBox {
        self.family.make_env()
    }

    /// Builds policy `index` of the list, seeded with `seed`.
    pub fn make_policy(&self, index: usize, seed: u64) -> Result<Box<dyn Policy>, PolicyError> {
        let (observation_space, action_space, _) = &self.spaces;
        self.scenario.policies[index].build(&BuildContext {
            observation_space,
            action_space,
            family: self.family.as_ref(),
            seed,
        })
    }

    /// The optimal expected return of an episode, where the scenario has one.
    pub fn optimal_value(&self) -> Option<f64> {
        self.family.optimal_value()
    }

    /// The greedy action of `policy` over a grid of states, as action
    /// values, for scenarios whose state fits a chart.
    pub fn greedy_table(&self, policy: &dyn Policy) -> Option<GreedyTable> {
        self.family.greedy_table(&|obs| policy.greedy(obs))
    }
}
