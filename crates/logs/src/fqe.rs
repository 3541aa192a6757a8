//! Model-based sequential OPE: fitted Q evaluation (Le, Voloshin and Yue,
//! 2019) on candle, and the doubly robust estimator for MDPs built on it
//! (Jiang and Li, 2016).
//!
//! **FQE** learns the target policy's action values from the log alone.
//! With `Q₀ = 0`, iteration `k` regresses, over every logged row `i`,
//!
//! `yᵢ = rᵢ + γ Σₐ π(a|sᵢ₊₁) Qₖ₋₁(sᵢ₊₁, a)`
//!
//! on `Qₖ(sᵢ, aᵢ)` — `sᵢ₊₁` the next row of the session, the sum 0 after a
//! session's last row (a truncated session's next state is not in the log,
//! so its end is treated as terminal) — and `π(·|sᵢ₊₁)` the target's
//! distribution given for that next row. After `K` iterations (by default
//! the longest session, so a finite horizon's value propagates whole) the
//! estimate is the mean over sessions of `Σₐ π(a|s₀) Q_K(s₀, a)`. `Q` is an
//! MLP (ReLU, `hidden` widths) over the standardised features with one
//! output per action, the network of shoplab's DQN: initialised from a
//! seeded generator, trained with Adam on minibatches drawn from the same
//! generator, warm-started from one iteration to the next. Rewards are
//! divided by `max |r| × K` while fitting, so values stay within ±1.
//!
//! **DR** (Jiang and Li's recursion) corrects the model with the per-step
//! weights `ρₜ = π(aₜ|sₜ) / μ(aₜ|sₜ)`: from the session's end backwards,
//! `V_DR(t) = V̂(sₜ) + ρₜ (rₜ + γ V_DR(t+1) − Q̂(sₜ, aₜ))`, with `V̂(s) =
//! Σₐ π(a|s) Q̂(s, a)` and `V_DR` 0 past the end; the estimate is the mean
//! of `V_DR(0)` over sessions. It is unbiased whatever `Q̂` is, and of low
//! variance when `Q̂` is good.
//!
//! Intervals: FQE's is a normal interval from `B` bootstrap refits (sessions
//! resampled, each refit seeded apart): `estimate ± 1.96 sd`. DR's resamples
//! sessions with `Q̂` held fixed (the model's own sampling error enters DR
//! only at second order).

use crate::{Log, ope::Rounds};
use rand::RngExt;
use shoplab_env::seed::{derive_seed, rng_from_seed};
use shoplab_policy::dqn::network::{Architecture, NetError, QNetwork, forward, matrix, to_vec};

/// How FQE fits.
#[derive(Debug, Clone, PartialEq)]
pub struct FqeConfig {
    /// Hidden layer widths of the Q-network.
    pub hidden: Vec<usize>,
    /// Iterations `K` (0: the longest session's length).
    pub iterations: usize,
    /// Passes over the log's rows per iteration (gradient steps = epochs ×
    /// rows / batch, at least 50).
    pub epochs: f64,
    /// Minibatch size.
    pub batch: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the initialisation and the minibatches.
    pub seed: u64,
}

impl Default for FqeConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            iterations: 0,
            epochs: 8.0,
            batch: 256,
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

/// Why FQE failed: the network's own error (a non-finite loss).
#[derive(Debug, thiserror::Error)]
#[error("fitted Q evaluation: {0}")]
pub struct FqeError(String);

impl From<NetError> for FqeError {
    fn from(e: NetError) -> Self {
        Self(e.0)
    }
}

/// A fitted `Q̂` of the target policy at the log's rows.
#[derive(Debug, Clone)]
pub struct FqeFit {
    /// `Q̂(sᵢ, a)` for every row and action (`rows × actions`).
    pub q: Vec<f64>,
    /// FQE's estimate: the mean over sessions of `V̂(s₀)`.
    pub value: f64,
}

