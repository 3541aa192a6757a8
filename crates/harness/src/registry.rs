//! The registry of scenario families and policy kinds, as Gymnasium's
//! `register(id=..., entry_point=...)`: a family or a policy is one module
//! plus one line here — or one call on a [`Registry`] from a user's crate.
//!
//! A scenario file is read against a registry: its family table (`[pricing]`)
//! is looked up among the families, each `[[policies]]` entry's `kind` among
//! the policy kinds, and unknown names are refused with the list of the
//! registered ones. The harness itself names no family and no policy: it
//! reaches them only through the entries held here.
//!
//! ```
//! use shoplab_harness::registry::Registry;
//! let registry = Registry::default();
//! assert!(registry.family_names().contains(&"pricing"));
//! assert!(registry.policy_kinds().contains(&"dqn"));
//! ```

use serde::{Serialize, de::DeserializeOwned};
use shoplab_env::{Family, FamilyKind, config::ConfigError, cost::PolicyCost};
use shoplab_policy::{
    PolicyError,
    registry::{BuildContext, Built, PolicyKind},
};
use std::{
    any::Any,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// A parse error of one table, with the key path inside it.
pub type TableError = serde_path_to_error::Error<toml::de::Error>;

/// A parsed config of some registered type: what the harness needs of it
/// without knowing the type (cloning, comparing, printing, writing back).
trait AnyConfig: Any + Send + Sync + fmt::Debug {
    fn clone_box(&self) -> Box<dyn AnyConfig>;
    fn eq_dyn(&self, other: &dyn AnyConfig) -> bool;
    fn to_toml(&self) -> toml::Value;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T> AnyConfig for T
where
    T: Serialize + Clone + PartialEq + fmt::Debug + Send + Sync + 'static,
{
    fn clone_box(&self) -> Box<dyn AnyConfig> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn AnyConfig) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn to_toml(&self) -> toml::Value {
        toml::Value::try_from(self).expect("a config always serialises to TOML")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn parse<T: DeserializeOwned + AnyConfig>(
    value: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn AnyConfig>, TableError> {
    Ok(Box::new(serde_path_to_error::deserialize::<_, T>(value)?))
}

fn typed<T: 'static>(config: &dyn AnyConfig) -> &T {
    config
        .as_any()
        .downcast_ref()
        .expect("a config is only ever handled by the entry that parsed it")
}

/// [`typed`], mutable.
fn typed_mut<T: 'static>(config: &mut dyn AnyConfig) -> &mut T {
    config
        .as_any_mut()
        .downcast_mut()
        .expect("a config is only ever handled by the entry that parsed it")
}

/// A family kind with its config type erased.
trait AnyFamilyKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn parse(
        &self,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Result<Box<dyn AnyConfig>, TableError>;
    fn prepare(
        &self,
        config: &mut dyn AnyConfig,
        base: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError>;
    fn map_paths(&self, config: &mut dyn AnyConfig, f: &mut dyn FnMut(&str, &Path) -> PathBuf);
}

struct FamilyEntry<K>(K);

impl<K: FamilyKind> AnyFamilyKind for FamilyEntry<K> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn parse(
        &self,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Result<Box<dyn AnyConfig>, TableError> {
        parse::<K::Config>(value)
    }

    fn prepare(
        &self,
        config: &mut dyn AnyConfig,
        base: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError> {
        self.0.prepare(typed_mut(config), base)
    }

    fn map_paths(&self, config: &mut dyn AnyConfig, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        self.0.map_paths(typed_mut(config), f);
    }
}

/// A policy kind with its config type erased.
trait AnyPolicyKind: Send + Sync {
    fn kind(&self) -> &'static str;
    fn parse(
        &self,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Result<Box<dyn AnyConfig>, TableError>;
    fn name(&self, config: &dyn AnyConfig) -> String;
    fn state_dependent(&self) -> bool;
    fn offline_steps(&self, config: &dyn AnyConfig, rows: usize) -> Option<u64>;
    fn map_paths(&self, config: &mut dyn AnyConfig, f: &mut dyn FnMut(&str, &Path) -> PathBuf);
    fn applies(&self, family: &dyn Family) -> Result<(), String>;
    fn cost(
        &self,
        config: &dyn AnyConfig,
        cx: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError>;
    fn build(&self, config: &dyn AnyConfig, cx: &BuildContext<'_>) -> Built;
}

struct PolicyEntry<K>(K);

impl<K: PolicyKind> AnyPolicyKind for PolicyEntry<K> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn parse(
        &self,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Result<Box<dyn AnyConfig>, TableError> {
        parse::<K::Config>(value)
    }

    fn name(&self, config: &dyn AnyConfig) -> String {
        self.0.name(typed(config))
    }

    fn state_dependent(&self) -> bool {
        self.0.state_dependent()
    }

    fn offline_steps(&self, config: &dyn AnyConfig, rows: usize) -> Option<u64> {
        self.0.offline_steps(typed(config), rows)
    }

    fn map_paths(&self, config: &mut dyn AnyConfig, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        self.0.map_paths(typed_mut(config), f);
    }

    fn applies(&self, family: &dyn Family) -> Result<(), String> {
        self.0.applies(family)
    }

    fn cost(
        &self,
        config: &dyn AnyConfig,
        cx: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        self.0.cost(typed(config), cx, training_decisions)
    }

    fn build(&self, config: &dyn AnyConfig, cx: &BuildContext<'_>) -> Built {
        self.0.build(typed(config), cx)
    }
}

/// A scenario's family table: the family kind and its parsed config.
pub struct FamilySpec {
    kind: Arc<dyn AnyFamilyKind>,
    config: Box<dyn AnyConfig>,
}

impl FamilySpec {
    /// The family's name (its table's name).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The config, if it is of type `T` (the family kind's `Config`).
    pub fn config<T: 'static>(&self) -> Option<&T> {
        self.config.as_any().downcast_ref()
    }

    /// The config, mutably, if it is of type `T`.
    pub fn config_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.config.as_any_mut().downcast_mut()
    }

    /// Validates the config (paths relative to `base`) and prepares the family.
    pub fn prepare(&mut self, base: &Path) -> Result<Arc<dyn Family>, ConfigError> {
        self.kind.prepare(self.config.as_mut(), base)
    }

    /// Maps the input files the config names ([`FamilyKind::map_paths`]).
    pub fn map_paths(&mut self, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        self.kind.map_paths(self.config.as_mut(), f);
    }

    /// The config as a TOML table, every default spelled out.
    pub fn to_toml(&self) -> toml::Value {
        self.config.to_toml()
    }
}

impl Clone for FamilySpec {
    fn clone(&self) -> Self {
        Self {
            kind: Arc::clone(&self.kind),
            config: self.config.clone_box(),
        }
    }
}

impl PartialEq for FamilySpec {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.config.eq_dyn(other.config.as_ref())
    }
}

impl fmt::Debug for FamilySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.name())?;
        self.config.fmt(f)
    }
}

/// One `[[policies]]` entry: the policy kind and its parsed settings.
pub struct PolicySpec {
    kind: Arc<dyn AnyPolicyKind>,
    config: Box<dyn AnyConfig>,
    /// The entry's own `name`, where the file gives one.
    label: Option<String>,
}

impl PolicySpec {
    /// The `kind = "..."` value.
    pub fn kind(&self) -> &'static str {
        self.kind.kind()
    }

    /// The policy's base name in reports.
    pub fn base_name(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| self.kind.name(self.config.as_ref()))
    }

    /// The entry's own `name` (the report name it asks for), if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Sets the entry's own `name`.
    pub fn set_label(&mut self, label: Option<String>) {
        self.label = label;
    }

    /// True for policies whose greedy action depends on the state, worth a
    /// learned-policy chart.
    pub fn is_state_dependent(&self) -> bool {
        self.kind.state_dependent()
    }

    /// The gradient steps of a kind that learns from the scenario's logged
    /// data of `rows` rows ([`PolicyKind::offline_steps`]); `None` for
    /// kinds that do not.
    pub fn offline_steps(&self, rows: usize) -> Option<u64> {
        self.kind.offline_steps(self.config.as_ref(), rows)
    }

    /// Maps the input files the settings name ([`PolicyKind::map_paths`]).
    pub fn map_paths(&mut self, f: &mut dyn FnMut(&str, &Path) -> PathBuf) {
        self.kind.map_paths(self.config.as_mut(), f);
    }

    /// The settings, if they are of type `T` (the kind's `Config`).
    pub fn config<T: 'static>(&self) -> Option<&T> {
        self.config.as_any().downcast_ref()
    }

    /// The settings, mutably, if they are of type `T`.
    pub fn config_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.config.as_any_mut().downcast_mut()
    }

    /// Whether the policy applies to `family`, and why not.
    pub fn applies(&self, family: &dyn Family) -> Result<(), String> {
        self.kind.applies(family)
    }

    /// What one instance will cost, for a run whose training makes
    /// `training_decisions` decisions ([`PolicyKind::cost`]).
    pub fn cost(
        &self,
        context: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        self.kind
            .cost(self.config.as_ref(), context, training_decisions)
    }

    /// Builds the policy.
    pub fn build(&self, context: &BuildContext<'_>) -> Built {
        self.kind.build(self.config.as_ref(), context)
    }

    /// The entry as a TOML table, `kind` first, every default spelled out.
    pub fn to_toml(&self) -> toml::Value {
        let mut table = toml::Table::new();
        table.insert("kind".into(), self.kind().into());
        if let Some(label) = &self.label {
            table.insert("name".into(), label.clone().into());
        }
        if let toml::Value::Table(fields) = self.config.to_toml() {
            table.extend(fields);
        }
        toml::Value::Table(table)
    }
}

