//! A validated scenario, ready to run: its family prepared, its policies checked.
//!
//! [`Prepared::new`] checks every rule of the scenario file, prepares the
//! family (validating its table and solving its reference where it has one),
//! builds one env to read its spaces, and builds every policy once to catch
//! errors in their settings, all before any run starts. What is specific to
//! a family stays behind the [`Family`] trait: this module only asks.

use crate::budget::{Estimate, Limits};
use crate::scenario::{Scenario, ScenarioError, line_of_key};
use shoplab_env::{
    ActionSpace, EnvBox, Family, ObservationSpace,
    config::ConfigError,
    cost::{PolicyCost, format_bytes},
    family::{Baseline, GreedyTable, Ratio, Sessions},
    seed::derive_seed,
};
use shoplab_policy::{Policy, PolicyError, registry::BuildContext};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// Policies estimated to hold more than this are not built during
/// validation (bytes).
const BUILD_CHECK_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

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
    /// The whole scenario's estimated memory and work.
    estimate: Estimate,
    /// The offline learners' data, read or built.
    offline: Option<crate::offline::Offline>,
}

impl Prepared {
    /// Validates `scenario` (read from `source`) and prepares its family,
    /// within the limits of this machine ([`Limits::from_machine`]).
    pub fn new(scenario: Scenario, source: &Path) -> Result<Self, ScenarioError> {
        Self::with_limits(scenario, source, &Limits::from_machine())
    }

