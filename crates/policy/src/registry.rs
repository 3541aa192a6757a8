//! Policy kinds: how a scenario file's `[[policies]]` entry becomes a policy.
//!
//! Each policy module declares one [`PolicyKind`] next to its algorithm: the
//! `kind = "..."` it answers to, its config (serde, unknown keys refused,
//! defaults filled in), its report name, whether its greedy action depends
//! on the state (worth a learned-policy chart), which scenario families it
//! applies to — by asking the [`Family`] for a fact or a setup, never by
//! its name — and how to build it. The harness's registry holds one line per
//! kind; a user registers their own the same way, from their own crate.

use crate::{Policy, PolicyError};
use serde::{Serialize, de::DeserializeOwned};
use shoplab_env::{ActionSpace, Family, ObservationSpace, cost::PolicyCost};
use std::fmt::Debug;

/// What a policy is built from: the env's spaces, the scenario's family and
/// the run's seed for the policy's own generator.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// The env's observation space.
    pub observation_space: &'a ObservationSpace,
    /// The env's action space.
    pub action_space: &'a ActionSpace,
    /// The scenario's family, for facts and setups.
    pub family: &'a dyn Family,
    /// Seed of the policy's generator (derived from the run's seed and the
    /// policy's name).
    pub seed: u64,
    /// The scenario's logged data (its `[offline]` table), for kinds that
    /// learn offline ([`PolicyKind::offline_steps`]); none without one.
    pub offline: Option<&'a crate::offline::kinds::OfflineData>,
}

/// A kind of policy, as scenario files name it.
pub trait PolicyKind: Send + Sync + 'static {
    /// The entry's settings (every key but `kind`); `Default` where every
    /// setting has one. Refuse unknown keys (`#[serde(deny_unknown_fields)]`).
    type Config: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// The `kind = "..."` value.
    fn kind(&self) -> &'static str;

    /// The base of the policy's report name (made unique by the harness);
    /// the kind unless the settings distinguish entries (`fixed_price_2`).
    fn name(&self, config: &Self::Config) -> String {
        let _ = config;
        self.kind().to_string()
    }

    /// True when the greedy action depends on the state, worth a chart of
    /// the learned policy.
    fn state_dependent(&self) -> bool {
        false
    }

    /// For kinds that learn from the scenario's logged data rather than
    /// from the env: the gradient steps a run takes, given the data's
    /// `rows`. The harness reads the data before it builds them, and charts
    /// their value against these steps. `None` (the default) for kinds that
    /// learn online or not at all.
    fn offline_steps(&self, config: &Self::Config, rows: usize) -> Option<u64> {
        let _ = (config, rows);
        None
    }

    /// Calls `f` on every input file the settings name (an action table),
    /// each with its key relative to the entry (`file`), and puts back the
    /// path `f` returns: how the harness makes paths absolute when it
    /// loads a scenario, and points a run folder's resolved scenario at
    /// its copies of the inputs. Nothing by default.
    fn map_paths(
        &self,
        config: &mut Self::Config,
        f: &mut dyn FnMut(&str, &std::path::Path) -> std::path::PathBuf,
    ) {
        let _ = (config, f);
    }

    /// Whether the kind applies to `family`, whatever its settings; the
    /// reason when it does not, saying what it needs and which families
    /// have it (`it needs budgeted auctions, as in the ads family`). Asked
    /// before the settings are read, so a kind that does not apply is
    /// refused as such rather than for a missing setting.
    fn applies(&self, family: &dyn Family) -> Result<(), String> {
        let _ = family;
        Ok(())
    }

    /// What one instance will cost in memory and work, estimated from the
    /// settings before anything is built ([`shoplab_env::cost`]), for a run
    /// whose training makes `training_decisions` decisions (replay buffers
    /// fill only that far). By default a few numbers per action. Kinds
    /// whose size grows with their settings (networks, tables, buffers) say
    /// so here, and refuse settings whose sizes would overflow, so that the
    /// harness can refuse a scenario before it allocates.
    fn cost(
        &self,
        config: &Self::Config,
        context: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Costed {
        let _ = (config, training_decisions);
        Ok(PolicyCost::per_action(context.action_space.n()))
    }

    /// Builds the policy. Errors name the setting relative to the entry.
    fn build(&self, config: &Self::Config, context: &BuildContext<'_>) -> Built;
}

/// What building a policy returns: the policy, or the settings error.
pub type Built = Result<Box<dyn Policy>, PolicyError>;

/// What pricing a policy returns: its cost, or the settings error.
pub type Costed = Result<PolicyCost, PolicyError>;

/// A settings error of a nested table, its key prefixed with the table's name.
pub fn prefixed(table: &str, e: PolicyError) -> PolicyError {
    match e {
        PolicyError::Invalid { key, rule } if key.is_empty() => PolicyError::invalid(table, rule),
        PolicyError::Invalid { key, rule } => PolicyError::invalid(format!("{table}.{key}"), rule),
        other => other,
    }
}

/// A config for kinds without settings (`kind = "random"`): no keys allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}
