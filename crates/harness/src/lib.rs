//! The shoplab harness: from a scenario file to a run folder.
//!
//! The path of a run, one module a step:
//! 1. [`scenario`] parses the TOML file and [`prepared`] validates it whole —
//!    every key, every rule, every policy's settings, the oracle solved —
//!    so bad input is refused before any work, naming the file, key and rule;
//! 2. [`runner`] trains every policy on every seed in parallel (rayon), each
//!    run deterministic and independent, a failing run reported, not fatal;
//! 3. [`report`] turns episodes into tidy CSV tables and estimates across
//!    seeds with bootstrap intervals ([`stats`]);
//! 4. [`charts`] draws them as PNG and SVG;
//! 5. [`execute`] writes the run folder `results/<scenario>/<run-id>/`
//!    atomically (built aside, then renamed into place) and never over an
//!    earlier run; [`reproduce`] re-runs a folder's resolved scenario and
//!    compares every CSV byte for byte.
#![deny(missing_docs)]

mod accepted;
pub mod budget;
pub mod charts;
mod checkpoints;
pub mod compare;
pub mod datasets;
pub mod eta;
mod execution;
pub mod folder;
pub mod html;
pub mod jobs;
pub mod logging;
pub mod offline;
pub mod ope_study;
pub mod plan;
pub mod prepared;
pub mod registry;
pub mod report;
pub mod rliable;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod sweep;
pub mod verify;

pub use checkpoints::{CheckpointEval, CheckpointEvals, evaluate_checkpoints};
pub use execution::{
    Done, Finished, RunOptions, ShardFinished, Started, execute, merge, reproduce, reproduce_runs,
    start,
};
use prepared::Prepared;
use registry::Registry;
use scenario::ScenarioError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::{
    fs,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};
use thiserror::Error;

/// The resolved scenario's file name inside a run folder.
pub const SCENARIO_FILE: &str = "scenario.toml";

/// The folder of a run folder that keeps copies of its input files.
pub const INPUT_DIR: &str = "inputs";

/// What can stop the harness.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// The scenario was refused.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file of a run folder could not be written (a full disk, a
    /// folder made read-only during the run).
    #[error("{path}: could not write {what}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What it is (`the CSV table`, `the manifest`).
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A CSV table could not be written.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A chart could not be drawn or written.
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
    /// A folder is not a run folder.
    #[error("{0}: not a run folder (no {SCENARIO_FILE} in it)")]
    NotARun(PathBuf),
    /// A checkpoint could not be used.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The checkpoint file (or the folder that lacks one).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A run folder's manifest could not be read.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and validates a scenario file against `registry`, within the
/// limits of this machine ([`budget::Limits::from_machine`]).
pub fn load(file: &Path, registry: &Registry) -> Result<Prepared, ScenarioError> {
    load_with(file, registry, &budget::Limits::from_machine())
}

/// Reads and validates a scenario file against `registry`, refusing it when
/// its estimated memory or work is over `limits`.
pub fn load_with(
    file: &Path,
    registry: &Registry,
    limits: &budget::Limits,
) -> Result<Prepared, ScenarioError> {
    Prepared::with_limits(scenario::read(file, registry)?, file, limits)
}

/// Checks the scenario's env by the rules of [`shoplab_env::checker`]:
/// `episodes` random-action episodes from seeds derived from the scenario's
/// first seed, and determinism against a second instance.
pub fn check_env(
    prepared: &Prepared,
    episodes: usize,
) -> Result<shoplab_env::checker::CheckSummary, shoplab_env::checker::CheckError> {
    let seed = shoplab_env::seed::derive_seed(prepared.scenario.run.seeds[0], "check", 0);
    shoplab_env::checker::check_env(
        &mut prepared.make_env(),
        &mut prepared.make_env(),
        seed,
        episodes,
    )
}

/// Reads and validates the resolved scenario saved in run folder `dir`.
pub fn load_run(dir: &Path, registry: &Registry) -> Result<Prepared, HarnessError> {
    load_run_with(dir, registry, &budget::Limits::from_machine())
}

/// Reads and validates the resolved scenario saved in run folder `dir`
/// within `limits`.
pub fn load_run_with(
    dir: &Path,
    registry: &Registry,
    limits: &budget::Limits,
) -> Result<Prepared, HarnessError> {
    let file = dir.join(SCENARIO_FILE);
    if !file.is_file() {
        return Err(HarnessError::NotARun(dir.to_path_buf()));
    }
    Ok(load_with(&file, registry, limits)?)
}

