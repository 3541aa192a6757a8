//! Personalised recommendation: many shoppers in session at once, each shown
//! a slate of items per step.
//!
//! The parts, after RecSim's decomposition:
//! - **catalog** ([`Catalog`]): items with a unit feature vector, a topic, a
//!   price, a quality score and a clickbait appeal;
//! - **shoppers**: ECS entities with a preference vector (drawn around their
//!   segment's favourite topic), a price sensitivity, a patience budget,
//!   per-topic fatigue, the last `history_len` items they clicked, and their
//!   own random number generator, seeded from the episode seed, the slot and
//!   the session count, so no draw depends on query order;
//! - **choice model** ([`choice_probabilities`]): a multinomial logit over the
//!   slate and a no-click option, with utility
//!   `U_i = pref · x_i + quality_i + clickbait_i − β·price_i − fatigue[topic_i]`
//!   and `P(i) = e^{U_i/τ} / (e^{u_0/τ} + Σ_j e^{U_j/τ})`;
//! - **response and dynamics**: a click becomes a purchase with probability
//!   `σ(purchase_alpha − β·price)`; preferences drift toward the clicked item
//!   (`pref ← ‖pref‖·normalise((1−η)·pref/‖pref‖ + η·x_i)`); fatigue decays by
//!   `fatigue_decay` each step and rises by `fatigue_rise` for each shown
//!   item's topic; patience falls by `no_click_cost` without a click, and by
//!   `click_cost + clickbait_cost·[clickbait] + mismatch_cost·(1 − cos(pref, x_i))`
//!   after a click; the session ends when patience is spent or with
//!   probability `leave_probability` per step, and a new shopper takes the slot;
//! - **reward** ([`RewardKind`]): ±1 per click, clicks, or revenue.
//!
//! The systems of one step, in order: [`choose_items`] → [`evolve_shoppers`]
//! → [`replace_finished`]. A batch episode is `ticks` steps; sessions still
//! running at its end are truncated.

mod choice;
mod config;
mod env;
pub mod family;
mod shopper;
#[cfg(test)]
mod tests;

/// The `[recommendation.catalog]` table.
pub use crate::catalog::CatalogConfig;
pub use choice::*;
pub use config::*;
pub use env::*;
pub use shopper::*;

use crate::{
    Shopper,
    catalog::{Catalog, near, normalise},
    config::{ConfigError, above, in_range, probability},
};
use bevy_ecs::{prelude::*, query::QueryData, schedule::SingleThreadedExecutor};
use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ActionSpace, Feature, Info, Observation, ObservationSpace,
    batch::{BatchEnv, BatchStep},
    seed::{derive_seed, rng_from_seed},
};
use std::sync::Arc;
