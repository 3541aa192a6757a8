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
    scenario::RunConfig,
    stats::{Estimate, estimate, mean},
};
use shoplab_env::{
    family::{GreedyTable, Ratio},
    seed::derive_seed,
};
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
    /// The greedy policy as a percentage of its references, run by run:
    /// its exact expected return over V* where the family evaluates
    /// policies exactly ([`eval_exact_return`](Self::eval_exact_return)),
    /// else the last evaluation's mean over its episodes' references.
    pub eval_pct_of_oracle: Option<Estimate>,
    /// The exact expected return of the trained greedy policy, across
    /// seeds, where the family evaluates policies exactly
    /// ([`Family::exact_value`](shoplab_env::Family::exact_value)).
    pub eval_exact_return: Option<Estimate>,
    /// Share of the gap between the family's baseline and the reference
    /// closed by the final performance, in %: per run
    /// `100 · (return − baseline) / (reference − baseline)`, with the
    /// baseline's and the oracle's exact expected returns.
    pub gap_closed: Option<Estimate>,
    /// The last evaluation against the oracle played on the same episodes
    /// (paired), in %: per run `100 · Σ return / Σ oracle return`.
    pub eval_paired_pct: Option<Estimate>,
    /// The paired difference per episode, `return − oracle return`, of the
    /// last evaluation: per run its mean over the evaluation episodes.
    pub eval_paired_diff: Option<Estimate>,
    /// Share of the gap closed by the last evaluation, in %, with the
    /// baseline and the oracle played on the same episodes: per run
    /// `100 · (Σ return − Σ baseline) / (Σ oracle − Σ baseline)`.
    pub eval_gap_closed: Option<Estimate>,
}

/// The baseline a report compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineValue {
    /// What it is (`best fixed price 3`).
    pub name: String,
    /// Its expected return (or score) per episode.
    pub value: f64,
    /// How the value is known.
    pub basis: String,
}

/// What the last greedy evaluation adds to a summary.
#[derive(Debug, Clone, Copy, Default)]
struct Evaluated {
    ret: Option<Estimate>,
    pct: Option<Estimate>,
    paired_pct: Option<Estimate>,
    paired_diff: Option<Estimate>,
    gap_closed: Option<Estimate>,
    exact: Option<Estimate>,
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
    /// Each finished run's mean return over the window, in seed order
    /// (drawn as per-seed traces with `[run] seed_traces`).
    pub per_seed: Vec<f64>,
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
    /// Whether the curves charts draw each seed's curve too.
    pub seed_traces: bool,
    /// The oracle's expected return per episode, where computable.
    pub optimal_value: Option<f64>,
    /// The family's strongest simple policy, its expected return (or
    /// score) per episode and how that is known, where it has one.
    pub baseline: Option<BaselineValue>,
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
    /// The offline data, learners and their off-policy estimates, where
    /// the scenario has offline learners.
    pub offline: Option<crate::offline::report::OfflineSection>,
}

/// What every estimate of a report shares: the run's settings and the
/// windows episodes are summarised in.
struct Summariser<'a> {
    run: &'a RunConfig,
    /// Episodes per run.
    episodes: usize,
    /// Episodes that make up the final performance.
    final_count: usize,
    /// Windows on the learning curves.
    windows: usize,
    /// The baseline's exact expected return per episode, where known.
    baseline: Option<f64>,
}

