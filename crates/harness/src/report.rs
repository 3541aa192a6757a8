//! From run results to tidy tables: per-episode rows, learning curves with
//! confidence bands, final-performance summaries, and learned-policy tables.
//!
//! A run's *final performance* is its mean return over the last
//! `final_fraction` of its episodes; a policy's summary is the mean of that
//! over seeds, with a bootstrap interval. Curves average each run's episodes in
//! `curve_points` windows first, then estimate across seeds window by window.
//! Regret is `V* − return` against the oracle's exact expected return, where
//! the scenario has one. Failed runs are listed in `runs.csv` and left out of
//! every estimate.
//!
//! Greedy evaluations (see [`crate::runner`]) are summarised the same way:
//! a run's value at an evaluation point is its mean over the evaluation
//! episodes, estimated across seeds point by point; the last point is the
//! policy's *evaluated* performance. Learners that report training
//! statistics get loss and mean-Q curves, windowed like the return.

use crate::{
    prepared::Prepared,
    runner::RunResult,
    stats::{Estimate, estimate},
};
use shoplab_env::{family::GreedyTable, seed::derive_seed};
use shoplab_policy::LearningStats;

/// The summary of one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySummary {
    /// Report name.
    pub name: String,
    /// Runs that finished.
    pub seeds_ok: usize,
    /// Runs that failed.
    pub seeds_failed: usize,
    /// Final performance across seeds (None when every run failed).
    pub final_return: Option<Estimate>,
    /// Final performance as a percentage of the reference (the oracle's
    /// expected return, or the hindsight optimum), run by run.
    pub pct_of_oracle: Option<Estimate>,
    /// Mean over seeds of the reference over the final episodes.
    pub final_reference: Option<f64>,
    /// Mean over seeds of each metric's per-episode final mean, in metric order.
    pub final_metrics: Vec<f64>,
    /// Each of the scenario's [`Ratio`](shoplab_env::family::Ratio)s over the final
    /// episodes of all seeds (sum over sum), in order.
    pub final_ratios: Vec<f64>,
    /// Return in the last greedy evaluation, across seeds (None without
    /// evaluations).
    pub eval_return: Option<Estimate>,
    /// The last evaluation as a percentage of its references, run by run.
    pub eval_pct_of_oracle: Option<Estimate>,
}

/// A learner's training statistics over a window of episodes, across seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningPoint {
    /// First episode of the window.
    pub episode_start: u32,
    /// One past the last episode of the window.
    pub episode_end: u32,
    /// Mean training loss.
    pub loss: Estimate,
    /// Mean predicted Q of the sampled pairs.
    pub mean_q: Estimate,
}

/// One point of a learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// First episode of the window.
    pub episode_start: u32,
    /// One past the last episode of the window.
    pub episode_end: u32,
    /// Return across seeds.
    pub ret: Estimate,
    /// Regret across seeds, where an oracle exists.
    pub regret: Option<Estimate>,
}

/// A policy's learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Report name.
    pub name: String,
    /// Windows in episode order.
    pub points: Vec<CurvePoint>,
}

/// A state-dependent policy's greedy actions, averaged over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyTable {
    /// Report name.
    pub name: String,
    /// Seeds averaged.
    pub seeds: usize,
    /// The averaged table.
    pub table: GreedyTable,
}

/// Everything a run folder reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// The oracle's expected return per episode, where computable.
    pub optimal_value: Option<f64>,
    /// Names of the env's metrics.
    pub metric_names: Vec<&'static str>,
    /// Names of the summary ratios.
    pub ratio_names: Vec<&'static str>,
    /// What a return measures.
    pub return_label: &'static str,
    /// One per policy, in scenario order.
    pub summaries: Vec<PolicySummary>,
    /// One per policy, in scenario order.
    pub curves: Vec<Curve>,
    /// Greedy evaluation curves, one per policy (empty without evaluations);
    /// each point's window is the single episode count it followed.
    pub eval_curves: Vec<Curve>,
    /// Training statistics per window, one list per policy (empty for
    /// policies that report none).
    pub learning: Vec<(String, Vec<LearningPoint>)>,
    /// State-dependent policies' tables.
    pub tables: Vec<PolicyTable>,
    /// Failed runs: policy name, seed, reason.
    pub failures: Vec<(String, u64, String)>,
    /// Warnings about how far the estimates can be trusted.
    pub warnings: Vec<String>,
}

