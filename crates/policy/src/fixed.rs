//! Always the same action: the fixed-price (or fixed-bid) baseline; with
//! `epsilon`, a shop that mostly posts its price and now and then tries a
//! random one — a behaviour policy whose logs overlap with the fixed price.

use crate::Policy;
use crate::registry::{BuildContext, Built, PolicyKind};
use rand::RngExt;
use shoplab_env::{
    Observation,
    seed::{SimRng, rng_from_seed},
};

/// Takes one action forever, or with probability ε a uniformly random one.
#[derive(Debug)]
pub struct Fixed {
    action: usize,
    n_actions: usize,
    epsilon: f64,
    rng: SimRng,
}

impl Fixed {
    /// A policy that always takes `action`, of `n_actions`.
    pub fn new(action: usize, n_actions: usize) -> Self {
        Self::exploring(action, n_actions, 0.0, 0)
    }

    /// A policy that takes `action` except with probability `epsilon`, when
    /// it takes a uniformly random action (drawn from `seed`).
    pub fn exploring(action: usize, n_actions: usize, epsilon: f64, seed: u64) -> Self {
        Self {
            action,
            n_actions,
            epsilon,
            rng: rng_from_seed(seed),
        }
    }
}

impl Policy for Fixed {
    fn act(&mut self, _obs: &Observation) -> usize {
        if self.epsilon > 0.0 && self.rng.random_bool(self.epsilon) {
            self.rng.random_range(0..self.n_actions)
        } else {
            self.action
        }
    }

    fn action_probabilities(&mut self, _obs: &Observation, probs: &mut Vec<f64>) -> bool {
        crate::epsilon_greedy_probabilities(self.epsilon, self.action, self.n_actions, probs);
        true
    }

    /// The default slate: the (ε-mixed) action, then the next ones in
    /// index order.
    fn slate_probabilities(
        &mut self,
        obs: &Observation,
        k: usize,
        n: usize,
        probs: &mut Vec<f64>,
    ) -> bool {
        let mut first = Vec::with_capacity(n);
        self.action_probabilities(obs, &mut first);
        crate::shifted_slate_probabilities(&first, k, probs);
        true
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        self.action
    }
}

/// Settings of `kind = "fixed"`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedPriceConfig {
    /// The price, which must be on the family's price grid.
    pub price: f64,
    /// Probability of posting a uniformly random price of the grid instead,
    /// in [0, 1] (0: always the price).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epsilon: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// `kind = "fixed"`: always the same price, in families with a price grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedPriceKind;

impl PolicyKind for FixedPriceKind {
    type Config = FixedPriceConfig;

    fn kind(&self) -> &'static str {
        "fixed"
    }

    fn name(&self, config: &Self::Config) -> String {
        if config.epsilon > 0.0 {
            format!("fixed_price_{}_epsilon_{}", config.price, config.epsilon)
        } else {
            format!("fixed_price_{}", config.price)
        }
    }

    fn applies(&self, family: &dyn shoplab_env::Family) -> Result<(), String> {
        match family.get::<shoplab_env::family::PriceGrid>() {
            Some(_) => Ok(()),
            None => {
                Err("it posts a price, so it needs a family with a price grid (pricing)".into())
            }
        }
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        let price = config.price;
        shoplab_env::config::probability("epsilon", config.epsilon)?;
        let grid = &cx
            .family
            .get::<shoplab_env::family::PriceGrid>()
            .ok_or_else(|| crate::PolicyError::invalid("", "the family has no price grid"))?
            .0;
        let action = grid
            .iter()
            .position(|p| (p - price).abs() <= 1e-9 * p.abs().max(1.0))
            .ok_or_else(|| {
                crate::PolicyError::invalid(
                    "price",
                    format!("must be one of the price grid {grid:?} (found {price})"),
                )
            })?;
        Ok(Box::new(Fixed::exploring(
            action,
            grid.len(),
            config.epsilon,
            cx.seed,
        )))
    }
}

/// Settings of `kind = "fixed_action"`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedActionConfig {
    /// The action's index in the family's action space.
    pub action: usize,
    /// Probability of taking a uniformly random action instead, in [0, 1].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epsilon: f64,
}

/// `kind = "fixed_action"`: always the same action, by index, in any
/// family (a price of the grid, a bid multiplier, an item); with
/// `epsilon`, a behaviour or target policy of known propensities for
/// off-policy evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedActionKind;

impl PolicyKind for FixedActionKind {
    type Config = FixedActionConfig;

    fn kind(&self) -> &'static str {
        "fixed_action"
    }

    fn name(&self, config: &Self::Config) -> String {
        if config.epsilon > 0.0 {
            format!("fixed_action_{}_epsilon_{}", config.action, config.epsilon)
        } else {
            format!("fixed_action_{}", config.action)
        }
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        shoplab_env::config::probability("epsilon", config.epsilon)?;
        let n = cx.action_space.n();
        if config.action >= n {
            return Err(crate::PolicyError::invalid(
                "action",
                format!(
                    "must be an action of the family, 0 ..= {} (found {})",
                    n - 1,
                    config.action
                ),
            ));
        }
        Ok(Box::new(Fixed::exploring(
            config.action,
            n,
            config.epsilon,
            cx.seed,
        )))
    }
}
