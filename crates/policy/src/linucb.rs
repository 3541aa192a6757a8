//! LinUCB (Li, Chu, Langford and Schapire, 2010): contextual bandits for
//! personalised recommendation.
//!
//! The shopper context `x` is the observation's one-hot encoding (each binned
//! feature with more than one bin, plus a bias term). Two models:
//!
//! - `features = "shopper_x_item"` (the default): one linear model shared by
//!   all actions over `φ(x, a) = (x ⊗ onehot(category_a)) ⊕ onehot(a)` — the
//!   interactions of each shopper trait (segment, last topic clicked) with the
//!   item's category (its topic), which generalise across the items of a
//!   topic, plus a per-item intercept for what is particular to the item;
//! - `features = "shopper"`: disjoint models, one per action over `x`
//!   (Algorithm 1 of the paper).
//!
//! Each model keeps `A = I + Σ φ φᵀ` as its inverse (Sherman–Morrison) and
//! `θ = A⁻¹ Σ r φ`, and scores
//!
//! ```text
//! p_a = θᵀ φ(x, a) + α · sqrt(φ(x, a)ᵀ A⁻¹ φ(x, a))
//! ```
//!
//! taking the best action (the `k` best for a slate). Every `φ` is one-hot, so
//! a score reads only the few active entries: O(m²) for m active features. An
//! update costs O(d²) for the model's dimension d.

use crate::registry::{BuildContext, Built, Costed, PolicyKind};
use crate::{Policy, PolicyError, Transition, argmax, top_k};
use serde::{Deserialize, Serialize};
use shoplab_env::{ActionSpace, Discretiser, Observation, ObservationSpace, cost::PolicyCost};
use std::collections::BTreeMap;

/// Which features the linear model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinUcbFeatures {
    /// One shared model over shopper traits × item category, plus item intercepts.
    ShopperXItem,
    /// One model per action over the shopper traits.
    Shopper,
}

/// Settings of [`LinUcb`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinUcbConfig {
    /// Exploration weight α, ≥ 0.
    pub alpha: f64,
    /// The features of the model.
    pub features: LinUcbFeatures,
    /// Bins per feature for the context, overriding the env's suggestions.
    pub bins: BTreeMap<String, usize>,
}

impl Default for LinUcbConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            features: LinUcbFeatures::ShopperXItem,
            bins: BTreeMap::new(),
        }
    }
}

/// Largest model dimension.
const MAX_DIM: usize = 1_024;

/// A linear model in `dim` dimensions over one-hot feature vectors.
#[derive(Debug, Clone)]
struct OneHotRidge {
    dim: usize,
    /// `A⁻¹`, row-major (symmetric).
    a_inv: Vec<f64>,
    /// `θ = A⁻¹ b`.
    theta: Vec<f64>,
    /// Scratch for `A⁻¹ φ`.
    u: Vec<f64>,
}

impl OneHotRidge {
    fn new(dim: usize) -> Self {
        let mut a_inv = vec![0.0; dim * dim];
        for i in 0..dim {
            a_inv[i * dim + i] = 1.0;
        }
        Self {
            dim,
            a_inv,
            theta: vec![0.0; dim],
            u: vec![0.0; dim],
        }
    }

    /// `θᵀφ` and `φᵀA⁻¹φ` for the one-hot `φ` with entries `active`.
    fn mean_and_width(&self, active: &[usize]) -> (f64, f64) {
        let mut mean = 0.0;
        let mut width = 0.0;
        for &i in active {
            mean += self.theta[i];
            for &j in active {
                width += self.a_inv[i * self.dim + j];
            }
        }
        (mean, width.max(0.0))
    }

