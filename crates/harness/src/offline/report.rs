//! What a run folder reports of offline learning: the data, each
//! learner's gradient steps, and each learner's off-policy estimates from
//! the log next to its online truth.
//!
//! For every finished run of an offline learner, the trained greedy policy
//! is the target: its action at every logged row ([`RunResult::on_log`])
//! makes the target distribution, and the estimators of the `[offline]`
//! table's `ope` list (`pdis`, `wpdis`, `fqe`; undiscounted, as the returns
//! are) estimate its value from the log alone. The truth is the same run's
//! online value: its last greedy evaluation's mean return, or without
//! evaluations its mean over the final episodes. `offline_ope.csv` has a
//! row per run and estimator; the summary averages over seeds.

use crate::{
    offline::Offline,
    prepared::Prepared,
    runner::RunResult,
    stats::{Estimate, estimate},
};
use rayon::prelude::*;
use shoplab_env::seed::derive_seed;
use shoplab_logs::{
    fqe::{FqeConfig, fit},
    ope::{Rounds, Sequential},
};

/// Largest `rows × actions` of a log whose full target distribution FQE
/// may hold (8 bytes each).
const MAX_FQE_CELLS: usize = 50_000_000;

/// One run's estimate by one estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeRun {
    /// The learner's report name.
    pub policy: String,
    /// The run's seed.
    pub seed: u64,
    /// The estimator.
    pub estimator: &'static str,
    /// Its estimate from the log.
    pub estimate: f64,
    /// The run's online value.
    pub truth: f64,
}

/// One learner's estimates by one estimator, across seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeSummary {
    /// The learner's report name.
    pub policy: String,
    /// The estimator.
    pub estimator: &'static str,
    /// The estimates across seeds.
    pub estimate: Estimate,
    /// The online values across seeds.
    pub truth: Estimate,
    /// Root mean squared error of the estimates against their runs' truths.
    pub rmse: f64,
}

/// The offline section of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineSection {
    /// Where the data came from.
    pub source: String,
    /// What played it.
    pub behaviour: String,
    /// Rows and sessions.
    pub rows: usize,
    /// Sessions in the data.
    pub sessions: usize,
    /// Mean session return of the data and its standard error.
    pub value: (f64, f64),
    /// Each offline learner's gradient steps over a run.
    pub steps: Vec<(String, u64)>,
    /// Training episodes of a run: before episode `e` a learner of `G`
    /// steps has taken `⌊G·(e + 1)/episodes⌋`.
    pub episodes: u32,
    /// Every run's estimates.
    pub runs: Vec<OpeRun>,
    /// The estimates summarised per learner and estimator.
    pub summaries: Vec<OpeSummary>,
    /// Why estimates were left out, if they were.
    pub notes: Vec<String>,
}

/// The run's online value: its last evaluation's mean, or its final
/// episodes' mean return.
fn truth(result: &RunResult, final_fraction: f64) -> f64 {
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    match result.evaluations.last() {
        Some(e) => mean(&e.returns),
        None => {
            let n = result.episodes.len();
            let last = ((n as f64 * final_fraction).ceil() as usize).clamp(1, n.max(1));
            let returns: Vec<f64> = result.episodes[n.saturating_sub(last)..]
                .iter()
                .map(|e| e.ret)
                .collect();
            mean(&returns)
        }
    }
}

/// The estimates of one run's trained policy from the log.
fn estimate_run(
    offline: &Offline,
    greedy: &[u32],
    n_actions: usize,
    seed: u64,
) -> Result<Vec<(&'static str, f64)>, String> {
    let log = &offline.log;
    let sessions = log.sessions();
    let all: Vec<usize> = (0..sessions.len()).collect();
    let mut out = Vec::new();
    // The importance weights need only the target's probability of the
    // logged action: one column, the logged action relabelled 0.
    let column: Vec<f64> = greedy
        .iter()
        .zip(&log.action)
        .map(|(g, a)| f64::from(u8::from(g == a)))
        .collect();
    let zeros = vec![0u32; log.len()];
    let logged = Rounds {
        reward: &log.reward,
        action: &zeros,
        propensity: &log.propensity,
        target: &column,
        estimated: None,
        n_actions: 1,
    };
    for name in &offline.ope {
        match name.as_str() {
            "pdis" => out.push((
                "pdis",
                Sequential::Pdis.estimate(&logged, &sessions, &all, 1.0),
            )),
            "wpdis" => out.push((
                "wpdis",
                Sequential::Wpdis.estimate(&logged, &sessions, &all, 1.0),
            )),
            "fqe" => {
                let mut target = vec![0.0; log.len() * n_actions];
                for (i, &g) in greedy.iter().enumerate() {
                    target[i * n_actions + g as usize] = 1.0;
                }
                let rounds = Rounds {
                    reward: &log.reward,
                    action: &log.action,
                    propensity: &log.propensity,
                    target: &target,
                    estimated: None,
                    n_actions,
                };
                let config = FqeConfig {
                    seed: derive_seed(seed, "offline fqe", 0),
                    ..FqeConfig::default()
                };
                let fitted =
                    fit(log, &rounds, &sessions, &all, 1.0, &config).map_err(|e| e.to_string())?;
                out.push(("fqe", fitted.value));
            }
            other => return Err(format!("unknown estimator `{other}`")),
        }
    }
    Ok(out)
}

