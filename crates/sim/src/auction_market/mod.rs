//! AuctionGym's auction market, ported: the like-for-like workload of
//! shoplab's AuctionGym benchmark, and a scenario family of its own
//! (`[auction_market]`) in which a policy bids for one of the advertisers.
//!
//! The market is AuctionGym's (`src/main.py`, `Auction.simulate_opportunity`
//! with `OracleAllocator`s and `TruthfulBidder`s; the defaults below are its
//! `SP_Oracle` configuration):
//! - **catalog**, drawn once from `catalog_seed`: each of `bidders`
//!   advertisers has `items` ads, each with an embedding of
//!   `embedding_size` normals (standard deviation `embedding_sd`), an
//!   intercept uniform in `[intercept_low, intercept_high)` and a value per
//!   click, log-normal (`value_log_mean`, `value_log_sd`);
//! - **an auction**: a context of `embedding_size` normals and a constant 1
//!   is drawn, and `participants` distinct advertisers are drawn to take
//!   part. Each scores every one of its ads, `CTR = σ(embedding · context +
//!   intercept)`, picks the ad of highest `value × CTR` and bids that
//!   (truthful, with the true CTR: the oracle allocator). The highest bid
//!   wins; it pays the second-highest bid (`mechanism = "second_price"`)
//!   or its own (`"first_price"`); the ad is clicked with its CTR.
//!
//! Advertiser 0 is the policy's. When it takes part, the env stops and
//! shows it the first `obs_embedding_size` context values (AuctionGym's
//! observable context) and its own best ad's CTR and value; the action
//! picks a multiplier from `bid_multipliers`, and it bids `multiplier ×
//! value × CTR`. The reward is its net utility: the click's value less the
//! price when it wins. Between its auctions the other advertisers' auctions
//! run in full, so one decision costs `bidders / participants` auctions on
//! average. Markets are ECS entities, each with its own generator seeded
//! from the episode seed and the slot, so one market per call gives the
//! same trajectory as that market in a batch.
//!
//! Auctions are independent given the context, so the policy that maximises
//! each decision's expected reward is optimal: the env tells a myopic
//! oracle, for every multiplier, the exact expectation over the hidden
//! competitors ([`shoplab_env::batch::BatchEnv::expected_rewards`]).

mod env;
pub mod family;
#[cfg(test)]
mod tests;

pub use env::*;

use crate::config::{ConfigError, at_least, in_range, within};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use shoplab_env::seed::rng_from_seed;
use std::sync::{Arc, LazyLock};

/// Most context dimensions.
pub const MAX_EMBEDDING: u32 = 64;

/// How the winner pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// The second-highest bid (truthful bidding is dominant).
    SecondPrice,
    /// Its own bid (bids must be shaded to earn anything).
    FirstPrice,
}

/// The `[auction_market]` table. Everything but the batch shape, the
/// mechanism and the policy's multipliers has AuctionGym's `SP_Oracle` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuctionMarketConfig {
    /// Markets stepped together, one slot each (1 = one market per call).
    pub concurrent_markets: u32,
    /// Decisions of the policy's advertiser in an episode.
    pub ticks: u32,
    /// How the winner pays.
    pub mechanism: Mechanism,
    /// The policy's bid multipliers: its actions, in order.
    pub bid_multipliers: Vec<f64>,
    /// Seed of the catalog: the same seed, the same ads in every run.
    #[serde(default)]
    pub catalog_seed: u64,
    /// Advertisers in the market, the policy's included.
    #[serde(default = "default_bidders")]
    pub bidders: u32,
    /// Advertisers drawn into each auction.
    #[serde(default = "default_participants")]
    pub participants: u32,
    /// Ads per advertiser.
    #[serde(default = "default_items")]
    pub items: u32,
    /// Context dimensions (and embedding size).
    #[serde(default = "default_embedding_size")]
    pub embedding_size: u32,
    /// Context dimensions the policy sees (AuctionGym's `obs_embedding_size`).
    #[serde(default = "default_obs_embedding_size")]
    pub obs_embedding_size: u32,
    /// Standard deviation of context and embedding values (AuctionGym's
    /// `embedding_var`, which it uses as one).
    #[serde(default = "one")]
    pub embedding_sd: f64,
    /// Mean of the log of an ad's value per click.
    #[serde(default = "default_value_log_mean")]
    pub value_log_mean: f64,
    /// Standard deviation of the log of an ad's value per click.
    #[serde(default = "default_value_log_sd")]
    pub value_log_sd: f64,
    /// Lowest intercept of an ad's click logit.
    #[serde(default = "default_intercept_low")]
    pub intercept_low: f64,
    /// Highest intercept of an ad's click logit.
    #[serde(default = "default_intercept_high")]
    pub intercept_high: f64,
}

fn default_bidders() -> u32 {
    6
}
fn default_participants() -> u32 {
    2
}
fn default_items() -> u32 {
    12
}
fn default_embedding_size() -> u32 {
    5
}
fn default_obs_embedding_size() -> u32 {
    4
}
fn one() -> f64 {
    1.0
}
fn default_value_log_mean() -> f64 {
    0.1
}
fn default_value_log_sd() -> f64 {
    0.2
}
fn default_intercept_low() -> f64 {
    -4.0
}
fn default_intercept_high() -> f64 {
    -3.0
}

