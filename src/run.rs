//! `shoplab run`, `merge` and `reproduce`: a scenario's jobs run (all,
//! resumed, or one shard of them), shard folders merged into a run
//! folder, and a run folder re-run and compared byte for byte.

use crate::{
    Loader, Outcome, progress,
    summary::{print_footer, print_summary, print_sweep},
};
use anyhow::{Context, Result, bail};
use shoplab_harness::{Done, RunOptions, jobs::Shard, plan::Runs};
use std::path::{Path, PathBuf};

/// How `run` splits and continues its jobs.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct HowToRun {
    /// Continue the interrupted run of the same scenario (or, with
    /// --shard, the same shard) from its finished jobs.
    #[arg(long)]
    resume: bool,
    /// Run only shard K of N — a fixed 1/N of the (configuration, policy,
    /// seed) jobs — into `<results>/<scenario>/shard-K-of-N/`, for
    /// `shoplab merge`.
    #[arg(long, value_parser = Shard::parse, value_name = "K/N")]
    shard: Option<Shard>,
}

/// `shoplab run FILE`: every job of the scenario (or one shard of them).
pub(crate) fn run_file(
    file: &Path,
    results: &Path,
    quiet: bool,
    how: &HowToRun,
    loader: &Loader<'_>,
) -> Result<Outcome> {
    let plan = loader.load_plan(file, how.shard.map_or(1, |s| s.count))?;
    let runs = plan.runs();
    let base = &plan.base;
    let run = &base.scenario.run;
    let configs = if runs.is_sweep() {
        format!("{} configurations × ", plan.configs.len())
    } else {
        String::new()
    };
    println!(
        "{}: {configs}{} policies × {} seeds × {} episodes on {} threads",
        base.scenario.name,
        base.names.len(),
        run.seeds.len(),
        run.episodes,
        rayon::current_num_threads()
    );
    if how.shard.is_none() && !how.resume {
        let parent = results.join(&base.scenario.name);
        for (dir, what) in shoplab_harness::folder::clean_stale(&parent) {
            eprintln!("{}: {what}", dir.display());
        }
    }
    let options = RunOptions {
        resume: how.resume,
        shard: how.shard,
    };
    let started = shoplab_harness::start(runs, results, &options)?;
    for note in &started.notes {
        eprintln!("note: {note}");
    }
    let pending = started.pending();
    if started.resumed() > 0 {
        println!(
            "resuming: {} job(s) finished before, {} to run",
            started.resumed(),
            pending.len()
        );
    }
    let bar = progress::progress_bar(runs, &pending, quiet);
    let done = started.finish(&progress::with_eta(&bar, runs, &pending))?;
    bar.finish_and_clear();
    match done {
        Done::Shard(shard) => {
            for note in &shard.notes {
                eprintln!("note: {note}");
            }
            println!(
                "shard {}: {} job(s) ({} resumed), {} failed, in {:.1} s",
                shard.shard, shard.jobs, shard.resumed, shard.failures, shard.run_seconds
            );
            println!("wrote {}/", shard.dir.display());
            println!(
                "when every shard is done: shoplab merge {}",
                shard
                    .dir
                    .with_file_name(format!("shard-*-of-{}", shard.shard.count))
                    .display()
            );
            Ok(match shard.failures {
                0 => Outcome::Done,
                n => Outcome::RunsFailed(n),
            })
        }
        Done::Run(finished) => Ok(print_finished(&finished)),
    }
}

/// Prints a finished run folder's notes, summary and files; how it ended.
fn print_finished(finished: &shoplab_harness::Finished) -> Outcome {
    for note in &finished.notes {
        eprintln!("note: {note}");
    }
    match &finished.sweep {
        Some(sweep) => print_sweep(sweep),
        None => print_summary(&finished.report),
    }
    print_footer(finished);
    match finished.failures {
        0 => Outcome::Done,
        n => Outcome::RunsFailed(n),
    }
}

/// `shoplab merge SHARD…`: the run folder of a sharded run.
pub(crate) fn merge(shards: &[PathBuf], results: &Path, loader: &Loader<'_>) -> Result<Outcome> {
    let finished = shoplab_harness::merge(shards, results, loader.registry, &loader.limits)?;
    println!("merged {} shards", shards.len());
    Ok(print_finished(&finished))
}

/// `shoplab reproduce DIR`: verifies a run folder, re-runs it and compares its files.
pub(crate) fn reproduce(dir: &Path, quiet: bool, loader: &Loader<'_>) -> Result<()> {
    crate::verify(dir)?;
    let file = dir.join(shoplab_harness::SCENARIO_FILE);
    if !file.is_file() {
        bail!(
            "{}: not a run folder (no scenario.toml in it)",
            dir.display()
        );
    }
    let plan = loader
        .load_plan(&file, 1)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} is not a reproducible run folder", dir.display()))?;
    let runs: Runs<'_> = plan.runs();
    let jobs = runs.jobs();
    let bar = progress::progress_bar(runs, &jobs, quiet);
    let checks =
        shoplab_harness::reproduce_runs(runs, dir, &progress::with_eta(&bar, runs, &jobs))?;
    bar.finish_and_clear();
    let mut all = true;
    for c in &checks {
        println!(
            "{} {:<20} {}",
            if c.identical { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
        all &= c.identical;
    }
    if !all {
        bail!(
            "{}: reproduction differs from the run folder",
            dir.display()
        );
    }
    println!("reproduced: every CSV and checkpoint is byte-identical");
    Ok(())
}

/// `shoplab report DIR`: the run folder as one HTML page.
pub(crate) fn report(dir: &Path, out: Option<PathBuf>) -> Result<()> {
    let page = shoplab_harness::html::render(dir)?;
    let out = match out {
        Some(out) => out,
        None => {
            let id = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            dir.with_file_name(format!("{id}.html"))
        }
    };
    // Written aside and linked into place: never over an existing file.
    let temp = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&temp, &page).with_context(|| format!("{}: could not write", temp.display()))?;
    let linked = std::fs::hard_link(&temp, &out);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{}: exists; the report is never written over a file (choose --out)",
                out.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("{}: could not write", out.display())),
    }
    println!(
        "wrote {} ({} KiB): open it in a browser",
        out.display(),
        page.len() / 1024
    );
    Ok(())
}
