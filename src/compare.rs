//! `shoplab compare RUN...`: policies of several run folders side by side.

use anyhow::{Result, bail};
use serde_json::Map;
use shoplab_harness::compare::{CompareSpec, compare, read_run};
use std::path::PathBuf;

/// What `shoplab compare` compares.
#[derive(clap::Args)]
pub(crate) struct CompareArgs {
    /// The run folders.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Policies to compare, by name (or `name@run-id`); the first is the
    /// one the others are compared with. Default: every policy.
    #[arg(long = "policy")]
    pub policies: Vec<String>,
    /// Divide each score by its reference (the oracle's value or the
    /// hindsight optimum over the same episodes): needed for runs of
    /// different scenarios, which then count as tasks.
    #[arg(long)]
    pub normalise: bool,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Stratified bootstrap replicates.
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    /// The bootstrap's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the comparison's folder goes: `RESULTS/compare/<run id>/`.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// Runs the comparison, prints its table and writes its folder.
pub(crate) fn compare_runs(args: &CompareArgs) -> Result<()> {
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        bail!("--confidence must be in (0, 1) (found {})", args.confidence);
    }
    if !(100..=1_000_000).contains(&args.resamples) {
        bail!(
            "--resamples must be in 100 ..= 1000000 (found {})",
            args.resamples
        );
    }
    let runs = args
        .runs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let spec = CompareSpec {
        policies: args.policies.clone(),
        normalise: args.normalise,
        confidence: args.confidence,
        reps: args.resamples,
        seed: args.seed,
    };
    let comparison = compare(&runs, &spec).map_err(anyhow::Error::msg)?;
    let level = format!("{:.0}%", args.confidence * 100.0);
    for run in &runs {
        println!(
            "{} ({}): {} policies, scores from its {}",
            run.dir.display(),
            run.scenario,
            run.policies.len(),
            run.source
        );
    }
    println!(
        "{} over {} task(s) ({}), {level} stratified bootstrap intervals ({} replicates, seed {}):",
        if comparison.normalised {
            "normalised scores (score / reference)"
        } else {
            "scores"
        },
        comparison.tasks.len(),
        comparison.tasks.join(", "),
        args.resamples,
        args.seed
    );
    let width = comparison
        .rows
        .iter()
        .map(|r| r.policy.chars().count())
        .max()
        .unwrap_or(6);
    for r in &comparison.rows {
        println!(
            "  {:<width$}  {:<26} {:>12.6} [{:.6}, {:.6}]  ({} runs × {} tasks)",
            r.policy, r.metric, r.estimate, r.ci_low, r.ci_high, r.runs, r.tasks
        );
    }
    let mut table = csv::Writer::from_writer(Vec::new());
    for r in &comparison.rows {
        table.serialize(r)?;
    }
    let table = table.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut profile = csv::Writer::from_writer(Vec::new());
    profile.write_record(["policy", "tau", "fraction", "ci_low", "ci_high"])?;
    for (label, points) in &comparison.profile.1 {
        for (tau, (f, low, high)) in comparison.profile.0.iter().zip(points) {
            profile.write_record([
                label.clone(),
                tau.to_string(),
                f.to_string(),
                low.to_string(),
                high.to_string(),
            ])?;
        }
    }
    let profile = profile.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut fields = Map::new();
    fields.insert("command".into(), "compare".into());
    fields.insert(
        "runs".into(),
        runs.iter()
            .map(|r| r.dir.display().to_string())
            .collect::<Vec<_>>()
            .into(),
    );
    fields.insert("normalised".into(), comparison.normalised.into());
    fields.insert("confidence".into(), args.confidence.into());
    fields.insert("resamples".into(), args.resamples.into());
    fields.insert("seed".into(), args.seed.into());
    let intervals = shoplab_harness::charts::OpeChart {
        title: format!(
            "{}: aggregate scores with {level} stratified bootstrap intervals",
            comparison.tasks.join(", ")
        ),
        x_label: if comparison.normalised {
            "normalised score".into()
        } else {
            "score".into()
        },
        estimates: comparison
            .rows
            .iter()
            .filter(|r| matches!(r.metric, "iqm" | "mean"))
            .map(|r| {
                (
                    format!("{}: {}", r.policy, r.metric),
                    r.estimate,
                    r.ci_low,
                    r.ci_high,
                )
            })
            .collect(),
        truth: None,
    };
    let chart = shoplab_harness::charts::ProfileChart {
        title: format!(
            "{}: performance profiles ({level} bands)",
            comparison.tasks.join(", ")
        ),
        x_label: if comparison.normalised {
            "normalised score τ".into()
        } else {
            "score τ".into()
        },
        taus: &comparison.profile.0,
        profiles: &comparison.profile.1,
    };
    let dir = shoplab_harness::publish_folder(
        &args.results.join("compare"),
        &[
            ("compare.csv".to_string(), table),
            ("profile.csv".to_string(), profile),
        ],
        &|dir| {
            let mut files = intervals.save_as(dir, "aggregates")?;
            files.extend(chart.save(dir)?);
            Ok(files)
        },
        fields,
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}
