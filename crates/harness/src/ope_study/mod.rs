//! Off-policy evaluation against the simulator's truth: the target
//! policy's action distribution on a log's rows, its true value, and the
//! OPE benchmark (`shoplab ope-study`) — bias, RMSE and interval coverage
//! of every estimator over many independent logs of several sizes, the
//! experiment obp's synthetic module runs for bandits, here on any family.
//!
//! The target is a policy of the scenario, *frozen*: built from its
//! settings and never learning, so the distribution it reports at each
//! logged row ([`target_distribution`]) and the value it earns on-policy
//! ([`true_value`]) belong to the same policy. Two estimands:
//! - per decision (the bandit estimators DM … DR-OS): the target's mean
//!   reward per decision, which is what they estimate when contexts do not
//!   depend on past actions (an auction market's opportunities, OBD's
//!   impressions);
//! - per session (PDIS, WPDIS): the mean discounted return of a session,
//!   what sequential estimators estimate in any family.
//!
//! Both truths come from `truth_episodes` on-policy episodes of the frozen
//! target, with standard errors clustered by episode. Every log, target
//! distribution, reward model and bootstrap descends from the study's seed
//! (`derive_seed(seed, "ope-study log", size · 1,000,000 + log)`), and logs
//! run in parallel in fixed chunks, so results do not depend on the thread
//! count.

use crate::{
    logging::{LoggingError, log_in_memory},
    prepared::Prepared,
};
use rayon::prelude::*;
use shoplab_env::seed::derive_seed;
use shoplab_logs::{
    model::{ModelKind, fit_predict},
    ope::{Estimator, Rounds, Sequential, estimate_with_intervals},
};

mod truth;
pub use truth::{Target, TrueValue, Value, target_distribution, true_value};

/// Why an OPE study (or a target distribution) could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// Logging the behaviour or the target failed.
    #[error(transparent)]
    Logging(#[from] LoggingError),
    /// The reward model could not be fitted.
    #[error(transparent)]
    Model(#[from] shoplab_logs::model::ModelError),
    /// The target policy cannot report its action probabilities.
    #[error("target policy `{0}` cannot report the probabilities of its actions")]
    NoProbabilities(String),
    /// The policy could not be built.
    #[error("policy `{policy}`: {message}")]
    Policy {
        /// The policy's name.
        policy: String,
        /// What went wrong.
        message: String,
    },
}

/// What an OPE study runs.
#[derive(Debug, Clone)]
pub struct StudySpec {
    /// The behaviour policy (plays and learns as `shoplab log` does).
    pub behaviour: usize,
    /// The target policy.
    pub target: Target,
    /// Log sizes, in episodes of the scenario.
    pub sizes: Vec<u32>,
    /// Independent logs of each size.
    pub logs: usize,
    /// Episodes of the target's on-policy truth.
    pub truth_episodes: u32,
    /// The study's seed.
    pub seed: u64,
    /// Bootstrap resamples of each interval.
    pub bootstrap: usize,
    /// Bandit estimators (compared with the per-decision truth).
    pub estimators: Vec<Estimator>,
    /// Sequential estimators (compared with the per-session truth).
    pub sequential: Vec<Sequential>,
    /// Discount of the sequential estimators and the session truth.
    pub gamma: f64,
    /// The reward model of DM and the DR family: kind (None: by the
    /// rewards), L2 penalty and cross-fitting folds.
    pub model: (Option<ModelKind>, f64, usize),
}

/// One estimate on one log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The log size, in episodes.
    pub episodes: u32,
    /// The log's index among those of its size.
    pub log: usize,
    /// Decisions in the log.
    pub decisions: usize,
    /// The estimator.
    pub estimator: String,
    /// The estimate.
    pub estimate: f64,
    /// Lower end of its 95% interval.
    pub lower: f64,
    /// Upper end of its 95% interval.
    pub upper: f64,
    /// The truth it estimates.
    pub truth: f64,
}

