//! The pieces of a softmax policy over a catalog trained by REINFORCE with
//! the top-K off-policy correction (Chen et al., "Top-K Off-Policy
//! Correction for a REINFORCE Recommender System", WSDM 2019).
//!
//! The policy is `π(a | s) = softmax(z(s) / τ)` over the catalog's logits
//! `z` (two-tower scores, [`super::catalog`]), at temperature `τ`. A slate
//! of `K` items is `K` draws without replacement (Plackett–Luce,
//! [`sample_slate`]). For a logged decision `(s, a)` with return
//! `R` and the logging policy's probability `β(a | s)`, the loss is
//!
//! `L = −ω · λ_K · R · log π(a | s) − c · H(π(· | s))`,
//!
//! with the importance weight `ω = min(π(a|s) / β(a|s), ω_max)`, the top-K
//! factor `λ_K = K (1 − π(a|s))^{K−1}` (the derivative of the probability
//! that `a` appears among `K` draws, over `π`), and an entropy bonus of
//! weight `c`; `ω` and `λ_K` are constants to the gradient, as in the paper.
//! On-policy, `β = π` and `ω = 1`; with `K = 1`, `λ_K = 1`: plain REINFORCE.

use candle_core::{D, Tensor};
use rand::RngExt;
use shoplab_env::seed::SimRng;

/// The settings of the objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Softmax temperature `τ` (> 0).
    pub temperature: f64,
    /// Slate size `K` of the top-K correction (1: none).
    pub k: usize,
    /// Entropy bonus weight `c` (≥ 0).
    pub entropy: f64,
    /// Cap `ω_max` of the importance weight.
    pub weight_cap: f64,
}

/// `log softmax(z / τ)` over the last dimension.
pub fn log_policy(logits: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let z = (logits / temperature)?;
    let max = z.max_keepdim(D::Minus1)?.detach();
    let shifted = z.broadcast_sub(&max)?;
    let log_total = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&log_total)
}

/// The logit offset of a draw of a sampled softmax that is the row's own
/// action: far enough below every logit that its weight is 0, finite so
/// that `0 · offset` stays 0 in the entropy.
const LEFT_OUT: f64 = -1e9;

/// A minibatch's loss, and what each decision weighed.
#[derive(Debug, Clone)]
pub struct Loss {
    /// The mean loss (tracked).
    pub value: Tensor,
    /// Each decision's importance weight `ω = min(π(a|s)/β(a|s), ω_max)`
    /// (1 on-policy): the value head's regression weighs its decisions by
    /// them, so that its baseline estimates `π`'s value, not the logging
    /// policy's.
    pub weights: Vec<f64>,
}

impl Objective {
    /// The mean loss over a batch: `logits` `[batch, items]` (tracked),
    /// the logged `actions`, their `returns` and logging probabilities
    /// `behaviour` (`None`: on-policy, `ω = 1`).
    pub fn loss(
        &self,
        logits: &Tensor,
        actions: &[u32],
        returns: &[f64],
        behaviour: Option<&[f64]>,
    ) -> candle_core::Result<Loss> {
        let log_pi = log_policy(logits, self.temperature)?;
        self.loss_of(&log_pi, None, actions, returns, behaviour)
    }

    /// The loss with a sampled softmax (Bengio and Senécal 2008; Jean et
    /// al. 2015), for catalogs too large to score whole at every step.
    /// `logits` is `[batch, 1 + m]` (tracked): each row's logged action
    /// first, then the `m` items drawn uniformly, with replacement, from
    /// the catalog of `items` — the same draws for every row;
    /// `hits[i·m + j]` marks draw `j` as row `i`'s own action, left out.
    /// Each row's partition `Z = Σ_i e^{z_i/τ}` is estimated by
    /// `e^{z_a/τ} + (items/m) Σ_{j ≠ a} e^{z_j/τ}` (the sum over the other
    /// draws is unbiased for the sum over the other items), and `log π(a|s)`,
    /// the weights `ω` and `λ_K`, and the entropy (over the draws, weighted
    /// by their share of `Z`) are read off that estimate.
    pub fn sampled_loss(
        &self,
        logits: &Tensor,
        items: usize,
        hits: &[bool],
        returns: &[f64],
        behaviour: Option<&[f64]>,
    ) -> candle_core::Result<Loss> {
        let (batch, columns) = logits.dims2()?;
        let m = columns.saturating_sub(1);
        if m == 0 || hits.len() != batch * m || items == 0 {
            candle_core::bail!(
                "a sampled softmax of {columns} columns, {} hits for {batch} rows, {items} items",
                hits.len()
            );
        }
        let spread = (items as f64 / m as f64).ln();
        let offsets: Vec<f64> = (0..batch)
            .flat_map(|i| {
                std::iter::once(0.0).chain(
                    hits[i * m..(i + 1) * m]
                        .iter()
                        .map(move |&hit| if hit { LEFT_OUT } else { spread }),
                )
            })
            .collect();
        let offsets = Tensor::from_vec(offsets, (batch, columns), logits.device())?
            .to_dtype(logits.dtype())?;
        let log_q = log_policy(&((logits / self.temperature)? + &offsets)?, 1.0)?;
        self.loss_of(&log_q, Some(&offsets), &vec![0; batch], returns, behaviour)
    }

