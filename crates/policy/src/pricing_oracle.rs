//! The pricing oracle: plays the optimal price table of the exact dynamic
//! program over (period, stock) ([`shoplab_env::inventory`]).

use crate::registry::{BuildContext, Built, NoSettings, PolicyKind};
use crate::{Policy, PolicyError};
pub use shoplab_env::inventory::{PricingProblem, PricingSolution};
use shoplab_env::{Observation, ObservationSpace};
use std::sync::Arc;

/// Where a pricing observation keeps the period and the stock: the
/// features of those names, found once in the observation space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeasonFeatures {
    period: usize,
    stock: usize,
}

impl SeasonFeatures {
    /// Finds the `period` and `stock` features in `space`.
    pub(crate) fn find(space: &ObservationSpace) -> Result<Self, PolicyError> {
        Ok(Self {
            period: space
                .index_of("period")
                .ok_or(PolicyError::MissingFeature("period"))?,
            stock: space
                .index_of("stock")
                .ok_or(PolicyError::MissingFeature("stock"))?,
        })
    }

    /// The period (at most `horizon − 1`, the last decision) and the stock
    /// (at most `inventory`) an observation reads.
    pub(crate) fn read(&self, obs: &Observation, horizon: u32, inventory: u32) -> (u32, u32) {
        let t = (obs.features[self.period] as u32).min(horizon - 1);
        let s = (obs.features[self.stock] as u32).min(inventory);
        (t, s)
    }
}

/// Plays the optimal price table of a [`PricingSolution`].
#[derive(Debug, Clone)]
pub struct PricingOracle {
    solution: Arc<PricingSolution>,
    horizon: u32,
    features: SeasonFeatures,
}

impl PricingOracle {
    /// Solves `problem` and reads the period and stock from the features of
    /// the same names in `space`.
    pub fn new(problem: &PricingProblem, space: &ObservationSpace) -> Result<Self, PolicyError> {
        Self::from_solution(Arc::new(problem.solve()), problem.horizon, space)
    }

    /// Plays an existing solution of a problem with `horizon` periods.
    pub fn from_solution(
        solution: Arc<PricingSolution>,
        horizon: u32,
        space: &ObservationSpace,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            features: SeasonFeatures::find(space)?,
            horizon,
            solution,
        })
    }

    /// The solution it plays.
    pub fn solution(&self) -> &PricingSolution {
        &self.solution
    }
}

impl Policy for PricingOracle {
    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let (t, s) = self
            .features
            .read(obs, self.horizon, self.solution.inventory());
        self.solution.best_action(t, s)
    }
}

/// `kind = "oracle"`: plays the exact optimum of the scenario's model, for
/// families that provide their solved MDP as a setup.
#[derive(Debug, Clone, Copy, Default)]
pub struct PricingOracleKind;

impl PolicyKind for PricingOracleKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "oracle"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn applies(&self, family: &dyn shoplab_env::Family) -> Result<(), String> {
        match family.get::<Arc<PricingSolution>>() {
            Some(_) => Ok(()),
            None => Err("it is only available in families with an exact model \
                         (pricing); use `myopic_oracle` where the env knows expected rewards"
                .into()),
        }
    }

    fn build(&self, _: &Self::Config, cx: &BuildContext<'_>) -> Built {
        let solution = cx
            .family
            .get::<Arc<PricingSolution>>()
            .ok_or_else(|| PolicyError::invalid("", "the family has no solved model"))?;
        Ok(Box::new(PricingOracle::from_solution(
            Arc::clone(solution),
            solution.horizon(),
            cx.observation_space,
        )?))
    }
}
