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

/// A Newton (or normal-equations) system in the model's block structure:
/// `[[C, F₁ … Fₘ], [Fₐᵀ, Gₐ]]` with right-hand side `[g_c, gₐ]`.
struct System {
    layout: Layout,
    c: Vec<f64>,
    f: Vec<f64>,
    g: Vec<f64>,
    rhs_c: Vec<f64>,
    rhs_b: Vec<f64>,
}

impl System {
    fn new(layout: Layout) -> Self {
        let (c, b, m) = (layout.core(), layout.block(), layout.m);
        Self {
            layout,
            c: vec![0.0; c * c],
            f: vec![0.0; m * c * b],
            g: vec![0.0; m * b * b],
            rhs_c: vec![0.0; c],
            rhs_b: vec![0.0; m * b],
        }
    }

    /// Adds a row: `h·φφᵀ` to the matrix and `t·φ` to the right-hand side,
    /// `φ` the shared features `shared` and action `a`'s `[1, x]`.
    fn add(&mut self, shared: &[f64], a: usize, x: &[f64], h: f64, t: f64) {
        let (nc, nb) = (self.layout.core(), self.layout.block());
        let own = |j: usize| if j == 0 { 1.0 } else { x[j - 1] };
        for (i, &u) in shared.iter().enumerate() {
            if u == 0.0 {
                continue;
            }
            self.rhs_c[i] += t * u;
            for (j, &v) in shared.iter().enumerate() {
                self.c[i * nc + j] += h * u * v;
            }
            let f = &mut self.f[(a * nc + i) * nb..(a * nc + i + 1) * nb];
            for (j, fj) in f.iter_mut().enumerate() {
                *fj += h * u * own(j);
            }
        }
        let g = &mut self.g[a * nb * nb..(a + 1) * nb * nb];
        for i in 0..nb {
            let u = own(i);
            self.rhs_b[a * nb + i] += t * u;
            for j in 0..nb {
                g[i * nb + j] += h * u * own(j);
            }
        }
    }

    /// Adds `λ` to the diagonal (`λ₀` on the intercept's).
    fn penalise(&mut self, lambda: f64, lambda0: f64) {
        let (nc, nb) = (self.layout.core(), self.layout.block());
        for i in 0..nc {
            self.c[i * nc + i] += if i == 0 { lambda0 } else { lambda };
        }
        for a in 0..self.layout.m {
            for i in 0..nb {
                self.g[a * nb * nb + i * nb + i] += lambda;
            }
        }
    }

    /// Solves the system by eliminating each action's block (its Cholesky
    /// factor) into the core's Schur complement.
    fn solve(mut self) -> Vec<f64> {
        let (nc, nb, m) = (self.layout.core(), self.layout.block(), self.layout.m);
        let mut schur = self.c.clone();
        let mut rhs = self.rhs_c.clone();
        // Per action: Y = G⁻¹ Fᵀ (nb × nc) and y = G⁻¹ g_b.
        let mut ys = vec![0.0; m * nb * nc];
        let mut yb = vec![0.0; m * nb];
        let mut column = vec![0.0; nb];
        for a in 0..m {
            let g = &mut self.g[a * nb * nb..(a + 1) * nb * nb];
            cholesky(g, nb);
            let f = &self.f[a * nc * nb..(a + 1) * nc * nb];
            let y = &mut ys[a * nb * nc..(a + 1) * nb * nc];
            for i in 0..nc {
                column.copy_from_slice(&f[i * nb..(i + 1) * nb]);
                cholesky_solve(g, nb, &mut column);
                for (r, v) in column.iter().enumerate() {
                    y[r * nc + i] = *v;
                }
            }
            let own = &mut yb[a * nb..(a + 1) * nb];
            own.copy_from_slice(&self.rhs_b[a * nb..(a + 1) * nb]);
            cholesky_solve(g, nb, own);
            // schur −= F Y, rhs −= F y.
            for i in 0..nc {
                let fi = &f[i * nb..(i + 1) * nb];
                for j in 0..nc {
                    let dot: f64 = fi.iter().enumerate().map(|(r, v)| v * y[r * nc + j]).sum();
                    schur[i * nc + j] -= dot;
                }
                rhs[i] -= fi.iter().zip(own.iter()).map(|(u, v)| u * v).sum::<f64>();
            }
        }
        cholesky(&mut schur, nc);
        cholesky_solve(&schur, nc, &mut rhs);
        let mut out = rhs.clone();
        for a in 0..m {
            let y = &ys[a * nb * nc..(a + 1) * nb * nc];
            for r in 0..nb {
                let dot: f64 = (0..nc).map(|j| y[r * nc + j] * rhs[j]).sum();
                out.push(yb[a * nb + r] - dot);
            }
        }
        out
    }
}

