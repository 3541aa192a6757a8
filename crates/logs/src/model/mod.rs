//! shoplab's own reward model for DM and the doubly robust estimators: a
//! regularised linear model of the reward on context × action features.
//!
//! For a row with context `x ∈ ℝᵈ` (each feature standardised by the log's
//! mean and standard deviation), action `a` of `m` and slate position `k` of
//! `K`, the linear score is
//!
//! `z = w₀ + βᵀx + γₖ + αₐ + θₐᵀx`
//!
//! — an intercept, a slope shared by all actions, an intercept per position
//! (when there are several), and an intercept and a slope per action: the
//! features `[1, x, eₖ] ⊕ ([1, x] ⊗ eₐ)`, `1 + d + K + m·(d + 1)` weights,
//! the intercept `w₀` unpenalised and every other weight under the penalty
//! `(λ/2)‖w‖²`. With rewards in [0, 1] (clicks, conversions) the model is
//! logistic, `q̂ = σ(z)`, fitted by Newton's method on the penalised
//! log-loss (with step halving, to a step under 10⁻⁹); otherwise it is ridge
//! regression, `q̂ = z`, solved in closed form.
//!
//! Each Newton system is solved exactly through its structure: the weights
//! of action `a` meet only the shared ones and themselves, so the Hessian
//! is a `(1 + d + K)`-square core bordered by `m` blocks of `(d + 1)²`.
//! Eliminating the blocks (a Schur complement) costs `m·(d + 1)²·(1 + d + K)`
//! operations rather than the cube of all the weights — a catalog of
//! thousands of actions fits in well under a second a Newton step — so the
//! only cap is on the context's width, [`MAX_FEATURES`].
//!
//! [`fit_predict`] fits on the whole log by default (obp's `n_folds=1`) or
//! cross-fits over `folds` groups of sessions (session `j` of the log, in
//! order of first appearance, in group `j mod folds`), each group's rows
//! predicted by the model fitted on the others, which keeps the DR
//! estimators' model independent of the rows it corrects.

use crate::Log;
use system::System;

mod system;
#[cfg(test)]
mod tests;

/// The most context features (and positions) a reward model takes.
pub const MAX_FEATURES: usize = 256;

/// The most actions times `(features + 1)²`: the blocks' memory, in numbers.
const MAX_BLOCK_NUMBERS: usize = 50_000_000;

/// The reward model's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Logistic regression, for rewards in [0, 1].
    Logistic,
    /// Ridge (linear least squares with an L2 penalty).
    Ridge,
}

impl ModelKind {
    /// Logistic when every reward is in [0, 1], ridge otherwise.
    pub fn for_rewards(rewards: &[f64]) -> Self {
        if rewards.iter().all(|r| (0.0..=1.0).contains(r)) {
            Self::Logistic
        } else {
            Self::Ridge
        }
    }

    /// The model's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::Ridge => "ridge",
        }
    }
}

/// Why a reward model could not be fitted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// Too wide a context, or too many actions for its width.
    #[error(
        "the reward model would have {d} context features, {k} positions and {m} actions, more than it takes (at most {MAX_FEATURES} features and positions together, and actions × (features + 1)² at most {MAX_BLOCK_NUMBERS}); give estimated rewards with --rewards instead"
    )]
    TooLarge {
        /// Context features.
        d: usize,
        /// Actions.
        m: usize,
        /// Positions.
        k: usize,
    },
    /// Logistic regression asked of rewards outside [0, 1].
    #[error("logistic regression needs rewards in [0, 1]; this log has a reward of {0}")]
    RewardOutOfRange(f64),
    /// The penalty is not a positive finite number.
    #[error("the L2 penalty must be a positive finite number (found {0})")]
    Penalty(f64),
    /// More folds than sessions, or none.
    #[error(
        "cross-fitting needs between 1 and {sessions} folds (the log's sessions); found {folds}"
    )]
    Folds {
        /// Folds asked.
        folds: usize,
        /// Sessions in the log.
        sessions: usize,
    },
}

/// A fitted reward model.
#[derive(Debug, Clone)]
pub struct RewardModel {
    kind: ModelKind,
    layout: Layout,
    /// The shared weights `[w₀, β, γ]`, then each action's `[αₐ, θₐ]`.
    weights: Vec<f64>,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

/// The shape of the weights.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Context features.
    d: usize,
    /// Actions.
    m: usize,
    /// Positions with their own intercept (0 when there is one position).
    k: usize,
}

