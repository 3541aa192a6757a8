//! `kind = "dqn"` in scenario files.

use super::{Dqn, DqnConfig};
use crate::{
    Policy, PolicyError,
    registry::{BuildContext, PolicyKind},
};
use shoplab_env::cost::PolicyCost;

/// `kind = "dqn"`: deep Q-learning over the observation's features.
#[derive(Debug, Clone, Copy, Default)]
pub struct DqnKind;

impl PolicyKind for DqnKind {
    type Config = DqnConfig;

    fn kind(&self) -> &'static str {
        "dqn"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn cost(
        &self,
        config: &Self::Config,
        cx: &BuildContext<'_>,
        training_decisions: f64,
    ) -> Result<PolicyCost, PolicyError> {
        config.cost(
            cx.observation_space,
            cx.action_space.n(),
            training_decisions,
        )
    }

    fn build(
        &self,
        config: &Self::Config,
        cx: &BuildContext<'_>,
    ) -> Result<Box<dyn Policy>, PolicyError> {
        Ok(Box::new(Dqn::new(
            config.clone(),
            cx.observation_space,
            cx.action_space.n(),
            cx.seed,
        )?))
    }
}
