//! What a run folder holds, computed from its results, and how it is
//! written (and, for `reproduce`, compared).

use super::{Runs, write_error};
use crate::{
    HarnessError, INPUT_DIR, ManifestFile, SCENARIO_FILE, charts, checkpoint_name, folder,
    prepared::Prepared,
    report::{self, Report, sweep::SweepReport},
    runner::{self, RunResult},
    sweep::SweepMethod,
    write_file, write_hashed,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::{
    fs,
    path::{Path, PathBuf},
};

/// The files of a run, computed from its results.
pub(super) struct Output {
    pub reports: Vec<Report>,
    pub sweep: Option<SweepReport>,
    pub csv: Vec<(String, Vec<u8>)>,
    pub checkpoints: Vec<(String, Vec<u8>)>,
}

/// The reports and files of `results`, every job of `runs` in job order:
/// a single scenario's tables at the top of the folder; a sweep's own
/// tables there and each configuration's under `configs/<id>/`.
pub(super) fn output(runs: Runs<'_>, results: Vec<RunResult>) -> Result<Output, HarnessError> {
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
pub(super) fn kept_inputs(prepared: &Prepared) -> Result<(String, Vec<NamedBytes>), HarnessError> {
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
pub(super) fn write_folder(
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
