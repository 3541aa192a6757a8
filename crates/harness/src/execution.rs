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
    HarnessError, INPUT_DIR, ManifestFile, SCENARIO_FILE, charts, checkpoint_name, folder,
    jobs::{JOBS_DIR, JobStore, Shard},
    plan::{Job, Runs},
    prepared::Prepared,
    registry::Registry,
    report::{self, Report, sweep::SweepReport},
    runner::{self, RunResult},
    sweep::SweepMethod,
    utc_stamp, write_file, write_hashed,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

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
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write_error(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> HarnessError {
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

/// Creates shard folder `dir` (its resolved scenario and inputs, for
/// [`merge`]), or takes over an interrupted one of the same plan with
/// `resume`.
fn start_shard(
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
    let (scenario, inputs) = kept_inputs(runs.base)?;
    write_hashed(dir, &inputs, "an input file", &mut files)?;
    write_file(
        &dir.join(SCENARIO_FILE),
        scenario.as_bytes(),
        "the resolved scenario",
    )
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
fn publish(
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

/// What a shard folder's `shard.json` records.
#[derive(Debug, Serialize, Deserialize)]
struct ShardRecord {
    shoplab_version: String,
    scenario: String,
    identity: String,
    shard: u32,
    shards: u32,
    jobs: usize,
    failures: usize,
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
    let stamp = utc_stamp(now());
    let claim = folder::claim(&parent, &stamp)?;
    let from: Vec<String> = shards.iter().map(|d| d.display().to_string()).collect();
    publish(runs, results, &claim, &stamp, 0.0, &from)
}

/// The files of a run, computed from its results.
struct Output {
    reports: Vec<Report>,
    sweep: Option<SweepReport>,
    csv: Vec<(String, Vec<u8>)>,
    checkpoints: Vec<(String, Vec<u8>)>,
}

/// The reports and files of `results`, every job of `runs` in job order:
/// a single scenario's tables at the top of the folder; a sweep's own
/// tables there and each configuration's under `configs/<id>/`.
fn output(runs: Runs<'_>, results: Vec<RunResult>) -> Result<Output, HarnessError> {
    let all = runs.all();
    let mut grouped: Vec<Vec<RunResult>> = all.iter().map(|_| Vec::new()).collect();
    for (job, result) in runs.jobs().iter().zip(results) {
        grouped[job.config].push(result);
    }
    let mut out = Output {
        reports: Vec::new(),
        sweep: None,
        csv: Vec::new(),
        checkpoints: Vec::new(),
    };
    for (c, (prepared, results)) in all.iter().zip(&grouped).enumerate() {
        let prefix = match runs.configs.get(c) {
            Some((conf, _)) => format!("configs/{}/", conf.id),
            None => String::new(),
        };
        let report = report::build(prepared, results);
        for (name, bytes) in report::csv_files(prepared, results, &report)? {
            out.csv.push((format!("{prefix}{name}"), bytes));
        }
        for r in results {
            if let Some(bytes) = &r.checkpoint {
                let name = checkpoint_name(&prepared.names[r.policy], r.seed);
                out.checkpoints
                    .push((format!("{prefix}{name}"), bytes.clone()));
            }
        }
        out.reports.push(report);
    }
    if runs.is_sweep() {
        let configurations: Vec<_> = runs.configs.iter().map(|(c, _)| c.clone()).collect();
        let sweep = report::sweep::build(runs.base, &configurations, &out.reports);
        let slices: Vec<&[RunResult]> = grouped.iter().map(Vec::as_slice).collect();
        let mut tables = report::sweep::csv_files(&sweep, &all, &slices)?;
        tables.append(&mut out.csv);
        out.csv = tables;
        out.sweep = Some(sweep);
    }
    Ok(out)
}

#[derive(Serialize)]
struct Manifest<'a> {
    shoplab_version: &'static str,
    scenario: &'a str,
    scenario_source: String,
    run_id: String,
    created_utc: String,
    seeds: &'a [u64],
    episodes: u32,
    policies: &'a [String],
    oracle_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    merged_from: &'a [String],
    threads: usize,
    machine: Machine,
    run_seconds: f64,
    failures: Vec<String>,
    warnings: Vec<String>,
    scenario_sha256: String,
    csv_files: Vec<ManifestFile>,
    checkpoints: Vec<ManifestFile>,
    inputs: Vec<ManifestFile>,
    charts: Vec<String>,
    reproduce: String,
}

/// The machine a run ran on, as its manifest records it.
#[derive(Serialize)]
struct Machine {
    os: &'static str,
    arch: &'static str,
    cpus: usize,
    cpu: String,
}

impl Machine {
    fn here() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
        }
    }
}

/// A file of a run folder: its name relative to the folder, and its bytes.
type NamedBytes = (String, Vec<u8>);

/// The resolved scenario of `prepared` as kept with a run — its input
/// files under `inputs/`, paths relative to the scenario — and those files.
fn kept_inputs(prepared: &Prepared) -> Result<(String, Vec<NamedBytes>), HarnessError> {
    let mut resolved = prepared.scenario.clone();
    let mut inputs: Vec<(String, PathBuf)> = Vec::new();
    resolved.map_input_paths(&mut |_, source| {
        let stem = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into());
        let mut name = stem.clone();
        let mut k = 2;
        while inputs.iter().any(|(n, s)| *n == name && s != source) {
            name = format!("{k}-{stem}");
            k += 1;
        }
        if !inputs.iter().any(|(n, _)| *n == name) {
            inputs.push((name.clone(), source.to_path_buf()));
        }
        PathBuf::from(INPUT_DIR).join(name)
    });
    let files = inputs
        .iter()
        .map(|(name, source)| {
            let bytes = folder::step(|| fs::read(source)).map_err(|e| HarnessError::Write {
                path: source.clone(),
                what: "an input file (reading it to keep with the run)",
                source: e,
            })?;
            Ok((format!("{INPUT_DIR}/{name}"), bytes))
        })
        .collect::<Result<_, HarnessError>>()?;
    Ok((resolved.to_toml(), files))
}

