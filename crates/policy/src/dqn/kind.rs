//! `kind = "dqn"` in scenario files.

use super::{Dqn, DqnConfig, QEncoder};
use crate::{
    registry::{BuildContext, Built, Costed, PolicyKind},
    seq::qlearning::SequenceDqn,
};

/// `kind = "dqn"`: deep Q-learning over the observation's features (an
/// MLP), or over the shopper's history (`encoder = "transformer"`).
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
        let (space, n) = (cx.observation_space, cx.action_space.n());
        Ok(match config.encoder {
            QEncoder::Mlp => Box::new(Dqn::new(config.clone(), space, n, cx.seed)?),
            QEncoder::Transformer => Box::new(SequenceDqn::new(config.clone(), space, n, cx.seed)?),
        })
    }
}
