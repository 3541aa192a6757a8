//! A scenario for Python: a file (or a shipped scenario's name) with
//! dotted overrides, validated exactly as the CLI validates it.

use pyo3::{
    exceptions::PyValueError,
    prelude::*,
    types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple},
};
use shoplab_env::{ActionSpace, EnvBox, ObservationSpace};
use shoplab_harness::{prepared::Prepared, registry::Registry};
use std::{path::PathBuf, sync::Arc};

/// The scenarios of the repository's `scenarios/` folder, by name, built
/// into the module so that an installed package has them.
const SHIPPED: [(&str, &str); 14] = [
    ("pricing", include_str!("../../scenarios/pricing.toml")),
    (
        "pricing-seasonal",
        include_str!("../../scenarios/pricing-seasonal.toml"),
    ),
    (
        "recommendation",
        include_str!("../../scenarios/recommendation.toml"),
    ),
    (
        "recommendation-longterm",
        include_str!("../../scenarios/recommendation-longterm.toml"),
    ),
    ("ads", include_str!("../../scenarios/ads.toml")),
    (
        "ads-varied",
        include_str!("../../scenarios/ads-varied.toml"),
    ),
    (
        "offline-pricing",
        include_str!("../../scenarios/offline-pricing.toml"),
    ),
    (
        "ope-auction",
        include_str!("../../scenarios/ope-auction.toml"),
    ),
    (
        "ope-recommendation",
        include_str!("../../scenarios/ope-recommendation.toml"),
    ),
    (
        "seed-article",
        include_str!("../../scenarios/seed-article.toml"),
    ),
    (
        "recsim-interest-evolution",
        include_str!("../../scenarios/bench/recsim-interest-evolution.toml"),
    ),
    (
        "recsim-interest-evolution-batched",
        include_str!("../../scenarios/bench/recsim-interest-evolution-batched.toml"),
    ),
    (
        "auctiongym-sp-oracle",
        include_str!("../../scenarios/bench/auctiongym-sp-oracle.toml"),
    ),
    (
        "auctiongym-sp-oracle-batched",
        include_str!("../../scenarios/bench/auctiongym-sp-oracle-batched.toml"),
    ),
];

/// The names of the shipped scenarios.
#[pyfunction]
pub fn shipped_scenarios() -> Vec<&'static str> {
    SHIPPED.iter().map(|s| s.0).collect()
}

/// A validated scenario: its family prepared, its env's spaces known.
#[pyclass(module = "shoplab._native", frozen)]
pub struct Scenario {
    pub(crate) prepared: Arc<Prepared>,
    /// The scenario's text (overrides applied) and file, from which a
    /// sweep's configurations are read when it runs.
    pub(crate) source: Arc<(String, PathBuf)>,
}

/// A Python value as a TOML value, or why it cannot be one.
fn to_toml(value: &Bound<'_, PyAny>, key: &str) -> PyResult<toml_edit::Value> {
    if value.is_instance_of::<PyBool>() {
        return Ok(value.extract::<bool>()?.into());
    }
    if value.is_instance_of::<PyInt>() {
        let v: i64 = value.extract().map_err(|_| {
            PyValueError::new_err(format!("override `{key}`: the integer is out of range"))
        })?;
        return Ok(v.into());
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(value.extract::<f64>()?.into());
    }
    if value.is_instance_of::<PyString>() {
        return Ok(value.extract::<String>()?.into());
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut array = toml_edit::Array::new();
        for item in value.try_iter()? {
            array.push(to_toml(&item?, key)?);
        }
        return Ok(toml_edit::Value::Array(array));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = toml_edit::InlineTable::new();
        for (k, v) in dict.iter() {
            let k: String = k.extract().map_err(|_| {
                PyValueError::new_err(format!("override `{key}`: table keys must be strings"))
            })?;
            let inner = to_toml(&v, &format!("{key}.{k}"))?;
            table.insert(&k, inner);
        }
        return Ok(toml_edit::Value::InlineTable(table));
    }
    Err(PyValueError::new_err(format!(
        "override `{key}`: a {} is not a scenario value (use a bool, int, float, str, list or dict)",
        value.get_type().name()?
    )))
}

/// `text` with each dotted `key = value` of `overrides` set in place (the
/// rest of the file, and so its line numbers, untouched; tables made where
/// missing); whether the keys are known is the scenario parser's to say.
fn apply_overrides(text: &str, overrides: &Bound<'_, PyDict>) -> PyResult<String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| PyValueError::new_err(e.to_string()))?;
    for (key, value) in overrides.iter() {
        let key: String = key.extract().map_err(|_| {
            PyValueError::new_err("override keys must be strings (`pricing.horizon`)")
        })?;
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PyValueError::new_err(format!(
                "override `{key}`: a key is dotted names (`pricing.horizon`)"
            )));
        }
        let value = to_toml(&value, &key)?;
        let not_table = |part: &str| {
            PyValueError::new_err(format!("override `{key}`: `{part}` is not a table"))
        };
        let mut item = doc.as_item_mut();
        for part in &parts[..parts.len() - 1] {
            let table = item.as_table_like_mut().ok_or_else(|| not_table(part))?;
            if table.get(part).is_none() {
                table.insert(part, toml_edit::table());
            }
            item = table.get_mut(part).expect("inserted above");
        }
        let last = parts[parts.len() - 1];
        let table = item
            .as_table_like_mut()
            .ok_or_else(|| not_table(parts[parts.len().saturating_sub(2)]))?;
        table.insert(last, toml_edit::Item::Value(value));
    }
    Ok(doc.to_string())
}