    /// Validates `scenario` (read from `source`) and prepares its family;
    /// refuses it when the estimate of its memory or work is over `limits`.
    pub fn with_limits(
        mut scenario: Scenario,
        source: &Path,
        limits: &Limits,
    ) -> Result<Self, ScenarioError> {
        let lines = scenario.key_lines.clone();
        let invalid = |e: ConfigError| ScenarioError::invalid(source, e, &lines);
        scenario.validate_common().map_err(invalid)?;
        if let Some(spec) = &mut scenario.offline {
            spec.resolve(scenario.run.seeds[0]).map_err(invalid)?;
        }
        let base = source.parent().unwrap_or(Path::new("."));
        // Input files made absolute, so the scenario reads the same from
        // anywhere (the offline log is made so when it is read).
        scenario.map_input_paths(&mut |key, path| {
            if key == "offline.log" {
                return path.to_path_buf();
            }
            let joined = base.join(path);
            std::fs::canonicalize(&joined).unwrap_or(joined)
        });
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
            estimate: Estimate {
                bytes: 0.0,
                work: 0.0,
                policies: Vec::new(),
            },
            offline: None,
        };
        let episode = prepared.family.episode_cost();
        let training = crate::budget::training_decisions(&prepared.scenario.run, &episode);
        // Offline learners are checked once their data is read (or built,
        // by the other policies).
        let n_policies = prepared.scenario.policies.len();
        let learns_offline =
            |p: &Self, index: usize| p.scenario.policies[index].offline_steps(1).is_some();
        let mut costs = vec![None; n_policies];
        let (offline_kinds, online_kinds): (Vec<usize>, Vec<usize>) =
            (0..n_policies).partition(|&i| learns_offline(&prepared, i));
        for index in online_kinds.into_iter().chain(offline_kinds) {
            if learns_offline(&prepared, index) && prepared.offline.is_none() {
                prepared.load_offline(base).map_err(invalid)?;
            }
            let cost = prepared
                .check_policy(index, training, limits)
                .map_err(|(key, rule)| {
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
            costs[index] = Some((prepared.names[index].clone(), cost));
        }
        if prepared.offline.is_none() {
            prepared.load_offline(base).map_err(invalid)?;
        }
        let costs = costs.into_iter().flatten().collect();
        let family = prepared.family();
        let candidates = if family.baseline().is_some() {
            Vec::new()
        } else {
            let first = prepared.scenario.run.seeds[0];
            family.baseline_candidates(derive_seed(first, "baseline", 0))
        };
        let references = usize::from(family.oracle().is_some())
            + usize::from(family.baseline().is_some() || !candidates.is_empty());
        let calibration =
            crate::runner::calibration_work(candidates.len(), family.calibration_episodes());
        prepared.estimate = crate::budget::estimate(
            &prepared.scenario.run,
            &episode,
            costs,
            (references, calibration),
            prepared.metric_names().len(),
            limits.threads,
        );
        prepared
            .estimate
            .check(limits)
            .map_err(|rule| ScenarioError::Invalid {
                file: source.to_path_buf(),
                key: "run".into(),
                line: line_of_key(&lines, "run"),
                rule,
            })?;
        prepared.baseline =
            crate::runner::choose_baseline(&prepared, candidates).map_err(|rule| {
                ScenarioError::Invalid {
                    file: source.to_path_buf(),
                    key: family_name.to_string(),
                    line: line_of_key(&lines, family_name),
                    rule: format!("could not play the baseline's candidates: {rule}"),
                }
            })?;
        Ok(prepared)
    }

    /// Reads or builds the `[offline]` data, where the scenario has the table.
    fn load_offline(&mut self, base: &Path) -> Result<(), ConfigError> {
        let Some(mut spec) = self.scenario.offline.take() else {
            return Ok(());
        };
        let loaded = spec.load(self, base);
        self.scenario.offline = Some(spec);
        self.offline = Some(loaded?);
        Ok(())
    }

    /// The `[offline]` data, where the scenario has the table.
    pub fn offline(&self) -> Option<&crate::offline::Offline> {
        self.offline.as_ref()
    }

    /// The gradient steps of policy `index` over a run, for offline learners.
    pub fn offline_steps(&self, index: usize) -> Option<u64> {
        let rows = self
            .offline
            .as_ref()
            .map_or(1, |o| o.data.transitions.len());
        self.scenario.policies[index].offline_steps(rows)
    }

    /// The scenario's estimated peak memory and work, with each policy's part.
    pub fn estimate(&self) -> &Estimate {
        &self.estimate
    }

    /// Checks that policy `index` applies to the family, that one instance
    /// fits within `limits`' memory, and that it builds; its cost, or the
    /// error's key suffix (`.epsilon`) and rule.
    fn check_policy(
        &self,
        index: usize,
        training_decisions: f64,
        limits: &Limits,
    ) -> Result<PolicyCost, (String, String)> {
        let key_of = |e: PolicyError| match e {
            PolicyError::Invalid { key, rule } if key.is_empty() => (String::new(), rule),
            PolicyError::Invalid { key, rule } => (format!(".{key}"), rule),
            other => (String::new(), other.to_string()),
        };
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
        let (observation_space, action_space, _) = &self.spaces;
        let context = BuildContext {
            observation_space,
            action_space,
            family: self.family.as_ref(),
            seed: 0,
            offline: self.offline.as_ref().map(|o| &o.data),
        };
        let cost = spec.cost(&context, training_decisions).map_err(key_of)?;
        if crate::budget::over(cost.bytes, limits.max_memory) {
            return Err((
                String::new(),
                format!(
                    "one instance would hold about {} of memory, more than the limit of {} \
                     (make it smaller, or raise the limit with --max-memory)",
                    format_bytes(cost.bytes),
                    format_bytes(limits.max_memory)
                ),
            ));
        }
        // Building catches what the settings' own checks cannot see; a
        // large instance is not built only to be dropped (its kind checked
        // its settings when it estimated its cost).
        if cost.bytes <= BUILD_CHECK_BYTES {
            self.make_policy(index, 0).map_err(key_of)?;
        }
        Ok(cost)
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
            offline: self.offline.as_ref().map(|o| &o.data),
        })
    }

    /// The optimal expected return of an episode, where the scenario has one.
    pub fn optimal_value(&self) -> Option<f64> {
        self.family.optimal_value()
    }

    /// The exact expected return of `policy`'s greedy play, where the
    /// family evaluates policies exactly
    /// ([`Family::exact_value`](shoplab_env::Family::exact_value)) and
    /// evaluation plays [`Policy::greedy`] itself: not for policies that
    /// keep per-episode state ([`Policy::greedy_is_markov`]) or read the
    /// env's expected rewards.
    pub fn exact_value(&self, policy: &dyn Policy) -> Option<f64> {
        if !policy.greedy_is_markov() || policy.wants_expected_rewards() {
            return None;
        }
        self.family.exact_value(&|obs| policy.greedy(obs))
    }

    /// The greedy action of `policy` over a grid of states, as action
    /// values, for scenarios whose state fits a chart.
    ///
    /// For policies that know which states they learned about
    /// ([`Policy::visited`]), the table also says which cells were visited:
    /// the family maps actions to values cell by cell, so a cell's
    /// visited flag is read back by asking for the table once more with
    /// the first action where the state was visited and the last where it
    /// was not (cells whose two values coincide count as visited).
    pub fn greedy_table(&self, policy: &dyn Policy) -> Option<GreedyTable> {
        let mut table = self.family.greedy_table(&|obs| policy.greedy(obs))?;
        let last = self.spaces.1.n().saturating_sub(1);
        let knows = std::cell::Cell::new(false);
        let flags = self.family.greedy_table(&|obs| match policy.visited(obs) {
            Some(visited) => {
                knows.set(true);
                if visited { 0 } else { last }
            }
            None => 0,
        })?;
        if knows.get() {
            let first = self.family.greedy_table(&|_| 0)?;
            table.visited = Some(
                flags
                    .values
                    .iter()
                    .zip(&first.values)
                    .map(|(row, seen)| row.iter().zip(seen).map(|(v, s)| v == s).collect())
                    .collect(),
            );
        }
        Some(table)
    }
}