impl AuctionMarketConfig {
    /// AuctionGym's `SP_Oracle` market with the given batch shape, the
    /// policy's multipliers 0.5, 0.6, …, 1.5.
    pub fn sp_oracle(concurrent_markets: u32, ticks: u32) -> Self {
        Self {
            concurrent_markets,
            ticks,
            mechanism: Mechanism::SecondPrice,
            bid_multipliers: (5..=15).map(|i| f64::from(i) / 10.0).collect(),
            catalog_seed: 0,
            bidders: default_bidders(),
            participants: default_participants(),
            items: default_items(),
            embedding_size: default_embedding_size(),
            obs_embedding_size: default_obs_embedding_size(),
            embedding_sd: 1.0,
            value_log_mean: default_value_log_mean(),
            value_log_sd: default_value_log_sd(),
            intercept_low: default_intercept_low(),
            intercept_high: default_intercept_high(),
        }
    }

    /// Checks every rule and draws the catalog.
    pub fn validate(&self) -> Result<AuctionMarketModel, ConfigError> {
        in_range(
            "concurrent_markets",
            self.concurrent_markets.into(),
            1,
            100_000,
        )?;
        in_range("ticks", self.ticks.into(), 1, 10_000_000)?;
        in_range("bidders", self.bidders.into(), 2, 100)?;
        in_range(
            "participants",
            self.participants.into(),
            2,
            self.bidders.into(),
        )?;
        in_range("items", self.items.into(), 1, 1_000)?;
        in_range(
            "embedding_size",
            self.embedding_size.into(),
            1,
            MAX_EMBEDDING.into(),
        )?;
        in_range(
            "obs_embedding_size",
            self.obs_embedding_size.into(),
            0,
            self.embedding_size.into(),
        )?;
        if self.bid_multipliers.is_empty() || self.bid_multipliers.len() > 1_000 {
            return Err(ConfigError::new(
                "bid_multipliers",
                format!(
                    "must list 1 to 1000 multipliers (found {})",
                    self.bid_multipliers.len()
                ),
            ));
        }
        for (i, &m) in self.bid_multipliers.iter().enumerate() {
            within(&format!("bid_multipliers[{i}]"), m, 0.0, 1e3)?;
        }
        within("embedding_sd", self.embedding_sd, 0.0, 100.0)?;
        within("value_log_mean", self.value_log_mean, -50.0, 50.0)?;
        within("value_log_sd", self.value_log_sd, 0.0, 10.0)?;
        within("intercept_low", self.intercept_low, -100.0, 100.0)?;
        at_least("intercept_high", self.intercept_high, self.intercept_low)?;
        within("intercept_high", self.intercept_high, -100.0, 100.0)?;
        Ok(AuctionMarketModel {
            catalog: Arc::new(MarketCatalog::draw(self)),
            config: Arc::new(self.clone()),
        })
    }
}

/// Every advertiser's ads, drawn once.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketCatalog {
    /// Context dimensions plus the intercept.
    pub width: usize,
    /// Ads per advertiser.
    pub items: usize,
    /// `bidders × items × width` weights, the intercept last in each row.
    pub weights: Vec<f64>,
    /// `bidders × items` values per click.
    pub values: Vec<f64>,
}

impl MarketCatalog {
    /// Draws the catalog from `catalog_seed`, in AuctionGym's order:
    /// embeddings, then values, then intercepts.
    fn draw(config: &AuctionMarketConfig) -> Self {
        let mut rng = rng_from_seed(config.catalog_seed);
        let (b, n, e) = (
            config.bidders as usize,
            config.items as usize,
            config.embedding_size as usize,
        );
        let width = e + 1;
        let mut weights = vec![0.0; b * n * width];
        for row in weights.chunks_mut(width) {
            for w in &mut row[..e] {
                let z: f64 = StandardNormal.sample(&mut rng);
                *w = config.embedding_sd * z;
            }
        }
        let values = (0..b * n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                (config.value_log_mean + config.value_log_sd * z).exp()
            })
            .collect();
        let span = config.intercept_high - config.intercept_low;
        for row in weights.chunks_mut(width) {
            row[e] = config.intercept_low + span * rng.random::<f64>();
        }
        Self {
            width,
            items: n,
            weights,
            values,
        }
    }

    /// Advertiser `bidder`'s best ad for `context` (whose last entry is the
    /// constant 1): `(ad, CTR, value)`, the ad of highest `value × CTR`.
    pub fn best_ad(&self, bidder: usize, context: &[f64]) -> (usize, f64, f64) {
        let rows = &self.weights[bidder * self.items * self.width..][..self.items * self.width];
        let values = &self.values[bidder * self.items..][..self.items];
        let mut best = (0, 0.0, 0.0);
        let mut best_value = f64::NEG_INFINITY;
        for (i, (row, &value)) in rows.chunks_exact(self.width).zip(values).enumerate() {
            let logit: f64 = row.iter().zip(context).map(|(w, x)| w * x).sum();
            let ctr = 1.0 / (1.0 + (-logit).exp());
            if ctr * value > best_value {
                best_value = ctr * value;
                best = (i, ctr, value);
            }
        }
        best
    }
}

/// A validated auction market.
#[derive(Debug, Clone)]
pub struct AuctionMarketModel {
    config: Arc<AuctionMarketConfig>,
    catalog: Arc<MarketCatalog>,
}

impl AuctionMarketModel {
    /// The validated config.
    pub fn config(&self) -> &AuctionMarketConfig {
        &self.config
    }

    /// The advertisers' ads.
    pub fn catalog(&self) -> &MarketCatalog {
        &self.catalog
    }
}

/// Names of the observable context values, for the largest size allowed.
static CONTEXT_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..MAX_EMBEDDING).map(|k| format!("context_{k}")).collect());

/// The name of observable context value `k`.
fn context_name(k: usize) -> &'static str {
    &CONTEXT_NAMES[k]
}