impl Layout {
    /// Shared weights: intercept, slope, positions.
    fn core(self) -> usize {
        1 + self.d + self.k
    }

    /// Weights of one action: intercept and slope.
    fn block(self) -> usize {
        1 + self.d
    }

    fn parameters(self) -> usize {
        self.core() + self.m * self.block()
    }

    /// The shared features `[1, x, eₖ]` of a row.
    fn shared(self, x: &[f64], k: usize, out: &mut Vec<f64>) {
        out.clear();
        out.push(1.0);
        out.extend_from_slice(x);
        out.extend((0..self.k).map(|j| if j == k { 1.0 } else { 0.0 }));
    }

    /// The linear score of a row: shared features `c`, action `a`, `x`.
    fn score(self, w: &[f64], c: &[f64], a: usize, x: &[f64]) -> f64 {
        let core = self.core();
        let b = &w[core + a * self.block()..core + (a + 1) * self.block()];
        let shared: f64 = c.iter().zip(&w[..core]).map(|(u, v)| u * v).sum();
        shared + b[0] + x.iter().zip(&b[1..]).map(|(u, v)| u * v).sum::<f64>()
    }
}

impl RewardModel {
    /// Fits the model to the rows `rows` of `log` (all rows when `None`).
    pub fn fit(
        log: &Log,
        rows: Option<&[usize]>,
        n_actions: usize,
        kind: ModelKind,
        l2: f64,
    ) -> Result<Self, ModelError> {
        if !(l2.is_finite() && l2 > 0.0) {
            return Err(ModelError::Penalty(l2));
        }
        let d = log.features.len();
        let positions = log
            .position
            .iter()
            .map(|&p| usize::from(p) + 1)
            .max()
            .unwrap_or(1);
        let layout = Layout {
            d,
            m: n_actions,
            k: if positions > 1 { positions } else { 0 },
        };
        if layout.core() > MAX_FEATURES + 1
            || n_actions.saturating_mul(layout.block() * layout.block()) > MAX_BLOCK_NUMBERS
        {
            return Err(ModelError::TooLarge {
                d,
                m: n_actions,
                k: layout.k,
            });
        }
        if kind == ModelKind::Logistic
            && let Some(&r) = log.reward.iter().find(|r| !(0.0..=1.0).contains(*r))
        {
            return Err(ModelError::RewardOutOfRange(r));
        }
        let all: Vec<usize>;
        let rows = match rows {
            Some(rows) => rows,
            None => {
                all = (0..log.len()).collect();
                &all
            }
        };
        let (mean, scale) = standardisation(log, rows);
        let mut model = Self {
            kind,
            layout,
            weights: vec![0.0; layout.parameters()],
            mean,
            scale,
        };
        // Each row's standardised features and shared features, once.
        let mut x = vec![0.0; rows.len() * d];
        let nc = layout.core();
        let mut shared = vec![0.0; rows.len() * nc];
        let mut buffer = Vec::with_capacity(nc);
        for (r, &i) in rows.iter().enumerate() {
            let xr = &mut x[r * d..(r + 1) * d];
            model.standardise(log.features_of(i), xr);
            layout.shared(xr, usize::from(log.position[i]), &mut buffer);
            shared[r * nc..(r + 1) * nc].copy_from_slice(&buffer);
        }
        let at = |r: usize| (&shared[r * nc..(r + 1) * nc], &x[r * d..(r + 1) * d]);
        let penalty = |w: &[f64]| 0.5 * l2 * w[1..].iter().map(|v| v * v).sum::<f64>();
        match kind {
            ModelKind::Ridge => {
                let mut system = System::new(layout);
                for (r, &i) in rows.iter().enumerate() {
                    let (c, xr) = at(r);
                    system.add(c, log.action[i] as usize, xr, 1.0, log.reward[i]);
                }
                system.penalise(l2, 1e-10);
                model.weights = system.solve();
            }
            ModelKind::Logistic => {
                let objective = |w: &[f64]| {
                    let mut total = 0.0;
                    for (r, &i) in rows.iter().enumerate() {
                        let (c, xr) = at(r);
                        let z = layout.score(w, c, log.action[i] as usize, xr);
                        total += softplus(z) - log.reward[i] * z;
                    }
                    total + penalty(w)
                };
                let mut w = vec![0.0; layout.parameters()];
                let mut current = objective(&w);
                for _ in 0..100 {
                    // Newton's step δ solves H δ = −∇: H = Σ s(1−s) φφᵀ + λ,
                    // −∇ = Σ (y − s) φ − λ w.
                    let mut system = System::new(layout);
                    for (r, &i) in rows.iter().enumerate() {
                        let (c, xr) = at(r);
                        let a = log.action[i] as usize;
                        let s = sigmoid(layout.score(&w, c, a, xr));
                        system.add(c, a, xr, (s * (1.0 - s)).max(1e-12), log.reward[i] - s);
                    }
                    system.rhs_c[1..]
                        .iter_mut()
                        .zip(&w[1..nc])
                        .for_each(|(g, v)| *g -= l2 * v);
                    system
                        .rhs_b
                        .iter_mut()
                        .zip(&w[nc..])
                        .for_each(|(g, v)| *g -= l2 * v);
                    system.penalise(l2, 1e-10);
                    let step = system.solve();
                    let mut t = 1.0;
                    let mut next: Vec<f64>;
                    let mut value;
                    loop {
                        next = w.iter().zip(&step).map(|(a, b)| a + t * b).collect();
                        value = objective(&next);
                        if value <= current || t < 1e-6 {
                            break;
                        }
                        t *= 0.5;
                    }
                    let size = step.iter().fold(0.0f64, |a, b| a.max((t * b).abs()));
                    w = next;
                    current = value;
                    if size < 1e-9 {
                        break;
                    }
                }
                model.weights = w;
            }
        }
        Ok(model)
    }