/// Fits `Q̂` of the target (`rounds.target`) on the sessions `chosen` of
/// `log` (indices into `sessions`, repeats allowed: a bootstrap resample)
/// and evaluates it at every row of the log.
pub fn fit(
    log: &Log,
    rounds: &Rounds<'_>,
    sessions: &[Vec<usize>],
    chosen: &[usize],
    gamma: f64,
    config: &FqeConfig,
) -> Result<FqeFit, FqeError> {
    let n = log.len();
    let m = rounds.n_actions;
    let d = log.features.len();
    // Standardised inputs (over the whole log), f32 as the network takes.
    let (mean, scale) = standardisation(log);
    let x: Vec<f32> = (0..n)
        .flat_map(|i| {
            log.features_of(i)
                .iter()
                .zip(mean.iter().zip(&scale))
                .map(|(&v, (mu, s))| ((f64::from(v) - mu) / s) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    // Each row's successor in its session, if any.
    let mut next = vec![None; n];
    for rows in sessions {
        for w in rows.windows(2) {
            if !log.terminated[w[0]] {
                next[w[0]] = Some(w[1]);
            }
        }
    }
    let horizon = sessions.iter().map(Vec::len).max().unwrap_or(0);
    let iterations = if config.iterations == 0 {
        horizon
    } else {
        config.iterations
    };
    let max_reward = log.reward.iter().fold(0.0f64, |a, r| a.max(r.abs()));
    let unit = (max_reward * iterations.max(1) as f64).max(1e-12);
    // The rows trained on: those of the chosen sessions.
    let train: Vec<usize> = chosen
        .iter()
        .flat_map(|&j| sessions[j].iter().copied())
        .collect();
    let arch = Architecture {
        inputs: d,
        hidden: config.hidden.clone(),
        outputs: m,
        dueling: false,
    };
    let mut rng = rng_from_seed(derive_seed(config.seed, "fqe", 0));
    let mut net = QNetwork::new(arch.clone(), &mut rng)?;
    let device = net.device().clone();
    let steps =
        ((config.epochs * train.len() as f64 / config.batch as f64).ceil() as usize).max(50);
    let b = config.batch;
    let mut q = vec![0.0f32; n * m];
    let mut y = vec![0.0f32; n];
    let (mut xb, mut ab, mut yb) = (vec![0.0f32; b * d], vec![0u32; b], vec![0.0f32; b]);
    let err = |e: candle_core::Error| FqeError(e.to_string());
    for k in 0..iterations {
        // Targets from the previous iteration's Q (0 at the first).
        if k > 0 {
            evaluate(&arch, &net, &x, n, d, &mut q)?;
        }
        for i in 0..n {
            let v_next = next[i].map_or(0.0, |j| {
                (0..m)
                    .map(|a| rounds.target[j * m + a] * f64::from(q[j * m + a]))
                    .sum::<f64>()
            });
            y[i] = (log.reward[i] / unit + gamma * v_next) as f32;
        }
        for step in 0..steps {
            for r in 0..b {
                let i = train[rng.random_range(0..train.len())];
                xb[r * d..(r + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
                ab[r] = log.action[i];
                yb[r] = y[i];
            }
            let obs = matrix(&xb, b, d, &device)?;
            let q_all = forward(&arch, net.tracked(), &obs)?;
            let actions = candle_core::Tensor::from_slice(&ab, (b, 1), &device).map_err(err)?;
            let pred = q_all
                .gather(&actions, 1)
                .and_then(|t| t.squeeze(1))
                .map_err(err)?;
            let target = candle_core::Tensor::from_slice(&yb, b, &device).map_err(err)?;
            let loss = (&pred - &target)
                .and_then(|t| t.sqr())
                .and_then(|t| t.mean_all())
                .map_err(err)?;
            let value = loss.to_scalar::<f32>().map_err(err)?;
            if !value.is_finite() {
                return Err(FqeError(format!("iteration {k}: the loss is {value}")));
            }
            // The rate falls linearly to a tenth over each iteration, so
            // each fit ends near its minimum rather than at SGD's noise.
            let rate = config.learning_rate * (1.0 - 0.9 * step as f64 / steps as f64);
            net.adam_step(&loss, rate, 10.0)?;
        }
    }
    evaluate(&arch, &net, &x, n, d, &mut q)?;
    let q: Vec<f64> = q.iter().map(|&v| f64::from(v) * unit).collect();
    let value = chosen
        .iter()
        .map(|&j| {
            let s0 = sessions[j][0];
            (0..m)
                .map(|a| rounds.target[s0 * m + a] * q[s0 * m + a])
                .sum::<f64>()
        })
        .sum::<f64>()
        / chosen.len().max(1) as f64;
    Ok(FqeFit { q, value })
}

/// `Q(s, ·)` at every row, in chunks.
fn evaluate(
    arch: &Architecture,
    net: &QNetwork,
    x: &[f32],
    n: usize,
    d: usize,
    out: &mut [f32],
) -> Result<(), FqeError> {
    let m = arch.outputs;
    let chunk = 8192;
    for start in (0..n).step_by(chunk) {
        let rows = chunk.min(n - start);
        let input = matrix(&x[start * d..(start + rows) * d], rows, d, net.device())?;
        let values = to_vec(&forward(arch, net.detached(), &input)?)?;
        out[start * m..(start + rows) * m].copy_from_slice(&values);
    }
    Ok(())
}

/// Each feature's mean and standard deviation (1 where constant).
fn standardisation(log: &Log) -> (Vec<f64>, Vec<f64>) {
    shoplab_policy::offline::neural::feature_moments(log.len(), log.features.len(), |i| {
        log.features_of(i)
    })
}

/// FQE's estimate with a normal interval from `resamples` bootstrap refits
/// (sessions resampled, refit `r` seeded `derive_seed(seed, "fqe
/// bootstrap", r)`), run in parallel; returns (estimate, lower, upper,
/// the full-log fit).
pub fn fqe_interval(
    log: &Log,
    rounds: &Rounds<'_>,
    gamma: f64,
    config: &FqeConfig,
    resamples: usize,
) -> Result<(f64, f64, f64, FqeFit), FqeError> {
    use rayon::prelude::*;
    let sessions = log.sessions();
    let all: Vec<usize> = (0..sessions.len()).collect();
    let full = fit(log, rounds, &sessions, &all, gamma, config)?;
    let values: Vec<f64> = (0..resamples)
        .into_par_iter()
        .map(|r| {
            let seed = derive_seed(config.seed, "fqe bootstrap", r as u64);
            let mut rng = rng_from_seed(seed);
            let chosen: Vec<usize> = (0..sessions.len())
                .map(|_| rng.random_range(0..sessions.len()))
                .collect();
            let config = FqeConfig {
                seed,
                ..config.clone()
            };
            fit(log, rounds, &sessions, &chosen, gamma, &config).map(|f| f.value)
        })
        .collect::<Result<_, _>>()?;
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0)).sqrt();
    Ok((
        full.value,
        full.value - 1.96 * sd,
        full.value + 1.96 * sd,
        full,
    ))
}

/// Jiang and Li's doubly robust estimate on the sessions `chosen`, with
/// `q` the model's `Q̂` at every row (`rows × actions`).
pub fn doubly_robust(
    rounds: &Rounds<'_>,
    sessions: &[Vec<usize>],
    chosen: &[usize],
    q: &[f64],
    gamma: f64,
) -> f64 {
    let m = rounds.n_actions;
    let v_hat = |i: usize| {
        (0..m)
            .map(|a| rounds.target[i * m + a] * q[i * m + a])
            .sum::<f64>()
    };
    let total: f64 = chosen
        .iter()
        .map(|&j| {
            let mut v = 0.0;
            for &i in sessions[j].iter().rev() {
                let a = rounds.action[i] as usize;
                v = v_hat(i) + rounds.weight(i) * (rounds.reward[i] + gamma * v - q[i * m + a]);
            }
            v
        })
        .sum();
    total / chosen.len().max(1) as f64
}

/// [`doubly_robust`] with a percentile bootstrap interval over sessions
/// (`q` fixed): (estimate, lower, upper).
pub fn doubly_robust_interval(
    rounds: &Rounds<'_>,
    sessions: &[Vec<usize>],
    q: &[f64],
    gamma: f64,
    (alpha, resamples, seed): (f64, usize, u64),
) -> (f64, f64, f64) {
    let all: Vec<usize> = (0..sessions.len()).collect();
    let estimate = doubly_robust(rounds, sessions, &all, q, gamma);
    let mut rng = rng_from_seed(seed);
    let n = sessions.len();
    let mut chosen = vec![0; n];
    let mut values: Vec<f64> = (0..resamples)
        .map(|_| {
            chosen.iter_mut().for_each(|c| *c = rng.random_range(0..n));
            doubly_robust(rounds, sessions, &chosen, q, gamma)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    (
        estimate,
        crate::ope::quantile(&values, alpha / 2.0),
        crate::ope::quantile(&values, 1.0 - alpha / 2.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-step sessions with known values: with the exact `Q` of the
    /// target, DR returns the model's value whatever the rewards' noise
    /// would be — and with a wrong `Q` it still returns the importance-
    /// weighted truth (hand-computed).
    #[test]
    fn doubly_robust_matches_a_hand_computation() {
        // One session: rows 0 (action 0, reward 1) and 1 (action 1, reward 2).
        let reward = [1.0, 2.0];
        let action = [0, 1];
        let propensity = [0.5, 0.25];
        let target = [0.8, 0.2, 0.4, 0.6];
        let rounds = crate::ope::tests::two_action_rounds((&reward, &action), &propensity, &target);
        let sessions = vec![vec![0, 1]];
        let q = [3.0, 1.0, 0.5, 2.5];
        // Step 1: V̂ = 0.4·0.5 + 0.6·2.5 = 1.7; ρ = 0.6/0.25 = 2.4;
        // V(1) = 1.7 + 2.4·(2 + 0 − 2.5) = 0.5.
        // Step 0: V̂ = 0.8·3 + 0.2·1 = 2.6; ρ = 0.8/0.5 = 1.6;
        // V(0) = 2.6 + 1.6·(1 + 0.9·0.5 − 3) = 0.12.
        let v = doubly_robust(&rounds, &sessions, &[0], &q, 0.9);
        assert!((v - 0.12).abs() < 1e-12, "{v}");
        // With Q̂ = 0 it is per-decision importance sampling: 1.6·1 +
        // 0.9·1.6·2.4·2 = 8.512.
        let v0 = doubly_robust(&rounds, &sessions, &[0], &[0.0; 4], 0.9);
        assert!((v0 - 8.512).abs() < 1e-12, "{v0}");
    }
}