    /// The loss from `log_q`, the log-softmax over each row's candidates
    /// (with `offsets` added to the scaled logits, when sampled): `log π` of
    /// a candidate is `log_q − offset`.
    fn loss_of(
        &self,
        log_q: &Tensor,
        offsets: Option<&Tensor>,
        actions: &[u32],
        returns: &[f64],
        behaviour: Option<&[f64]>,
    ) -> candle_core::Result<Loss> {
        let (batch, _) = log_q.dims2()?;
        if actions.len() != batch || returns.len() != batch {
            candle_core::bail!(
                "{} actions and {} returns for a batch of {batch}",
                actions.len(),
                returns.len()
            );
        }
        let dtype = log_q.dtype();
        let index = Tensor::from_vec(actions.to_vec(), (batch, 1), log_q.device())?;
        // The chosen candidates' offsets are 0: log π(a) = log_q(a).
        let chosen = log_q.gather(&index, 1)?.squeeze(1)?;
        let pi: Vec<f64> = chosen
            .detach()
            .to_dtype(candle_core::DType::F64)?
            .exp()?
            .to_vec1()?;
        let weights: Vec<f64> = (0..batch)
            .map(|i| behaviour.map_or(1.0, |b| (pi[i] / b[i]).min(self.weight_cap)))
            .collect();
        let coefficients: Vec<f64> = (0..batch)
            .map(|i| {
                let top_k = self.k as f64 * (1.0 - pi[i]).powi(self.k as i32 - 1);
                weights[i] * top_k * returns[i]
            })
            .collect();
        let coefficients =
            Tensor::from_vec(coefficients, batch, log_q.device())?.to_dtype(dtype)?;
        let policy_term = (chosen * coefficients)?.mean_all()?.neg()?;
        if self.entropy == 0.0 {
            return Ok(Loss {
                value: policy_term,
                weights,
            });
        }
        let log_pi = match offsets {
            Some(offsets) => (log_q - offsets)?,
            None => log_q.clone(),
        };
        let entropy = (log_q.exp()? * log_pi)?.sum(D::Minus1)?.neg()?.mean_all()?;
        Ok(Loss {
            value: (policy_term - (entropy * self.entropy)?)?,
            weights,
        })
    }
}