    /// Adds `(φ, r)`: with `u = A⁻¹φ` and `s = φᵀu`, Sherman–Morrison gives
    /// `A⁻¹ ← A⁻¹ − u uᵀ/(1 + s)`, and then `θ ← θ + u (r − θᵀφ)/(1 + s)`.
    fn update(&mut self, active: &[usize], reward: f64) {
        let d = self.dim;
        self.u.iter_mut().for_each(|x| *x = 0.0);
        for &j in active {
            // A⁻¹ is symmetric: column j is row j.
            for (ui, a) in self.u.iter_mut().zip(&self.a_inv[j * d..(j + 1) * d]) {
                *ui += a;
            }
        }
        let s: f64 = active.iter().map(|&j| self.u[j]).sum();
        let prediction: f64 = active.iter().map(|&j| self.theta[j]).sum();
        let denominator = 1.0 + s;
        for i in 0..d {
            let ui = self.u[i];
            if ui == 0.0 {
                continue;
            }
            let scale = ui / denominator;
            for (cell, uj) in self.a_inv[i * d..(i + 1) * d].iter_mut().zip(&self.u) {
                *cell -= scale * uj;
            }
        }
        let step = (reward - prediction) / denominator;
        for (t, ui) in self.theta.iter_mut().zip(&self.u) {
            *t += ui * step;
        }
    }
}

/// The LinUCB bandit.
#[derive(Debug)]
pub struct LinUcb {
    alpha: f64,
    discretiser: Discretiser,
    /// Context length: one-hot entries plus the bias.
    context_len: usize,
    /// Each action's category (all 0 without categories) and their count.
    categories: Vec<u32>,
    n_categories: usize,
    /// The shared model (`shopper_x_item`) or one model per action (`shopper`).
    models: Vec<OneHotRidge>,
    shared: bool,
    context: Vec<usize>,
    active: Vec<usize>,
    scores: Vec<f64>,
}

/// The size of a LinUCB learner: its context, its model dimension, and
/// whether one model is shared by all actions (else one per action).
#[derive(Debug, Clone, Copy)]
struct Shape {
    context_len: usize,
    dim: usize,
    shared: bool,
    models: usize,
}

impl LinUcb {
    /// The discretiser and size of a learner with `config` over `space`
    /// and `actions`, within [`MAX_DIM`] dimensions.
    fn shape(
        config: &LinUcbConfig,
        space: &ObservationSpace,
        actions: &ActionSpace,
    ) -> Result<(Discretiser, Shape), PolicyError> {
        shoplab_env::config::at_least("alpha", config.alpha, 0.0)?;
        if config.alpha > 1e6 {
            return Err(PolicyError::invalid(
                "alpha",
                format!("must be in [0, 1e6] (found {})", config.alpha),
            ));
        }
        let overrides: Vec<(String, usize)> =
            config.bins.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let discretiser = Discretiser::new(space, &overrides, usize::MAX)
            .map_err(|e| PolicyError::invalid("bins", e.to_string()))?;
        let n = actions.n();
        let context_len = discretiser.one_hot_len() + 1;
        let n_categories = if actions.categories.len() == n {
            actions.n_categories()
        } else {
            1
        };
        let shared = config.features == LinUcbFeatures::ShopperXItem;
        let dim = if shared {
            context_len.saturating_mul(n_categories).saturating_add(n)
        } else {
            context_len
        };
        if dim > MAX_DIM {
            return Err(PolicyError::invalid(
                "features",
                format!(
                    "the model has {dim} dimensions, more than the limit of {MAX_DIM} \
                     (use fewer bins, or features = \"shopper\")"
                ),
            ));
        }
        let models = if shared { 1 } else { n };
        Ok((
            discretiser,
            Shape {
                context_len,
                dim,
                shared,
                models,
            },
        ))
    }

    /// What a learner costs ([`shoplab_env::cost`]): `A⁻¹` and `θ` per
    /// model (`dim² + 2·dim` numbers); a decision scores every action on
    /// the few active features, an update touches all of one `A⁻¹`.
    pub fn cost(
        config: &LinUcbConfig,
        space: &ObservationSpace,
        actions: &ActionSpace,
    ) -> Result<PolicyCost, PolicyError> {
        let (_, shape) = Self::shape(config, space, actions)?;
        let dim = shape.dim as f64;
        let active = space.features.len() as f64 + 3.0;
        let score = actions.n() as f64 * active * active;
        Ok(PolicyCost {
            bytes: shape.models as f64 * 8.0 * (dim * dim + 3.0 * dim) + 65_536.0,
            train_work: score + 2.0 * dim * dim,
            act_work: score,
        })
    }

