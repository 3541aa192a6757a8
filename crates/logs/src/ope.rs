//! Off-policy estimators for contextual bandits, with obp's definitions.
//!
//! Every estimator sees, for each logged round `i`: the reward `rᵢ`, the
//! action `aᵢ` at position `kᵢ`, the behaviour policy's propensity `pᵢ`,
//! the target policy's action distribution `π(·|xᵢ, kᵢ)` at that position
//! and, for the model-based ones, estimated rewards `q̂(xᵢ, ·, kᵢ)`. With
//! the importance weight `wᵢ = π(aᵢ|xᵢ, kᵢ) / pᵢ` and the model's value of
//! the target `q̂ᵢ(π) = Σₐ π(a|xᵢ, kᵢ) q̂(xᵢ, a, kᵢ)`, each estimator is the
//! mean of its *round rewards* (as in obp 0.5, `_estimate_round_rewards`):
//!
//! | estimator | round reward |
//! |---|---|
//! | DM | `q̂ᵢ(π)` |
//! | IPW | `wᵢ rᵢ` |
//! | SNIPW | `wᵢ rᵢ / mean(w)` |
//! | DR | `q̂ᵢ(π) + wᵢ (rᵢ − q̂(xᵢ, aᵢ, kᵢ))` |
//! | SNDR | `q̂ᵢ(π) + wᵢ (rᵢ − q̂(xᵢ, aᵢ, kᵢ)) / mean(w)` |
//! | Switch-DR (τ) | `q̂ᵢ(π) + [wᵢ ≤ τ] wᵢ (rᵢ − q̂(xᵢ, aᵢ, kᵢ))` |
//! | DR-OS (λ) | `q̂ᵢ(π) + ŵᵢ (rᵢ − q̂(xᵢ, aᵢ, kᵢ))`, `ŵᵢ = λ wᵢ / (wᵢ² + λ)` |
//!
//! `q̂ᵢ(π)` is normalised by `Σₐ π(a|xᵢ, kᵢ)` (numpy's weighted average, as
//! obp computes it). IPW and DR clip weights at `λ` when one is given
//! (obp's `lambda_`, unbounded by default); DR-OS with `λ = 0` is DM (obp
//! gives NaN where a weight is 0). Intervals are obp's too: a percentile bootstrap
//! of the mean of the round rewards, resampling rounds with a seeded
//! generator.

use rand::RngExt;
use shoplab_env::seed::rng_from_seed;

/// What each logged round tells an estimator; slices of one length `n`,
/// distributions and estimated rewards `n × n_actions` (round by round, at
/// the round's position).
#[derive(Debug, Clone, Copy)]
pub struct Rounds<'a> {
    /// Each round's reward.
    pub reward: &'a [f64],
    /// Each round's action.
    pub action: &'a [u32],
    /// The behaviour policy's probability of each round's action.
    pub propensity: &'a [f64],
    /// The target policy's probability of every action in each round, at
    /// the round's position (`n × n_actions`).
    pub target: &'a [f64],
    /// Estimated reward of every action in each round, at the round's
    /// position (`n × n_actions`); required by DM and the DR family.
    pub estimated: Option<&'a [f64]>,
    /// Number of actions.
    pub n_actions: usize,
}

impl Rounds<'_> {
    /// Round `i`'s importance weight `π(aᵢ|xᵢ, kᵢ) / pᵢ`.
    pub fn weight(&self, i: usize) -> f64 {
        self.target[i * self.n_actions + self.action[i] as usize] / self.propensity[i]
    }
}

/// An estimator and its setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimator {
    /// The direct method.
    Dm,
    /// Inverse propensity weighting, weights clipped at `lambda` (∞: none).
    Ipw {
        /// Largest weight.
        lambda: f64,
    },
    /// Self-normalised IPW.
    Snipw,
    /// Doubly robust, weights clipped at `lambda` (∞: none).
    Dr {
        /// Largest weight.
        lambda: f64,
    },
    /// Self-normalised doubly robust.
    Sndr,
    /// Switch-DR: the correction only where the weight is at most `tau`.
    SwitchDr {
        /// Largest weight corrected with.
        tau: f64,
    },
    /// DR with optimistic shrinkage of the weights, `λw / (w² + λ)`.
    DrOs {
        /// Shrinkage λ ≥ 0 (0: DM, ∞: DR).
        lambda: f64,
    },
}

