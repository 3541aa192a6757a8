//! One env of a scenario, stepped from Python.
//!
//! Single-session families (pricing, ads, …) are played as they are.
//! Batched families (recommendation) are played one session at a time
//! when the scenario runs a single concurrent session: the episode is that
//! shopper's session, terminated when the shopper leaves and truncated at
//! the batch episode's end.

use crate::scenario::Scenario;
use numpy::PyArray1;
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyDict, PyString},
};
use shoplab_env::{EnvBox, Observation};
use shoplab_harness::prepared::Prepared;
use std::sync::{Arc, Mutex};

/// Where an env stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Never reset.
    Fresh,
    /// In an episode.
    Running,
    /// The episode ended; `step` needs a `reset` first.
    Done,
}

struct Inner {
    env: EnvBox,
    prepared: Arc<Prepared>,
    n_actions: usize,
    slate: usize,
    state: State,
    slates: Vec<usize>,
}

/// One env of a scenario: `reset(seed)` and `step(action)`.
#[pyclass(module = "shoplab._native")]
pub struct Env {
    inner: Mutex<Inner>,
    /// The metrics' names, interned once.
    metric_names: Vec<Py<PyString>>,
    reference: Py<PyString>,
}

/// Gymnasium's `ResetNeeded`, where Gymnasium is installed; a
/// `RuntimeError` otherwise.
pub(crate) fn reset_needed(py: Python<'_>, message: &str) -> PyErr {
    match py
        .import("gymnasium.error")
        .and_then(|m| m.getattr("ResetNeeded"))
    {
        Ok(class) => match class.call1((message,)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message.to_string()),
    }
}

/// A slate of `k` distinct actions below `n` from a Python int (k = 1) or
/// a sequence of ints, into `out`.
pub(crate) fn read_slate(
    action: &Bound<'_, PyAny>,
    k: usize,
    n: usize,
    out: &mut Vec<usize>,
) -> PyResult<()> {
    out.clear();
    let check = |a: i64| -> PyResult<usize> {
        if a < 0 || a as u64 >= n as u64 {
            Err(PyValueError::new_err(format!(
                "action {a} is outside the action space (0 ..= {})",
                n - 1
            )))
        } else {
            Ok(a as usize)
        }
    };
    if let Ok(a) = action.extract::<i64>() {
        if k != 1 {
            return Err(PyValueError::new_err(format!(
                "the env shows slates of {k}: give {k} distinct actions, not one"
            )));
        }
        out.push(check(a)?);
        return Ok(());
    }
    let items = action.try_iter().map_err(|_| {
        PyTypeError::new_err("an action is an int (or a sequence of ints for slates)")
    })?;
    for item in items {
        let a: i64 = item?
            .extract()
            .map_err(|_| PyTypeError::new_err("a slate holds ints"))?;
        out.push(check(a)?);
    }
    if out.len() != k {
        return Err(PyValueError::new_err(format!(
            "a slate has {k} actions (found {})",
            out.len()
        )));
    }
    for (i, a) in out.iter().enumerate() {
        if out[..i].contains(a) {
            return Err(PyValueError::new_err(format!(
                "a slate's actions are distinct (action {a} is there twice)"
            )));
        }
    }
    Ok(())
}

impl Inner {
    /// Resets; the first observation and the metrics so far.
    fn reset(&mut self, seed: u64) -> (Observation, Vec<f64>) {
        self.state = State::Running;
        match &mut self.env {
            EnvBox::Single(env) => env.reset(seed),
            EnvBox::Batch(env) => {
                let (mut obs, info) = env.reset(seed);
                (obs.swap_remove(0), info)
            }
        }
    }