    /// A LinUCB over the actions of `actions` with contexts from `space`.
    pub fn new(
        config: &LinUcbConfig,
        space: &ObservationSpace,
        actions: &ActionSpace,
    ) -> Result<Self, PolicyError> {
        let (discretiser, shape) = Self::shape(config, space, actions)?;
        let Shape {
            context_len,
            dim,
            shared,
            ..
        } = shape;
        let n = actions.n();
        let (categories, n_categories) = if actions.categories.len() == n {
            (actions.categories.clone(), actions.n_categories())
        } else {
            (vec![0; n], 1)
        };
        let models = vec![OneHotRidge::new(dim); shape.models];
        Ok(Self {
            alpha: config.alpha,
            discretiser,
            context_len,
            categories,
            n_categories,
            models,
            shared,
            context: Vec::new(),
            active: Vec::new(),
            scores: vec![0.0; n],
        })
    }

    /// The shopper context of `obs`: active one-hot entries and the bias (last).
    fn read_context(
        discretiser: &Discretiser,
        context_len: usize,
        obs: &Observation,
        out: &mut Vec<usize>,
    ) {
        discretiser.one_hot(&obs.features, out);
        out.push(context_len - 1);
    }

    /// The model of action `a` and the active entries of `φ(x, a)` in it.
    fn features_of(&self, a: usize, context: &[usize], active: &mut Vec<usize>) -> usize {
        active.clear();
        if self.shared {
            let c = self.categories[a] as usize;
            active.extend(context.iter().map(|&i| i * self.n_categories + c));
            active.push(self.context_len * self.n_categories + a);
            0
        } else {
            active.extend_from_slice(context);
            a
        }
    }

    fn score(&mut self, obs: &Observation) {
        Self::read_context(&self.discretiser, self.context_len, obs, &mut self.context);
        let mut active = std::mem::take(&mut self.active);
        for a in 0..self.scores.len() {
            let model = self.features_of(a, &self.context, &mut active);
            let (mean, width) = self.models[model].mean_and_width(&active);
            self.scores[a] = mean + self.alpha * width.sqrt();
        }
        self.active = active;
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
        let mut context = Vec::new();
        Self::read_context(&self.discretiser, self.context_len, obs, &mut context);
        let mut active = Vec::new();
        let means: Vec<f64> = (0..self.scores.len())
            .map(|a| {
                let model = self.features_of(a, &context, &mut active);
                self.models[model].mean_and_width(&active).0
            })
            .collect();
        argmax(&means)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        Self::read_context(
            &self.discretiser,
            self.context_len,
            t.obs,
            &mut self.context,
        );
        let mut active = std::mem::take(&mut self.active);
        let model = self.features_of(t.action, &self.context, &mut active);
        self.models[model].update(&active, t.reward);
        self.active = active;
    }
}

/// `kind = "linucb"`: LinUCB on the observation's one-hot context.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinUcbKind;

impl PolicyKind for LinUcbKind {
    type Config = LinUcbConfig;

    fn kind(&self) -> &'static str {
        "linucb"
    }

    fn cost(&self, config: &Self::Config, cx: &BuildContext<'_>, _: f64) -> Costed {
        LinUcb::cost(config, cx.observation_space, cx.action_space)
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(LinUcb::new(
            config,
            cx.observation_space,
            cx.action_space,
        )?))
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
        // Each action in a category of its own, so shopper × category
        // interactions can tell the segments' favourites apart.
        let actions = ActionSpace {
            labels: vec!["a".into(), "b".into(), "c".into()],
            categories: vec![0, 1, 2],
        };
        for features in [LinUcbFeatures::ShopperXItem, LinUcbFeatures::Shopper] {
            let config = LinUcbConfig {
                features,
                ..LinUcbConfig::default()
            };
            let mut bandit = LinUcb::new(&config, &space, &actions).unwrap();
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
                    slot: 0,
                    obs: &obs,
                    action,
                    reward: reward(segment, action),
                    next_obs: &obs,
                    terminated: false,
                    truncated: false,
                });
            }
            let at = |s: f32| bandit.greedy(&Observation { features: vec![s] });
            assert_eq!(at(0.0), 0, "{features:?}");
            assert_eq!(at(1.0), 2, "{features:?}");
        }
    }
}
