//! Checking a run folder against its manifest: every file the manifest
//! lists is there with its recorded size and SHA-256, and nothing else is.
//!
//! `manifest.json` records the size and SHA-256 of every CSV, checkpoint
//! and input file kept with the run (`inputs/`: a catalog, an action table,
//! an offline log) and of the resolved `scenario.toml`, and the names of
//! the charts. A
//! folder verifies when each of those files exists as a regular file with
//! the recorded size and hash (charts: exists), and the folder holds no
//! other file. A manifest that does not parse, or lacks its lists, fails.
//! Verification proves the folder is as written; `reproduce` runs it first
//! and then proves the files are what the scenario produces.

use crate::{CHECKPOINT_DIR, HarnessError, SCENARIO_FILE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The manifest's name in a run folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A hashed file of the manifest.
#[derive(Debug, Deserialize)]
struct Hashed {
    name: String,
    bytes: u64,
    sha256: String,
}

/// The parts of a manifest that verification reads.
#[derive(Debug, Deserialize)]
struct Listed {
    csv_files: Vec<Hashed>,
    checkpoints: Vec<Hashed>,
    /// Absent in folders written before inputs were kept.
    #[serde(default)]
    inputs: Vec<Hashed>,
    charts: Vec<String>,
    /// Absent in folders written before it was recorded.
    #[serde(default)]
    scenario_sha256: Option<String>,
}

/// The parts of run folder `dir`'s manifest that verification reads.
fn read_manifest(dir: &Path) -> Result<Listed, HarnessError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text =
        shoplab_env::input::read_text_file(&manifest_path, shoplab_env::input::MAX_SCENARIO_BYTES)
            .map_err(|e| HarnessError::Manifest {
                path: manifest_path.clone(),
                reason: format!("the manifest {e}"),
            })?;
    serde_json::from_str(&text).map_err(|e| HarnessError::Manifest {
        path: manifest_path,
        reason: format!("the manifest does not read as a run manifest: {e}"),
    })
}

/// The checkpoints run folder `dir`'s manifest lists, as paths relative to
/// the folder (`checkpoints/dqn-seed1.safetensors`).
pub fn listed_checkpoints(dir: &Path) -> Result<Vec<String>, HarnessError> {
    Ok(read_manifest(dir)?
        .checkpoints
        .into_iter()
        .map(|h| h.name)
        .collect())
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verification {
    /// Files that matched the manifest.
    pub matched: usize,
    /// What does not: one line per file (`changed`, `missing`, `extra`).
    pub problems: Vec<String>,
}

impl Verification {
    /// True when every listed file matched and nothing else is there.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every regular file under `dir`, as paths relative to it.
fn files_under(dir: &Path, prefix: &Path, out: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let relative = prefix.join(entry.file_name());
        if kind.is_dir() {
            files_under(&entry.path(), &relative, out)?;
        } else {
            out.insert(relative);
        }
    }
    Ok(())
}

/// Checks run folder `dir` against its `manifest.json`.
pub fn verify(dir: &Path) -> Result<Verification, HarnessError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HarnessError::Io { path, source }
    };
    let listed = read_manifest(dir)?;
    let mut present = BTreeSet::new();
    files_under(dir, Path::new(""), &mut present).map_err(io(dir))?;
    let mut result = Verification::default();
    let mut expected: BTreeSet<PathBuf> = [MANIFEST_FILE, SCENARIO_FILE]
        .iter()
        .map(PathBuf::from)
        .collect();
    // Files are read only as regular files under the data limit: a link to
    // a device or a pipe is reported, never read.
    let read = |path: &Path| {
        shoplab_env::input::read_regular_file(path, shoplab_env::input::MAX_DATA_BYTES)
    };
    let mut check = |name: &str, hash: Option<(u64, &str)>, result: &mut Verification| {
        let path = dir.join(name);
        expected.insert(PathBuf::from(name));
        if std::fs::symlink_metadata(&path).is_err() {
            result.problems.push(format!("missing  {name}"));
            return;
        }
        match (read(&path), hash) {
            (Err(e), _) => result.problems.push(format!("unreadable {name}: it {e}")),
            (Ok(_), None) => result.matched += 1,
            (Ok(bytes), Some((size, sha))) => {
                let digest = format!("{:x}", Sha256::digest(&bytes));
                if bytes.len() as u64 == size && digest == sha {
                    result.matched += 1;
                } else {
                    result.problems.push(format!(
                        "changed  {name} ({} bytes, SHA-256 {digest}; the manifest says {size} bytes, {sha})",
                        bytes.len()
                    ));
                }
            }
        }
    };
    for f in listed
        .csv_files
        .iter()
        .chain(&listed.checkpoints)
        .chain(&listed.inputs)
    {
        check(&f.name, Some((f.bytes, &f.sha256)), &mut result);
    }
    for chart in &listed.charts {
        check(chart, None, &mut result);
    }
    match &listed.scenario_sha256 {
        Some(sha) => {
            let size = read(&dir.join(SCENARIO_FILE)).map_or(0, |b| b.len() as u64);
            check(SCENARIO_FILE, Some((size, sha)), &mut result);
        }
        None => check(SCENARIO_FILE, None, &mut result),
    }
    let checkpoint_dir = PathBuf::from(CHECKPOINT_DIR);
    for extra in present.difference(&expected) {
        // The checkpoint folder itself is not a file; anything in it is.
        if extra != &checkpoint_dir {
            result
                .problems
                .push(format!("extra    {}", extra.display()));
        }
    }
    Ok(result)
}
