//! Shard folders: started (or taken over to resume), recorded complete,
//! and merged into the run folder an unsharded run would have written.

use super::{Finished, SHARD_FILE, publish, write_error};
use crate::{
    HarnessError, SCENARIO_FILE, folder,
    jobs::{JOBS_DIR, JobStore, Shard},
    plan::Runs,
    registry::Registry,
    runner::RunResult,
    utc_stamp, write_file, write_hashed,
};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    path::{Path, PathBuf},
};

/// Creates shard folder `dir` (its resolved scenario and inputs, for
/// [`merge`]), or takes over an interrupted one of the same plan with
/// `resume`.
pub(super) fn start_shard(
    runs: Runs<'_>,
    dir: &Path,
    identity: &str,
    resume: bool,
) -> Result<(), HarnessError> {
    let refuse = |reason: String| HarnessError::Manifest {
        path: dir.to_path_buf(),
        reason,
    };
    if dir.exists() {
        if !resume {
            return Err(refuse(
                "the shard folder exists: continue it with --resume, or remove it".into(),
            ));
        }
        if folder::owner_alive(dir) {
            return Err(refuse("another process is running this shard".into()));
        }
        let found = fs::read_to_string(dir.join(folder::IDENTITY_FILE)).unwrap_or_default();
        if found.lines().next() != Some(identity) {
            return Err(refuse(
                "the shard folder holds another scenario's jobs (or another version's): \
                 remove it, or use another --results folder"
                    .into(),
            ));
        }
        return folder::own(dir);
    }
    fs::create_dir_all(dir).map_err(write_error(dir, "the shard folder"))?;
    folder::own(dir)?;
    write_file(
        &dir.join(folder::IDENTITY_FILE),
        format!("{identity}\n").as_bytes(),
        "the shard's identity",
    )?;
    let mut files = Vec::new();
    let (scenario, inputs) = super::write::kept_inputs(runs.base)?;
    write_hashed(dir, &inputs, "an input file", &mut files)?;
    write_file(
        &dir.join(SCENARIO_FILE),
        scenario.as_bytes(),
        "the resolved scenario",
    )
}

/// What a shard folder's `shard.json` records.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ShardRecord {
    pub shoplab_version: String,
    pub scenario: String,
    pub identity: String,
    pub shard: u32,
    pub shards: u32,
    pub jobs: usize,
    pub failures: usize,
}

/// Builds the run folder of a sharded run from its shard folders: every
/// shard of the same scenario present once and complete, every job's
/// result read back; the folder's tables are byte-identical to an
/// unsharded run's. The run id is the time of the merge.
pub fn merge(
    shards: &[PathBuf],
    root: &Path,
    registry: &Registry,
    limits: &crate::budget::Limits,
) -> Result<Finished, HarnessError> {
    let refuse = |path: &Path, reason: String| HarnessError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let mut records = Vec::new();
    for dir in shards {
        let path = dir.join(SHARD_FILE);
        let text =
            shoplab_env::input::read_text_file(&path, shoplab_env::input::MAX_SCENARIO_BYTES)
                .map_err(|e| {
                    refuse(
                        dir,
                        format!(
                            "not a finished shard ({SHARD_FILE} {e}); finish it with \
                         `shoplab run SCENARIO --shard K/N --resume`"
                        ),
                    )
                })?;
        let record: ShardRecord = serde_json::from_str(&text)
            .map_err(|e| refuse(&path, format!("not a shard record: {e}")))?;
        records.push(record);
    }
    let Some(first) = records.first() else {
        return Err(refuse(root, "no shard folders to merge".into()));
    };
    let count = first.shards;
    let mut seen = vec![None; count as usize];
    for (dir, r) in shards.iter().zip(&records) {
        if r.identity != first.identity || r.shards != count {
            return Err(refuse(
                dir,
                format!(
                    "a shard of another run: {} shard {}/{} (the first is {} shard {}/{})",
                    r.scenario, r.shard, r.shards, first.scenario, first.shard, count
                ),
            ));
        }
        match seen.get_mut(r.shard as usize - 1) {
            Some(Some(other)) => {
                return Err(refuse(
                    dir,
                    format!("shard {}/{count} is given twice (also {})", r.shard, other),
                ));
            }
            Some(slot) => *slot = Some(dir.display().to_string()),
            None => return Err(refuse(dir, format!("shard {} of {count}?", r.shard))),
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| seen[*k as usize - 1].is_none())
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(
            root,
            format!("shard(s) {} missing from the merge", missing.join(", ")),
        ));
    }
    let plan = crate::plan::load_plan(&shards[0].join(SCENARIO_FILE), registry, limits, count)?;
    let runs = plan.runs();
    if runs.identity() != first.identity {
        return Err(refuse(
            &shards[0],
            "the shards were run by another version of shoplab, or their inputs changed".into(),
        ));
    }
    let jobs = runs.jobs();
    let mut results: Vec<Option<RunResult>> = (0..jobs.len()).map(|_| None).collect();
    for (dir, r) in shards.iter().zip(&records) {
        let shard = Shard {
            index: r.shard,
            count,
        };
        let store = JobStore::new(dir.join(JOBS_DIR), runs.identities());
        let mine = shard.select(&jobs);
        let found = store.all(&mine).map_err(|e| refuse(dir, e))?;
        let positions =
            (0..jobs.len()).filter(|i| *i as u64 % u64::from(count) == u64::from(r.shard - 1));
        for (i, result) in positions.zip(found) {
            results[i] = Some(result);
        }
    }
    let results = results
        .into_iter()
        .map(|r| r.expect("every shard's jobs were read"))
        .collect();
    let parent = root.join(&runs.base.scenario.name);
    crate::check_writable(&parent)?;
    let stamp = utc_stamp(super::now());
    let claim = folder::claim(&parent, &stamp)?;
    let from: Vec<String> = shards.iter().map(|d| d.display().to_string()).collect();
    publish(runs, results, &claim, &stamp, 0.0, &from)
}