/// The offline section of a scenario's report, where it has offline data
/// and learners.
pub fn section(prepared: &Prepared, results: &[RunResult]) -> Option<OfflineSection> {
    let offline = prepared.offline()?;
    let steps: Vec<(String, u64)> = (0..prepared.names.len())
        .filter_map(|i| Some((prepared.names[i].clone(), prepared.offline_steps(i)?)))
        .collect();
    if steps.is_empty() {
        return None;
    }
    let n_actions = prepared.make_env().action_space().n();
    let mut notes = Vec::new();
    let mut estimators = offline.ope.clone();
    if estimators.iter().any(|e| e == "fqe") && offline.log.len() * n_actions > MAX_FQE_CELLS {
        estimators.retain(|e| e != "fqe");
        notes.push(format!(
            "fqe left out: {} rows × {n_actions} actions is more than {MAX_FQE_CELLS} cells",
            offline.log.len()
        ));
    }
    let offline_used = Offline {
        ope: estimators,
        ..offline.clone()
    };
    let final_fraction = prepared.scenario.run.final_fraction;
    let per_run: Vec<Result<Vec<OpeRun>, String>> = results
        .par_iter()
        .filter(|r| r.failure.is_none())
        .filter_map(|r| Some((r, r.on_log.as_ref()?)))
        .map(|(r, greedy)| {
            let policy = prepared.names[r.policy].clone();
            let truth = truth(r, final_fraction);
            let estimates = estimate_run(&offline_used, greedy, n_actions, r.seed)
                .map_err(|e| format!("{policy} seed {}: {e}", r.seed))?;
            Ok(estimates
                .into_iter()
                .map(|(estimator, estimate)| OpeRun {
                    policy: policy.clone(),
                    seed: r.seed,
                    estimator,
                    estimate,
                    truth,
                })
                .collect())
        })
        .collect();
    let mut runs = Vec::new();
    for r in per_run {
        match r {
            Ok(rows) => runs.extend(rows),
            Err(e) => notes.push(format!("estimates left out: {e}")),
        }
    }
    let run = &prepared.scenario.run;
    let mut summaries = Vec::new();
    for (policy, _) in &steps {
        for estimator in ["pdis", "wpdis", "fqe"] {
            let rows: Vec<&OpeRun> = runs
                .iter()
                .filter(|r| &r.policy == policy && r.estimator == estimator)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let est = |values: Vec<f64>, what: &str| {
                let seed = derive_seed(run.seeds[0], &format!("offline ope/{policy}/{what}"), 0);
                estimate(&values, run.confidence, run.bootstrap_resamples, seed)
            };
            let rmse = (rows
                .iter()
                .map(|r| (r.estimate - r.truth).powi(2))
                .sum::<f64>()
                / rows.len() as f64)
                .sqrt();
            summaries.push(OpeSummary {
                policy: policy.clone(),
                estimator,
                estimate: est(rows.iter().map(|r| r.estimate).collect(), estimator),
                truth: est(rows.iter().map(|r| r.truth).collect(), "truth"),
                rmse,
            });
        }
    }
    Some(OfflineSection {
        source: offline.data.source.clone(),
        behaviour: offline.behaviour.clone(),
        rows: offline.log.len(),
        sessions: offline.log.sessions().len(),
        value: offline.value,
        steps,
        episodes: run.episodes,
        runs,
        summaries,
        notes,
    })
}

/// `offline_ope.csv`: one row per run and estimator.
pub fn csv(section: &OfflineSection) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "policy",
        "seed",
        "gradient_steps",
        "estimator",
        "estimate",
        "online_value",
        "error",
    ])?;
    for r in &section.runs {
        let steps = section
            .steps
            .iter()
            .find(|(p, _)| p == &r.policy)
            .map_or(0, |s| s.1);
        w.write_record([
            r.policy.clone(),
            r.seed.to_string(),
            steps.to_string(),
            r.estimator.to_string(),
            format!("{}", r.estimate),
            format!("{}", r.truth),
            format!("{}", r.estimate - r.truth),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
