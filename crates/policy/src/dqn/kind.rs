//! `kind = "dqn"` in scenario files.

use super::{Dqn, DqnConfig};
use crate::registry::{BuildContext, Built, Costed, PolicyKind};

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
    ) -> Costed {
        config.cost(
            cx.observation_space,
            cx.action_space.n(),
            training_decisions,
        )
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(Dqn::new(
            config.clone(),
            cx.observation_space,
            cx.action_space.n(),
            cx.seed,
        )?))
    }
}