/// Bias, RMSE and coverage of one estimator at one log size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StudyRow {
    /// The log size, in episodes.
    pub episodes: u32,
    /// Mean decisions per log.
    pub decisions: f64,
    /// The estimator.
    pub estimator: String,
    /// The truth.
    pub truth: f64,
    /// Mean estimate minus the truth.
    pub bias: f64,
    /// Standard error of the bias (the estimates' spread over √logs and
    /// the truth's own error, in quadrature).
    pub bias_se: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Percentile bootstrap 95% interval of the RMSE over logs (2,000
    /// resamples), low end.
    pub rmse_low: f64,
    /// High end of the RMSE's interval.
    pub rmse_high: f64,
    /// Standard deviation of the estimates over logs.
    pub sd: f64,
    /// Fraction of logs whose 95% interval holds the truth.
    pub coverage: f64,
    /// Wilson 95% interval of the coverage, low end.
    pub coverage_low: f64,
    /// Wilson 95% interval of the coverage, high end.
    pub coverage_high: f64,
    /// Mean width of the intervals.
    pub width: f64,
    /// Logs.
    pub logs: usize,
}

/// Runs the study: the truth, every log's estimates, and their summary
/// by size and estimator (in the order of `spec`).
pub fn run_study(
    prepared: &Prepared,
    spec: &StudySpec,
) -> Result<(TrueValue, Vec<Outcome>, Vec<StudyRow>), StudyError> {
    let truth = true_value(
        prepared,
        &spec.target,
        spec.truth_episodes,
        derive_seed(spec.seed, "ope-study truth", 0),
        spec.gamma,
    )?;
    let decisions_per_episode = prepared.family().episode_cost().decisions.max(1.0);
    let mut outcomes = Vec::new();
    for (s, &episodes) in spec.sizes.iter().enumerate() {
        // Logs in chunks whose memory stays under about 4 GiB together
        // (a row: its features, two rows of action numbers, the rest).
        let n_actions = prepared.make_env().action_space().n() as f64;
        let row_bytes = 96.0 + 16.0 * n_actions;
        let per_log = f64::from(episodes) * decisions_per_episode * row_bytes;
        let chunk = ((4.0 * f64::from(1u32 << 30)) / per_log).clamp(1.0, 64.0) as usize;
        let indices: Vec<usize> = (0..spec.logs).collect();
        for block in indices.chunks(chunk) {
            let results: Vec<Result<Vec<Outcome>, StudyError>> = block
                .par_iter()
                .map(|&r| {
                    let seed = derive_seed(spec.seed, "ope-study log", (s * 1_000_000 + r) as u64);
                    one_log(prepared, spec, episodes, r, seed, &truth)
                })
                .collect();
            for result in results {
                outcomes.extend(result?);
            }
        }
    }
    let rows = summarise(spec, &outcomes, &truth);
    Ok((truth, outcomes, rows))
}

