//! The harness from Python: a scenario's run folder, and a log's columns.

use crate::scenario::Scenario;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::{exceptions::PyValueError, prelude::*, types::PyDict};
use shoplab_logs::ReadOptions;
use std::path::Path;

/// Runs `scenario` and writes its run folder under `results/<scenario>/`,
/// exactly as `shoplab run` does; returns the folder's path.
#[pyfunction]
#[pyo3(signature = (scenario, results = "results"))]
pub fn run(py: Python<'_>, scenario: &Scenario, results: &str) -> PyResult<String> {
    let prepared = std::sync::Arc::clone(&scenario.prepared);
    let source = std::sync::Arc::clone(&scenario.source);
    let error = |e: &dyn std::fmt::Display| PyValueError::new_err(e.to_string());
    py.detach(|| {
        if prepared.scenario.sweep.is_none() {
            let finished = shoplab_harness::execute(&prepared, Path::new(results), &|_| {})
                .map_err(|e| error(&e))?;
            return Ok(finished.dir.display().to_string());
        }
        // A sweep: every configuration, as `shoplab run` runs them.
        let (text, path) = &*source;
        let plan = shoplab_harness::plan::plan_from_text(
            text,
            path,
            &shoplab_harness::registry::Registry::default(),
            &shoplab_harness::budget::Limits::from_machine(),
            1,
        )
        .map_err(|e| error(&e))?;
        let started = shoplab_harness::start(
            plan.runs(),
            Path::new(results),
            &shoplab_harness::RunOptions::default(),
        )
        .map_err(|e| error(&e))?;
        match started.finish(&|_| {}).map_err(|e| error(&e))? {
            shoplab_harness::Done::Run(finished) => Ok(finished.dir.display().to_string()),
            shoplab_harness::Done::Shard(_) => unreachable!("no shard was asked for"),
        }
    })
}

/// Reads and validates a log (CSV, or Parquet by its extension): a dict of
/// its columns as NumPy arrays (`x` is rows × features) and its feature
/// names (`features`).
#[pyfunction]
pub fn read_log<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyDict>> {
    let log = py
        .detach(|| shoplab_logs::parquet::read_log(Path::new(path), &ReadOptions::default()))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let out = PyDict::new(py);
    let d = log.features.len();
    out.set_item("features", log.features.clone())?;
    out.set_item("episode", PyArray1::from_slice(py, &log.episode))?;
    out.set_item("session", PyArray1::from_slice(py, &log.session))?;
    out.set_item("step", PyArray1::from_slice(py, &log.step))?;
    out.set_item(
        "x",
        PyArray1::from_slice(py, &log.x)
            .reshape([log.len(), d])
            .map_err(|e| PyValueError::new_err(e.to_string()))?,
    )?;
    out.set_item("action", PyArray1::from_slice(py, &log.action))?;
    out.set_item("position", PyArray1::from_slice(py, &log.position))?;
    out.set_item("reward", PyArray1::from_slice(py, &log.reward))?;
    out.set_item("propensity", PyArray1::from_slice(py, &log.propensity))?;
    out.set_item("terminated", PyArray1::from_slice(py, &log.terminated))?;
    out.set_item("truncated", PyArray1::from_slice(py, &log.truncated))?;
    Ok(out)
}
