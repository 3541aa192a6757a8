//! `shoplab ope`: a target policy's value estimated from a log, with the
//! settings `shoplab ope-study` shares.

use crate::{
    Loader,
    ope_args::{EstimatorArgs, Estimators, FqeArgs},
};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use shoplab_harness::ope_study::{Target, target_distribution, true_value};
use shoplab_logs::{
    ReadOptions,
    model::ModelKind,
    ope::{Estimator, Rounds, effective_sample_size, estimate_with_intervals, read_table},
};
use std::{
    path::{Path, PathBuf},
    time::Instant,
};

/// What `shoplab ope` estimates with.
#[derive(clap::Args)]
pub(crate) struct OpeArgs {
    /// The log (shoplab's log format: CSV, or Parquet for a `.parquet` file).
    pub log: PathBuf,
    /// The target policy's action distribution at each log row's position:
    /// a CSV with one column per action, one row per log row, or a NumPy
    /// `.npy` of shape (rows, actions[, positions]) as obp takes.
    #[arg(long, conflicts_with = "target_policy")]
    pub target: Option<PathBuf>,
    /// The target as a policy of --scenario (frozen: as built, never
    /// learning), asked for its action probabilities at each logged row;
    /// the table then shows its true value, by simulation.
    #[arg(long, requires = "scenario")]
    pub target_policy: Option<String>,
    /// The scenario the log came from (its observation features must be
    /// the log's).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// A checkpoint of --target-policy (from a run folder's
    /// `checkpoints/`): the trained policy, evaluated greedy.
    #[arg(long, requires = "target_policy")]
    pub checkpoint: Option<PathBuf>,
    /// Episodes of the target's on-policy simulation for its true value
    /// (with --target-policy; 0: none).
    #[arg(long, default_value_t = 1000)]
    pub truth_episodes: u32,
    /// Estimated rewards of every action for each log row, same shape
    /// [default: shoplab's reward model, fitted to the log].
    #[arg(long)]
    pub rewards: Option<PathBuf>,
    #[command(flatten)]
    pub estimators: EstimatorArgs,
    /// Bootstrap resamples of each interval.
    #[arg(long, default_value_t = 10_000)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub fqe: FqeArgs,
    /// Where the run folder goes: `RESULTS/ope/<log file stem>/<run id>/`.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Also write the estimates as CSV here (never over an existing file).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Most decisions of a truth simulation or a study.
pub(crate) const MAX_DECISIONS: f64 = 2e9;

/// The target of `--target-policy NAME [--checkpoint FILE]` in `prepared`.
pub(crate) fn target_of(
    prepared: &shoplab_harness::prepared::Prepared,
    name: &str,
    checkpoint: Option<&Path>,
    file: &Path,
) -> Result<Target> {
    let index = crate::logs::policy_index(prepared, name, file)?;
    let checkpoint = checkpoint
        .map(|path| {
            shoplab_env::input::read_regular_file(path, shoplab_env::input::MAX_DATA_BYTES)
                .with_context(|| format!("{}: the checkpoint", path.display()))
        })
        .transpose()?;
    Ok(Target { index, checkpoint })
}

/// `shoplab ope LOG (--target DIST | --target-policy NAME --scenario FILE)`.
pub(crate) fn ope(args: &OpeArgs, loader: &Loader<'_>) -> Result<()> {
    let settings = args.estimators.parse()?;
    if !(1..=100_000).contains(&args.bootstrap) {
        bail!(
            "--bootstrap must be between 1 and 100000 (found {})",
            args.bootstrap
        );
    }
    if let Some(out) = &args.out
        && out.exists()
    {
        bail!(
            "{}: exists already; results are never written over",
            out.display()
        );
    }
    let source = match (&args.target, &args.target_policy) {
        (None, None) => {
            bail!("give the target: --target FILE, or --target-policy NAME --scenario FILE")
        }
        (Some(_), _) if args.scenario.is_some() => {
            bail!("--scenario goes with --target-policy; a --target file is the target already")
        }
        (Some(file), None) => TargetSource::File(file.clone()),
        (None, Some(name)) => {
            let scenario = args.scenario.as_ref().expect("clap requires --scenario");
            let prepared = loader.load(scenario)?;
            let target = target_of(&prepared, name, args.checkpoint.as_deref(), scenario)?;
            let decisions =
                f64::from(args.truth_episodes) * prepared.family().episode_cost().decisions;
            if decisions > MAX_DECISIONS {
                bail!(
                    "--truth-episodes {} would simulate about {decisions:.1e} decisions, more than {MAX_DECISIONS:.0e}",
                    args.truth_episodes
                );
            }
            TargetSource::Policy(Box::new(prepared), target)
        }
        (Some(_), Some(_)) => unreachable!("clap refuses --target with --target-policy"),
    };
    let fqe_config = args.fqe.config(args.estimators.seed)?;
    shoplab_harness::check_writable(&args.results)?;
    let log = shoplab_logs::parquet::read_log(&args.log, &ReadOptions::default())?;
    if (!settings.sequential.is_empty() || settings.fqe || settings.dr_mdp)
        && log.position.iter().any(|&p| p > 0)
    {
        bail!(
            "{}: the per-session estimators weigh one decision a row; this log has slate positions",
            args.log.display()
        );
    }
    let n = log.len();
    let is_npy = |p: &Path| p.extension().is_some_and(|e| e == "npy");
    let (target, n_actions, truth) = match &source {
        TargetSource::File(path) if is_npy(path) => {
            let (t, m) = shoplab_logs::npy::read_npy(path, &log.position, true)?;
            (t, m, None)
        }
        TargetSource::File(path) => {
            let t = read_table(path, n, 0, true)?;
            let m = t.len() / n;
            (t, m, None)
        }
        TargetSource::Policy(prepared, target) => {
            let expected: Vec<String> = prepared
                .make_env()
                .observation_space()
                .features
                .iter()
                .map(|f| f.name.to_string())
                .collect();
            if expected != log.features {
                bail!(
                    "{}: its features ({}) are not the observation of {} ({}); was the log written from it?",
                    args.log.display(),
                    log.features.join(", "),
                    args.scenario.as_ref().expect("set").display(),
                    expected.join(", ")
                );
            }
            let seed = args.estimators.seed;
            let t = target_distribution(prepared, target, &log, seed)?;
            let m = prepared.make_env().action_space().n();
            let truth = (args.truth_episodes > 0)
                .then(|| {
                    // Episodes of their own, apart from any log's.
                    true_value(
                        prepared,
                        target,
                        args.truth_episodes,
                        shoplab_env::seed::derive_seed(seed, "ope truth", 0),
                        args.estimators.gamma,
                    )
                })
                .transpose()?;
            (t, m, truth)
        }
    };
    if log.actions_seen() > n_actions {
        bail!(
            "the log has actions up to {}, the target distribution {n_actions}",
            log.actions_seen() - 1,
        );
    }
    let Estimators {
        bandit,
        sequential,
        fqe,
        dr_mdp,
        model,
    } = settings;
    let needs_model = bandit.iter().any(Estimator::needs_model);
    let (rewards, rewards_source) = match &args.rewards {
        Some(path) if is_npy(path) => {
            let (q, m) = shoplab_logs::npy::read_npy(path, &log.position, false)?;
            if m != n_actions {
                bail!(
                    "{}: {m} actions, the target distribution {n_actions}",
                    path.display()
                );
            }
            (Some(q), json!(input(path)?))
        }
        Some(path) => (
            Some(read_table(path, n, n_actions, false)?),
            json!(input(path)?),
        ),
        None if !needs_model => (None, Value::Null),
        None => {
            let (kind, l2, folds) = model;
            let kind = kind.unwrap_or_else(|| ModelKind::for_rewards(&log.reward));
            let start = Instant::now();
            let q = shoplab_logs::model::fit_predict(&log, n_actions, kind, l2, folds)?;
            println!(
                "reward model: {} regression on context × action features, λ = {l2}, {} in {:.2} s",
                kind.name(),
                if folds == 1 {
                    "fitted on the whole log".to_string()
                } else {
                    format!("cross-fitted over {folds} folds of sessions")
                },
                start.elapsed().as_secs_f64()
            );
            (
                Some(q),
                json!({"model": kind.name(), "l2": l2, "folds": folds}),
            )
        }
    };
    let rounds = Rounds {
        reward: &log.reward,
        action: &log.action,
        propensity: &log.propensity,
        target: &target,
        estimated: rewards.as_deref(),
        n_actions,
    };
    println!(
        "{}: {n} rounds, {n_actions} actions; on-policy mean reward {:.6}",
        args.log.display(),
        log.reward.iter().sum::<f64>() / n as f64,
    );
    let mut rows: Vec<Row> = Vec::new();
    let ess = effective_sample_size(&rounds);
    let estimates = estimate_with_intervals(&bandit, &rounds, args.bootstrap, args.estimators.seed)
        .expect("the model is fitted when needed");
    for (e, (estimate, lower, upper)) in bandit.iter().zip(estimates) {
        rows.push(Row {
            name: e.name().to_string(),
            estimate,
            lower,
            upper,
            ess: if matches!(e, Estimator::Dm) {
                n as f64
            } else {
                ess
            },
            truth: truth.map(|t| t.per_decision),
        });
    }
    if !sequential.is_empty() || fqe || dr_mdp {
        let sessions = log.sessions();
        let all: Vec<usize> = (0..sessions.len()).collect();
        let session_ess = session_ess(&rounds, &sessions);
        for e in &sequential {
            let (lower, upper) = e.interval(
                &rounds,
                &sessions,
                args.estimators.gamma,
                (0.05, args.bootstrap, args.estimators.seed),
            );
            rows.push(Row {
                name: e.name().to_string(),
                estimate: e.estimate(&rounds, &sessions, &all, args.estimators.gamma),
                lower,
                upper,
                ess: session_ess,
                truth: truth.map(|t| t.per_session),
            });
        }
        if fqe || dr_mdp {
            let start = Instant::now();
            let gamma = args.estimators.gamma;
            let (value, lower, upper, fit) = shoplab_logs::fqe::fqe_interval(
                &log,
                &rounds,
                gamma,
                &fqe_config,
                args.fqe.fqe_bootstrap,
            )?;
            println!(
                "fitted Q evaluation: {} refits for the interval, {:.1} s",
                args.fqe.fqe_bootstrap + 1,
                start.elapsed().as_secs_f64()
            );
            if fqe {
                rows.push(Row {
                    name: "fqe".into(),
                    estimate: value,
                    lower,
                    upper,
                    ess: sessions.len() as f64,
                    truth: truth.map(|t| t.per_session),
                });
            }
            if dr_mdp {
                let (estimate, lower, upper) = shoplab_logs::fqe::doubly_robust_interval(
                    &rounds,
                    &sessions,
                    &fit.q,
                    gamma,
                    (0.05, args.bootstrap, args.estimators.seed),
                );
                rows.push(Row {
                    name: "dr-mdp".into(),
                    estimate,
                    lower,
                    upper,
                    ess: session_ess,
                    truth: truth.map(|t| t.per_session),
                });
            }
        }
    }
    print_table(&rows, args.bootstrap, args.estimators.seed);
    if let Some(t) = &truth {
        println!(
            "true value of the target: by simulation of {} episodes ({} decisions), ±1.96 s.e.; \
             per decision for the bandit estimators (their estimand only where contexts do not \
             depend on earlier actions, as in a bandit), per session for pdis, wpdis, fqe and dr-mdp",
            t.episodes, t.decisions
        );
    }
    let csv = estimates_csv(&rows);
    if let Some(out) = &args.out {
        let mut partial = out.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, &csv)?;
        std::fs::rename(&partial, out)?;
    }
    // The run folder: the table, its chart, and a manifest of the inputs.
    let stem = args
        .log
        .file_stem()
        .map_or("log".into(), |s| s.to_string_lossy().into_owned());
    let target_field = match &source {
        TargetSource::File(path) => json!({"file": input(path)?}),
        TargetSource::Policy(prepared, target) => json!({
            "policy": target.name(prepared),
            "scenario": input(args.scenario.as_ref().expect("set"))?,
            "checkpoint": args.checkpoint.as_deref().map(input).transpose()?,
        }),
    };
    let mut fields = Map::new();
    fields.insert("command".into(), "ope".into());
    fields.insert("log".into(), input(&args.log)?);
    fields.insert("target".into(), target_field);
    fields.insert("rewards".into(), rewards_source);
    fields.insert(
        "settings".into(),
        json!({
            "estimators": rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            "clip": json_number(args.estimators.clip),
            "tau": json_number(args.estimators.tau),
            "shrinkage": json_number(args.estimators.shrinkage),
            "gamma": args.estimators.gamma,
            "bootstrap": args.bootstrap,
            "seed": args.estimators.seed,
        }),
    );
    fields.insert(
        "truth".into(),
        serde_json::to_value(truth).expect("the truth serialises"),
    );
    let chart = shoplab_harness::charts::OpeChart {
        title: format!("{stem}: off-policy estimates, 95% bootstrap intervals"),
        x_label:
            "estimated value of the target (per decision; per session for pdis, wpdis, fqe, dr-mdp)"
                .into(),
        estimates: rows
            .iter()
            .map(|r| (r.name.clone(), r.estimate, r.lower, r.upper))
            .collect(),
        // The chart's reference line, where every row shares one truth.
        truth: truth
            .filter(|_| bandit.is_empty() || (sequential.is_empty() && !fqe && !dr_mdp))
            .map(|t| {
                let v = if bandit.is_empty() {
                    t.per_session
                } else {
                    t.per_decision
                };
                (v.mean, v.mean - 1.96 * v.se, v.mean + 1.96 * v.se)
            }),
    };
    let dir = shoplab_harness::publish_folder(
        &args.results.join("ope").join(&stem),
        &[("estimates.csv".to_string(), csv.into_bytes())],
        &|dir| chart.save(dir),
        fields,
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}

/// Where the target's action distribution comes from.
enum TargetSource {
    /// A file of probabilities.
    File(PathBuf),
    /// A policy of a scenario.
    Policy(Box<shoplab_harness::prepared::Prepared>, Target),
}

/// One estimator's line of the table.
struct Row {
    name: String,
    estimate: f64,
    lower: f64,
    upper: f64,
    ess: f64,
    truth: Option<shoplab_harness::ope_study::Value>,
}

fn print_table(rows: &[Row], resamples: usize, seed: u64) {
    let truth = rows.iter().any(|r| r.truth.is_some());
    print!(
        "{:<10} {:>12}  {:<28} {:>10}",
        "estimator",
        "estimate",
        format!("95% interval ({resamples} boot., seed {seed})"),
        "ESS"
    );
    if truth {
        print!("  {:>26} {:>12}", "true value ±1.96 s.e.", "error");
    }
    println!();
    for r in rows {
        print!(
            "{:<10} {:>12.6}  {:<28} {:>10.1}",
            r.name,
            r.estimate,
            format!("[{:.6}, {:.6}]", r.lower, r.upper),
            r.ess
        );
        if let Some(t) = r.truth {
            print!(
                "  {:>26} {:>+12.6}",
                format!("{:.6} ± {:.6}", t.mean, 1.96 * t.se),
                r.estimate - t.mean
            );
        }
        println!();
    }
}

fn estimates_csv(rows: &[Row]) -> String {
    let mut csv = String::from("estimator,estimate,lower,upper,ess,truth,truth_se,error\n");
    for r in rows {
        let (truth, se, error) = match r.truth {
            Some(t) => (
                t.mean.to_string(),
                t.se.to_string(),
                (r.estimate - t.mean).to_string(),
            ),
            None => Default::default(),
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{truth},{se},{error}\n",
            r.name, r.estimate, r.lower, r.upper, r.ess
        ));
    }
    csv
}

/// Kish's effective sample size of the sessions' final weight products.
fn session_ess(rounds: &Rounds<'_>, sessions: &[Vec<usize>]) -> f64 {
    let (s, s2) = sessions
        .iter()
        .map(|rows| rows.iter().map(|&i| rounds.weight(i)).product::<f64>())
        .fold((0.0, 0.0), |(s, s2), w| (s + w, s2 + w * w));
    if s2 > 0.0 { s * s / s2 } else { 0.0 }
}

/// A number for the manifest (JSON has no infinity: `"inf"`).
pub(crate) fn json_number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!("inf")
    }
}

/// An input file for the manifest: its path, size and SHA-256.
pub(crate) fn input(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    Ok(json!({
        "path": path.display().to_string(),
        "bytes": bytes.len(),
        "sha256": format!("{:x}", Sha256::digest(&bytes)),
    }))
}
