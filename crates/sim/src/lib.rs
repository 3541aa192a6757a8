//! The shopper simulator behind shoplab's scenarios, built on `bevy_ecs`.
//!
//! Shoppers are ECS entities: each arrival is spawned with the components that
//! describe it (its population segment and its willingness to pay), systems
//! decide what it does, and it leaves at the end of the period. A scenario is a
//! `World` plus a `Schedule` of free-function systems in an explicit order, run
//! single-threaded: parallelism in shoplab comes from running many seeded
//! worlds at once, never from inside one, so a world's trajectory depends only
//! on its seed and the actions it is given.
//!
//! Randomness: each world owns one generator ([`WorldRng`]), reseeded on every
//! reset. Draws happen in spawn order inside exclusive systems, never in query
//! order, and systems that iterate queries only count or compare, so the
//! result cannot depend on how bevy lays out its tables.
//!
//! The pieces:
//! - [`population`]: willingness-to-pay distributions and segment mixtures, with
//!   their exact survival functions `P(wtp ≥ p)` for oracles and tests;
//! - [`arrivals`]: the arrival-rate patterns `λ(t)` of the Poisson shopper stream;
//! - [`pricing`]: the dynamic-pricing scenario as an [`Env`](shoplab_env::Env);
//! - [`catalog`] and [`recommendation`]: items, and many shoppers in session
//!   at once as a [`BatchEnv`](shoplab_env::batch::BatchEnv);
//! - [`ads`]: auctions under a budget, with hindsight references;
//! - [`auction_market`]: AuctionGym's auction market, ported, with a
//!   policy bidding for one advertiser (the like-for-like workload of the
//!   AuctionGym benchmark);
//! - [`interest_evolution`]: RecSim's interest-evolution environment,
//!   ported (the like-for-like workload of the RecSim benchmark);
//! - [`config`]: validation errors shared by the scenario configs (re-exported
//!   from the env crate, where the family trait that returns them lives).
#![deny(missing_docs)]

pub mod ads;
pub mod arrivals;
pub mod auction_market;
pub mod catalog;
mod ecs;
pub mod interest_evolution;
pub use ads::family::AdsFamily;
pub use auction_market::family::AuctionMarketFamily;
pub use interest_evolution::family::InterestEvolutionFamily;
pub use pricing::family::PricingFamily;
pub use recommendation::family::RecommendationFamily;
pub use shoplab_env::config;
pub mod population;
pub mod pricing;
pub mod recommendation;

use bevy_ecs::prelude::*;
use shoplab_env::seed::SimRng;

/// The world's only source of randomness, reseeded on every reset.
#[derive(Resource)]
pub struct WorldRng(pub SimRng);

/// Marks an entity as a shopper, with the population segment it was drawn from.
#[derive(Component, Debug, Clone, Copy)]
pub struct Shopper {
    /// Index of the shopper's segment in the scenario's population.
    pub segment: u16,
}

/// The most a shopper will pay for one unit, in currency units.
#[derive(Component, Debug, Clone, Copy)]
pub struct WillingnessToPay(pub f64);

/// Most rows or columns in a learned-policy table chart.
const TABLE_CELLS: u32 = 60;

/// Up to 60 evenly spaced integers from `0` to `max`, inclusive: the rows or
/// columns of a family's learned-policy chart.
pub(crate) fn table_grid(max: u32) -> Vec<u32> {
    if max < TABLE_CELLS {
        (0..=max).collect()
    } else {
        (0..TABLE_CELLS)
            .map(|i| (f64::from(i) * f64::from(max) / f64::from(TABLE_CELLS - 1)).round() as u32)
            .collect()
    }
}
