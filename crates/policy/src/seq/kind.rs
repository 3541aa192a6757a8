//! `kind = "reinforce"` in scenario files.

use super::{
    config::{ItemEmbeddings, ReinforceConfig},
    softmax::Reinforce,
};
use crate::{
    PolicyError,
    registry::{BuildContext, Built, Costed, PolicyKind},
};
use shoplab_env::family::ItemFeatures;

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

    /// Checks, besides the settings' own rules, what `build` would refuse
    /// (item features the family lacks, logged data the scenario lacks),
    /// since large instances are costed, not built, before a run.
    fn cost(&self, config: &Self::Config, cx: &BuildContext<'_>, decisions: f64) -> Costed {
        catalog_features(config, cx)?;
        if config.log_steps.is_some() {
            crate::offline::kinds::data_of(self.kind(), cx)?;
        }
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
        if let Some(features) = catalog_features(config, cx)? {
            policy
                .init_items_from_catalog(features)
                .map_err(|e| PolicyError::invalid("item_embeddings", e))?;
        }
        if config.log_steps.is_some() {
            let data = crate::offline::kinds::data_of(self.kind(), cx)?;
            policy.learn_from_log(&data.transitions).map_err(|e| {
                PolicyError::invalid("log_steps", format!("the {}: {e}", data.source))
            })?;
        }
        Ok(Box::new(policy))
    }
}

/// The catalog's feature vectors, when the item embeddings start from
/// them: refused where the family has none or they are wider than the
/// encoder.
fn catalog_features<'a>(
    config: &ReinforceConfig,
    cx: &BuildContext<'a>,
) -> Result<Option<&'a ItemFeatures>, PolicyError> {
    if config.item_embeddings != ItemEmbeddings::Catalog {
        return Ok(None);
    }
    let features = cx.family.get::<ItemFeatures>().ok_or_else(|| {
        PolicyError::invalid(
            "item_embeddings",
            format!(
                "`catalog` needs the catalog's item feature vectors, and the {} family has \
                 none; use `random`",
                cx.family.name()
            ),
        )
    })?;
    if features.dim > config.encoder.dim {
        return Err(PolicyError::invalid(
            "item_embeddings",
            format!(
                "the catalog's feature vectors have {} values, more than the encoder's dim of \
                 {}; raise encoder.dim to at least {0} or use `random`",
                features.dim, config.encoder.dim
            ),
        ));
    }
    Ok(Some(features))
}
