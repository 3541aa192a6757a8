//! Always the same action: the fixed-price (or fixed-bid) baseline.

use crate::Policy;
use shoplab_env::Observation;

/// Takes one action forever.
#[derive(Debug, Clone)]
pub struct Fixed {
    action: usize,
    n_actions: usize,
}

impl Fixed {
    /// A policy that always takes `action`, of `n_actions`.
    pub fn new(action: usize, n_actions: usize) -> Self {
        Self { action, n_actions }
    }
}

impl Policy for Fixed {
    fn act(&mut self, _obs: &Observation) -> usize {
        self.action
    }

    fn action_probabilities(&mut self, _obs: &Observation, probs: &mut Vec<f64>) -> bool {
        crate::one_hot_probabilities(self.action, self.n_actions, probs);
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
}

/// `kind = "fixed"`: always the same price, in families with a price grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedPriceKind;

impl crate::registry::PolicyKind for FixedPriceKind {
    type Config = FixedPriceConfig;

    fn kind(&self) -> &'static str {
        "fixed"
    }

    fn name(&self, config: &Self::Config) -> String {
        format!("fixed_price_{}", config.price)
    }

    fn applies(&self, family: &dyn shoplab_env::Family) -> Result<(), String> {
        match family.get::<shoplab_env::family::PriceGrid>() {
            Some(_) => Ok(()),
            None => {
                Err("it posts a price, so it needs a family with a price grid (pricing)".into())
            }
        }
    }

    fn build(
        &self,
        config: &Self::Config,
        cx: &crate::registry::BuildContext<'_>,
    ) -> Result<Box<dyn Policy>, crate::PolicyError> {
        let price = config.price;
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
        Ok(Box::new(Fixed::new(action, grid.len())))
    }
}
