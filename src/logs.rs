//! `shoplab log` (a policy's decisions, with propensities, as a log file)
//! and `shoplab log-info` (a log validated whole and summarised).

use crate::Loader;
use anyhow::{Result, bail};
use shoplab_logs::ReadOptions;
use std::{collections::BTreeSet, path::Path, time::Instant};

/// Most rows `shoplab log` writes (about 5 GiB of CSV at 50 bytes a row).
const MAX_LOG_ROWS: f64 = 1e8;

/// The index of the policy named `name` in `prepared` (read from `file`),
/// or an error listing the scenario's policies.
pub(crate) fn policy_index(
    prepared: &shoplab_harness::prepared::Prepared,
    name: &str,
    file: &Path,
) -> Result<usize> {
    match prepared.names.iter().position(|n| n == name) {
        Some(index) => Ok(index),
        None => bail!(
            "{}: no policy named `{name}` (its policies: {})",
            file.display(),
            prepared.names.join(", ")
        ),
    }
}

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
    let index = policy_index(&prepared, policy, file)?;
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
    let log = shoplab_logs::parquet::read_log(file, &ReadOptions { n_actions: actions })?;
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
        let rows = if shoplab_logs::parquet::is_parquet(out) {
            obd.log.write_parquet(out)?
        } else {
            obd.log.write_csv(out)?
        };
        println!("wrote {rows} rows to {}", out.display());
    }
    Ok(())
}