    fn standardise(&self, x: &[f32], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (f64::from(x[j]) - self.mean[j]) / self.scale[j];
        }
    }

    /// The model's link.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The fitted weights: the shared `[w₀, β, γ]`, then each action's
    /// `[αₐ, θₐ]` (see the module's docs).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Estimated rewards of every action for features `x` at `position`
    /// (positions the model never saw get no position term).
    pub fn predict(&self, x: &[f32], position: usize, out: &mut [f64]) {
        let mut z = vec![0.0; self.mean.len()];
        self.standardise(x, &mut z);
        let mut shared = Vec::new();
        self.layout.shared(&z, position, &mut shared);
        for (a, o) in out.iter_mut().enumerate().take(self.layout.m) {
            let linear = self.layout.score(&self.weights, &shared, a, &z);
            *o = match self.kind {
                ModelKind::Logistic => sigmoid(linear),
                ModelKind::Ridge => linear,
            };
        }
    }
}

/// Estimated rewards of every action for every row of `log`, at the row's
/// position (`rows × n_actions`), by a model fitted on the whole log
/// (`folds` 1) or cross-fitted over `folds` groups of sessions.
pub fn fit_predict(
    log: &Log,
    n_actions: usize,
    kind: ModelKind,
    l2: f64,
    folds: usize,
) -> Result<Vec<f64>, ModelError> {
    let sessions = log.sessions();
    if folds == 0 || folds > sessions.len().max(1) {
        return Err(ModelError::Folds {
            folds,
            sessions: sessions.len(),
        });
    }
    let mut group = vec![0usize; log.len()];
    for (j, rows) in sessions.iter().enumerate() {
        for &i in rows {
            group[i] = j % folds;
        }
    }
    let mut out = vec![0.0; log.len() * n_actions];
    for fold in 0..folds {
        let train: Vec<usize> = (0..log.len())
            .filter(|&i| folds == 1 || group[i] != fold)
            .collect();
        let model = RewardModel::fit(log, Some(&train), n_actions, kind, l2)?;
        for i in (0..log.len()).filter(|&i| group[i] == fold) {
            model.predict(
                log.features_of(i),
                usize::from(log.position[i]),
                &mut out[i * n_actions..(i + 1) * n_actions],
            );
        }
    }
    Ok(out)
}

/// Each feature's mean and standard deviation over `rows` (1 where a
/// feature is constant).
fn standardisation(log: &Log, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let d = log.features.len();
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for &i in rows {
        for (m, &v) in mean.iter_mut().zip(log.features_of(i)) {
            *m += f64::from(v) / n;
        }
    }
    let mut var = vec![0.0; d];
    for &i in rows {
        for ((s, &v), m) in var.iter_mut().zip(log.features_of(i)).zip(&mean) {
            *s += (f64::from(v) - m).powi(2) / n;
        }
    }
    let scale = var
        .into_iter()
        .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, scale)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}