/// Summarises run results.
pub fn build(prepared: &Prepared, results: &[RunResult]) -> Report {
    let run = &prepared.scenario.run;
    let episodes = run.episodes as usize;
    let final_count = ((run.final_fraction * episodes as f64).ceil() as usize).clamp(1, episodes);
    let windows = (run.curve_points as usize).min(episodes);
    let optimal = prepared.optimal_value();
    let metric_names = prepared.metric_names().to_vec();
    let ratios = prepared.ratios();
    let boot_seed = |name: &str, what: &str, index: usize| {
        derive_seed(
            run.seeds[0],
            &format!("bootstrap/{name}/{what}"),
            index as u64,
        )
    };
    let est = |values: &[f64], name: &str, what: &str, index: usize| {
        estimate(
            values,
            run.confidence,
            run.bootstrap_resamples,
            boot_seed(name, what, index),
        )
    };

    let mut summaries = Vec::new();
    let mut curves = Vec::new();
    let mut eval_curves = Vec::new();
    let mut learning = Vec::new();
    let mut tables = Vec::new();
    let mut failures = Vec::new();
    for (p, name) in prepared.names.iter().enumerate() {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.policy == p).collect();
        for r in runs.iter().filter(|r| r.failure.is_some()) {
            failures.push((name.clone(), r.seed, r.failure.clone().unwrap_or_default()));
        }
        let ok: Vec<&RunResult> = runs
            .iter()
            .copied()
            .filter(|r| r.failure.is_none())
            .collect();
        let finals: Vec<f64> = ok
            .iter()
            .map(|r| crate::stats::mean(&returns(r)[episodes - final_count..]))
            .collect();
        let final_return = (!ok.is_empty()).then(|| est(&finals, name, "final", 0));
        let known = !ok.is_empty()
            && ok
                .iter()
                .all(|r| r.episodes.iter().all(|e| e.reference.is_some()));
        let final_refs: Vec<f64> = ok
            .iter()
            .map(|r| crate::stats::mean(&references(r)[episodes - final_count..]))
            .collect();
        let final_reference = known.then(|| crate::stats::mean(&final_refs));
        let pct_of_oracle = (known && final_refs.iter().all(|v| v.abs() > 0.0)).then(|| {
            let pcts: Vec<f64> = finals
                .iter()
                .zip(&final_refs)
                .map(|(r, v)| 100.0 * r / v)
                .collect();
            est(&pcts, name, "pct", 0)
        });
        let final_metrics = (0..metric_names.len())
            .map(|m| {
                let per_run: Vec<f64> = ok
                    .iter()
                    .map(|r| {
                        r.episodes[episodes - final_count..]
                            .iter()
                            .map(|e| e.metrics[m])
                            .sum::<f64>()
                            / final_count as f64
                    })
                    .collect();
                crate::stats::mean(&per_run)
            })
            .collect();
        let final_sum = |m: usize| -> f64 {
            ok.iter()
                .flat_map(|r| &r.episodes[episodes - final_count..])
                .map(|e| e.metrics[m])
                .sum()
        };
        let final_ratios = ratios
            .iter()
            .map(|r| final_sum(r.numerator) / final_sum(r.denominator))
            .collect();
        let eval_points = ok.first().map_or(0, |r| r.evaluations.len());
        let eval_ok = eval_points > 0 && ok.iter().all(|r| r.evaluations.len() == eval_points);
        let eval_known = eval_ok
            && ok.iter().all(|r| {
                r.evaluations
                    .iter()
                    .all(|e| e.references.iter().all(|v| v.is_some_and(|v| v != 0.0)))
            });
        let mut eval_curve = Vec::new();
        let mut eval_pcts = Vec::new();
        for i in (0..eval_points).filter(|_| eval_ok) {
            let values: Vec<f64> = ok
                .iter()
                .map(|r| crate::stats::mean(&r.evaluations[i].returns))
                .collect();
            let refs: Vec<f64> = ok
                .iter()
                .map(|r| {
                    let refs: Vec<f64> = r.evaluations[i]
                        .references
                        .iter()
                        .map(|v| v.unwrap_or(f64::NAN))
                        .collect();
                    crate::stats::mean(&refs)
                })
                .collect();
            let regret = eval_known.then(|| {
                let gaps: Vec<f64> = refs.iter().zip(&values).map(|(v, r)| v - r).collect();
                est(&gaps, name, "eval-regret", i)
            });
            if eval_known && i + 1 == eval_points {
                eval_pcts = values
                    .iter()
                    .zip(&refs)
                    .map(|(r, v)| 100.0 * r / v)
                    .collect();
            }
            let after = ok[0].evaluations[i].after_episodes as u32;
            eval_curve.push(CurvePoint {
                episode_start: after,
                episode_end: after,
                ret: est(&values, name, "eval", i),
                regret,
            });
        }
        let eval_return = eval_curve.last().map(|p| p.ret);
        let eval_pct_of_oracle =
            (!eval_pcts.is_empty()).then(|| est(&eval_pcts, name, "eval-pct", 0));
        eval_curves.push(Curve {
            name: name.clone(),
            points: eval_curve,
        });
        let reports_learning = !ok.is_empty()
            && ok
                .iter()
                .all(|r| r.episodes.iter().all(|e| e.learning.is_some()));
        let mut learning_points = Vec::new();
        for w in (0..windows).filter(|_| reports_learning) {
            let (start, end) = (w * episodes / windows, (w + 1) * episodes / windows);
            // Per run: the update-weighted means over the window's episodes.
            let per_run = |pick: fn(&LearningStats) -> Option<f64>| -> Vec<f64> {
                ok.iter()
                    .filter_map(|r| {
                        let (mut sum, mut updates) = (0.0, 0u64);
                        for e in &r.episodes[start..end] {
                            if let Some(stats) = &e.learning
                                && let Some(v) = pick(stats)
                            {
                                sum += v * stats.updates as f64;
                                updates += stats.updates;
                            }
                        }
                        (updates > 0).then(|| sum / updates as f64)
                    })
                    .collect()
            };
            let (losses, qs) = (per_run(|s| s.loss), per_run(|s| s.mean_q));
            if losses.is_empty() {
                continue;
            }
            learning_points.push(LearningPoint {
                episode_start: start as u32,
                episode_end: end as u32,
                loss: est(&losses, name, "loss", w),
                mean_q: est(&qs, name, "mean-q", w),
            });
        }
        learning.push((name.clone(), learning_points));
        summaries.push(PolicySummary {
            eval_return,
            eval_pct_of_oracle,
            name: name.clone(),
            seeds_ok: ok.len(),
            seeds_failed: runs.len() - ok.len(),
            final_return,
            pct_of_oracle,
            final_reference,
            final_metrics,
            final_ratios,
        });

        let points = if ok.is_empty() {
            Vec::new()
        } else {
            (0..windows)
                .map(|w| {
                    let (start, end) = (w * episodes / windows, (w + 1) * episodes / windows);
                    let per_run: Vec<f64> = ok
                        .iter()
                        .map(|r| crate::stats::mean(&returns(r)[start..end]))
                        .collect();
                    let regret = known.then(|| {
                        let gaps: Vec<f64> = ok
                            .iter()
                            .map(|r| {
                                crate::stats::mean(&references(r)[start..end])
                                    - crate::stats::mean(&returns(r)[start..end])
                            })
                            .collect();
                        est(&gaps, name, "regret", w)
                    });
                    CurvePoint {
                        episode_start: start as u32,
                        episode_end: end as u32,
                        ret: est(&per_run, name, "curve", w),
                        regret,
                    }
                })
                .collect()
        };
        curves.push(Curve {
            name: name.clone(),
            points,
        });

        let learned: Vec<&GreedyTable> = ok.iter().filter_map(|r| r.table.as_ref()).collect();
        if let Some(first) = learned.first() {
            let mut table = (*first).clone();
            for (i, row) in table.values.iter_mut().enumerate() {
                for (j, cell) in row.iter_mut().enumerate() {
                    *cell =
                        learned.iter().map(|t| t.values[i][j]).sum::<f64>() / learned.len() as f64;
                }
            }
            tables.push(PolicyTable {
                name: name.clone(),
                seeds: learned.len(),
                table,
            });
        }
    }
    let mut warnings = Vec::new();
    if let Some(sessions) = prepared.sessions() {
        let (ticks, i) = (sessions.ticks, sessions.length_ratio);
        for s in &summaries {
            let length = s.final_ratios[i];
            if length.is_nan() || length > f64::from(ticks) / 3.0 {
                warnings.push(format!(
                    "{}: sessions last {length:.1} steps on average, more than a third of the \
                     {ticks} ticks of an episode, so reward per session rests on few completed \
                     sessions; raise `ticks`",
                    s.name
                ));
            }
        }
    }
    Report {
        warnings,
        scenario: prepared.scenario.name.clone(),
        confidence: run.confidence,
        optimal_value: optimal,
        metric_names,
        ratio_names: ratios.iter().map(|r| r.name).collect(),
        return_label: prepared.return_label(),
        summaries,
        curves,
        eval_curves,
        learning,
        tables,
        failures,
    }
}

