//! Running a plan's jobs and writing what they produce: run folders,
//! shard folders, merges and reproductions.
//!
//! [`start`] settles where a run's results go before any work — a new run
//! folder (claimed, built under a hidden name), a partial one left by an
//! interrupted run of the same scenario (`resume`), or a shard folder —
//! and which jobs are still to run; [`Started::finish`] runs them, each
//! finished job written at once ([`crate::jobs`]), and writes the folder.
//! The tables come from the results in job order, never in the order jobs
//! finished, so a resumed run, a merge of shards and an uninterrupted run
//! write the same bytes.

use crate::{
    HarnessError, folder,
    jobs::{JOBS_DIR, JobStore, Shard},
    plan::{Job, Runs},
    prepared::Prepared,
    report::{Report, sweep::SweepReport},
    runner::{self, RunResult},
    utc_stamp, write_file,
};
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

mod shards;
mod write;
pub use shards::merge;
use shards::{ShardRecord, start_shard};
use write::{output, write_folder};
pub use write::{reproduce, reproduce_runs};

/// The file that marks a shard folder complete.
pub const SHARD_FILE: &str = "shard.json";

/// How a run starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Continue the interrupted run (or shard) of the same scenario from
    /// its finished jobs.
    pub resume: bool,
    /// Run only this shard of the jobs, into a shard folder.
    pub shard: Option<Shard>,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    /// The run folder.
    pub dir: PathBuf,
    /// What it reports (for a sweep, its first configuration's report).
    pub report: Report,
    /// For a sweep: every configuration's final scores.
    pub sweep: Option<SweepReport>,
    /// Runs that failed, over every configuration.
    pub failures: usize,
    /// Files written, by name.
    pub files: Vec<String>,
    /// Seconds spent running (not writing) in this process.
    pub run_seconds: f64,
    /// What the run noticed on the way (job files it could not use or save).
    pub notes: Vec<String>,
}

/// A finished shard.
#[derive(Debug)]
pub struct ShardFinished {
    /// The shard folder.
    pub dir: PathBuf,
    /// The shard.
    pub shard: Shard,
    /// Its jobs.
    pub jobs: usize,
    /// Of which were finished by an earlier, interrupted process.
    pub resumed: usize,
    /// Runs that failed.
    pub failures: usize,
    /// Seconds spent running in this process.
    pub run_seconds: f64,
    /// What the run noticed on the way.
    pub notes: Vec<String>,
}

/// What [`Started::finish`] produced.
#[derive(Debug)]
pub enum Done {
    /// A run folder.
    Run(Box<Finished>),
    /// A shard folder, for [`merge`].
    Shard(ShardFinished),
}

enum Target {
    Folder { claim: folder::Claim, stamp: String },
    Shard { dir: PathBuf, shard: Shard },
}

/// A run whose destination is settled and whose remaining jobs are known.
pub struct Started<'a> {
    runs: Runs<'a>,
    target: Target,
    store: JobStore,
    jobs: Vec<Job>,
    done: BTreeMap<Job, RunResult>,
    /// What the start found (job files it could not use).
    pub notes: Vec<String>,
}

/// The Unix time now, in whole seconds.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn write_error(
    path: &Path,
    what: &'static str,
) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_path_buf();
    move |source| HarnessError::Write { path, what, source }
}

/// Settles where the results of `runs` go under `root` and which jobs are
/// left, before any work: see [`RunOptions`].
pub fn start<'a>(
    runs: Runs<'a>,
    root: &Path,
    options: &RunOptions,
) -> Result<Started<'a>, HarnessError> {
    let parent = root.join(&runs.base.scenario.name);
    crate::check_writable(&parent)?;
    let identity = runs.identity();
    let all = runs.jobs();
    let (target, staging, jobs, mut notes) = match options.shard {
        None => {
            let resumed = if options.resume {
                folder::resume(&parent, &identity)?
            } else {
                None
            };
            let mut notes = Vec::new();
            let (claim, stamp) = match resumed {
                Some(found) => found,
                None => {
                    if options.resume {
                        notes.push(format!(
                            "nothing to resume under {}: the run starts afresh",
                            parent.display()
                        ));
                    }
                    // The run id is the time the run starts.
                    let stamp = utc_stamp(now());
                    (folder::claim(&parent, &stamp)?, stamp)
                }
            };
            let path = claim.staging.join(folder::IDENTITY_FILE);
            write_file(
                &path,
                format!("{identity}\n{stamp}\n").as_bytes(),
                "the run's identity",
            )?;
            let staging = claim.staging.clone();
            (Target::Folder { claim, stamp }, staging, all, notes)
        }
        Some(shard) => {
            let dir = parent.join(format!("shard-{}-of-{}", shard.index, shard.count));
            start_shard(runs, &dir, &identity, options.resume)?;
            let jobs = shard.select(&all);
            (
                Target::Shard {
                    dir: dir.clone(),
                    shard,
                },
                dir,
                jobs,
                Vec::new(),
            )
        }
    };
    let store = JobStore::new(staging.join(JOBS_DIR), runs.identities());
    folder::step(|| fs::create_dir_all(store.dir()))
        .map_err(write_error(store.dir(), "the jobs folder"))?;
    let (done, found) = store.finished(&jobs);
    notes.extend(found);
    Ok(Started {
        runs,
        target,
        store,
        jobs,
        done,
        notes,
    })
}

