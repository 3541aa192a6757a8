//! A sweep's own tables: one tidy row per configuration, policy and seed,
//! and one per configuration and policy with its interval, each with a
//! column per swept key — what the sensitivity chart draws.

use super::{Report, opt, tables::finish};
use crate::{prepared::Prepared, runner::RunResult, stats::Estimate, sweep::Configuration};

/// What a sweep measured: each configuration's final score per policy.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// The scenario's name.
    pub scenario: String,
    /// The swept keys, in the sweep's order.
    pub keys: Vec<String>,
    /// The configurations, in order.
    pub configurations: Vec<Configuration>,
    /// The policies' report names.
    pub policies: Vec<String>,
    /// Whether scores are percentages of each configuration's reference
    /// (the oracle or the hindsight optimum) — comparable across
    /// configurations whose scale differs — or raw final returns.
    pub normalised: bool,
    /// What a score is, in words.
    pub score_label: String,
    /// What a score is, short enough for an axis.
    pub axis_label: String,
    /// Per configuration, per policy: the final score across seeds
    /// (none when every run failed).
    pub scores: Vec<Vec<Option<Estimate>>>,
    /// The confidence level of the intervals.
    pub confidence: f64,
}

/// The sweep's report from each configuration's report.
pub fn build(base: &Prepared, configurations: &[Configuration], reports: &[Report]) -> SweepReport {
    let normalised = reports
        .iter()
        .flat_map(|r| &r.summaries)
        .all(|s| s.seeds_ok == 0 || s.pct_of_oracle.is_some());
    let exact = reports.iter().all(|r| r.optimal_value.is_some());
    let reference = if exact {
        "the oracle's expected return"
    } else {
        "the reference (oracle or hindsight optimum)"
    };
    let axis_label = if !normalised {
        reports[0].return_label.to_string()
    } else if exact {
        "% of the oracle's expected return".to_string()
    } else {
        "% of the reference".to_string()
    };
    let first = &reports[0];
    let score_label = if normalised {
        format!("final {} as % of {reference}", first.return_label)
    } else {
        format!("final {}", first.return_label)
    };
    SweepReport {
        scenario: base.scenario.name.clone(),
        keys: configurations[0]
            .values
            .iter()
            .map(|(k, _)| k.clone())
            .collect(),
        configurations: configurations.to_vec(),
        policies: base.names.clone(),
        normalised,
        score_label,
        axis_label,
        scores: reports
            .iter()
            .map(|r| {
                r.summaries
                    .iter()
                    .map(|s| {
                        if normalised {
                            s.pct_of_oracle
                        } else {
                            s.final_return
                        }
                    })
                    .collect()
            })
            .collect(),
        confidence: first.confidence,
    }
}

/// `sweep_runs.csv` and `sweep_summary.csv`: per run (configuration,
/// policy, seed) its final return, score, reference and share of it and
/// its last evaluation; per configuration and policy the final score's
/// mean and interval. `results[c]` are configuration `c`'s runs.
pub fn csv_files(
    sweep: &SweepReport,
    configs: &[&Prepared],
    results: &[&[RunResult]],
) -> Result<Vec<(String, Vec<u8>)>, csv::Error> {
    let mut files = Vec::new();
    let mut header: Vec<String> = vec!["scenario".into(), "configuration".into()];
    header.extend(sweep.keys.iter().cloned());
    let prefix = |c: usize| -> Vec<String> {
        let mut row = vec![sweep.scenario.clone(), sweep.configurations[c].id.clone()];
        row.extend(
            sweep.configurations[c]
                .values
                .iter()
                .map(|(_, v)| crate::sweep::display_value(v)),
        );
        row
    };

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut runs_header = header.clone();
    runs_header.extend(
        [
            "policy",
            "seed",
            "status",
            "final_return",
            "final_score",
            "final_reference",
            "pct_of_reference",
            "eval_return",
        ]
        .map(String::from),
    );
    w.write_record(&runs_header)?;
    for (c, (prepared, runs)) in configs.iter().zip(results).enumerate() {
        let run = &prepared.scenario.run;
        let episodes = run.episodes as usize;
        let count = ((run.final_fraction * episodes as f64).ceil() as usize).clamp(1, episodes);
        for r in runs.iter() {
            let mut row = prefix(c);
            row.push(prepared.names[r.policy].clone());
            row.push(r.seed.to_string());
            if r.failure.is_some() || r.episodes.len() < episodes {
                row.push("failed".into());
                row.extend(std::iter::repeat_n(String::new(), 5));
            } else {
                let finals = &r.episodes[episodes - count..];
                let mean = |f: &dyn Fn(&crate::runner::EpisodeRecord) -> f64| {
                    finals.iter().map(f).sum::<f64>() / count as f64
                };
                let reference = finals
                    .iter()
                    .all(|e| e.reference.is_some())
                    .then(|| mean(&|e| e.reference.unwrap_or(0.0)));
                let score = mean(&|e| e.score);
                row.push("ok".into());
                row.push(mean(&|e| e.ret).to_string());
                row.push(score.to_string());
                row.push(opt(reference));
                row.push(opt(reference
                    .filter(|v| v.abs() > 0.0)
                    .map(|v| 100.0 * score / v)));
                row.push(opt(r.evaluations.last().map(|e| {
                    e.returns.iter().sum::<f64>() / e.returns.len().max(1) as f64
                })));
            }
            w.write_record(&row)?;
        }
    }
    files.push(("sweep_runs.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut summary_header = header;
    summary_header.extend(
        [
            "policy",
            "seeds_ok",
            "score",
            "score_mean",
            "score_ci_low",
            "score_ci_high",
        ]
        .map(String::from),
    );
    w.write_record(&summary_header)?;
    let what = if sweep.normalised {
        "pct_of_reference"
    } else {
        "final_return"
    };
    for (c, scores) in sweep.scores.iter().enumerate() {
        for (p, estimate) in scores.iter().enumerate() {
            let mut row = prefix(c);
            row.push(sweep.policies[p].clone());
            row.push(estimate.as_ref().map_or(0, |e| e.n).to_string());
            row.push(what.into());
            row.push(opt(estimate.as_ref().map(|e| e.mean)));
            row.push(opt(estimate.as_ref().map(|e| e.low)));
            row.push(opt(estimate.as_ref().map(|e| e.high)));
            w.write_record(&row)?;
        }
    }
    files.push(("sweep_summary.csv".to_string(), finish(w)?));
    Ok(files)
}