impl Clone for PolicySpec {
    fn clone(&self) -> Self {
        Self {
            kind: Arc::clone(&self.kind),
            config: self.config.clone_box(),
            label: self.label.clone(),
        }
    }
}

impl PartialEq for PolicySpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind()
            && self.label == other.label
            && self.config.eq_dyn(other.config.as_ref())
    }
}

impl fmt::Debug for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind())?;
        self.config.fmt(f)
    }
}

/// The scenario families and policy kinds that scenario files may name.
#[derive(Clone)]
pub struct Registry {
    families: Vec<Arc<dyn AnyFamilyKind>>,
    policies: Vec<Arc<dyn AnyPolicyKind>>,
}

impl Registry {
    /// A registry with nothing in it.
    pub fn empty() -> Self {
        Self {
            families: Vec::new(),
            policies: Vec::new(),
        }
    }

    /// Adds a scenario family; a family of the same name is replaced.
    pub fn with_family<K: FamilyKind>(mut self, kind: K) -> Self {
        self.families.retain(|f| f.name() != kind.name());
        self.families.push(Arc::new(FamilyEntry(kind)));
        self
    }

    /// Adds a policy kind; a kind of the same name is replaced.
    pub fn with_policy<K: PolicyKind>(mut self, kind: K) -> Self {
        self.policies.retain(|p| p.kind() != kind.kind());
        self.policies.push(Arc::new(PolicyEntry(kind)));
        self
    }

