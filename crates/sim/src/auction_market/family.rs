//! The auction-market family: `[auction_market]` tables, validated, the
//! catalog drawn before any run.

use super::{AuctionMarketConfig, AuctionMarketEnv, AuctionMarketModel, METRICS};
use crate::config::ConfigError;
use shoplab_env::{
    EnvBox, Family, FamilyKind,
    cost::EpisodeCost,
    family::{ActionRule, Ratio, calibration_episodes, constant_rule},
};
use std::{path::Path, sync::Arc};

/// The `[auction_market]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuctionMarketFamily;

/// A validated auction market.
pub struct AuctionMarket {
    model: AuctionMarketModel,
}

impl AuctionMarket {
    /// The validated model.
    pub fn model(&self) -> &AuctionMarketModel {
        &self.model
    }
}

impl FamilyKind for AuctionMarketFamily {
    type Config = AuctionMarketConfig;

    fn name(&self) -> &'static str {
        "auction_market"
    }

    fn prepare(
        &self,
        config: &mut AuctionMarketConfig,
        _: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError> {
        Ok(Arc::new(AuctionMarket {
            model: config.validate()?,
        }))
    }
}

impl Family for AuctionMarket {
    fn name(&self) -> &'static str {
        "auction_market"
    }

    /// A decision costs `bidders / participants` auctions on average (the
    /// policy's advertiser takes part in a share `participants / bidders`
    /// of them), each scoring every participant's ads; a market holds its
    /// pending auction.
    fn episode_cost(&self) -> EpisodeCost {
        let c = self.model.config();
        let width = f64::from(c.embedding_size) + 1.0;
        let auctions = f64::from(c.bidders) / f64::from(c.participants);
        let auction = f64::from(c.participants) * f64::from(c.items) * (width + 20.0) + 50.0;
        let markets = f64::from(c.concurrent_markets);
        EpisodeCost {
            decisions: f64::from(c.ticks) * markets,
            env_work: auctions * auction + 100.0,
            env_bytes: markets * (8.0 * width + 40.0 * f64::from(c.bidders) + 256.0) + 65_536.0,
            setup_bytes: f64::from(c.bidders) * f64::from(c.items) * 8.0 * (width + 1.0),
        }
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Batch(Box::new(AuctionMarketEnv::new(self.model.clone())))
    }

    fn return_label(&self) -> &'static str {
        "net utility per market"
    }

    fn ratios(&self) -> Vec<Ratio> {
        vec![
            Ratio::of(&METRICS, "win_rate", "wins", "decisions"),
            Ratio::of(&METRICS, "cost_per_click", "spend", "clicks"),
            Ratio::of(&METRICS, "value_per_spend", "value", "spend"),
            Ratio::of(&METRICS, "auctions_per_decision", "auctions", "decisions"),
        ]
    }

    /// One fixed multiplier throughout, each of the grid's (in a
    /// second-price market the best is 1, truthful bidding).
    fn baseline_candidates(&self, _: u64) -> Vec<(String, ActionRule)> {
        self.model
            .config()
            .bid_multipliers
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("best fixed multiplier {m}"), constant_rule(i)))
            .collect()
    }

    /// Enough episodes for 200,000 decisions, 2 to 20.
    fn calibration_episodes(&self) -> u32 {
        let c = self.model.config();
        calibration_episodes(c.ticks, c.concurrent_markets)
    }

    fn interleaved_sessions(&self) -> bool {
        true
    }

    fn expected_rewards(&self) -> bool {
        true
    }
}