impl Started<'_> {
    /// The jobs still to run.
    pub fn pending(&self) -> Vec<Job> {
        self.jobs
            .iter()
            .filter(|j| !self.done.contains_key(j))
            .copied()
            .collect()
    }

    /// Jobs finished by an earlier, interrupted process.
    pub fn resumed(&self) -> usize {
        self.done.len()
    }

    /// The configurations run.
    pub fn runs(&self) -> Runs<'_> {
        self.runs
    }

    /// Runs the jobs left, writing each as it finishes, then writes the
    /// run folder (or completes the shard folder).
    pub fn finish(
        mut self,
        progress: &(dyn Fn(crate::eta::Progress) + Sync),
    ) -> Result<Done, HarnessError> {
        let pending = self.pending();
        let unsaved = Mutex::new(Vec::new());
        let started = Instant::now();
        let fresh = runner::run_jobs(self.runs, &pending, progress, &|job, result| {
            if let Err(e) = self.store.save(job, result) {
                unsaved
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{}: {e}", self.store.file(job).display()));
            }
        });
        let run_seconds = started.elapsed().as_secs_f64();
        let unsaved = unsaved.into_inner().unwrap_or_else(|e| e.into_inner());
        let resumed = self.done.len();
        self.done.extend(pending.into_iter().zip(fresh));
        let mut notes = std::mem::take(&mut self.notes);
        match self.target {
            Target::Shard { dir, shard } => {
                if let Some(first) = unsaved.first() {
                    return Err(HarnessError::Manifest {
                        path: dir,
                        reason: format!(
                            "{} job result(s) could not be saved (first: {first}); \
                             run the shard again with --resume",
                            unsaved.len()
                        ),
                    });
                }
                let failures = self.done.values().filter(|r| r.failure.is_some()).count();
                let record = ShardRecord {
                    shoplab_version: env!("CARGO_PKG_VERSION").into(),
                    scenario: self.runs.base.scenario.name.clone(),
                    identity: self.runs.identity(),
                    shard: shard.index,
                    shards: shard.count,
                    jobs: self.jobs.len(),
                    failures,
                };
                let json = serde_json::to_string_pretty(&record).expect("the record serialises");
                let temp = dir.join(format!(".{SHARD_FILE}.tmp"));
                write_file(&temp, (json + "\n").as_bytes(), "the shard record")?;
                fs::rename(&temp, dir.join(SHARD_FILE))
                    .map_err(write_error(&dir, "the shard record"))?;
                folder::disown(&dir);
                Ok(Done::Shard(ShardFinished {
                    dir,
                    shard,
                    jobs: self.jobs.len(),
                    resumed,
                    failures,
                    run_seconds,
                    notes,
                }))
            }
            Target::Folder { claim, stamp } => {
                notes.extend(unsaved.into_iter().map(|u| {
                    format!("could not save a finished job for resuming ({u}); the run went on")
                }));
                let results: Vec<RunResult> = self.done.into_values().collect();
                let written = publish(self.runs, results, &claim, &stamp, run_seconds, &[]);
                let mut finished = written?;
                finished.notes = notes;
                Ok(Done::Run(Box::new(finished)))
            }
        }
    }
}

/// Writes the run folder of `results` (every job of `runs`, in job order)
/// into `claim` and publishes it; abandons the claim on failure.
pub(super) fn publish(
    runs: Runs<'_>,
    results: Vec<RunResult>,
    claim: &folder::Claim,
    stamp: &str,
    run_seconds: f64,
    merged_from: &[String],
) -> Result<Finished, HarnessError> {
    let written = (|| {
        let output = output(runs, results)?;
        let files = write_folder(runs, &output, claim, stamp, run_seconds, merged_from)?;
        for hidden in [JOBS_DIR, folder::IDENTITY_FILE] {
            let path = claim.staging.join(hidden);
            let _ = folder::step(|| {
                if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
            });
        }
        folder::publish(claim)?;
        let failures = output.reports.iter().map(|r| r.failures.len()).sum();
        Ok(Finished {
            dir: claim.dir.clone(),
            report: output
                .reports
                .into_iter()
                .next()
                .expect("a plan has a configuration"),
            sweep: output.sweep,
            failures,
            files,
            run_seconds,
            notes: Vec::new(),
        })
    })();
    if written.is_err() {
        folder::abandon(claim);
    }
    written
}

/// Runs a prepared scenario and writes its run folder under
/// `results_root/<scenario>/`. The folder is built under a hidden name and
/// renamed into place at the end, so it appears whole or not at all. The
/// location is checked writable before the runs start.
pub fn execute(
    prepared: &Prepared,
    results_root: &Path,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> Result<Finished, HarnessError> {
    match start(Runs::single(prepared), results_root, &RunOptions::default())?.finish(progress)? {
        Done::Run(finished) => Ok(*finished),
        Done::Shard(_) => unreachable!("no shard was asked for"),
    }
}