    /// The registered families' names, in registration order.
    pub fn family_names(&self) -> Vec<&'static str> {
        self.families.iter().map(|f| f.name()).collect()
    }

    /// The registered policy kinds, in registration order.
    pub fn policy_kinds(&self) -> Vec<&'static str> {
        self.policies.iter().map(|p| p.kind()).collect()
    }

    /// True when `name` is a registered family.
    pub fn has_family(&self, name: &str) -> bool {
        self.families.iter().any(|f| f.name() == name)
    }

    /// Parses the table of family `name` (which must be registered).
    pub(crate) fn parse_family(
        &self,
        name: &str,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Option<Result<FamilySpec, TableError>> {
        let kind = self.families.iter().find(|f| f.name() == name)?;
        Some(kind.parse(value).map(|config| FamilySpec {
            kind: Arc::clone(kind),
            config,
        }))
    }

    /// Why policy kind `kind` does not apply to the scenario of `family`
    /// (prepared against `base`), if it is registered and does not; `None`
    /// when it applies, or when the family itself does not prepare.
    pub(crate) fn kind_does_not_apply(
        &self,
        kind: &str,
        family: &FamilySpec,
        base: &Path,
    ) -> Option<String> {
        let entry = self.policies.iter().find(|p| p.kind() == kind)?;
        let prepared = family.clone().prepare(base).ok()?;
        entry.applies(prepared.as_ref()).err()
    }

    /// Parses the settings of a policy of kind `kind`, if it is registered.
    pub(crate) fn parse_policy(
        &self,
        kind: &str,
        value: toml::de::ValueDeserializer<'_>,
    ) -> Option<Result<PolicySpec, TableError>> {
        let entry = self.policies.iter().find(|p| p.kind() == kind)?;
        Some(entry.parse(value).map(|config| PolicySpec {
            kind: Arc::clone(entry),
            config,
            label: None,
        }))
    }
}

