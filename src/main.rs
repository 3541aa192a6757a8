//! The `shoplab` command line: run scenarios, reproduce runs, validate files.
//!
//! `anyhow` lives only here, at the binary's edge; the library crates return
//! typed errors.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use shoplab_harness::{Finished, prepared::Prepared, report::Report};
use std::path::{Path, PathBuf};

/// shoplab: a workbench for reinforcement learning in e-commerce.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file: every policy × every seed, in parallel.
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Where run folders go.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Run `scenarios/NAME.toml` (the benchmark scenarios shipped with shoplab).
    BenchScenario {
        /// Scenario name, such as `pricing`, or a path to a scenario file.
        name: String,
        /// Folder holding the scenario files [default: `scenarios/` here, else
        /// the repository's].
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// Where run folders go [default: `results/` beside the scenarios folder].
        #[arg(long)]
        results: Option<PathBuf>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Re-run a run folder's scenario and check every CSV comes out byte-identical.
    Reproduce {
        /// The run folder, `results/<scenario>/<run-id>`.
        dir: PathBuf,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// List the scenario files in a folder.
    List {
        /// Folder holding the scenario files.
        #[arg(default_value = "scenarios")]
        scenarios: PathBuf,
    },
    /// Check scenario files without running them.
    Validate {
        /// The scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            file,
            results,
            quiet,
        } => run_file(&file, &results, quiet),
        Command::BenchScenario {
            name,
            scenarios,
            results,
            quiet,
        } => {
            // Run from anywhere in the repository: fall back on the folders
            // beside this crate's manifest when the working directory has none.
            let root = if Path::new("scenarios").is_dir() {
                PathBuf::new()
            } else {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            };
            let scenarios = scenarios.unwrap_or_else(|| root.join("scenarios"));
            let results = results.unwrap_or_else(|| root.join("results"));
            let as_path = PathBuf::from(&name);
            let file = if as_path.extension().is_some_and(|e| e == "toml") {
                as_path
            } else {
                scenarios.join(format!("{name}.toml"))
            };
            if !file.is_file() {
                bail!(
                    "{}: no such scenario file (available: {})",
                    file.display(),
                    scenario_files(&scenarios)
                        .iter()
                        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            run_file(&file, &results, quiet)
        }
        Command::Reproduce { dir, quiet } => {
            let scenario = shoplab_harness::load(&dir.join(shoplab_harness::SCENARIO_FILE))
                .map_err(anyhow::Error::from)
                .with_context(|| format!("{} is not a reproducible run folder", dir.display()))?;
            let bar = progress_bar(&scenario, quiet);
            let checks = shoplab_harness::reproduce(&dir, &|n| bar.inc(n))?;
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
            println!("reproduced: every CSV is byte-identical");
            Ok(())
        }
        Command::List { scenarios } => {
            for file in scenario_files(&scenarios) {
                match shoplab_harness::scenario::read(&file) {
                    Ok(s) => println!(
                        "{:<42} {} policies × {} seeds × {} episodes  {}",
                        file.display(),
                        s.policies.len(),
                        s.run.seeds.len(),
                        s.run.episodes,
                        s.description.lines().next().unwrap_or("")
                    ),
                    Err(e) => println!("{:<42} INVALID: {e}", file.display()),
                }
            }
            Ok(())
        }
        Command::Validate { files } => {
            let mut failed = 0;
            for file in &files {
                match shoplab_harness::load(file) {
                    Ok(p) => println!(
                        "ok  {}: {} policies × {} seeds × {} episodes{}",
                        file.display(),
                        p.names.len(),
                        p.scenario.run.seeds.len(),
                        p.scenario.run.episodes,
                        p.optimal_value()
                            .map(|v| format!(", oracle expected return {v:.4}"))
                            .unwrap_or_default()
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} scenario files refused", files.len());
            }
            Ok(())
        }
    }
}

fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn progress_bar(prepared: &Prepared, quiet: bool) -> ProgressBar {
    let run = &prepared.scenario.run;
    let total = prepared.names.len() as u64 * run.seeds.len() as u64 * u64::from(run.episodes);
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} episodes ({per_sec}, eta {eta})",
        )
        .expect("the template is valid"),
    );
    bar
}

fn run_file(file: &Path, results: &Path, quiet: bool) -> Result<()> {
    let prepared = shoplab_harness::load(file)?;
    let run = &prepared.scenario.run;
    println!(
        "{}: {} policies × {} seeds × {} episodes on {} threads",
        prepared.scenario.name,
        prepared.names.len(),
        run.seeds.len(),
        run.episodes,
        rayon::current_num_threads()
    );
    let bar = progress_bar(&prepared, quiet);
    let finished = shoplab_harness::execute(&prepared, results, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    print_summary(&finished.report);
    print_footer(&finished);
    Ok(())
}

fn print_summary(report: &Report) {
    let level = format!("{:.0}% CI", report.confidence * 100.0);
    println!(
        "final performance: {} over the last episodes of each run, mean over seeds",
        report.return_label
    );
    if let Some(v) = report.optimal_value {
        println!("oracle expected return per episode V* = {v:.4}");
    }
    let width = report
        .summaries
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut header = format!(
        "{:<width$} {:>6} {:>11} {:>23} {:>11}",
        "policy", "seeds", "mean", level, "% of oracle"
    );
    for name in &report.ratio_names {
        header.push_str(&format!(" {name:>21}"));
    }
    println!("{header}");
    for s in &report.summaries {
        let (mean, ci) = match s.final_return {
            Some(e) => (
                format!("{:.4}", e.mean),
                format!("[{:.4}, {:.4}]", e.low, e.high),
            ),
            None => ("—".into(), "—".into()),
        };
        let pct = s
            .pct_of_oracle
            .map(|e| format!("{:.1}%", e.mean))
            .unwrap_or_else(|| "—".into());
        let seeds = if s.seeds_failed > 0 {
            format!("{}/{}", s.seeds_ok, s.seeds_ok + s.seeds_failed)
        } else {
            s.seeds_ok.to_string()
        };
        let mut line = format!(
            "{:<width$} {:>6} {:>11} {:>23} {:>11}",
            s.name, seeds, mean, ci, pct
        );
        for r in &s.final_ratios {
            line.push_str(&format!(" {r:>21.4}"));
        }
        println!("{line}");
    }
    for (policy, seed, reason) in &report.failures {
        println!("FAILED {policy} seed {seed}: {reason}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
}

fn print_footer(finished: &Finished) {
    println!("runs took {:.1} s", finished.run_seconds);
    println!("wrote {}/", finished.dir.display());
    println!("  {}", finished.files.join(" "));
}