fn returns(run: &RunResult) -> Vec<f64> {
    run.episodes.iter().map(|e| e.ret).collect()
}

/// Each episode's reference (NaN where unknown; used only when all are known).
fn references(run: &RunResult) -> Vec<f64> {
    run.episodes
        .iter()
        .map(|e| e.reference.unwrap_or(f64::NAN))
        .collect()
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// Renders the tidy CSV files of a run folder, as (file name, bytes), in a fixed order.
pub fn csv_files(
    prepared: &Prepared,
    results: &[RunResult],
    report: &Report,
) -> Result<Vec<(String, Vec<u8>)>, csv::Error> {
    let mut files = Vec::new();
    let scenario = &report.scenario;

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["scenario", "policy", "seed", "episode", "return", "regret"];
    header.extend(report.metric_names.iter().copied());
    w.write_record(&header)?;
    for r in results {
        let name = &prepared.names[r.policy];
        for (e, rec) in r.episodes.iter().enumerate() {
            let mut row = vec![
                scenario.clone(),
                name.clone(),
                r.seed.to_string(),
                e.to_string(),
                rec.ret.to_string(),
                opt(rec.reference.map(|v| v - rec.ret)),
            ];
            row.extend(rec.metrics.iter().map(|m| m.to_string()));
            w.write_record(&row)?;
        }
    }
    files.push(("episodes.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "scenario",
        "policy",
        "seed",
        "status",
        "episodes_completed",
        "reason",
    ])?;
    for r in results {
        w.write_record([
            scenario.as_str(),
            &prepared.names[r.policy],
            &r.seed.to_string(),
            if r.failure.is_some() { "failed" } else { "ok" },
            &r.episodes.len().to_string(),
            r.failure.as_deref().unwrap_or(""),
        ])?;
    }
    files.push(("runs.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "scenario",
        "policy",
        "seeds_ok",
        "seeds_failed",
        "final_return_mean",
        "final_return_std",
        "final_return_ci_low",
        "final_return_ci_high",
        "reference_value",
        "pct_of_oracle",
        "pct_of_oracle_ci_low",
        "pct_of_oracle_ci_high",
        "final_regret_mean",
        "eval_return_mean",
        "eval_return_ci_low",
        "eval_return_ci_high",
        "eval_pct_of_oracle",
        "eval_pct_of_oracle_ci_low",
        "eval_pct_of_oracle_ci_high",
    ];
    let metric_columns: Vec<String> = report
        .metric_names
        .iter()
        .map(|m| format!("final_{m}_per_episode"))
        .collect();
    header.extend(metric_columns.iter().map(String::as_str));
    let ratio_columns: Vec<String> = report
        .ratio_names
        .iter()
        .map(|r| format!("final_{r}"))
        .collect();
    header.extend(ratio_columns.iter().map(String::as_str));
    w.write_record(&header)?;
    for s in &report.summaries {
        let f = s.final_return;
        let mut row = vec![
            scenario.clone(),
            s.name.clone(),
            s.seeds_ok.to_string(),
            s.seeds_failed.to_string(),
            opt(f.map(|e| e.mean)),
            opt(f.map(|e| e.std)),
            opt(f.map(|e| e.low)),
            opt(f.map(|e| e.high)),
            opt(s.final_reference),
            opt(s.pct_of_oracle.map(|e| e.mean)),
            opt(s.pct_of_oracle.map(|e| e.low)),
            opt(s.pct_of_oracle.map(|e| e.high)),
            opt(s.final_reference.zip(f).map(|(v, e)| v - e.mean)),
            opt(s.eval_return.map(|e| e.mean)),
            opt(s.eval_return.map(|e| e.low)),
            opt(s.eval_return.map(|e| e.high)),
            opt(s.eval_pct_of_oracle.map(|e| e.mean)),
            opt(s.eval_pct_of_oracle.map(|e| e.low)),
            opt(s.eval_pct_of_oracle.map(|e| e.high)),
        ];
        row.extend(s.final_metrics.iter().map(|m| m.to_string()));
        row.extend(s.final_ratios.iter().map(|m| m.to_string()));
        w.write_record(&row)?;
    }
    files.push(("summary.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "scenario",
        "policy",
        "window",
        "episode_start",
        "episode_end",
        "seeds",
        "return_mean",
        "return_ci_low",
        "return_ci_high",
        "regret_mean",
        "regret_ci_low",
        "regret_ci_high",
    ])?;
    for c in &report.curves {
        for (i, p) in c.points.iter().enumerate() {
            w.write_record([
                scenario.clone(),
                c.name.clone(),
                i.to_string(),
                p.episode_start.to_string(),
                p.episode_end.to_string(),
                p.ret.n.to_string(),
                p.ret.mean.to_string(),
                p.ret.low.to_string(),
                p.ret.high.to_string(),
                opt(p.regret.map(|e| e.mean)),
                opt(p.regret.map(|e| e.low)),
                opt(p.regret.map(|e| e.high)),
            ])?;
        }
    }
    files.push(("curves.csv".to_string(), finish(w)?));

    if results.iter().any(|r| !r.evaluations.is_empty()) {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "scenario",
            "policy",
            "seed",
            "after_episodes",
            "eval_episode",
            "return",
            "regret",
        ])?;
        for r in results {
            for e in &r.evaluations {
                for (k, (ret, reference)) in e.returns.iter().zip(&e.references).enumerate() {
                    w.write_record([
                        scenario.clone(),
                        prepared.names[r.policy].clone(),
                        r.seed.to_string(),
                        e.after_episodes.to_string(),
                        k.to_string(),
                        ret.to_string(),
                        opt(reference.map(|v| v - ret)),
                    ])?;
                }
            }
        }
        files.push(("evaluations.csv".to_string(), finish(w)?));
    }

    if results
        .iter()
        .any(|r| r.episodes.iter().any(|e| e.learning.is_some()))
    {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "scenario",
            "policy",
            "seed",
            "episode",
            "updates",
            "loss",
            "mean_q",
            "exploration",
        ])?;
        for r in results {
            for (e, rec) in r.episodes.iter().enumerate() {
                if let Some(l) = &rec.learning {
                    w.write_record([
                        scenario.clone(),
                        prepared.names[r.policy].clone(),
                        r.seed.to_string(),
                        e.to_string(),
                        l.updates.to_string(),
                        opt(l.loss),
                        opt(l.mean_q),
                        l.exploration.to_string(),
                    ])?;
                }
            }
        }
        files.push(("learning.csv".to_string(), finish(w)?));
    }

    if !report.tables.is_empty() {
        let mut w = csv::Writer::from_writer(Vec::new());
        let first = &report.tables[0].table;
        let value_column = format!("mean_greedy_{}", first.value_name);
        w.write_record([
            "scenario",
            "policy",
            "seeds",
            first.row_name,
            first.col_name,
            value_column.as_str(),
        ])?;
        for t in &report.tables {
            for (i, row) in t.table.values.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    w.write_record([
                        scenario.clone(),
                        t.name.clone(),
                        t.seeds.to_string(),
                        t.table.rows[i].to_string(),
                        t.table.cols[j].to_string(),
                        v.to_string(),
                    ])?;
                }
            }
        }
        files.push(("policy_tables.csv".to_string(), finish(w)?));
    }
    Ok(files)
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    w.into_inner().map_err(|e| e.into_error().into())
}
