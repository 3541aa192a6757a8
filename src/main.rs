//! The `shoplab` command line: run scenarios, reproduce runs, validate files.
//!
//! `anyhow` lives only here, at the binary's edge; the library crates return
//! typed errors.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use shoplab_harness::{budget::Limits, prepared::Prepared, registry::Registry};
use std::path::{Path, PathBuf};

mod compare;
mod dataset;
mod eval;
mod logs;
mod ope;
mod ope_args;
mod progress;
mod run;
mod study;
mod summary;

// candle allocates a tensor per operation; mimalloc reuses freed pages
// instead of faulting in fresh ones, which speeds deep Q-learning up.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// shoplab: a workbench for reinforcement learning in e-commerce.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Largest estimated memory a scenario may need, such as 8G or 512M
    /// [default: half of this machine's usable memory, the least of its
    /// physical memory, cgroup limit and `ulimit -v`].
    #[arg(long, global = true, value_parser = parse_size)]
    max_memory: Option<f64>,
    /// Largest estimated work a scenario may take, in elementary operations
    /// (a core does roughly 1e9 a second).
    #[arg(long, global = true, default_value_t = shoplab_harness::budget::DEFAULT_MAX_WORK)]
    max_work: f64,
}

/// A `--max-memory` value: a size in binary units.
fn parse_size(text: &str) -> Result<f64, String> {
    shoplab_env::cost::parse_bytes(text)
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
        #[command(flatten)]
        how: run::HowToRun,
    },
    /// Build the run folder of a sharded run (`run --shard K/N`) from its
    /// shard folders; its tables are byte-identical to an unsharded run's.
    Merge {
        /// The shard folders, `results/<scenario>/shard-K-of-N`, all N of them.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Where the run folder goes.
        #[arg(long, default_value = "results")]
        results: PathBuf,
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
        #[command(flatten)]
        how: run::HowToRun,
    },
    /// Write a run folder as one self-contained HTML page: its charts
    /// inline as SVG, the summary and evaluation tables, the scenario, the
    /// manifest, the machine and version; it opens offline in a browser.
    Report {
        /// The run folder, `results/<scenario>/<run-id>`.
        dir: PathBuf,
        /// The HTML file to write [default: `<run-id>.html` beside the run
        /// folder]; never over an existing file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a run folder against its manifest: every listed file present
    /// with its recorded size and SHA-256, and no other file.
    Verify {
        /// The run folder, `results/<scenario>/<run-id>`.
        dir: PathBuf,
    },
    /// Verify a run folder, then re-run its scenario and check every CSV and
    /// checkpoint comes out byte-identical.
    Reproduce {
        /// The run folder, `results/<scenario>/<run-id>`.
        dir: PathBuf,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Evaluate trained policies from a run folder's checkpoints: greedy
    /// episodes on env seeds that neither training nor its evaluations used.
    Eval {
        /// The run folder, `results/<scenario>/<run-id>`.
        dir: PathBuf,
        /// Only this policy (its report name, such as `dqn`).
        #[arg(long)]
        policy: Option<String>,
        /// Greedy episodes per checkpoint.
        #[arg(long, default_value_t = 100)]
        episodes: u32,
        /// Evaluate the checkpoints that are there when some the manifest
        /// lists are missing (otherwise an error), and say which were skipped.
        #[arg(long)]
        skip_missing: bool,
    },
    /// List the scenario files in a folder.
    List {
        /// Folder holding the scenario files.
        #[arg(default_value = "scenarios")]
        scenarios: PathBuf,
    },
    /// Check a scenario's env against its declared spaces, as Gymnasium's
    /// env checker does: random-action episodes, every observation inside
    /// the space, info lengths, termination flags, seed determinism.
    Check {
        /// The scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Episodes to play per file.
        #[arg(long, default_value_t = 20)]
        episodes: usize,
    },
    /// Play a policy of a scenario (exploring and learning as in training)
    /// and write its decisions, with the probability of each, as a log.
    Log {
        /// The scenario file (TOML).
        file: PathBuf,
        /// The policy, by its report name (such as `epsilon_greedy` or `dqn`).
        #[arg(long)]
        policy: String,
        /// Episodes to log.
        #[arg(long)]
        episodes: u32,
        /// The log file to write (Parquet for a `.parquet` path, CSV otherwise; never over an existing file).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the policy and of the logged episodes [default: the
        /// scenario's first seed].
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Offline datasets of a scenario, D4RL-style.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Read and validate a log whole, and summarise it.
    LogInfo {
        /// The log file (CSV, or Parquet for a `.parquet` file).
        file: PathBuf,
        /// Size of the action space: actions must be below it.
        #[arg(long)]
        actions: Option<usize>,
    },
    /// Read an Open Bandit Dataset file (such as `data/obd/random/all/all.csv`)
    /// with obp's preprocessing; summarise it, and write it as a log if asked.
    Obd {
        /// The dataset's CSV file.
        file: PathBuf,
        /// The log file to write (Parquet for a `.parquet` path, CSV otherwise; never over an existing file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Off-policy evaluation of a target policy on a log: per decision IPW,
    /// SNIPW, DM, DR, SNDR, Switch-DR and DR-OS (obp's definitions), per
    /// session PDIS, WPDIS, FQE and DR for MDPs, each with an interval;
    /// writes a run folder.
    Ope(ope::OpeArgs),
    /// Judge the off-policy estimators against the simulator's truth: many
    /// independent logs of a behaviour policy at several sizes, a target
    /// policy's estimates on each, and their bias, RMSE and interval
    /// coverage, as a run folder with CSV tables and a chart.
    OpeStudy(study::StudyArgs),
    /// Compare the policies of run folders: mean, median and IQM (and,
    /// normalised, the optimality gap) with stratified bootstrap intervals,
    /// the probability of improvement over the first policy, paired
    /// differences on shared seeds, and performance profiles; writes a
    /// folder with the tables and charts.
    Compare(compare::CompareArgs),
    /// Check scenario files without running them.
    Validate {
        /// The scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `shoplab dataset …`.
#[derive(Subcommand)]
enum DatasetCommand {
    /// Build the suite — random, medium, medium-replay, expert, mixed — of
    /// a scenario, deterministically, with each behaviour's value and a
    /// manifest.
    Build(dataset::BuildArgs),
}

/// Ends the program quietly when stdout has been closed (`shoplab … | head`):
/// printing to a closed pipe panics inside `println!`, which is no error of
/// ours to report. Any run folder is written before the summary is printed,
/// so nothing is lost.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// On SIGINT or SIGTERM: removes any run folder still being written (after
/// the file in hand), says so, and exits with 130; results already
/// published stay as they are.
fn stop_cleanly_on_signals() {
    let handler = || {
        for dir in shoplab_harness::folder::interrupt() {
            eprintln!(
                "interrupted: removed the unfinished run folder {}",
                dir.display()
            );
        }
        eprintln!("interrupted");
        std::process::exit(130);
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("warning: cannot handle interruptions cleanly: {e}");
    }
}

/// Candle's CPU kernels split an elementwise op over a pool of threads
/// that spin between ops; shoplab runs one seed per core instead, so each
/// run's candle ops stay on its own thread unless `CANDLE_NUM_THREADS`
/// says otherwise (on `recommendation-longterm`'s REINFORCE, two seeds on
/// two cores took 12.2 s instead of 21.7 s, with the same bytes: results
/// never depend on it, as only elementwise ops are split).
///
/// Candle's matrix product also asks, on every call, how many threads it
/// may use: without `RAYON_NUM_THREADS` or `CANDLE_CPU_MASK` that means
/// reading `/proc/cpuinfo` to count physical cores (about a fifth of a
/// transformer DQN run's time went there). `CANDLE_CPU_MASK=0`, set unless
/// either is set, answers one thread from memory; products then run on
/// the calling thread (the same bytes: products never depend on the
/// thread count). The mask would also pin candle's own worker threads,
/// and with one candle thread there are none.
fn one_candle_thread() {
    for (key, value) in [("CANDLE_NUM_THREADS", "1"), ("CANDLE_CPU_MASK", "0")] {
        let rayon_set = std::env::var_os("RAYON_NUM_THREADS").is_some();
        if std::env::var_os(key).is_none() && !(key == "CANDLE_CPU_MASK" && rayon_set) {
            // SAFETY: called first thing in `main`, before any other thread
            // exists that could read or write the environment.
            #[allow(unsafe_code)]
            unsafe {
                std::env::set_var(key, value)
            };
        }
    }
}

fn main() {
    one_candle_thread();
    // Freed training buffers are reused instead of returned to the system
    // and faulted in again (see shoplab_policy::memory).
    shoplab_policy::memory::keep_freed_memory();
    quiet_on_closed_stdout();
    stop_cleanly_on_signals();
    match run(Cli::parse(), &Registry::default()) {
        Ok(Outcome::Done) => {}
        // The other runs' results are written; the exit code still says
        // that not everything succeeded.
        Ok(Outcome::RunsFailed(n)) => {
            eprintln!("error: {n} run(s) failed (see runs.csv and the summary above)");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Most episodes `check` and `eval` play per file or checkpoint.
const MAX_COMMAND_EPISODES: u32 = 100_000;

/// What commands validate scenarios with: the registry of families and
/// policies, and the limits on a scenario's memory and work.
struct Loader<'a> {
    registry: &'a Registry,
    limits: Limits,
}

impl Loader<'_> {
    /// Reads and validates a scenario file.
    fn load(&self, file: &Path) -> Result<Prepared, shoplab_harness::scenario::ScenarioError> {
        shoplab_harness::load_with(file, self.registry, &self.limits)
    }

    /// Reads and validates a scenario file with its sweep's
    /// configurations, the work limit shared among `shards`.
    fn load_plan(
        &self,
        file: &Path,
        shards: u32,
    ) -> Result<shoplab_harness::plan::Plan, shoplab_harness::scenario::ScenarioError> {
        shoplab_harness::plan::load_plan(file, self.registry, &self.limits, shards)
    }

    /// Reads and validates a run folder's scenario.
    fn load_run(&self, dir: &Path) -> Result<Prepared, shoplab_harness::HarnessError> {
        shoplab_harness::load_run_with(dir, self.registry, &self.limits)
    }
}

/// How a command ended, short of an error.
enum Outcome {
    /// Everything it set out to do succeeded.
    Done,
    /// A run folder was written, but this many runs in it failed.
    RunsFailed(usize),
}

fn run(cli: Cli, registry: &Registry) -> Result<Outcome> {
    // Commands that write no run folder are done when they succeed.
    let done = |r: Result<()>| r.map(|()| Outcome::Done);
    let mut limits = Limits::from_machine();
    if let Some(bytes) = cli.max_memory {
        limits.max_memory = bytes;
    }
    if !(cli.max_work.is_finite() && cli.max_work > 0.0) {
        bail!(
            "--max-work must be a positive number (found {})",
            cli.max_work
        );
    }
    limits.max_work = cli.max_work;
    let loader = &Loader { registry, limits };
    match cli.command {
        Command::Run {
            file,
            results,
            quiet,
            how,
        } => run::run_file(&file, &results, quiet, &how, loader),
        Command::Merge { shards, results } => run::merge(&shards, &results, loader),
        Command::BenchScenario {
            name,
            scenarios,
            results,
            quiet,
            how,
        } => bench_scenario(&name, scenarios, results, quiet, &how, loader),
        Command::Verify { dir } => done(verify(&dir)),
        Command::Report { dir, out } => done(run::report(&dir, out)),
        Command::Reproduce { dir, quiet } => done(run::reproduce(&dir, quiet, loader)),
        Command::Eval {
            dir,
            policy,
            episodes,
            skip_missing,
        } => done(eval::eval_checkpoints(
            &dir,
            (policy.as_deref(), skip_missing),
            episodes,
            loader,
        )),
        Command::List { scenarios } => done(list(&scenarios, loader)),
        Command::Check { files, episodes } => done(check(&files, episodes, loader)),
        Command::Validate { files } => done(validate(&files, loader)),
        Command::Log {
            file,
            policy,
            episodes,
            out,
            seed,
        } => done(logs::log(&file, &policy, episodes, seed, &out, loader)),
        Command::Dataset(DatasetCommand::Build(args)) => {
            done(dataset::dataset_build(&args, loader))
        }
        Command::LogInfo { file, actions } => done(logs::log_info(&file, actions)),
        Command::Obd { file, out } => done(logs::obd(&file, out.as_deref())),
        Command::Ope(args) => done(ope::ope(&args, loader)),
        Command::OpeStudy(args) => done(study::ope_study(&args, loader)),
        Command::Compare(args) => done(compare::compare_runs(&args)),
    }
}

/// `shoplab bench-scenario NAME`: runs `scenarios/NAME.toml`.
fn bench_scenario(
    name: &str,
    scenarios: Option<PathBuf>,
    results: Option<PathBuf>,
    quiet: bool,
    how: &run::HowToRun,
    loader: &Loader<'_>,
) -> Result<Outcome> {
    // Run from anywhere in the repository: fall back on the folders
    // beside this crate's manifest when the working directory has none.
    let root = if Path::new("scenarios").is_dir() {
        PathBuf::new()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    };
    let scenarios = scenarios.unwrap_or_else(|| root.join("scenarios"));
    let results = results.unwrap_or_else(|| root.join("results"));
    let as_path = PathBuf::from(name);
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
    run::run_file(&file, &results, quiet, how, loader)
}

/// `shoplab verify DIR`: the run folder against its manifest.
fn verify(dir: &Path) -> Result<()> {
    let found = shoplab_harness::verify::verify(dir)?;
    for problem in &found.problems {
        println!("FAIL {problem}");
    }
    if !found.ok() {
        bail!(
            "{}: {} file(s) differ from the manifest (first: {})",
            dir.display(),
            found.problems.len(),
            found.problems[0]
        );
    }
    println!(
        "verified {}: {} files match the manifest, and there are no others",
        dir.display(),
        found.matched
    );
    Ok(())
}

/// `shoplab list DIR`: the scenario files of a folder, one line each.
fn list(scenarios: &Path, loader: &Loader<'_>) -> Result<()> {
    if !scenarios.is_dir() {
        bail!("{}: no such folder of scenario files", scenarios.display());
    }
    for file in scenario_files(scenarios) {
        match shoplab_harness::scenario::read(&file, loader.registry) {
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

/// `shoplab check FILE…`: the env checker on each scenario's env.
fn check(files: &[PathBuf], episodes: usize, loader: &Loader<'_>) -> Result<()> {
    if !(1..=MAX_COMMAND_EPISODES as usize).contains(&episodes) {
        bail!("--episodes must be between 1 and {MAX_COMMAND_EPISODES} (found {episodes})");
    }
    let mut failed = 0;
    for file in files {
        let checked = loader
            .load(file)
            .map_err(anyhow::Error::from)
            .and_then(|p| {
                let family = p.family_name();
                shoplab_harness::check_env(&p, episodes)
                    .map(|s| (family, s))
                    .with_context(|| format!("{}: the {family} env breaks a rule", file.display()))
            });
        match checked {
            Ok((family, s)) => println!(
                "ok  {}: the {family} env keeps every rule over {} episodes, {} steps, {} observations",
                file.display(),
                s.episodes,
                s.steps,
                s.observations
            ),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} scenario files failed the check",
            files.len()
        );
    }
    Ok(())
}

/// `shoplab validate FILE…`: validation without running.
fn validate(files: &[PathBuf], loader: &Loader<'_>) -> Result<()> {
    let mut failed = 0;
    for file in files {
        match loader.load_plan(file, 1) {
            Ok(plan) if !plan.configs.is_empty() => {
                let work: f64 = plan.configs.iter().map(|(_, p)| p.estimate().work).sum();
                println!(
                    "ok  {}: a sweep of {} configurations × {} policies × {} seeds; \
                     estimated at {work:.1e} operations in all",
                    file.display(),
                    plan.configs.len(),
                    plan.base.names.len(),
                    plan.base.scenario.run.seeds.len(),
                );
            }
            Ok(plan) => {
                let p = &plan.base;
                println!(
                    "ok  {}: {} policies × {} seeds × {} episodes{}; estimated at most {} \
                     of memory and {:.1e} operations",
                    file.display(),
                    p.names.len(),
                    p.scenario.run.seeds.len(),
                    p.scenario.run.episodes,
                    p.optimal_value()
                        .map(|v| format!(", oracle expected return {v:.4}"))
                        .unwrap_or_default(),
                    shoplab_env::cost::format_bytes(p.estimate().bytes),
                    p.estimate().work,
                )
            }
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