/// In-place Cholesky factor `L` (lower triangle) of a symmetric positive
/// definite `n × n` matrix; the upper triangle is left as it was.
fn cholesky(h: &mut [f64], n: usize) {
    for j in 0..n {
        let mut diag = h[j * n + j];
        for k in 0..j {
            diag -= h[j * n + k] * h[j * n + k];
        }
        let l = diag.max(1e-300).sqrt();
        h[j * n + j] = l;
        for i in j + 1..n {
            let mut v = h[i * n + j];
            for k in 0..j {
                v -= h[i * n + k] * h[j * n + k];
            }
            h[i * n + j] = v / l;
        }
    }
}

/// Solves `L Lᵀ x = b` in place, `L` from [`cholesky`].
fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * b[k]).sum();
        b[i] = (b[i] - dot) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
        b[i] = (b[i] - dot) / l[i * n + i];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of one-step sessions with features `x`, actions, positions
    /// and rewards.
    fn log(x: &[Vec<f32>], action: &[u32], position: &[u16], reward: &[f64]) -> Log {
        let n = action.len();
        Log {
            features: (0..x.first().map_or(0, Vec::len))
                .map(|j| format!("x{j}"))
                .collect(),
            episode: (0..n as u64).collect(),
            session: vec![0; n],
            step: vec![0; n],
            x: x.concat(),
            action: action.to_vec(),
            position: position.to_vec(),
            reward: reward.to_vec(),
            propensity: vec![0.5; n],
            terminated: vec![true; n],
            truncated: vec![false; n],
        }
    }

    /// Noise-free linear rewards, a different line per action, are
    /// recovered by ridge with a tiny penalty (to 10⁻⁶: the penalty 10⁻⁹
    /// moves the weights by about λ/n relative).
    #[test]
    fn ridge_recovers_a_line_per_action() {
        let xs: Vec<Vec<f32>> = (0..40).map(|i| vec![(i % 10) as f32]).collect();
        let action: Vec<u32> = (0..40).map(|i| (i / 10 % 2) as u32).collect();
        let truth = |x: f64, a: u32| if a == 0 { 2.0 + 3.0 * x } else { 1.0 - x };
        let reward: Vec<f64> = xs
            .iter()
            .zip(&action)
            .map(|(x, &a)| truth(f64::from(x[0]), a))
            .collect();
        let l = log(&xs, &action, &[0; 40], &reward);
        let model = RewardModel::fit(&l, None, 2, ModelKind::Ridge, 1e-9).unwrap();
        let mut q = [0.0; 2];
        for x in [0.0f32, 4.5, 9.0, 12.0] {
            model.predict(&[x], 0, &mut q);
            for a in 0..2 {
                assert!(
                    (q[a] - truth(f64::from(x), a as u32)).abs() < 1e-6,
                    "{x} {a}: {q:?}"
                );
            }
        }
    }

    /// Without features, logistic regression with a per-action intercept
    /// and a tiny penalty predicts each action's empirical click rate
    /// (the maximum-likelihood estimate), and position terms each
    /// position's shift.
    #[test]
    fn logistic_without_features_gives_each_actions_click_rate() {
        let n = 300;
        let action: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        // Action 0 clicks 1 in 5, action 1 1 in 2, action 2 1 in 10.
        let reward: Vec<f64> = (0..n)
            .map(|i| {
                let j = i / 3;
                f64::from(u8::from(match i % 3 {
                    0 => j % 5 == 0,
                    1 => j % 2 == 0,
                    _ => j % 10 == 0,
                }))
            })
            .collect();
        let l = log(&vec![vec![]; n], &action, &vec![0; n], &reward);
        let model = RewardModel::fit(&l, None, 3, ModelKind::Logistic, 1e-8).unwrap();
        let mut q = [0.0; 3];
        model.predict(&[], 0, &mut q);
        for (a, rate) in [0.2, 0.5, 0.1].into_iter().enumerate() {
            assert!((q[a] - rate).abs() < 1e-6, "{a}: {q:?}");
        }
    }

    /// The intercept is unpenalised, so at the optimum the residuals sum
    /// to 0 — mean prediction equals mean reward — for both links and any
    /// penalty (to the solver's tolerance).
    #[test]
    fn the_unpenalised_intercept_calibrates_the_mean() {
        let n = 500;
        let xs: Vec<Vec<f32>> = (0..n)
            .map(|i| vec![(i % 7) as f32, ((i * 13) % 11) as f32 * 0.3])
            .collect();
        let action: Vec<u32> = (0..n).map(|i| ((i * 7) % 4) as u32).collect();
        let position: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
        let reward: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from((i * 31 + i / 3) % 9 < 2)))
            .collect();
        let l = log(&xs, &action, &position, &reward);
        for kind in [ModelKind::Logistic, ModelKind::Ridge] {
            for l2 in [0.1, 10.0] {
                let model = RewardModel::fit(&l, None, 4, kind, l2).unwrap();
                let mut q = [0.0; 4];
                let total: f64 = (0..n)
                    .map(|i| {
                        model.predict(&xs[i], usize::from(position[i]), &mut q);
                        reward[i] - q[action[i] as usize]
                    })
                    .sum();
                assert!(
                    total.abs() < 1e-6,
                    "{kind:?} λ = {l2}: residuals sum to {total}"
                );
            }
        }
    }

    /// The block elimination solves the same system as dense Gaussian
    /// elimination of the assembled matrix (to 10⁻⁹ on weights of order 1).
    #[test]
    fn block_solve_equals_a_dense_solve() {
        let layout = Layout { d: 2, m: 3, k: 2 };
        let mut system = System::new(layout);
        let mut shared = Vec::new();
        for r in 0..40 {
            let x = [((r * 7) % 5) as f64 - 2.0, ((r * 3) % 4) as f64 * 0.5];
            layout.shared(&x, r % 2, &mut shared);
            system.add(
                &shared,
                r % 3,
                &x,
                0.5 + (r % 4) as f64 * 0.1,
                (r % 3) as f64 - 0.7,
            );
        }
        system.penalise(0.3, 1e-10);
        // The full matrix, in the weights' order.
        let (nc, nb, p) = (layout.core(), layout.block(), layout.parameters());
        let mut h = vec![0.0; p * p];
        let mut g = system.rhs_c.clone();
        g.extend_from_slice(&system.rhs_b);
        for i in 0..nc {
            for j in 0..nc {
                h[i * p + j] = system.c[i * nc + j];
            }
        }
        for a in 0..3 {
            for i in 0..nc {
                for j in 0..nb {
                    let v = system.f[(a * nc + i) * nb + j];
                    h[i * p + nc + a * nb + j] = v;
                    h[(nc + a * nb + j) * p + i] = v;
                }
            }
            for i in 0..nb {
                for j in 0..nb {
                    h[(nc + a * nb + i) * p + nc + a * nb + j] = system.g[a * nb * nb + i * nb + j];
                }
            }
        }
        // Gaussian elimination with partial pivoting.
        for col in 0..p {
            let pivot = (col..p)
                .max_by(|&a, &b| h[a * p + col].abs().total_cmp(&h[b * p + col].abs()))
                .unwrap();
            for j in 0..p {
                h.swap(col * p + j, pivot * p + j);
            }
            g.swap(col, pivot);
            for r in col + 1..p {
                let f = h[r * p + col] / h[col * p + col];
                for j in col..p {
                    h[r * p + j] -= f * h[col * p + j];
                }
                g[r] -= f * g[col];
            }
        }
        let mut dense = vec![0.0; p];
        for i in (0..p).rev() {
            let dot: f64 = (i + 1..p).map(|j| h[i * p + j] * dense[j]).sum();
            dense[i] = (g[i] - dot) / h[i * p + i];
        }
        let blocks = system.solve();
        for (a, b) in dense.iter().zip(&blocks) {
            assert!((a - b).abs() < 1e-9, "{dense:?}\n{blocks:?}");
        }
    }

    /// Cross-fitted predictions of a row never depend on its own reward.
    #[test]
    fn cross_fitting_keeps_rows_out_of_their_own_model() {
        let n = 60;
        let xs: Vec<Vec<f32>> = (0..n).map(|i| vec![(i % 5) as f32]).collect();
        let action: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let reward: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
        let l = log(&xs, &action, &vec![0; n], &reward);
        let before = fit_predict(&l, 2, ModelKind::Logistic, 1.0, 3).unwrap();
        let mut changed = l.clone();
        changed.reward[0] = 1.0 - changed.reward[0];
        let after = fit_predict(&changed, 2, ModelKind::Logistic, 1.0, 3).unwrap();
        assert_eq!(before[..2], after[..2]);
        assert_ne!(before, after);
        assert!(matches!(
            fit_predict(&l, 2, ModelKind::Logistic, 1.0, 61),
            Err(ModelError::Folds { .. })
        ));
    }
}