impl Summariser<'_> {
    /// An estimate across seeds, its resampling seeded by policy, quantity
    /// and index: `derive_seed(first seed, "bootstrap/<name>/<what>", index)`.
    fn est(&self, values: &[f64], name: &str, what: &str, index: usize) -> Estimate {
        let seed = derive_seed(
            self.run.seeds[0],
            &format!("bootstrap/{name}/{what}"),
            index as u64,
        );
        estimate(
            values,
            self.run.confidence,
            self.run.bootstrap_resamples,
            seed,
        )
    }

    /// The episodes of window `w` of the learning curves.
    fn window(&self, w: usize) -> std::ops::Range<usize> {
        w * self.episodes / self.windows..(w + 1) * self.episodes / self.windows
    }

    /// The final episodes of a run.
    fn finals(&self) -> std::ops::RangeFrom<usize> {
        self.episodes - self.final_count..
    }

    /// Final performance, its share of the reference, and the metrics and
    /// ratios over the final episodes; the last evaluation's return and
    /// share come from `evaluated`.
    fn summary(
        &self,
        name: &str,
        ok: &[&RunResult],
        failed: usize,
        ratios: &[Ratio],
        metrics: usize,
        evaluated: Evaluated,
    ) -> PolicySummary {
        let finals: Vec<f64> = ok
            .iter()
            .map(|r| mean(&returns(r)[self.finals()]))
            .collect();
        let final_return = (!ok.is_empty()).then(|| self.est(&finals, name, "final", 0));
        let known = references_known(ok);
        let final_refs: Vec<f64> = ok
            .iter()
            .map(|r| mean(&references(r)[self.finals()]))
            .collect();
        let final_reference = known.then(|| mean(&final_refs));
        let final_scores: Vec<f64> = ok.iter().map(|r| mean(&scores(r)[self.finals()])).collect();
        let pct_of_oracle = (known && final_refs.iter().all(|v| v.abs() > 0.0)).then(|| {
            let pcts: Vec<f64> = final_scores
                .iter()
                .zip(&final_refs)
                .map(|(r, v)| 100.0 * r / v)
                .collect();
            self.est(&pcts, name, "pct", 0)
        });
        let gap_closed = self.baseline.filter(|_| known).and_then(|b| {
            let shares: Option<Vec<f64>> = final_scores
                .iter()
                .zip(&final_refs)
                .map(|(r, v)| gap_share(*r, b, *v))
                .collect();
            Some(self.est(&shares?, name, "gap", 0))
        });
        let final_metrics = (0..metrics)
            .map(|m| {
                let per_run: Vec<f64> = ok
                    .iter()
                    .map(|r| {
                        r.episodes[self.finals()]
                            .iter()
                            .map(|e| e.metrics[m])
                            .sum::<f64>()
                            / self.final_count as f64
                    })
                    .collect();
                mean(&per_run)
            })
            .collect();
        let final_sum = |m: usize| -> f64 {
            ok.iter()
                .flat_map(|r| &r.episodes[self.finals()])
                .map(|e| e.metrics[m])
                .sum()
        };
        let final_ratios = ratios
            .iter()
            .map(|r| final_sum(r.numerator) / final_sum(r.denominator))
            .collect();
        PolicySummary {
            name: name.to_string(),
            seeds_ok: ok.len(),
            seeds_failed: failed,
            final_return,
            pct_of_oracle,
            final_reference,
            final_metrics,
            final_ratios,
            eval_return: evaluated.ret,
            eval_pct_of_oracle: evaluated.pct,
            eval_exact_return: evaluated.exact,
            gap_closed,
            eval_paired_pct: evaluated.paired_pct,
            eval_paired_diff: evaluated.paired_diff,
            eval_gap_closed: evaluated.gap_closed,
        }
    }

    /// Loss and mean Q per window, for learners that report them in every
    /// episode of every run.
    fn learning(&self, name: &str, ok: &[&RunResult]) -> Vec<LearningPoint> {
        let reports = !ok.is_empty()
            && ok
                .iter()
                .all(|r| r.episodes.iter().all(|e| e.learning.is_some()));
        let mut points = Vec::new();
        for w in (0..self.windows).filter(|_| reports) {
            let range = self.window(w);
            // Per run: the update-weighted means over the window's episodes.
            let per_run = |pick: fn(&LearningStats) -> Option<f64>| -> Vec<f64> {
                ok.iter()
                    .filter_map(|r| {
                        let (mut sum, mut updates) = (0.0, 0u64);
                        for e in &r.episodes[range.clone()] {
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
            points.push(LearningPoint {
                episode_start: range.start as u32,
                episode_end: range.end as u32,
                loss: self.est(&losses, name, "loss", w),
                mean_q: self.est(&qs, name, "mean-q", w),
            });
        }
        points
    }

    /// The learning curve: return (and regret, where every reference is
    /// known) per window across seeds.
    fn curve(&self, name: &str, ok: &[&RunResult]) -> Curve {
        let known = references_known(ok);
        let points = if ok.is_empty() {
            Vec::new()
        } else {
            (0..self.windows)
                .map(|w| {
                    let range = self.window(w);
                    let per_run: Vec<f64> = ok
                        .iter()
                        .map(|r| mean(&returns(r)[range.clone()]))
                        .collect();
                    let regret = known.then(|| {
                        let gaps: Vec<f64> = ok
                            .iter()
                            .map(|r| {
                                mean(&references(r)[range.clone()])
                                    - mean(&scores(r)[range.clone()])
                            })
                            .collect();
                        self.est(&gaps, name, "regret", w)
                    });
                    CurvePoint {
                        episode_start: range.start as u32,
                        episode_end: range.end as u32,
                        ret: self.est(&per_run, name, "curve", w),
                        regret,
                        per_seed: per_run,
                    }
                })
                .collect()
        };
        Curve {
            name: name.to_string(),
            points,
        }
    }
}

/// `100 · (value − baseline) / (reference − baseline)`: the share of the
/// gap between a baseline and a reference that `value` closes (None when
/// the reference does not exceed the baseline).
fn gap_share(value: f64, baseline: f64, reference: f64) -> Option<f64> {
    (reference > baseline).then(|| 100.0 * (value - baseline) / (reference - baseline))
}

/// True when every episode of every run has a reference.
fn references_known(ok: &[&RunResult]) -> bool {
    !ok.is_empty()
        && ok
            .iter()
            .all(|r| r.episodes.iter().all(|e| e.reference.is_some()))
}

/// A state-dependent policy's greedy tables, averaged cell by cell over seeds.
fn averaged_table(name: &str, ok: &[&RunResult]) -> Option<PolicyTable> {
    let learned: Vec<&GreedyTable> = ok.iter().filter_map(|r| r.table.as_ref()).collect();
    let mut table = (*learned.first()?).clone();
    for (i, row) in table.values.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = learned.iter().map(|t| t.values[i][j]).sum::<f64>() / learned.len() as f64;
        }
    }
    // A cell is visited when any seed's learner visited it.
    let flags: Option<Vec<&Vec<Vec<bool>>>> = learned.iter().map(|t| t.visited.as_ref()).collect();
    table.visited = flags.map(|flags| {
        table
            .values
            .iter()
            .enumerate()
            .map(|(i, row)| {
                (0..row.len())
                    .map(|j| flags.iter().any(|f| f[i][j]))
                    .collect()
            })
            .collect()
    });
    Some(PolicyTable {
        name: name.to_string(),
        seeds: learned.len(),
        table,
    })
}

/// Warnings about estimates that rest on little data: reward per session
/// when sessions last more than a third of a batch episode.
fn warnings(prepared: &Prepared, summaries: &[PolicySummary]) -> Vec<String> {
    let Some(sessions) = prepared.sessions() else {
        return Vec::new();
    };
    let (ticks, i) = (sessions.ticks, sessions.length_ratio);
    summaries
        .iter()
        .filter_map(|s| {
            let length = s.final_ratios[i];
            (length.is_nan() || length > f64::from(ticks) / 3.0).then(|| {
                format!(
                    "{}: sessions last {length:.1} steps on average, more than a third of the \
                     {ticks} ticks of an episode, so reward per session rests on few completed \
                     sessions; raise `ticks`",
                    s.name
                )
            })
        })
        .collect()
}

/// Summarises run results.
pub fn build(prepared: &Prepared, results: &[RunResult]) -> Report {
    let run = &prepared.scenario.run;
    let episodes = run.episodes as usize;
    let summariser = Summariser {
        run,
        episodes,
        final_count: ((run.final_fraction * episodes as f64).ceil() as usize).clamp(1, episodes),
        windows: (run.curve_points as usize).min(episodes),
        baseline: prepared.baseline().map(|b| b.value),
    };
    let metric_names = prepared.metric_names().to_vec();
    let ratios = prepared.ratios();
    let mut report = Report {
        scenario: prepared.scenario.name.clone(),
        seed_traces: run.seed_traces,
        confidence: run.confidence,
        optimal_value: prepared.optimal_value(),
        baseline: prepared.baseline().map(|b| BaselineValue {
            name: b.name.clone(),
            value: b.value,
            basis: b.basis.clone(),
        }),
        ratio_names: ratios.iter().map(|r| r.name).collect(),
        return_label: prepared.return_label(),
        summaries: Vec::new(),
        curves: Vec::new(),
        eval_curves: Vec::new(),
        learning: Vec::new(),
        tables: Vec::new(),
        failures: Vec::new(),
        warnings: Vec::new(),
        metric_names,
        offline: None,
    };
    for (p, name) in prepared.names.iter().enumerate() {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.policy == p).collect();
        for r in runs.iter().filter(|r| r.failure.is_some()) {
            let reason = r.failure.clone().unwrap_or_default();
            report.failures.push((name.clone(), r.seed, reason));
        }
        let ok: Vec<&RunResult> = runs
            .iter()
            .copied()
            .filter(|r| r.failure.is_none())
            .collect();
        let (eval_curve, eval_pct) = summariser.eval_curve(name, &ok);
        let mut evaluated = Evaluated {
            ret: eval_curve.points.last().map(|p| p.ret),
            pct: eval_pct,
            ..Evaluated::default()
        };
        summariser.paired(name, &ok, &mut evaluated);
        summariser.exact(name, &ok, prepared.optimal_value(), &mut evaluated);
        report.summaries.push(summariser.summary(
            name,
            &ok,
            runs.len() - ok.len(),
            &ratios,
            report.metric_names.len(),
            evaluated,
        ));
        report.eval_curves.push(eval_curve);
        report
            .learning
            .push((name.clone(), summariser.learning(name, &ok)));
        report.curves.push(summariser.curve(name, &ok));
        report.tables.extend(averaged_table(name, &ok));
    }
    report.warnings = warnings(prepared, &report.summaries);
    report.offline = crate::offline::report::section(prepared, results);
    report
}

fn returns(run: &RunResult) -> Vec<f64> {
    run.episodes.iter().map(|e| e.ret).collect()
}

/// Each episode's score: what its reference is compared with.
fn scores(run: &RunResult) -> Vec<f64> {
    run.episodes.iter().map(|e| e.score).collect()
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

mod evaluation;
pub mod sweep;
mod tables;
pub use tables::csv_files;