impl Scenario {
    /// The scenario's env's spaces.
    pub(crate) fn spaces(&self) -> (ObservationSpace, ActionSpace, usize, usize) {
        let env = self.prepared.make_env();
        let (k, n) = match &env {
            EnvBox::Single(_) => (1, 1),
            EnvBox::Batch(b) => (b.slate_size(), b.batch_size()),
        };
        (
            env.observation_space().clone(),
            env.action_space().clone(),
            k,
            n,
        )
    }
}

#[pymethods]
impl Scenario {
    /// Reads `scenario` — a file, or the name of a shipped scenario such as
    /// `"pricing"` — with `overrides` (`{"pricing.horizon": 10}`) applied,
    /// and validates it; a bad scenario raises `ValueError` with the
    /// CLI's message.
    #[new]
    #[pyo3(signature = (scenario, overrides = None))]
    fn new(
        py: Python<'_>,
        scenario: &str,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let shipped = SHIPPED.iter().find(|(name, _)| *name == scenario);
        let (path, text) = match shipped {
            Some((name, text)) => (
                PathBuf::from(format!("scenarios/{name}.toml")),
                (*text).to_string(),
            ),
            None => {
                let path = PathBuf::from(scenario);
                if !path.exists() && !scenario.ends_with(".toml") && !scenario.contains('/') {
                    return Err(PyValueError::new_err(format!(
                        "`{scenario}` is neither a scenario file nor a shipped scenario ({})",
                        shipped_scenarios().join(", ")
                    )));
                }
                let text = shoplab_env::input::read_text_file(
                    &path,
                    shoplab_env::input::MAX_SCENARIO_BYTES,
                )
                .map_err(|e| {
                    PyValueError::new_err(format!("{}: the scenario file {e}", path.display()))
                })?;
                (path, text)
            }
        };
        let text = match overrides {
            Some(o) if !o.is_empty() => apply_overrides(&text, o)?,
            _ => text,
        };
        let prepared = py
            .detach(|| {
                let registry = Registry::default();
                let parsed = shoplab_harness::scenario::parse(&text, &path, &registry)?;
                Prepared::new(parsed, &path)
            })
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self {
            prepared: Arc::new(prepared),
            source: Arc::new((text, path)),
        })
    }

    /// The scenario's name.
    #[getter]
    fn name(&self) -> String {
        self.prepared.scenario.name.clone()
    }

    /// The scenario's family (`pricing`, `recommendation`, `ads`, …).
    #[getter]
    fn family(&self) -> &'static str {
        self.prepared.family_name()
    }

    /// The observation's feature names, lower and upper bounds.
    #[getter]
    fn observation(&self) -> (Vec<&'static str>, Vec<f32>, Vec<f32>) {
        let (space, ..) = self.spaces();
        (
            space.features.iter().map(|f| f.name).collect(),
            space.features.iter().map(|f| f.low).collect(),
            space.features.iter().map(|f| f.high).collect(),
        )
    }

    /// Number of actions.
    #[getter]
    fn n_actions(&self) -> usize {
        self.spaces().1.n()
    }

    /// The actions' labels (`price 2.50`, `item 3`).
    #[getter]
    fn action_labels(&self) -> Vec<String> {
        self.spaces().1.labels
    }

    /// Actions per decision (the slate's size; 1 for a single action).
    #[getter]
    fn slate_size(&self) -> usize {
        self.spaces().2
    }

    /// Sessions stepped together: 1 for single envs.
    #[getter]
    fn batch_size(&self) -> usize {
        self.spaces().3
    }

    /// True for families whose env steps many sessions at once.
    #[getter]
    fn is_batch(&self) -> bool {
        matches!(self.prepared.make_env(), EnvBox::Batch(_))
    }

    /// Names of the env's per-step metrics.
    #[getter]
    fn metric_names(&self) -> Vec<&'static str> {
        self.prepared.metric_names().to_vec()
    }

    /// The oracle's expected return per episode (V*), where computable.
    #[getter]
    fn optimal_value(&self) -> Option<f64> {
        self.prepared.optimal_value()
    }

    /// The strongest simple baseline: its name and value per episode.
    #[getter]
    fn baseline(&self) -> Option<(String, f64)> {
        self.prepared.baseline().map(|b| (b.name.clone(), b.value))
    }

    /// The scenario's seeds.
    #[getter]
    fn seeds(&self) -> Vec<u64> {
        self.prepared.scenario.run.seeds.clone()
    }

    /// The resolved scenario, every default spelled out, as TOML.
    fn to_toml(&self) -> String {
        self.prepared.scenario.to_toml()
    }

    /// The oracle's greedy action over the family's state grid where the
    /// family draws one (pricing: the price by period and stock): a dict
    /// of the row and column variables' names and values, the value's
    /// name, and the values row by row; `None` otherwise.
    fn oracle_table<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(rule) = self.prepared.family().oracle() else {
            return Ok(None);
        };
        let Some(table) = self.prepared.family().greedy_table(&|obs| {
            let mut ranked = Vec::with_capacity(1);
            rule(obs, &mut ranked);
            ranked.first().copied().unwrap_or(0)
        }) else {
            return Ok(None);
        };
        let out = PyDict::new(py);
        out.set_item("row_name", table.row_name)?;
        out.set_item("rows", table.rows)?;
        out.set_item("col_name", table.col_name)?;
        out.set_item("cols", table.cols)?;
        out.set_item("value_name", table.value_name)?;
        out.set_item("values", table.values)?;
        Ok(Some(out))
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario({:?}, family={:?})",
            self.prepared.scenario.name,
            self.prepared.family_name()
        )
    }
}