impl Estimator {
    /// The estimator's name, as obp abbreviates it (`ipw`, `switch-dr`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dm => "dm",
            Self::Ipw { .. } => "ipw",
            Self::Snipw => "snipw",
            Self::Dr { .. } => "dr",
            Self::Sndr => "sndr",
            Self::SwitchDr { .. } => "switch-dr",
            Self::DrOs { .. } => "dr-os",
        }
    }

    /// Whether the estimator needs estimated rewards.
    pub fn needs_model(&self) -> bool {
        !matches!(self, Self::Ipw { .. } | Self::Snipw)
    }

    /// Each round's reward under the estimator; `None` when it needs
    /// estimated rewards and `rounds` has none.
    pub fn round_rewards(&self, rounds: &Rounds<'_>) -> Option<Vec<f64>> {
        let n = rounds.reward.len();
        let m = rounds.n_actions;
        let weight = |i: usize| rounds.weight(i);
        let mean_weight = || (0..n).map(weight).sum::<f64>() / n as f64;
        if !self.needs_model() {
            return Some(match *self {
                Self::Ipw { lambda } => (0..n)
                    .map(|i| weight(i).min(lambda) * rounds.reward[i])
                    .collect(),
                _ => {
                    let mean = mean_weight();
                    (0..n)
                        .map(|i| weight(i) * rounds.reward[i] / mean)
                        .collect()
                }
            });
        }
        let q = rounds.estimated?;
        // numpy's `average(q̂, weights=π)`: normalised by Σπ, as obp does.
        let model = |i: usize| -> f64 {
            let row = i * m..(i + 1) * m;
            let pi = &rounds.target[row.clone()];
            pi.iter().zip(&q[row]).map(|(p, q)| p * q).sum::<f64>() / pi.iter().sum::<f64>()
        };
        let residual = |i: usize| rounds.reward[i] - q[i * m + rounds.action[i] as usize];
        let mean = matches!(self, Self::Sndr).then(mean_weight).unwrap_or(1.0);
        Some(
            (0..n)
                .map(|i| {
                    let w = weight(i);
                    let correction = match *self {
                        Self::Dm => 0.0,
                        Self::Dr { lambda } => w.min(lambda) * residual(i),
                        Self::Sndr => w * residual(i) / mean,
                        Self::SwitchDr { tau } => {
                            if w <= tau {
                                w * residual(i)
                            } else {
                                0.0
                            }
                        }
                        Self::DrOs { lambda } => {
                            let shrunk = if lambda.is_infinite() {
                                w
                            } else if lambda == 0.0 {
                                0.0
                            } else {
                                lambda * w / (w * w + lambda)
                            };
                            shrunk * residual(i)
                        }
                        Self::Ipw { .. } | Self::Snipw => unreachable!("handled above"),
                    };
                    model(i) + correction
                })
                .collect(),
        )
    }

    /// The estimate: the mean of the round rewards.
    pub fn estimate(&self, rounds: &Rounds<'_>) -> Option<f64> {
        let r = self.round_rewards(rounds)?;
        Some(r.iter().sum::<f64>() / r.len() as f64)
    }
}

/// A percentile bootstrap interval of the mean of `samples`: `resamples`
/// means of rounds drawn with replacement from a generator seeded with
/// `seed`, and their `α/2` and `1 − α/2` quantiles (numpy's linear
/// interpolation, as obp's `estimate_confidence_interval_by_bootstrap`).
pub fn bootstrap_interval(samples: &[f64], alpha: f64, resamples: usize, seed: u64) -> (f64, f64) {
    bootstrap_intervals(&[samples], alpha, resamples, seed)[0]
}

/// [`bootstrap_interval`] of several estimators' round rewards at once,
/// each resample drawing one set of rounds for all of them (the same
/// intervals as one call each with the same seed, for one pass of draws).
pub fn bootstrap_intervals(
    samples: &[&[f64]],
    alpha: f64,
    resamples: usize,
    seed: u64,
) -> Vec<(f64, f64)> {
    let n = samples.first().map_or(0, |s| s.len());
    let mut rng = rng_from_seed(seed);
    let mut means = vec![Vec::with_capacity(resamples); samples.len()];
    let mut sums = vec![0.0; samples.len()];
    for _ in 0..resamples {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for _ in 0..n {
            let i = rng.random_range(0..n);
            for (s, x) in sums.iter_mut().zip(samples) {
                *s += x[i];
            }
        }
        for (m, s) in means.iter_mut().zip(&sums) {
            m.push(s / n as f64);
        }
    }
    means
        .into_iter()
        .map(|mut m| {
            m.sort_by(f64::total_cmp);
            (quantile(&m, alpha / 2.0), quantile(&m, 1.0 - alpha / 2.0))
        })
        .collect()
}

