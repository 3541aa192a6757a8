//! `shoplab log` (a policy's decisions, with propensities, as a log file)
//! and `shoplab log-info` (a log validated whole and summarised).

use crate::Loader;
use anyhow::{Result, bail};
use shoplab_logs::{ReadOptions, read_csv};
use std::{collections::BTreeSet, path::Path, time::Instant};

/// Most rows `shoplab log` writes (about 5 GiB of CSV at 50 bytes a row).
const MAX_LOG_ROWS: f64 = 1e8;

/// `shoplab log FILE --policy NAME --episodes N --out LOG`.
pub(crate) fn log(
    file: &Path,
    policy: &str,
    episodes: u32,
    seed: Option<u64>,
    out: &Path,
    loader: &Loader<'_>,
) -> Result<()> {
    let prepared = loader.load(file)?;
    let Some(index) = prepared.names.iter().position(|n| n == policy) else {
        bail!(
            "{}: no policy named `{policy}` (its policies: {})",
            file.display(),
            prepared.names.join(", ")
        );
    };
    let rows = f64::from(episodes) * prepared.family().episode_cost().decisions;
    if episodes == 0 || rows > MAX_LOG_ROWS {
        bail!(
            "--episodes must be at least 1 and give at most {MAX_LOG_ROWS:.0e} rows \
             (found {episodes} episodes, up to {rows:.2e} rows)"
        );
    }
    let seed = seed.unwrap_or(prepared.scenario.run.seeds[0]);
    let start = Instant::now();
    let summary = shoplab_harness::logging::log_policy(&prepared, index, episodes, seed, out)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "wrote {} rows ({} episodes of `{policy}`, seed {seed}) to {} in {seconds:.2} s ({:.0} rows/s)",
        summary.rows,
        summary.episodes,
        out.display(),
        summary.rows as f64 / seconds
    );
    println!(
        "mean reward per decision {:.6}; propensities in [{}, {}]",
        summary.mean_reward, summary.propensity_range.0, summary.propensity_range.1
    );
    if !summary.never_possible.is_empty() {
        let actions: Vec<String> = summary
            .never_possible
            .iter()
            .map(usize::to_string)
            .collect();
        eprintln!(
            "warning: actions {} had probability 0 in every logged decision: no off-policy \
             estimate can evaluate a policy that takes them{}",
            actions.join(", "),
            if summary.propensity_range.0 == 1.0 {
                " (the behaviour policy is deterministic)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `shoplab log-info LOG [--actions N]`: reads and validates a log whole,
/// then summarises it.
pub(crate) fn log_info(file: &Path, actions: Option<usize>) -> Result<()> {
    let start = Instant::now();
    let log = read_csv(file, &ReadOptions { n_actions: actions })?;
    let seconds = start.elapsed().as_secs_f64();
    let episodes: BTreeSet<u64> = log.episode.iter().copied().collect();
    let sessions: BTreeSet<(u64, u64)> = log
        .episode
        .iter()
        .copied()
        .zip(log.session.iter().copied())
        .collect();
    let (low, high) = log
        .propensity
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &p| (a.min(p), b.max(p)));
    let n = log.len() as f64;
    let mean = log.reward.iter().sum::<f64>() / n;
    println!(
        "ok  {}: {} rows, {} episodes, {} sessions, {} features ({}), actions 0 ..= {}",
        file.display(),
        log.len(),
        episodes.len(),
        sessions.len(),
        log.features.len(),
        log.features.join(", "),
        log.actions_seen().saturating_sub(1)
    );
    println!(
        "on-policy mean reward per row {mean:.6}; propensities in [{low}, {high}]; read in {seconds:.2} s ({:.0} rows/s)",
        n / seconds
    );
    Ok(())
}

/// `shoplab obd FILE [--out LOG]`: an Open Bandit Dataset file read with
/// obp's preprocessing, summarised, and written as a shoplab log if asked.
pub(crate) fn obd(file: &Path, out: Option<&Path>) -> Result<()> {
    let obd = shoplab_logs::obd::read_obd(file)?;
    println!(
        "{}: {} impressions, {} items, {} positions, {} context features (user_feature_0..3 one-hot, first level dropped); on-policy CTR {:.6}",
        file.display(),
        obd.log.len(),
        obd.n_actions,
        obd.positions,
        obd.log.features.len(),
        obd.ctr()
    );
    if let Some(out) = out {
        let rows = obd.log.write_csv(out)?;
        println!("wrote {rows} rows to {}", out.display());
    }
    Ok(())
}

/// What `shoplab ope` estimates with.
#[derive(clap::Args)]
pub(crate) struct OpeArgs {
    /// The log (CSV, shoplab's log format).
    pub log: std::path::PathBuf,
    /// The target policy's action distribution at each log row's position:
    /// a CSV with one column per action, one row per log row, or a NumPy
    /// `.npy` of shape (rows, actions[, positions]) as obp takes.
    #[arg(long)]
    pub target: std::path::PathBuf,
    /// Estimated rewards of every action for each log row, same shape
    /// [default: shoplab's reward model, fitted to the log].
    #[arg(long)]
    pub rewards: Option<std::path::PathBuf>,
    /// The reward model of DM and the DR family when --rewards is not
    /// given: logistic (rewards in [0, 1]), ridge, or auto (logistic when
    /// every reward is in [0, 1]).
    #[arg(long, default_value = "auto")]
    pub reward_model: String,
    /// The reward model's L2 penalty λ (on the sum of losses).
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// Cross-fit the reward model over this many groups of sessions (1:
    /// fit on the whole log, as obp's default).
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Estimators, comma-separated: dm, ipw, snipw, dr, sndr, switch-dr,
    /// dr-os, pdis, wpdis [default: the bandit ones the inputs allow].
    #[arg(long, value_delimiter = ',')]
    pub estimators: Vec<String>,
    /// Largest importance weight of IPW and DR (obp's `lambda_`).
    #[arg(long, default_value_t = f64::INFINITY)]
    pub clip: f64,
    /// Switch-DR's threshold on the weight.
    #[arg(long, default_value_t = f64::INFINITY)]
    pub tau: f64,
    /// DR-OS's shrinkage λ (0 gives DM, inf gives DR).
    #[arg(long, default_value_t = 0.0)]
    pub shrinkage: f64,
    /// Bootstrap resamples of each interval.
    #[arg(long, default_value_t = 10_000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Discount of the sequential estimators (pdis, wpdis).
    #[arg(long, default_value_t = 1.0)]
    pub gamma: f64,
    /// Write the estimates as CSV here (never over an existing file).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// `shoplab ope LOG --target DIST [--rewards Q]`: off-policy estimates of
/// the target policy's value per round, with 95% bootstrap intervals.
pub(crate) fn ope(args: &OpeArgs) -> Result<()> {
    use shoplab_logs::ope::{
        Estimator, Rounds, bootstrap_interval, effective_sample_size, read_table,
    };
    if !(1..=100_000).contains(&args.bootstrap) {
        bail!(
            "--bootstrap must be between 1 and 100000 (found {})",
            args.bootstrap
        );
    }
    for (flag, v) in [
        ("--clip", args.clip),
        ("--tau", args.tau),
        ("--shrinkage", args.shrinkage),
    ] {
        if v.is_nan() || v < 0.0 {
            bail!("{flag} must be a number ≥ 0 or inf (found {v})");
        }
    }
    use shoplab_logs::ope::Sequential;
    if !(0.0..=1.0).contains(&args.gamma) {
        bail!("--gamma must be in [0, 1] (found {})", args.gamma);
    }
    let sequential: Vec<Sequential> = args
        .estimators
        .iter()
        .filter_map(|name| match name.as_str() {
            "pdis" => Some(Sequential::Pdis),
            "wpdis" => Some(Sequential::Wpdis),
            _ => None,
        })
        .collect();
    let estimators: Vec<Estimator> = args
        .estimators
        .iter()
        .filter(|name| !matches!(name.as_str(), "pdis" | "wpdis"))
        .map(|name| {
            Ok(match name.as_str() {
                "dm" => Estimator::Dm,
                "ipw" => Estimator::Ipw { lambda: args.clip },
                "snipw" => Estimator::Snipw,
                "dr" => Estimator::Dr { lambda: args.clip },
                "sndr" => Estimator::Sndr,
                "switch-dr" => Estimator::SwitchDr { tau: args.tau },
                "dr-os" => Estimator::DrOs { lambda: args.shrinkage },
                other => bail!(
                    "--estimators: unknown estimator `{other}` (dm, ipw, snipw, dr, sndr, switch-dr, dr-os, pdis, wpdis)"
                ),
            })
        })
        .collect::<Result<_>>()?;
    let estimators: Vec<Estimator> = if estimators.is_empty() && sequential.is_empty() {
        [
            Estimator::Ipw { lambda: args.clip },
            Estimator::Snipw,
            Estimator::Dm,
            Estimator::Dr { lambda: args.clip },
            Estimator::Sndr,
            Estimator::SwitchDr { tau: args.tau },
            Estimator::DrOs {
                lambda: args.shrinkage,
            },
        ]
        .into()
    } else {
        estimators
    };
    use shoplab_logs::model::ModelKind;
    let kind = match args.reward_model.as_str() {
        "auto" => None,
        "logistic" => Some(ModelKind::Logistic),
        "ridge" => Some(ModelKind::Ridge),
        other => bail!("--reward-model: unknown model `{other}` (auto, logistic, ridge)"),
    };
    if !(args.l2.is_finite() && args.l2 > 0.0) {
        bail!("--l2 must be a positive number (found {})", args.l2);
    }
    if let Some(out) = &args.out
        && out.exists()
    {
        bail!(
            "{}: exists already; results are never written over",
            out.display()
        );
    }
    let log = read_csv(&args.log, &ReadOptions::default())?;
    let n = log.len();
    let is_npy = |p: &Path| p.extension().is_some_and(|e| e == "npy");
    let (target, n_actions) = if is_npy(&args.target) {
        shoplab_logs::npy::read_npy(&args.target, &log.position, true)?
    } else {
        let t = read_table(&args.target, n, 0, true)?;
        let m = t.len() / n;
        (t, m)
    };
    if log.actions_seen() > n_actions {
        bail!(
            "{}: the log has actions up to {}, the target distribution {} columns",
            args.target.display(),
            log.actions_seen() - 1,
            n_actions
        );
    }
    let rewards = match &args.rewards {
        Some(path) if is_npy(path) => {
            let (q, m) = shoplab_logs::npy::read_npy(path, &log.position, false)?;
            if m != n_actions {
                bail!(
                    "{}: {m} actions, the target distribution {n_actions}",
                    path.display()
                );
            }
            Some(q)
        }
        Some(path) => Some(read_table(path, n, n_actions, false)?),
        None if !estimators.iter().any(Estimator::needs_model) => None,
        None => {
            let kind = kind.unwrap_or_else(|| ModelKind::for_rewards(&log.reward));
            let start = Instant::now();
            let q = shoplab_logs::model::fit_predict(&log, n_actions, kind, args.l2, args.folds)?;
            println!(
                "reward model: {} regression on context × action features, λ = {}, {} in {:.2} s",
                kind.name(),
                args.l2,
                if args.folds == 1 {
                    "fitted on the whole log".to_string()
                } else {
                    format!("cross-fitted over {} folds of sessions", args.folds)
                },
                start.elapsed().as_secs_f64()
            );
            Some(q)
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
        "{}: {n} rounds, {n_actions} actions; on-policy mean reward {:.6}; effective sample size of the weights {:.1}",
        args.log.display(),
        log.reward.iter().sum::<f64>() / n as f64,
        effective_sample_size(&rounds)
    );
    println!(
        "{:<10} {:>12}  95% bootstrap interval ({} resamples, seed {})",
        "estimator", "estimate", args.bootstrap, args.seed
    );
    let mut csv = String::from("estimator,estimate,lower,upper\n");
    for e in &estimators {
        let round = e
            .round_rewards(&rounds)
            .expect("estimated rewards checked above");
        let estimate = round.iter().sum::<f64>() / n as f64;
        let (lo, hi) = bootstrap_interval(&round, 0.05, args.bootstrap, args.seed);
        println!("{:<10} {estimate:>12.6}  [{lo:.6}, {hi:.6}]", e.name());
        csv.push_str(&format!("{},{estimate},{lo},{hi}\n", e.name()));
    }
    if !sequential.is_empty() {
        if log.position.iter().any(|&p| p > 0) {
            bail!(
                "{}: pdis and wpdis weigh one decision a row; this log has slate positions",
                args.log.display()
            );
        }
        let sessions = log.sessions();
        let all: Vec<usize> = (0..sessions.len()).collect();
        for e in &sequential {
            let estimate = e.estimate(&rounds, &sessions, &all, args.gamma);
            let (lo, hi) = e.interval(
                &rounds,
                &sessions,
                args.gamma,
                (0.05, args.bootstrap, args.seed),
            );
            println!(
                "{:<10} {estimate:>12.6}  [{lo:.6}, {hi:.6}]  (per session, {} sessions, γ = {})",
                e.name(),
                sessions.len(),
                args.gamma
            );
            csv.push_str(&format!("{},{estimate},{lo},{hi}\n", e.name()));
        }
    }
    if let Some(out) = &args.out {
        let mut partial = out.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, csv)?;
        std::fs::rename(&partial, out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