/// Every estimator's estimate and interval on one fresh log.
fn one_log(
    prepared: &Prepared,
    spec: &StudySpec,
    episodes: u32,
    r: usize,
    seed: u64,
    truth: &TrueValue,
) -> Result<Vec<Outcome>, StudyError> {
    let (log, _) = log_in_memory(
        prepared,
        spec.behaviour,
        episodes,
        derive_seed(seed, "log", 0),
    )?;
    let target = target_distribution(prepared, &spec.target, &log, derive_seed(seed, "target", 0))?;
    let n_actions = target.len() / log.len().max(1);
    let needs_model = spec.estimators.iter().any(Estimator::needs_model);
    let estimated = if needs_model {
        let (kind, l2, folds) = spec.model;
        let kind = kind.unwrap_or_else(|| ModelKind::for_rewards(&log.reward));
        Some(fit_predict(
            &log,
            n_actions,
            kind,
            l2,
            folds.min(log.sessions().len()),
        )?)
    } else {
        None
    };
    let rounds = Rounds {
        reward: &log.reward,
        action: &log.action,
        propensity: &log.propensity,
        target: &target,
        estimated: estimated.as_deref(),
        n_actions,
    };
    let mut out = Vec::new();
    let estimates = estimate_with_intervals(
        &spec.estimators,
        &rounds,
        spec.bootstrap,
        derive_seed(seed, "bootstrap", 0),
    )
    .expect("the model is fitted when needed");
    for (e, (estimate, lower, upper)) in spec.estimators.iter().zip(estimates) {
        out.push(Outcome {
            episodes,
            log: r,
            decisions: log.len(),
            estimator: e.name().to_string(),
            estimate,
            lower,
            upper,
            truth: truth.per_decision.mean,
        });
    }
    if !spec.sequential.is_empty() {
        let sessions = log.sessions();
        let all: Vec<usize> = (0..sessions.len()).collect();
        for e in &spec.sequential {
            let (lower, upper) = e.interval(
                &rounds,
                &sessions,
                spec.gamma,
                (
                    0.05,
                    spec.bootstrap,
                    derive_seed(seed, "session bootstrap", 0),
                ),
            );
            out.push(Outcome {
                episodes,
                log: r,
                decisions: log.len(),
                estimator: e.name().to_string(),
                estimate: e.estimate(&rounds, &sessions, &all, spec.gamma),
                lower,
                upper,
                truth: truth.per_session.mean,
            });
        }
    }
    Ok(out)
}

/// Bias, RMSE and coverage by size and estimator.
fn summarise(spec: &StudySpec, outcomes: &[Outcome], truth: &TrueValue) -> Vec<StudyRow> {
    let names: Vec<&str> = spec
        .estimators
        .iter()
        .map(Estimator::name)
        .chain(spec.sequential.iter().map(Sequential::name))
        .collect();
    let mut rows = Vec::new();
    for &episodes in &spec.sizes {
        for name in &names {
            let of: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.episodes == episodes && o.estimator == *name)
                .collect();
            if of.is_empty() {
                continue;
            }
            let k = of.len() as f64;
            let sequential = spec.sequential.iter().any(|e| e.name() == *name);
            let truth_se = if sequential {
                truth.per_session.se
            } else {
                truth.per_decision.se
            };
            let truth = of[0].truth;
            let mean = of.iter().map(|o| o.estimate).sum::<f64>() / k;
            let sd = (of.iter().map(|o| (o.estimate - mean).powi(2)).sum::<f64>()
                / (k - 1.0).max(1.0))
            .sqrt();
            let covered = of
                .iter()
                .filter(|o| o.lower <= truth && truth <= o.upper)
                .count();
            let (coverage_low, coverage_high) = wilson(covered, of.len());
            let squared: Vec<f64> = of.iter().map(|o| (o.estimate - truth).powi(2)).collect();
            let (mse_low, mse_high) = shoplab_logs::ope::bootstrap_interval(
                &squared,
                0.05,
                2_000,
                derive_seed(spec.seed, "ope-study rmse", rows.len() as u64),
            );
            rows.push(StudyRow {
                episodes,
                decisions: of.iter().map(|o| o.decisions as f64).sum::<f64>() / k,
                estimator: (*name).to_string(),
                truth,
                bias: mean - truth,
                bias_se: (sd * sd / k + truth_se * truth_se).sqrt(),
                rmse: (squared.iter().sum::<f64>() / k).sqrt(),
                rmse_low: mse_low.sqrt(),
                rmse_high: mse_high.sqrt(),
                sd,
                coverage: covered as f64 / k,
                coverage_low,
                coverage_high,
                width: of.iter().map(|o| o.upper - o.lower).sum::<f64>() / k,
                logs: of.len(),
            });
        }
    }
    rows
}

/// The Wilson score 95% interval of a binomial proportion.
pub fn wilson(successes: usize, trials: usize) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054;
    let n = trials as f64;
    let p = successes as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}
