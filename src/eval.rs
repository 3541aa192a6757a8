//! `shoplab eval`: greedy evaluation of a run folder's checkpoints, printed
//! one line per checkpoint and a summary per policy with intervals as the
//! run's own summary makes them.

use crate::{Loader, MAX_COMMAND_EPISODES};
use anyhow::{Result, bail};
use std::path::Path;

/// `shoplab eval DIR`: greedy evaluation of a run's checkpoints, of one
/// policy or all, skipping missing ones if asked to.
pub(crate) fn eval_checkpoints(
    dir: &Path,
    (policy, skip_missing): (Option<&str>, bool),
    episodes: u32,
    loader: &Loader<'_>,
) -> Result<()> {
    if !(1..=MAX_COMMAND_EPISODES).contains(&episodes) {
        bail!("--episodes must be between 1 and {MAX_COMMAND_EPISODES} (found {episodes})");
    }
    let prepared = loader.load_run(dir)?;
    if prepared.scenario.sweep.is_some() {
        bail!(
            "{}: a sweep's run folder; `eval` takes one scenario's checkpoints (a \
             configuration's are under configs/<id>/checkpoints/: run that configuration \
             as a scenario of its own to evaluate them)",
            dir.display()
        );
    }
    // Greedy episodes of every checkpoint, with the references on the same
    // episodes, against the work limit like a run.
    let episode = prepared.family().episode_cost();
    let per_checkpoint = f64::from(episodes) * episode.decisions * (3.0 * episode.env_work + 1e3);
    let checkpoints = (prepared.names.len() * prepared.scenario.run.seeds.len()) as f64;
    let work = per_checkpoint * checkpoints
        + prepared
            .estimate()
            .policies
            .iter()
            .map(|p| f64::from(episodes) * episode.decisions * p.cost.act_work)
            .sum::<f64>()
            * prepared.scenario.run.seeds.len() as f64;
    if work > loader.limits.max_work {
        bail!(
            "evaluating {episodes} episodes per checkpoint would take about {work:.1e} operations, \
             more than the limit of {:.1e} (use fewer --episodes, or raise --max-work)",
            loader.limits.max_work
        );
    }
    let evals =
        shoplab_harness::evaluate_checkpoints(&prepared, dir, policy, episodes, skip_missing)?;
    for (name, seed, why) in &evals.skipped {
        eprintln!("warning: skipped the checkpoint of {name}, seed {seed}: {why}");
    }
    let results = evals.results;
    let run = &prepared.scenario.run;
    // Intervals as the run's own summary makes them: its confidence, its
    // resamples, resampling seeded from its first seed.
    let estimate = |values: &[f64], what: &str, name: &str| {
        shoplab_harness::stats::estimate(
            values,
            run.confidence,
            run.bootstrap_resamples,
            shoplab_env::seed::derive_seed(
                run.seeds[0],
                &format!("checkpoint-eval/{name}/{what}"),
                0,
            ),
        )
    };
    let level = 100.0 * run.confidence;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Against the oracle played on the same episodes where the family can
    // play it (paired), else against the episodes' references; the score
    // is what the reference bounds (the return, or the family's score
    // metric, such as the ads expected reward).
    let paired = results
        .iter()
        .all(|r| !r.evaluation.oracle_scores.is_empty());
    let pct = |e: &shoplab_harness::runner::Evaluation| -> Option<f64> {
        if paired {
            return Some(100.0 * mean(&e.scores) / mean(&e.oracle_scores));
        }
        let refs: Option<Vec<f64>> = e.references.iter().copied().collect();
        refs.map(|r| 100.0 * mean(&e.scores) / mean(&r))
    };
    let reference = if paired {
        "of the oracle on the same episodes"
    } else {
        "of the reference"
    };
    println!("greedy evaluation of checkpoints, {episodes} episodes each");
    println!(
        "{:<24} {:>6} {:>12} {:>12}  file",
        "policy",
        "seed",
        "mean return",
        if paired { "% of oracle" } else { "% of ref" }
    );
    for r in &results {
        println!(
            "{:<24} {:>6} {:>12.4} {:>12}  {}",
            r.policy,
            r.seed,
            mean(&r.evaluation.returns),
            pct(&r.evaluation).map_or("—".into(), |p| format!("{p:.1}%")),
            r.file.display()
        );
    }
    let mut names: Vec<&str> = results.iter().map(|r| r.policy.as_str()).collect();
    names.dedup();
    for name in names {
        let runs: Vec<_> = results.iter().filter(|r| r.policy == name).collect();
        let means: Vec<f64> = runs.iter().map(|r| mean(&r.evaluation.returns)).collect();
        let e = estimate(&means, "return", name);
        let pcts: Option<Vec<f64>> = runs.iter().map(|r| pct(&r.evaluation)).collect();
        let pct = pcts
            .map(|p| {
                let e = estimate(&p, "pct", name);
                format!(", {:.1}% {reference} [{:.1}, {:.1}]", e.mean, e.low, e.high)
            })
            .unwrap_or_default();
        let listed = runs.len() + evals.skipped.iter().filter(|s| s.0 == name).count();
        println!(
            "{name}: {:.4} per episode over {} of {listed} seeds, {level}% CI [{:.4}, {:.4}]{pct}",
            e.mean, e.n, e.low, e.high
        );
    }
    Ok(())
}
