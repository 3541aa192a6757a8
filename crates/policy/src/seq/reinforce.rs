//! The pieces of a softmax policy over a catalog trained by REINFORCE with
//! the top-K off-policy correction (Chen et al., "Top-K Off-Policy
//! Correction for a REINFORCE Recommender System", WSDM 2019).
//!
//! The policy is `π(a | s) = softmax(z(s) / τ)` over the catalog's logits
//! `z` (two-tower scores, [`super::catalog`]), at temperature `τ`. A slate
//! of `K` items is `K` draws without replacement (Plackett–Luce), taken
//! with the Gumbel top-k trick. For a logged decision `(s, a)` with return
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
    ) -> candle_core::Result<Tensor> {
        let (batch, _) = logits.dims2()?;
        if actions.len() != batch || returns.len() != batch {
            candle_core::bail!(
                "{} actions and {} returns for a batch of {batch}",
                actions.len(),
                returns.len()
            );
        }
        let dtype = logits.dtype();
        let log_pi = log_policy(logits, self.temperature)?;
        let index = Tensor::from_vec(actions.to_vec(), (batch, 1), logits.device())?;
        let chosen = log_pi.gather(&index, 1)?.squeeze(1)?;
        let pi: Vec<f64> = chosen
            .detach()
            .to_dtype(candle_core::DType::F64)?
            .exp()?
            .to_vec1()?;
        let coefficients: Vec<f64> = (0..batch)
            .map(|i| {
                let weight = behaviour.map_or(1.0, |b| (pi[i] / b[i]).min(self.weight_cap));
                let top_k = self.k as f64 * (1.0 - pi[i]).powi(self.k as i32 - 1);
                weight * top_k * returns[i]
            })
            .collect();
        let coefficients =
            Tensor::from_vec(coefficients, batch, logits.device())?.to_dtype(dtype)?;
        let policy_term = (chosen * coefficients)?.mean_all()?.neg()?;
        if self.entropy == 0.0 {
            return Ok(policy_term);
        }
        let entropy = (log_pi.exp()? * &log_pi)?
            .sum(D::Minus1)?
            .neg()?
            .mean_all()?;
        policy_term - (entropy * self.entropy)?
    }
}

/// `k` distinct items drawn without replacement from `softmax(z / τ)`
/// (the Gumbel top-k trick: the `k` largest of `z_i / τ + G_i`, `G_i`
/// standard Gumbel), best first, into `out`.
pub fn sample_slate(
    logits: &[f32],
    temperature: f64,
    k: usize,
    rng: &mut SimRng,
    out: &mut Vec<usize>,
) {
    let perturbed: Vec<f64> = logits
        .iter()
        .map(|&z| {
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            f64::from(z) / temperature - (-u.ln()).ln()
        })
        .collect();
    crate::top_k(&perturbed, k, out);
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
                .unwrap();
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
            .to_scalar()
            .unwrap();
        let want = -(softmax(&rows[0], 1.0)[0].ln() + softmax(&rows[1], 1.0)[0].ln()) / 2.0;
        assert!((loss - want).abs() < 1e-12);
        assert!(plain.loss(&z, &[0], &[1.0, 1.0], None).is_err());
        let f32_logits = z.to_dtype(DType::F32).unwrap();
        assert!(plain.loss(&f32_logits, &[0, 1], &[1.0, 1.0], None).is_ok());
    }

    /// The first item of a sampled slate is drawn from softmax(z / τ): over
    /// 20,000 draws each frequency is within 4.5 binomial standard errors.
    #[test]
    fn slates_are_draws_without_replacement_from_the_softmax() {
        let z = [0.5f32, -1.0, 2.0, 0.0, 1.0];
        let t = 0.8;
        let p = softmax(&z.map(f64::from), t);
        let mut rng = rng_from_seed(12);
        let mut counts = [0usize; 5];
        let mut slate = Vec::new();
        let n = 20_000;
        for _ in 0..n {
            sample_slate(&z, t, 3, &mut rng, &mut slate);
            assert_eq!(slate.len(), 3);
            assert!(slate[0] != slate[1] && slate[1] != slate[2] && slate[0] != slate[2]);
            counts[slate[0]] += 1;
        }
        for (c, p) in counts.iter().zip(&p) {
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (*c as f64 - n as f64 * p).abs() < 4.5 * sd,
                "{counts:?} vs {p:?}"
            );
        }
        let mut again = Vec::new();
        sample_slate(&z, t, 3, &mut rng_from_seed(1), &mut slate);
        sample_slate(&z, t, 3, &mut rng_from_seed(1), &mut again);
        assert_eq!(slate, again);
    }
}
