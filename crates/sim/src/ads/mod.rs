//! Ad placement and bidding under a budget: auctions, pacing, creatives.
//!
//! An advertiser runs a campaign with a `budget` over a day of `periods`.
//! Impression opportunities arrive in each period as a Poisson stream with
//! mean `opportunities(t)`; each is an entity with a shopper segment, the
//! highest competing bid (lognormal, with a daily swing), and the uniform
//! draws that decide a click and a conversion. Every opportunity is an auction
//! ([`auction_outcome`]): first or second price, with a reserve.
//!
//! The advertiser values an impression of segment `s` at
//! `v̂_s = conversion_rate · conversion_value · mean_c ctr(s, c)` (its prior
//! over creatives) and bids `v̂_s / λ` — the standard pacing form, where a
//! larger multiplier λ shades bids to stretch the budget. An auction whose
//! payment would overspend the budget is not entered, so spend never exceeds
//! the budget. A won impression shows the period's creative `c`; it is clicked
//! when its click draw is below `ctr(s, c)` (unknown to the policy), and a
//! click converts when its conversion draw is below `conversion_rate`.
//! Sharing one click draw across creatives couples them: the best creative
//! is clicked whenever any creative would be.
//!
//! As an MDP, per period:
//! - **action**: a pair (λ from `bid_multipliers`, creative), numbered
//!   `λ_index · n_creatives + creative`;
//! - **observation**: `[period, budget_left, spend, wins, win_rate,
//!   cost_per_click, last_wins, last_clicks, pace]` (spend and wins so far;
//!   win rate, cost per click, wins and clicks over the previous period, so
//!   creative bandits can learn click rates; `pace` = budget share left − day
//!   share left, in [−1, 1], positive when behind the even schedule).
//!   Tabular learners bin the period in 24 and the pace in 20 (bins 0.1 wide)
//!   by default;
//! - **reward**: conversion value won, or clicks;
//! - **termination**: the day ends.
//!
//! Days may differ ([`DayVariation`]): each day draws its budget, a factor
//! on its traffic and on competing bids, and a shift of its traffic
//! pattern when it starts, so no single multiplier suits every day.
//!
//! References for each realised day ([`hindsight`]): the hindsight optimum —
//! the LP relaxation of the knapsack over the opportunities that arrived, at
//! their realised prices and their expected values under the best creative,
//! which bounds what any online policy can expect on that day — and the best
//! fixed λ in hindsight, valued the same way.
//!
//! The systems of one period, in order: [`arrive_opportunities`] →
//! [`run_auctions`].

mod auction;
mod config;
mod env;
pub mod family;
mod hindsight;
mod systems;
#[cfg(test)]
mod tests;

pub use auction::*;
pub use config::*;
pub use env::*;
pub use hindsight::*;
pub use systems::*;

use crate::{
    Shopper, WorldRng,
    arrivals::ArrivalRate,
    config::{ConfigError, above, at_least, in_range, probability},
};
use bevy_ecs::{prelude::*, schedule::SingleThreadedExecutor};
use rand::RngExt;
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ActionSpace, Env, Feature, Info, Observation, ObservationSpace, Step,
    seed::{SimRng, rng_from_seed},
};