/// Each estimator's estimate with its percentile bootstrap 95% interval
/// ([`bootstrap_intervals`], one draw of rounds for all): `(estimate,
/// lower, upper)` in the order of `estimators`, or `None` when one needs
/// estimated rewards that `rounds` lacks.
pub fn estimate_with_intervals(
    estimators: &[Estimator],
    rounds: &Rounds<'_>,
    resamples: usize,
    seed: u64,
) -> Option<Vec<(f64, f64, f64)>> {
    let round: Vec<Vec<f64>> = estimators
        .iter()
        .map(|e| e.round_rewards(rounds))
        .collect::<Option<_>>()?;
    let slices: Vec<&[f64]> = round.iter().map(Vec::as_slice).collect();
    let n = rounds.reward.len() as f64;
    Some(
        bootstrap_intervals(&slices, 0.05, resamples, seed)
            .into_iter()
            .zip(&round)
            .map(|((lower, upper), values)| (values.iter().sum::<f64>() / n, lower, upper))
            .collect(),
    )
}

/// The `q` quantile of sorted `xs`, interpolating linearly between order
/// statistics (numpy's default).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let h = (xs.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo])
}

/// Kish's effective sample size of the importance weights,
/// `(Σw)² / Σw²`: how many rounds the weighted estimate is worth.
pub fn effective_sample_size(rounds: &Rounds<'_>) -> f64 {
    let (s, s2) = (0..rounds.reward.len())
        .map(|i| rounds.weight(i))
        .fold((0.0, 0.0), |(s, s2), w| (s + w, s2 + w * w));
    if s2 > 0.0 { s * s / s2 } else { 0.0 }
}

/// Sequential importance sampling over a log's sessions (Precup et al.,
/// 2000), for multi-step families: with `ρⱼₜ = Πₛ≤ₜ wⱼₛ` the product of a
/// session's weights up to its step `t`,
/// - PDIS, per-decision importance sampling: the mean over sessions of
///   `Σₜ γᵗ ρⱼₜ rⱼₜ` (unbiased);
/// - WPDIS, its weighted form: `Σₜ γᵗ Σⱼ ρⱼₜ rⱼₜ / Σⱼ ρⱼₜ`, a session that
///   has ended keeping its last weight and earning nothing (consistent,
///   lower variance).
///
/// `sessions` lists each session's rows in step order (see
/// [`crate::Log::sessions`]); `rounds` holds the target's probabilities of
/// every action at every row. Intervals resample sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sequential {
    /// Per-decision importance sampling.
    Pdis,
    /// Weighted per-decision importance sampling.
    Wpdis,
}

impl Sequential {
    /// The estimator's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pdis => "pdis",
            Self::Wpdis => "wpdis",
        }
    }

    /// The estimate on the sessions `chosen` (indices into `sessions`,
    /// repeats allowed, for the bootstrap).
    pub fn estimate(
        &self,
        rounds: &Rounds<'_>,
        sessions: &[Vec<usize>],
        chosen: &[usize],
        gamma: f64,
    ) -> f64 {
        let weight = |i: usize| rounds.weight(i);
        match self {
            Self::Pdis => {
                let total: f64 = chosen
                    .iter()
                    .map(|&j| {
                        let (mut rho, mut discount, mut value) = (1.0, 1.0, 0.0);
                        for &i in &sessions[j] {
                            rho *= weight(i);
                            value += discount * rho * rounds.reward[i];
                            discount *= gamma;
                        }
                        value
                    })
                    .sum();
                total / chosen.len() as f64
            }
            Self::Wpdis => {
                let horizon = chosen.iter().map(|&j| sessions[j].len()).max().unwrap_or(0);
                let (mut num, mut den) = (vec![0.0; horizon], vec![0.0; horizon]);
                for &j in chosen {
                    let mut rho = 1.0;
                    for (t, &i) in sessions[j].iter().enumerate() {
                        rho *= weight(i);
                        num[t] += rho * rounds.reward[i];
                        den[t] += rho;
                    }
                    for d in &mut den[sessions[j].len()..] {
                        *d += rho;
                    }
                }
                let mut discount = 1.0;
                let mut value = 0.0;
                for (n, d) in num.iter().zip(&den) {
                    if *d > 0.0 {
                        value += discount * n / d;
                    }
                    discount *= gamma;
                }
                value
            }
        }
    }

    /// A percentile bootstrap interval over sessions, as
    /// [`bootstrap_interval`] does over rounds.
    pub fn interval(
        &self,
        rounds: &Rounds<'_>,
        sessions: &[Vec<usize>],
        gamma: f64,
        (alpha, resamples, seed): (f64, usize, u64),
    ) -> (f64, f64) {
        let n = sessions.len();
        let mut rng = rng_from_seed(seed);
        let mut chosen = vec![0; n];
        let mut values: Vec<f64> = (0..resamples)
            .map(|_| {
                chosen.iter_mut().for_each(|c| *c = rng.random_range(0..n));
                self.estimate(rounds, sessions, &chosen, gamma)
            })
            .collect();
        values.sort_by(f64::total_cmp);
        (
            quantile(&values, alpha / 2.0),
            quantile(&values, 1.0 - alpha / 2.0),
        )
    }
}