/// The folder of checkpoints inside a run folder.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// The checkpoint file of `policy` trained on `seed`, relative to the run folder.
pub fn checkpoint_name(policy: &str, seed: u64) -> String {
    format!("{CHECKPOINT_DIR}/{policy}-seed{seed}.safetensors")
}

/// `YYYYMMDD-HHMMSS` in UTC for a Unix time (Hinnant's civil-from-days).
pub(crate) fn utc_stamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[derive(Serialize)]
pub(crate) struct ManifestFile {
    name: String,
    bytes: usize,
    sha256: String,
}

/// Checks, before any work, that run folders can be written under
/// `parent`: creates it if need be, then creates and removes a probe file,
/// so an unwritable results location is refused at once rather than after
/// the runs.
pub fn check_writable(parent: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(parent).map_err(io(parent))?;
    let probe = parent.join(format!(".write-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(io(&probe))?;
    fs::remove_file(&probe).map_err(io(&probe))
}

/// Writes the run folder of a command other than a scenario run (`ope`,
/// `ope-study`) under `parent`, as [`execute`] writes a run's: claimed,
/// built under a hidden name and renamed whole, never over an earlier
/// one. It holds the `tables` (name, bytes), the charts `draw` puts into
/// the folder (returning their names), and `manifest.json`: the command's
/// own `fields`, then the version, run id, time, every table's size and
/// SHA-256 and the charts. Returns the folder.
pub fn publish_folder(
    parent: &Path,
    tables: &[(String, Vec<u8>)],
    draw: &dyn Fn(&Path) -> Result<Vec<String>, charts::ChartError>,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<PathBuf, HarnessError> {
    check_writable(parent)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = utc_stamp(now);
    let claim = folder::claim(parent, &stamp)?;
    let result = (|| {
        let mut written = Vec::new();
        let files = write_hashed(&claim.staging, tables, "the CSV table", &mut written)?;
        let charts = folder::step(|| draw(&claim.staging))?;
        let mut manifest = fields;
        manifest.insert("shoplab_version".into(), env!("CARGO_PKG_VERSION").into());
        manifest.insert("run_id".into(), claim.id.clone().into());
        manifest.insert("created_utc".into(), stamp.clone().into());
        manifest.insert(
            "csv_files".into(),
            serde_json::to_value(&files).expect("the file list serialises"),
        );
        manifest.insert("charts".into(), charts.into());
        let path = claim.staging.join("manifest.json");
        let json = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
        write_file(&path, (json + "\n").as_bytes(), "the manifest")?;
        folder::publish(&claim)
    })();
    if result.is_err() {
        folder::abandon(&claim);
    }
    result.map(|()| claim.dir)
}

/// Writes `bytes` to `path` (`what` it is, for the error) as one step of
/// writing a run folder ([`folder::step`]).
pub(crate) fn write_file(
    path: &Path,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), HarnessError> {
    folder::step(|| fs::write(path, bytes)).map_err(|source| HarnessError::Write {
        path: path.to_path_buf(),
        what,
        source,
    })
}

/// Writes each `(name, bytes)` under `folder`, adds its name to `written`,
/// and returns its manifest entry (size and SHA-256).
pub(crate) fn write_hashed(
    folder: &Path,
    files: &[(String, Vec<u8>)],
    what: &'static str,
    written: &mut Vec<String>,
) -> Result<Vec<ManifestFile>, HarnessError> {
    files
        .iter()
        .map(|(name, bytes)| {
            let path = folder.join(name);
            if let Some(parent) = path.parent().filter(|p| !p.is_dir()) {
                folder::step(|| fs::create_dir_all(parent)).map_err(|source| {
                    HarnessError::Write {
                        path: parent.to_path_buf(),
                        what: "a folder of the run",
                        source,
                    }
                })?;
            }
            write_file(&path, bytes, what)?;
            written.push(name.clone());
            Ok(ManifestFile {
                name: name.clone(),
                bytes: bytes.len(),
                sha256: format!("{:x}", Sha256::digest(bytes)),
            })
        })
        .collect()
}

/// The comparison of one CSV file on reproduction.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// The file name.
    pub name: String,
    /// Identical to the byte.
    pub identical: bool,
    /// What differs, for people.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(super::utc_stamp(0), "19700101-000000");
        assert_eq!(super::utc_stamp(1_795_941_330), "20261129-083530");
        assert_eq!(super::utc_stamp(1_709_251_199), "20240229-235959");
    }
}