impl Default for Registry {
    /// The families and policies shoplab ships: one line each.
    fn default() -> Self {
        use shoplab_policy::{
            action_table::ActionTableKind,
            dqn::DqnKind,
            epsilon_greedy::EpsilonGreedyKind,
            fixed::{FixedActionKind, FixedPriceKind},
            linucb::LinUcbKind,
            most_popular::MostPopularKind,
            myopic_oracle::MyopicOracleKind,
            offline::kinds::{Learner, OfflineKind, SeedArticleKind},
            paced_bidding as paced,
            pricing_oracle::PricingOracleKind,
            random::RandomKind,
            resolving::FluidResolvingKind,
            tabular_q::TabularQKind,
            thompson::ThompsonKind,
            ucb::Ucb1Kind,
        };
        Self::empty()
            .with_family(shoplab_sim::PricingFamily)
            .with_family(shoplab_sim::RecommendationFamily)
            .with_family(shoplab_sim::AdsFamily)
            .with_family(shoplab_sim::InterestEvolutionFamily)
            .with_family(shoplab_sim::AuctionMarketFamily)
            .with_policy(FixedPriceKind)
            .with_policy(FixedActionKind)
            .with_policy(FluidResolvingKind)
            .with_policy(paced::FixedMultiplierKind)
            .with_policy(paced::GreedyBidKind)
            .with_policy(paced::EvenPacingKind)
            .with_policy(paced::PidKind)
            .with_policy(paced::DualPacingKind)
            .with_policy(paced::QPacingKind)
            .with_policy(paced::DqnPacingKind)
            .with_policy(RandomKind)
            .with_policy(EpsilonGreedyKind)
            .with_policy(Ucb1Kind)
            .with_policy(TabularQKind)
            .with_policy(DqnKind)
            .with_policy(shoplab_policy::seq::kind::ReinforceKind)
            .with_policy(MostPopularKind)
            .with_policy(ThompsonKind)
            .with_policy(LinUcbKind)
            .with_policy(PricingOracleKind)
            .with_policy(MyopicOracleKind)
            .with_policy(OfflineKind(Learner::Bc))
            .with_policy(OfflineKind(Learner::Dqn))
            .with_policy(OfflineKind(Learner::Fqi))
            .with_policy(OfflineKind(Learner::Cql))
            .with_policy(OfflineKind(Learner::Bcq))
            .with_policy(SeedArticleKind)
            .with_policy(shoplab_policy::offline::dt_kind::DecisionTransformerKind)
            .with_policy(ActionTableKind)
    }
}