/// Writes the run's files into the claimed partial folder, manifest last;
/// the names written.
fn write_folder(
    runs: Runs<'_>,
    output: &Output,
    claim: &folder::Claim,
    stamp: &str,
    run_seconds: f64,
    merged_from: &[String],
) -> Result<Vec<String>, HarnessError> {
    let prepared = runs.base;
    let staging = &claim.staging;
    let mut files = vec![SCENARIO_FILE.to_string()];
    let (scenario_text, input_files) = kept_inputs(prepared)?;
    let input_manifest = write_hashed(staging, &input_files, "an input file", &mut files)?;
    write_file(
        &staging.join(SCENARIO_FILE),
        scenario_text.as_bytes(),
        "the resolved scenario",
    )?;
    let manifest_files = write_hashed(staging, &output.csv, "the CSV table", &mut files)?;
    let checkpoint_files =
        write_hashed(staging, &output.checkpoints, "the checkpoint", &mut files)?;
    let mut charts = Vec::new();
    for (c, report) in output.reports.iter().enumerate() {
        let (dir, prefix) = match runs.configs.get(c) {
            Some((conf, _)) => (
                staging.join("configs").join(&conf.id),
                format!("configs/{}/", conf.id),
            ),
            None => (staging.clone(), String::new()),
        };
        folder::step(|| fs::create_dir_all(&dir))
            .map_err(write_error(&dir, "a folder of the run"))?;
        let drawn = folder::step(|| charts::draw_all(report, &dir))?;
        charts.extend(drawn.into_iter().map(|name| format!("{prefix}{name}")));
    }
    if let Some(sweep) = &output.sweep {
        let grid = prepared
            .scenario
            .sweep
            .as_ref()
            .is_none_or(|s| s.method == SweepMethod::Grid);
        let chart = charts::SensitivityChart { sweep, grid };
        charts.extend(folder::step(|| chart.save(staging))?);
    }
    files.extend(charts.iter().cloned());
    let sweep = runs.is_sweep().then(|| {
        let spec = prepared.scenario.sweep.as_ref();
        serde_json::json!({
            "method": spec.map(|s| s.method),
            "keys": runs.configs[0].0.values.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "configurations": runs.configs.iter().map(|(c, _)| {
                let values: serde_json::Map<String, serde_json::Value> = c
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                    .collect();
                serde_json::json!({ "id": c.id, "values": values })
            }).collect::<Vec<_>>(),
        })
    });
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for (c, report) in output.reports.iter().enumerate() {
        let prefix = runs
            .configs
            .get(c)
            .map(|(conf, _)| format!("{}: ", conf.id))
            .unwrap_or_default();
        failures.extend(
            report
                .failures
                .iter()
                .map(|(p, s, r)| format!("{prefix}{p} seed {s}: {r}")),
        );
        warnings.extend(report.warnings.iter().map(|w| format!("{prefix}{w}")));
    }
    let manifest = Manifest {
        shoplab_version: env!("CARGO_PKG_VERSION"),
        scenario: &prepared.scenario.name,
        scenario_source: prepared.source.display().to_string(),
        run_id: claim.id.clone(),
        created_utc: stamp.to_string(),
        seeds: &prepared.scenario.run.seeds,
        episodes: prepared.scenario.run.episodes,
        policies: &prepared.names,
        oracle_value: output.reports[0].optimal_value.filter(|_| !runs.is_sweep()),
        sweep,
        merged_from,
        threads: rayon::current_num_threads(),
        machine: Machine::here(),
        run_seconds,
        failures,
        warnings,
        scenario_sha256: format!("{:x}", Sha256::digest(scenario_text.as_bytes())),
        csv_files: manifest_files,
        checkpoints: checkpoint_files,
        inputs: input_manifest,
        charts,
        reproduce: format!("shoplab reproduce {}", claim.dir.display()),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
    write_file(
        &staging.join(crate::verify::MANIFEST_FILE),
        (json + "\n").as_bytes(),
        "the manifest",
    )?;
    files.push(crate::verify::MANIFEST_FILE.into());
    Ok(files)
}

/// Re-runs `prepared`, the resolved scenario saved in run folder `dir` (see
/// [`crate::load_run`]), and compares every CSV file and checkpoint it
/// produces with the folder's, byte for byte. Writes nothing.
pub fn reproduce(
    prepared: &Prepared,
    dir: &Path,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> Result<Vec<crate::FileCheck>, HarnessError> {
    reproduce_runs(Runs::single(prepared), dir, progress)
}

/// [`reproduce`] for a plan's configurations (a sweep's run folder).
pub fn reproduce_runs(
    runs: Runs<'_>,
    dir: &Path,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> Result<Vec<crate::FileCheck>, HarnessError> {
    let results = runner::run_jobs(runs, &runs.jobs(), progress, &|_, _| {});
    let output = output(runs, results)?;
    let mut checks = Vec::new();
    for (name, bytes) in output.csv.iter().chain(&output.checkpoints) {
        checks.push(compare_file(dir, name, bytes));
    }
    Ok(checks)
}

/// `name` in `dir` against `bytes`.
fn compare_file(dir: &Path, name: &str, bytes: &[u8]) -> crate::FileCheck {
    let path = dir.join(name);
    let (identical, detail) =
        match shoplab_env::input::read_regular_file(&path, shoplab_env::input::MAX_DATA_BYTES) {
            Ok(old) if old == bytes => (true, format!("{} bytes, identical", bytes.len())),
            Ok(old) => {
                let line = old
                    .split(|&b| b == b'\n')
                    .zip(bytes.split(|&b| b == b'\n'))
                    .position(|(a, b)| a != b)
                    .map_or_else(
                        || "in length".to_string(),
                        |i| format!("first at line {}", i + 1),
                    );
                (
                    false,
                    format!("differs {line} ({} vs {} bytes)", old.len(), bytes.len()),
                )
            }
            Err(e) => (false, format!("missing from the run folder: {e}")),
        };
    crate::FileCheck {
        name: name.to_string(),
        identical,
        detail,
    }
}