pub use crate::table::read_table;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two-action rounds of `reward`, `action`, `propensity` and `target`,
    /// without estimated rewards.
    pub(crate) fn two_action_rounds<'a>(
        (reward, action): (&'a [f64], &'a [u32]),
        propensity: &'a [f64],
        target: &'a [f64],
    ) -> Rounds<'a> {
        Rounds {
            reward,
            action,
            propensity,
            target,
            estimated: None,
            n_actions: 2,
        }
    }

    /// Three rounds over two actions, each estimator worked out by hand.
    #[test]
    fn estimators_match_hand_computation() {
        let reward = [1.0, 0.0, 2.0];
        let action = [0, 1, 1];
        let propensity = [0.5, 0.25, 0.5];
        let target = [0.8, 0.2, 0.4, 0.6, 0.0, 1.0];
        let q = [0.6, 0.2, 0.3, 0.1, 1.0, 1.5];
        let rounds = Rounds {
            estimated: Some(&q),
            ..two_action_rounds((&reward, &action), &propensity, &target)
        };
        // w = (1.6, 2.4, 2.0); q̂(π) = (0.52, 0.18, 1.5); residuals (0.4, −0.1, 0.5).
        let w = [1.6, 2.4, 2.0];
        let dm = [0.52, 0.18, 1.5];
        let res = [0.4, -0.1, 0.5];
        let mean = |x: [f64; 3]| x.iter().sum::<f64>() / 3.0;
        let mw = mean(w);
        let cases = [
            (Estimator::Dm, mean(dm)),
            (
                Estimator::Ipw {
                    lambda: f64::INFINITY,
                },
                mean([1.6, 0.0, 4.0]),
            ),
            (Estimator::Ipw { lambda: 2.0 }, mean([1.6, 0.0, 4.0])),
            (Estimator::Ipw { lambda: 1.0 }, mean([1.0, 0.0, 2.0])),
            (Estimator::Snipw, mean([1.6, 0.0, 4.0]) / mw),
            (
                Estimator::Dr {
                    lambda: f64::INFINITY,
                },
                mean([0.52 + 0.64, 0.18 - 0.24, 1.5 + 1.0]),
            ),
            (Estimator::Sndr, mean(dm) + mean([0.64, -0.24, 1.0]) / mw),
            (
                Estimator::SwitchDr { tau: 2.0 },
                mean([0.52 + 0.64, 0.18, 1.5 + 1.0]),
            ),
            (Estimator::SwitchDr { tau: 0.5 }, mean(dm)),
            (Estimator::DrOs { lambda: 0.0 }, mean(dm)),
            (
                Estimator::DrOs { lambda: 4.0 },
                mean([0, 1, 2].map(|i| dm[i] + 4.0 * w[i] / (w[i] * w[i] + 4.0) * res[i])),
            ),
            (
                Estimator::DrOs {
                    lambda: f64::INFINITY,
                },
                mean([0.52 + 0.64, 0.18 - 0.24, 1.5 + 1.0]),
            ),
        ];
        for (estimator, expected) in cases {
            let got = estimator.estimate(&rounds).unwrap();
            assert!(
                (got - expected).abs() < 1e-12,
                "{estimator:?}: {got} vs {expected}"
            );
        }
        let without = Rounds {
            estimated: None,
            ..rounds
        };
        assert!(Estimator::Dr { lambda: 1.0 }.estimate(&without).is_none());
        let ess = effective_sample_size(&rounds);
        assert!((ess - 36.0 / (1.6f64.powi(2) + 2.4f64.powi(2) + 4.0)).abs() < 1e-12);
    }

    /// A two-armed bandit logged by a uniform policy: IPW and DR (with a
    /// wrong model) are unbiased for a target that plays arm 1 with
    /// probability 0.8, so over 400 logs of 500 rounds the 95% bootstrap
    /// intervals cover the truth 0.8·0.7 + 0.2·0.3 = 0.62 in 95% of them:
    /// binomial standard error √(0.95·0.05/400) ≈ 0.011, so coverage in
    /// [0.90, 0.99] (about 4.5 of them) fails by chance well under 10⁻⁴.
    #[test]
    fn ipw_and_dr_intervals_cover_the_truth() {
        let mut rng = rng_from_seed(42);
        let truth = 0.62;
        let target: Vec<f64> = std::iter::repeat_n([0.2, 0.8], 500).flatten().collect();
        let q: Vec<f64> = std::iter::repeat_n([0.5, 0.5], 500).flatten().collect();
        let mut covered = [0usize; 2];
        for log in 0..400 {
            let action: Vec<u32> = (0..500).map(|_| rng.random_range(0..2)).collect();
            let reward: Vec<f64> = action
                .iter()
                .map(|&a| f64::from(u8::from(rng.random_bool([0.3, 0.7][a as usize]))))
                .collect();
            let rounds = Rounds {
                estimated: Some(&q),
                ..two_action_rounds((&reward, &action), &[0.5; 500], &target)
            };
            for (c, e) in covered.iter_mut().zip([
                Estimator::Ipw {
                    lambda: f64::INFINITY,
                },
                Estimator::Dr {
                    lambda: f64::INFINITY,
                },
            ]) {
                let (lo, hi) =
                    bootstrap_interval(&e.round_rewards(&rounds).unwrap(), 0.05, 400, log);
                *c += usize::from(lo <= truth && truth <= hi);
            }
        }
        for c in covered {
            let rate = c as f64 / 400.0;
            assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
        }
    }

    /// Two sessions over two actions, PDIS and WPDIS by hand: weights
    /// w = π/p of the logged actions, ρ their running products.
    #[test]
    fn sequential_estimators_match_hand_computation() {
        // Session 0: rows 0, 1, 2; session 1: rows 3, 4 (ends early).
        let reward = [1.0, 2.0, 3.0, 4.0, 5.0];
        let action = [0, 1, 0, 1, 1];
        let propensity = [0.5, 0.5, 0.25, 0.8, 0.5];
        let target = [0.5, 0.5, 0.0, 1.0, 1.0, 0.0, 0.2, 0.8, 0.6, 0.4];
        let rounds = two_action_rounds((&reward, &action), &propensity, &target);
        let sessions = vec![vec![0, 1, 2], vec![3, 4]];
        // w: 1, 2, 4 | 1, 0.8 → ρ: 1, 2, 8 | 1, 0.8.
        let gamma = 0.5;
        let pdis0 = 1.0 + 0.5 * 2.0 * 2.0 + 0.25 * 8.0 * 3.0;
        let pdis1 = 4.0 + 0.5 * 0.8 * 5.0;
        let got = Sequential::Pdis.estimate(&rounds, &sessions, &[0, 1], gamma);
        assert!((got - (pdis0 + pdis1) / 2.0).abs() < 1e-12, "{got}");
        // WPDIS: t = 0: (1·1 + 1·4)/2; t = 1: (2·2 + 0.8·5)/2.8; t = 2:
        // (8·3 + 0)/(8 + 0.8), session 1 keeping its last weight.
        let wpdis = 2.5 + 0.5 * (8.0 / 2.8) + 0.25 * (24.0 / 8.8);
        let got = Sequential::Wpdis.estimate(&rounds, &sessions, &[0, 1], gamma);
        assert!((got - wpdis).abs() < 1e-12, "{got} vs {wpdis}");
        // The bootstrap resamples sessions: one session alone is its value.
        let (lo, hi) = Sequential::Pdis.interval(&rounds, &sessions[..1], gamma, (0.05, 50, 3));
        assert!((lo - pdis0).abs() < 1e-12 && (hi - pdis0).abs() < 1e-12);
    }
}