    /// One step of the current slate; `(obs, reward, terminated,
    /// truncated, metrics)`.
    fn step(&mut self) -> (Observation, f64, bool, bool, Vec<f64>) {
        let out = match &mut self.env {
            EnvBox::Single(env) => {
                let s = env.step(self.slates[0]);
                (s.obs, s.reward, s.terminated, s.truncated, s.info)
            }
            EnvBox::Batch(env) => {
                let mut s = env.step(&self.slates);
                let terminated = s.terminated[0];
                let truncated = (s.truncated[0] || s.episode_over) && !terminated;
                (
                    s.obs.swap_remove(0),
                    s.rewards[0],
                    terminated,
                    truncated,
                    s.info,
                )
            }
        };
        if out.2 || out.3 {
            self.state = State::Done;
        }
        out
    }

    /// The episode's reference (the env's hindsight optimum, or V*).
    fn reference(&self) -> Option<f64> {
        let own = match &self.env {
            EnvBox::Single(env) => env.episode_reference(),
            EnvBox::Batch(_) => None,
        };
        own.or(self.prepared.optimal_value())
    }
}

impl Env {
    fn info<'py>(
        &self,
        py: Python<'py>,
        metrics: &[f64],
        reference: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let info = PyDict::new(py);
        for (name, value) in self.metric_names.iter().zip(metrics) {
            info.set_item(name.bind(py), value)?;
        }
        if let Some(r) = reference {
            info.set_item(self.reference.bind(py), r)?;
        }
        Ok(info)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl Env {
    /// One env of `scenario`. A batched family's scenario must run a
    /// single concurrent session (or use `VectorEnv`).
    #[new]
    fn new(py: Python<'_>, scenario: &Scenario) -> PyResult<Self> {
        let prepared = Arc::clone(&scenario.prepared);
        let env = prepared.make_env();
        let (n_actions, slate) = match &env {
            EnvBox::Single(e) => (e.action_space().n(), 1),
            EnvBox::Batch(b) => {
                if b.batch_size() != 1 {
                    return Err(PyValueError::new_err(format!(
                        "scenario `{}` steps {} sessions at once: play it with VectorEnv, or \
                         override its concurrent sessions to 1 for a single env",
                        prepared.scenario.name,
                        b.batch_size()
                    )));
                }
                (b.action_space().n(), b.slate_size())
            }
        };
        Ok(Self {
            metric_names: prepared
                .metric_names()
                .iter()
                .map(|m| PyString::intern(py, m).unbind())
                .collect(),
            reference: PyString::intern(py, "reference").unbind(),
            inner: Mutex::new(Inner {
                env,
                prepared,
                n_actions,
                slate,
                state: State::Fresh,
                slates: Vec::with_capacity(slate),
            }),
        })
    }

    /// Starts an episode from `seed`: `(observation, info)`.
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, Bound<'py, PyDict>)> {
        let (obs, metrics) = self.lock().reset(seed);
        Ok((
            PyArray1::from_slice(py, &obs.features),
            self.info(py, &metrics, None)?,
        ))
    }

    /// Takes `action` (an int, or a sequence of distinct ints for slates):
    /// `(observation, reward, terminated, truncated, info)`, `info` the
    /// step's named metrics and, at the episode's end, its `reference`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f32>>,
        f64,
        bool,
        bool,
        Bound<'py, PyDict>,
    )> {
        let mut inner = self.lock();
        match inner.state {
            State::Fresh => return Err(reset_needed(py, "step() before the first reset()")),
            State::Done => {
                return Err(reset_needed(
                    py,
                    "step() after the episode ended: call reset() first",
                ));
            }
            State::Running => {}
        }
        let (k, n) = (inner.slate, inner.n_actions);
        let mut slates = std::mem::take(&mut inner.slates);
        let read = read_slate(action, k, n, &mut slates);
        inner.slates = slates;
        read?;
        let (obs, reward, terminated, truncated, metrics) = inner.step();
        let reference = if terminated || truncated {
            inner.reference()
        } else {
            None
        };
        drop(inner);
        let obs = PyArray1::from_slice(py, &obs.features);
        Ok((
            obs,
            reward,
            terminated,
            truncated,
            self.info(py, &metrics, reference)?,
        ))
    }
}