/// `k` distinct items drawn without replacement from `softmax(z / τ)`, in
/// the order drawn (Plackett–Luce: each draw from the softmax of the items
/// not drawn yet), into `out`; `sums` is scratch space.
///
/// One pass makes the weights `w_i = e^{(z_i − max z)/τ}` and their running
/// sums; each draw takes one uniform number `u` in `[0, W)`, `W` the weight
/// not drawn yet, and finds by binary search the first item whose running
/// sum, less the weights drawn at or before it, exceeds `u`. That is
/// `O(n + k² log n)` work and `k` random numbers a slate, where the Gumbel
/// top-k trick needs one per item of the catalog (100,000 at a large one).
/// Items whose weight underflows to 0 are drawn, best logit first, only
/// once every other item is.
pub fn sample_slate(
    logits: &[f32],
    temperature: f64,
    k: usize,
    rng: &mut SimRng,
    sums: &mut Vec<f64>,
    out: &mut Vec<usize>,
) {
    out.clear();
    let k = k.min(logits.len());
    if k == 0 {
        return;
    }
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
    // Weights in f32 (at 100,000 items the exponentials are most of a
    // draw's work), summed in f64.
    let inverse = (1.0 / temperature) as f32;
    let weight = |z: f32| f64::from(((z - max) * inverse).exp());
    sums.clear();
    let mut total = 0.0f64;
    for &z in logits {
        total += weight(z);
        sums.push(total);
    }
    // The items drawn, with their weights.
    let mut drawn: Vec<(usize, f64)> = Vec::with_capacity(k);
    let left_at = |i: usize, drawn: &[(usize, f64)]| {
        sums[i]
            - drawn
                .iter()
                .filter(|&&(d, _)| d <= i)
                .map(|&(_, w)| w)
                .sum::<f64>()
    };
    while out.len() < k {
        let remaining = total - drawn.iter().map(|&(_, w)| w).sum::<f64>();
        let positive = |i: usize, drawn: &[(usize, f64)]| {
            weight(logits[i]) > 0.0 && !drawn.iter().any(|&(d, _)| d == i)
        };
        let pick = if remaining > 0.0 {
            let u = rng.random::<f64>() * remaining;
            // The first i with left_at(i) > u (left_at never decreases).
            let (mut lo, mut hi) = (0usize, logits.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if left_at(mid, &drawn) > u {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            // Rounding may land on a drawn item or past the end: the
            // nearest undrawn item of positive weight instead.
            (lo.min(logits.len() - 1)..logits.len())
                .chain((0..lo.min(logits.len())).rev())
                .find(|&i| positive(i, &drawn))
        } else {
            None
        };
        let i = pick.unwrap_or_else(|| {
            // Every undrawn weight is 0: the best undrawn logit.
            (0..logits.len())
                .filter(|i| !drawn.iter().any(|&(d, _)| d == *i))
                .fold(None, |best: Option<usize>, i| match best {
                    Some(b) if logits[b] >= logits[i] => Some(b),
                    _ => Some(i),
                })
                .unwrap_or(0)
        });
        drawn.push((i, weight(logits[i])));
        out.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use shoplab_env::seed::rng_from_seed;

    fn logits() -> (Tensor, Vec<Vec<f64>>) {
        let rows = vec![vec![0.5, -1.0, 2.0, 0.0], vec![1.5, 1.5, -0.5, 0.25]];
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        (Tensor::from_vec(flat, (2, 4), &Device::Cpu).unwrap(), rows)
    }

    fn softmax(z: &[f64], t: f64) -> Vec<f64> {
        let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| ((v - max) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    /// The gradient with respect to the logits is the closed form
    /// `−(1/B) Σ ω λ_K R (1[j = a] − π_j) / τ` (ω and λ_K held constant),
    /// minus `c ∂H/∂z`, checked by central differences for the entropy.
    #[test]
    fn gradients_follow_the_closed_form() {
        let (z, rows) = logits();
        let var = candle_core::Var::from_tensor(&z).unwrap();
        let (actions, returns, behaviour) = ([2u32, 1], [1.5, -0.5], [0.4, 0.3]);
        for (k, entropy) in [(1, 0.0), (4, 0.0), (3, 0.1)] {
            let objective = Objective {
                temperature: 0.7,
                k,
                entropy,
                weight_cap: 10.0,
            };
            let loss = objective
                .loss(var.as_tensor(), &actions, &returns, Some(&behaviour))
                .unwrap()
                .value;
            let grad: Vec<Vec<f64>> = loss
                .backward()
                .unwrap()
                .get(var.as_tensor())
                .unwrap()
                .to_vec2()
                .unwrap();
            let t = objective.temperature;
            let value = |rows: &[Vec<f64>]| -> f64 {
                // The loss with ω and λ_K frozen at the unperturbed π.
                let mut total = 0.0;
                for (i, row) in rows.iter().enumerate() {
                    let pi = softmax(row, t);
                    let pi0 = softmax(&logits().1[i], t)[actions[i] as usize];
                    let c = (pi0 / behaviour[i]).min(10.0)
                        * k as f64
                        * (1.0 - pi0).powi(k as i32 - 1)
                        * returns[i];
                    let h: f64 = -pi.iter().map(|p| p * p.ln()).sum::<f64>();
                    total += -c * pi[actions[i] as usize].ln() - entropy * h;
                }
                total / rows.len() as f64
            };
            for i in 0..2 {
                for j in 0..4 {
                    let mut up = rows.clone();
                    up[i][j] += 1e-6;
                    let mut down = rows.clone();
                    down[i][j] -= 1e-6;
                    let numeric = (value(&up) - value(&down)) / 2e-6;
                    assert!(
                        (grad[i][j] - numeric).abs() < 1e-6,
                        "K {k}, c {entropy}, z[{i}][{j}]: {} vs {numeric}",
                        grad[i][j]
                    );
                }
            }
            if entropy == 0.0 {
                // Closed form: each row's gradient sums to zero.
                for row in &grad {
                    assert!(row.iter().sum::<f64>().abs() < 1e-12);
                }
            }
        }
        // On-policy with K = 1 is plain REINFORCE: −R log π(a).
        let plain = Objective {
            temperature: 1.0,
            k: 1,
            entropy: 0.0,
            weight_cap: 1.0,
        };
        let loss: f64 = plain
            .loss(&z, &[0, 0], &[1.0, 1.0], None)
            .unwrap()
            .value
            .to_scalar()
            .unwrap();
        let want = -(softmax(&rows[0], 1.0)[0].ln() + softmax(&rows[1], 1.0)[0].ln()) / 2.0;
        assert!((loss - want).abs() < 1e-12);
        assert!(plain.loss(&z, &[0], &[1.0, 1.0], None).is_err());
        let f32_logits = z.to_dtype(DType::F32).unwrap();
        assert!(plain.loss(&f32_logits, &[0, 1], &[1.0, 1.0], None).is_ok());
    }

    /// A sampled slate is a Plackett–Luce draw from softmax(z / τ): the
    /// first item with probability `p_i`, the second `j` with
    /// `Σ_i p_i p_j / (1 − p_i)`; over 20,000 slates each frequency is
    /// within 4.5 binomial standard errors of its probability.
    #[test]
    fn slates_are_draws_without_replacement_from_the_softmax() {
        let z = [0.5f32, -1.0, 2.0, 0.0, 1.0];
        let t = 0.8;
        let p = softmax(&z.map(f64::from), t);
        let mut rng = rng_from_seed(12);
        let mut counts = [0usize; 5];
        let mut seconds = [0usize; 5];
        let mut slate = Vec::new();
        let mut sums = Vec::new();
        let n = 20_000;
        for _ in 0..n {
            sample_slate(&z, t, 3, &mut rng, &mut sums, &mut slate);
            assert_eq!(slate.len(), 3);
            assert!(slate[0] != slate[1] && slate[1] != slate[2] && slate[0] != slate[2]);
            counts[slate[0]] += 1;
            seconds[slate[1]] += 1;
        }
        let second: Vec<f64> = (0..5)
            .map(|j| {
                (0..5)
                    .filter(|&i| i != j)
                    .map(|i| p[i] * p[j] / (1.0 - p[i]))
                    .sum()
            })
            .collect();
        for (counts, p) in [(counts, p.clone()), (seconds, second)] {
            for (c, p) in counts.iter().zip(&p) {
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (*c as f64 - n as f64 * p).abs() < 4.5 * sd,
                    "{counts:?} vs {p:?}"
                );
            }
        }
        // A whole catalog is a permutation; weights that underflow to 0
        // come last, best logit first.
        sample_slate(&z, t, 5, &mut rng, &mut sums, &mut slate);
        let mut sorted = slate.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
        sample_slate(
            &[0.0, -1e6, 5.0, -2e6],
            1.0,
            4,
            &mut rng,
            &mut sums,
            &mut slate,
        );
        assert_eq!(slate[2..], [1, 3]);
        let mut again = Vec::new();
        sample_slate(&z, t, 3, &mut rng_from_seed(1), &mut sums, &mut slate);
        sample_slate(&z, t, 3, &mut rng_from_seed(1), &mut sums, &mut again);
        assert_eq!(slate, again);
    }

    /// The sampled loss, by hand in f64: each row's partition estimate
    /// `e^{z_0/τ} + (n/m) Σ_{j not a hit} e^{z_j/τ}`, `π̂ = e^{z_0/τ}/Ẑ`, the
    /// frozen coefficient `ω λ_K R`, and the entropy over the candidates
    /// `−Σ_k q_k (log q_k − c_k)`; its gradient by central differences
    /// (ω, λ_K frozen) matches candle's to 1e-6.
    #[test]
    fn the_sampled_loss_follows_its_estimate() {
        let rows = vec![
            vec![0.3, 1.0, -0.5, 0.2, 0.9],
            vec![-0.2, 0.4, 0.4, -1.0, 0.0],
        ];
        let hits = [false, true, false, false, false, false, false, true];
        let (items, m, t) = (50usize, 4usize, 0.8);
        let (returns, behaviour) = ([1.2, -0.7], [0.01, 0.2]);
        let estimate = |rows: &[Vec<f64>], frozen: &[Vec<f64>], k: usize, c: f64| -> f64 {
            let spread = (items as f64 / m as f64).ln();
            let mut total = 0.0;
            for (i, row) in rows.iter().enumerate() {
                let logs = |row: &[f64]| -> Vec<f64> {
                    row.iter()
                        .enumerate()
                        .map(|(j, z)| match j {
                            0 => z / t,
                            _ if hits[i * m + j - 1] => f64::NEG_INFINITY,
                            _ => z / t + spread,
                        })
                        .collect()
                };
                let lse = |v: &[f64]| {
                    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
                };
                let (now, before) = (logs(row), logs(&frozen[i]));
                let log_pi = now[0] - lse(&now);
                let pi0 = (before[0] - lse(&before)).exp();
                let coefficient = (pi0 / behaviour[i]).min(10.0)
                    * k as f64
                    * (1.0 - pi0).powi(k as i32 - 1)
                    * returns[i];
                let z = lse(&now);
                let entropy: f64 = -now
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(j, v)| {
                        let offset = if j == 0 { 0.0 } else { spread };
                        (v - z).exp() * (v - z - offset)
                    })
                    .sum::<f64>();
                total += -coefficient * log_pi - c * entropy;
            }
            total / rows.len() as f64
        };
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let var = candle_core::Var::from_vec(flat, (2, 5), &Device::Cpu).unwrap();
        for (k, c) in [(1, 0.0), (3, 0.2)] {
            let objective = Objective {
                temperature: t,
                k,
                entropy: c,
                weight_cap: 10.0,
            };
            let loss = objective
                .sampled_loss(var.as_tensor(), items, &hits, &returns, Some(&behaviour))
                .unwrap();
            let value: f64 = loss.value.to_scalar().unwrap();
            assert!((value - estimate(&rows, &rows, k, c)).abs() < 1e-12);
            let grad: Vec<Vec<f64>> = loss
                .value
                .backward()
                .unwrap()
                .get(var.as_tensor())
                .unwrap()
                .to_vec2()
                .unwrap();
            for i in 0..2 {
                for j in 0..5 {
                    let mut up = rows.clone();
                    up[i][j] += 1e-6;
                    let mut down = rows.clone();
                    down[i][j] -= 1e-6;
                    let numeric =
                        (estimate(&up, &rows, k, c) - estimate(&down, &rows, k, c)) / 2e-6;
                    assert!(
                        (grad[i][j] - numeric).abs() < 1e-6,
                        "K {k}, z[{i}][{j}]: {} vs {numeric}",
                        grad[i][j]
                    );
                }
            }
            // A hit's logit has no say.
            assert_eq!(grad[0][2], 0.0);
            // The weights are π̂ / β, capped.
            assert_eq!(loss.weights.len(), 2);
            assert!(loss.weights.iter().all(|w| *w > 0.0 && *w <= 10.0));
        }
        let bad = Objective {
            temperature: 1.0,
            k: 1,
            entropy: 0.0,
            weight_cap: 10.0,
        };
        assert!(
            bad.sampled_loss(var.as_tensor(), items, &hits[1..], &returns, None)
                .is_err()
        );
    }

    /// The sampled partition is unbiased: over 4,000 draws of 20 items
    /// (with replacement) from a catalog of 300, the mean of
    /// `Ẑ = e^{z_a} + (n/m) Σ_{j ≠ a} e^{z_j}` is within 4 standard errors
    /// of the exact `Σ_i e^{z_i}`, where `Ẑ` is read off the loss as
    /// `e^{z_a − log π̂(a)}`.
    #[test]
    fn the_sampled_partition_is_unbiased() {
        let (n, m, draws) = (300usize, 20usize, 4_000usize);
        let mut rng = rng_from_seed(8);
        let z: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let exact: f64 = z.iter().map(|v| v.exp()).sum();
        let objective = Objective {
            temperature: 1.0,
            k: 1,
            entropy: 0.0,
            weight_cap: 1e6,
        };
        let a = 7usize;
        let estimates: Vec<f64> = (0..draws)
            .map(|_| {
                let drawn: Vec<usize> = (0..m).map(|_| rng.random_range(0..n)).collect();
                let mut row = vec![z[a]];
                row.extend(drawn.iter().map(|&j| z[j]));
                let hits: Vec<bool> = drawn.iter().map(|&j| j == a).collect();
                let logits = Tensor::from_vec(row, (1, m + 1), &Device::Cpu).unwrap();
                // With R = −1, β = 1 and no cap the loss is log π̂(a).
                let log_pi: f64 = objective
                    .sampled_loss(&logits, n, &hits, &[-1.0], None)
                    .unwrap()
                    .value
                    .to_scalar()
                    .unwrap();
                (z[a] - log_pi).exp()
            })
            .collect();
        let mean = estimates.iter().sum::<f64>() / draws as f64;
        let sd =
            (estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (draws - 1) as f64).sqrt();
        let se = sd / (draws as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "mean {mean} vs exact {exact} (s.e. {se})"
        );
    }
}
