//! The recommendation family: `[recommendation]` tables, validated, with
//! the catalog built (or read) before any run.

use super::{METRICS, RecommendationConfig, RecommendationEnv, RecommendationModel};
use crate::config::ConfigError;
use shoplab_env::{
    EnvBox, Family, FamilyKind,
    cost::EpisodeCost,
    family::{ActionRule, ItemFeatures, Ratio, Sessions, fixed_slate_rule},
};
use std::{
    any::{Any, TypeId},
    path::Path,
    sync::Arc,
};

/// How many fixed slates the baseline search considers (the harness
/// screens them on 2 calibration episodes and plays the best 10 on 20).
pub const FIXED_SLATE_CANDIDATES: usize = 200;

/// The `[recommendation]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecommendationFamily;

/// A validated recommendation scenario: many shoppers in session at once.
pub struct Recommendation {
    model: RecommendationModel,
    /// The catalog's feature vectors, made when a policy first asks.
    features: std::sync::OnceLock<ItemFeatures>,
}

impl Recommendation {
    /// The validated model.
    pub fn model(&self) -> &RecommendationModel {
        &self.model
    }
}

impl FamilyKind for RecommendationFamily {
    type Config = RecommendationConfig;

    fn name(&self) -> &'static str {
        "recommendation"
    }

    fn prepare(
        &self,
        config: &mut RecommendationConfig,
        base: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError> {
        let model = config.validate(base)?;
        // Record where the catalog came from as an absolute path, so the
        // resolved scenario reads the same file from anywhere.
        if let Some(path) = &mut config.catalog.path {
            *path = std::fs::canonicalize(base.join(&*path)).unwrap_or(base.join(&*path));
        }
        Ok(Arc::new(Recommendation {
            model,
            features: std::sync::OnceLock::new(),
        }))
    }

    fn map_paths(
        &self,
        config: &mut RecommendationConfig,
        f: &mut dyn FnMut(&str, &Path) -> std::path::PathBuf,
    ) {
        if let Some(path) = &mut config.catalog.path {
            *path = f("catalog.path", path);
        }
    }
}

/// The summary ratios, the session length last.
const SESSION_LENGTH: usize = 3;

impl Family for Recommendation {
    fn name(&self) -> &'static str {
        "recommendation"
    }

    /// Every tick steps every concurrent session: one decision each, whose
    /// slate the shopper scores item by item (`slate × dim`) before the
    /// env builds the next observation. Shopper state is a preference
    /// vector and a fatigue per topic; the catalog is shared.
    fn episode_cost(&self) -> EpisodeCost {
        let config = self.model.config();
        let catalog = self.model.catalog();
        let (dim, topics) = (catalog.dim as f64, catalog.n_topics as f64);
        let sessions = f64::from(config.concurrent_sessions);
        EpisodeCost {
            decisions: f64::from(config.ticks) * sessions,
            env_work: f64::from(config.slate_size) * (dim + 10.0) + topics + 100.0,
            env_bytes: sessions * (4.0 * (dim + topics) + 256.0) + 65_536.0,
            setup_bytes: catalog.items.len() as f64 * (4.0 * dim + 64.0) + topics * 4.0 * dim,
        }
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Batch(Box::new(RecommendationEnv::new(self.model.clone())))
    }

    fn return_label(&self) -> &'static str {
        match self.model.config().reward {
            crate::recommendation::RewardKind::SignedClick => "reward per session (±1 per click)",
            crate::recommendation::RewardKind::Click => "clicks per session",
            crate::recommendation::RewardKind::Revenue => "revenue per session",
        }
    }

    fn ratios(&self) -> Vec<Ratio> {
        let ratios = vec![
            Ratio::of(&METRICS, "ctr", "clicks", "steps"),
            Ratio::of(
                &METRICS,
                "purchases_per_session",
                "purchases",
                "sessions_ended",
            ),
            Ratio::of(&METRICS, "revenue_per_session", "revenue", "sessions_ended"),
            Ratio::of(&METRICS, "session_length", "steps", "sessions_ended"),
        ];
        debug_assert_eq!(ratios[SESSION_LENGTH].name, "session_length");
        ratios
    }

    fn sessions(&self) -> Option<Sessions> {
        Some(Sessions {
            ended_metric: shoplab_env::family::metric_index(&METRICS, "sessions_ended"),
            length_ratio: SESSION_LENGTH,
            ticks: self.model.config().ticks,
        })
    }

    /// Fixed slates: every window of `slate_size` consecutive items in the
    /// ranking by mean expected immediate reward for fresh shoppers (2,000
    /// drawn from `seed`), the first [`FIXED_SLATE_CANDIDATES`] of them —
    /// with slates of one and catalogs of up to 200 items, every item. The
    /// harness keeps the best on calibration episodes, which also count
    /// fatigue and session length: the item that pays most now (clickbait)
    /// is not the one that pays most over a session.
    fn baseline_candidates(&self, seed: u64) -> Vec<(String, ActionRule)> {
        let ranked = self.model.items_by_mean_reward(seed, 2_000);
        let k = self.model.config().slate_size as usize;
        (0..FIXED_SLATE_CANDIDATES)
            .filter(|start| start + k <= ranked.len())
            .map(|start| {
                let slate = ranked[start..start + k].to_vec();
                let items: Vec<String> = slate.iter().map(usize::to_string).collect();
                let name = format!("best fixed slate [{}]", items.join(", "));
                (name, fixed_slate_rule(slate))
            })
            .collect()
    }

    /// A batch episode already holds hundreds of sessions.
    fn calibration_episodes(&self) -> u32 {
        20
    }

    fn interleaved_sessions(&self) -> bool {
        true
    }

    fn binary_feedback(&self) -> bool {
        true
    }

    fn expected_rewards(&self) -> bool {
        true
    }

    /// The catalog's item feature vectors ([`ItemFeatures`]), unit length.
    fn setup(&self, type_id: TypeId) -> Option<&dyn Any> {
        if type_id != TypeId::of::<ItemFeatures>() {
            return None;
        }
        Some(self.features.get_or_init(|| {
            let catalog = self.model.catalog();
            ItemFeatures {
                dim: catalog.dim,
                values: catalog
                    .items
                    .iter()
                    .flat_map(|i| i.features.iter().copied())
                    .collect(),
            }
        }))
    }
}
