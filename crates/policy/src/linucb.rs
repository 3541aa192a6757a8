//! LinUCB with disjoint linear models (Li, Chu, Langford and Schapire, 2010,
//! Algorithm 1): contextual bandits for personalised recommendation.
//!
//! The context `x` is the observation's one-hot encoding (each binned feature
//! with more than one bin, plus a bias term), so the model learns how each
//! observable trait of a shopper — segment, last topic clicked — shifts each
//! action's expected reward. Per action `a` it keeps `A_a = I + Σ x xᵀ` (as its
//! inverse, updated by Sherman–Morrison) and `b_a = Σ r x`, and scores
//!
//! ```text
//! p_a = θ_aᵀ x + α · sqrt(xᵀ A_a⁻¹ x),   θ_a = A_a⁻¹ b_a
//! ```
//!
//! taking the best action (the `k` best for a slate). With one-hot contexts
//! every product touches only the few active entries, so a score costs
//! O(m²) for m active features.

use crate::{Policy, PolicyError, Transition, argmax, top_k};
use serde::{Deserialize, Serialize};
use shoplab_env::{Discretiser, Observation, ObservationSpace};
use std::collections::BTreeMap;

/// Settings of [`LinUcb`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinUcbConfig {
    /// Exploration weight α, ≥ 0.
    pub alpha: f64,
    /// Bins per feature for the context, overriding the env's suggestions.
    pub bins: BTreeMap<String, usize>,
}

impl Default for LinUcbConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            bins: BTreeMap::new(),
        }
    }
}

/// Largest context dimension.
const MAX_CONTEXT: usize = 512;

/// The disjoint LinUCB bandit.
#[derive(Debug)]
pub struct LinUcb {
    alpha: f64,
    discretiser: Discretiser,
    dim: usize,
    /// `A_a⁻¹`, row-major, one `dim × dim` block per action.
    a_inv: Vec<f64>,
    /// `b_a`, one `dim` block per action.
    b: Vec<f64>,
    /// `θ_a = A_a⁻¹ b_a`, kept up to date on every update.
    theta: Vec<f64>,
    active: Vec<usize>,
    scores: Vec<f64>,
}

impl LinUcb {
    /// A LinUCB over `n_actions` actions with contexts from `space`.
    pub fn new(
        config: &LinUcbConfig,
        space: &ObservationSpace,
        n_actions: usize,
    ) -> Result<Self, PolicyError> {
        if !(config.alpha.is_finite() && config.alpha >= 0.0) {
            return Err(PolicyError::invalid(
                "alpha",
                format!("must be a finite number ≥ 0 (found {})", config.alpha),
            ));
        }
        let overrides: Vec<(String, usize)> =
            config.bins.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let discretiser = Discretiser::new(space, &overrides, usize::MAX)
            .map_err(|e| PolicyError::invalid("bins", e.to_string()))?;
        let dim = discretiser.one_hot_len() + 1;
        if dim > MAX_CONTEXT {
            return Err(PolicyError::invalid(
                "bins",
                format!("the context has {dim} dimensions, more than the limit of {MAX_CONTEXT}"),
            ));
        }
        let mut a_inv = vec![0.0; n_actions * dim * dim];
        for block in a_inv.chunks_mut(dim * dim) {
            for i in 0..dim {
                block[i * dim + i] = 1.0;
            }
        }
        Ok(Self {
            alpha: config.alpha,
            discretiser,
            dim,
            a_inv,
            b: vec![0.0; n_actions * dim],
            theta: vec![0.0; n_actions * dim],
            active: Vec::new(),
            scores: vec![0.0; n_actions],
        })
    }

    /// Active context entries: the one-hot positions and the bias (last).
    fn context(&mut self, obs: &Observation) {
        self.discretiser.one_hot(&obs.features, &mut self.active);
        self.active.push(self.dim - 1);
    }

    /// `θ_aᵀ x` and `xᵀ A_a⁻¹ x` for the one-hot context with entries `active`.
    fn mean_and_width(&self, a: usize, active: &[usize]) -> (f64, f64) {
        let d = self.dim;
        let a_inv = &self.a_inv[a * d * d..(a + 1) * d * d];
        let theta = &self.theta[a * d..(a + 1) * d];
        let mut mean = 0.0;
        let mut width = 0.0;
        for &i in active {
            mean += theta[i];
            for &j in active {
                width += a_inv[i * d + j];
            }
        }
        (mean, width.max(0.0))
    }

    fn score(&mut self, obs: &Observation) {
        self.context(obs);
        for a in 0..self.scores.len() {
            let (mean, width) = self.mean_and_width(a, &self.active);
            self.scores[a] = mean + self.alpha * width.sqrt();
        }
    }
}

impl Policy for LinUcb {
    fn act(&mut self, obs: &Observation) -> usize {
        self.score(obs);
        argmax(&self.scores)
    }

    fn act_slate(&mut self, obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        self.score(obs);
        top_k(&self.scores, k, slate);
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let mut active = Vec::new();
        self.discretiser.one_hot(&obs.features, &mut active);
        active.push(self.dim - 1);
        let means: Vec<f64> = (0..self.scores.len())
            .map(|a| self.mean_and_width(a, &active).0)
            .collect();
        argmax(&means)
    }

    /// Sherman–Morrison: `A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x)` (A⁻¹ is
    /// symmetric), and `b ← b + r x`.
    fn learn(&mut self, t: &Transition<'_>) {
        self.context(t.obs);
        let d = self.dim;
        let a = t.action;
        let a_inv = &mut self.a_inv[a * d * d..(a + 1) * d * d];
        let mut u = vec![0.0; d];
        for &j in &self.active {
            for (i, ui) in u.iter_mut().enumerate() {
                *ui += a_inv[i * d + j];
            }
        }
        let denominator = 1.0 + self.active.iter().map(|&j| u[j]).sum::<f64>();
        for i in 0..d {
            if u[i] == 0.0 {
                continue;
            }
            let scale = u[i] / denominator;
            for (cell, uj) in a_inv[i * d..(i + 1) * d].iter_mut().zip(&u) {
                *cell -= scale * uj;
            }
        }
        for &j in &self.active {
            self.b[a * d + j] += t.reward;
        }
        let b = &self.b[a * d..(a + 1) * d];
        for (i, theta) in self.theta[a * d..(a + 1) * d].iter_mut().enumerate() {
            *theta = a_inv[i * d..(i + 1) * d]
                .iter()
                .zip(b)
                .map(|(x, y)| x * y)
                .sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::Feature;

    /// Two contexts with opposite best actions: LinUCB learns to personalise.
    #[test]
    fn learns_context_dependent_best_actions() {
        let space = ObservationSpace {
            features: vec![Feature {
                name: "segment",
                low: 0.0,
                high: 1.0,
                integer: true,
                suggested_bins: 2,
            }],
        };
        let mut bandit = LinUcb::new(&LinUcbConfig::default(), &space, 3).unwrap();
        let reward = |segment: usize, action: usize| match (segment, action) {
            (0, 0) | (1, 2) => 1.0,
            _ => 0.0,
        };
        for step in 0..600 {
            let segment = step % 2;
            let obs = Observation {
                features: vec![segment as f32],
            };
            let action = bandit.act(&obs);
            bandit.learn(&Transition {
                obs: &obs,
                action,
                reward: reward(segment, action),
                next_obs: &obs,
                terminated: false,
                truncated: false,
            });
        }
        let at = |s: f32| bandit.greedy(&Observation { features: vec![s] });
        assert_eq!(at(0.0), 0);
        assert_eq!(at(1.0), 2);
    }
}
