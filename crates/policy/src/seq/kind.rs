//! `kind = "reinforce"` in scenario files.

use super::{config::ReinforceConfig, softmax::Reinforce};
use crate::{
    PolicyError,
    registry::{BuildContext, Built, Costed, PolicyKind},
};

/// `kind = "reinforce"`: a softmax policy over the catalog, its state read
/// by a transformer over the shopper's history, trained by REINFORCE.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReinforceKind;

impl PolicyKind for ReinforceKind {
    type Config = ReinforceConfig;

    fn kind(&self) -> &'static str {
        "reinforce"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn offline_steps(&self, config: &Self::Config, _rows: usize) -> Option<u64> {
        config.log_steps
    }

    fn cost(&self, config: &Self::Config, cx: &BuildContext<'_>, decisions: f64) -> Costed {
        let rows = cx.offline.map_or(0, |d| d.transitions.len());
        config.cost(cx.observation_space, cx.action_space.n(), rows, decisions)
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        let mut policy = Reinforce::new(
            config.clone(),
            cx.observation_space,
            cx.action_space.n(),
            cx.seed,
        )?;
        if config.log_steps.is_some() {
            let data = crate::offline::kinds::data_of(self.kind(), cx)?;
            policy.learn_from_log(&data.transitions).map_err(|e| {
                PolicyError::invalid("log_steps", format!("the {}: {e}", data.source))
            })?;
        }
        Ok(Box::new(policy))
    }
}
