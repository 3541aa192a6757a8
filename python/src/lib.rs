//! shoplab's Python bindings, the `shoplab._native` module: thin pyo3
//! classes over the Rust simulators and harness, which the `shoplab`
//! Python package wraps as Gymnasium environments.
//!
//! - [`scenario::Scenario`]: a scenario file (or a shipped scenario's name)
//!   with dotted overrides, validated as the CLI validates it; its errors
//!   are `ValueError`s carrying the CLI's one-line message.
//! - [`env::Env`]: one env of a scenario — `reset(seed)` and
//!   `step(action)` returning Gymnasium's 5-tuple with the env's named
//!   metrics in `info`, and the episode's reference at its end.
//! - [`vector::VectorEnv`]: `n` copies of a single env, or a batch family's
//!   many sessions, stepped together with the GIL released, observations
//!   written into NumPy arrays.
//! - [`harness`]: `run` (a scenario's run folder, as the CLI writes it) and
//!   `read_log` (a log's columns as NumPy arrays).
//!
//! Nothing here decides anything the Rust crates do not: seeds, spaces and
//! termination are the envs' own.

use pyo3::prelude::*;

pub mod env;
pub mod harness;
pub mod scenario;
pub mod vector;

/// The seed shoplab derives from `seed` for `label` and `index`
/// (`derive_seed(seed, "env", e)` is the env seed of a run's episode `e`),
/// so Python can replay any episode of a run.
#[pyfunction]
fn derive_seed(seed: u64, label: &str, index: u64) -> u64 {
    shoplab_env::seed::derive_seed(seed, label, index)
}

/// The `shoplab._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<scenario::Scenario>()?;
    m.add_class::<env::Env>()?;
    m.add_class::<vector::VectorEnv>()?;
    m.add_function(wrap_pyfunction!(harness::run, m)?)?;
    m.add_function(wrap_pyfunction!(harness::read_log, m)?)?;
    m.add_function(wrap_pyfunction!(scenario::shipped_scenarios, m)?)?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
