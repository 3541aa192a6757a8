//! References in hindsight: the day's LP knapsack optimum and the best
//! fixed multiplier, from the day's log of opportunities.

use super::*;

/// The hindsight references of a realised day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hindsight {
    /// The LP relaxation of the knapsack over the day's opportunities.
    pub optimum: f64,
    /// The best fixed multiplier's return, replayed on the same day.
    pub best_fixed: f64,
    /// That multiplier's index in the grid.
    pub best_fixed_index: usize,
}

/// The hindsight references of the day in `log` for `model`, with the day's `budget`.
///
/// The optimum is the fractional knapsack: an opportunity costs its clearing
/// price `max(competing, reserve)` (the least any bid that wins it pays) and is
/// worth its expected reward under the segment's best creative; items are
/// taken in decreasing value per cost until the budget is spent, the last one
/// fractionally — the LP optimum (Dantzig, 1957). Given the day's arrivals and
/// prices, no policy, online or not, can expect more: any set of won
/// impressions costs at least its clearing prices, and no creative beats the
/// best one in expectation. Expected rather than realised values keep the
/// bound from knowing which impressions will convert.
pub fn hindsight(model: &AdsModel, log: &[OpportunityRecord], budget: f64) -> Hindsight {
    let c = model.config();
    let mut items: Vec<(f64, f64)> = log
        .iter()
        .map(|o| {
            let s = o.segment as usize;
            (
                o.competing.max(c.reserve_price),
                model.expected_impression_reward(s, model.best_creative(s)),
            )
        })
        .filter(|&(_, value)| value > 0.0)
        .collect();
    // Decreasing value per unit cost; free items first.
    items.sort_by(|a, b| (b.1 * a.0).total_cmp(&(a.1 * b.0)));
    let (day_budget, mut budget) = (budget, budget);
    let mut optimum = 0.0;
    for (cost, value) in items {
        if cost <= budget {
            budget -= cost;
            optimum += value;
        } else {
            optimum += value * budget / cost;
            break;
        }
    }
    let (best_fixed_index, best_fixed) = (0..c.bid_multipliers.len())
        .map(|i| {
            (
                i,
                replay_fixed(model, log, c.bid_multipliers[i], day_budget),
            )
        })
        .fold(
            (0, f64::NEG_INFINITY),
            |best, x| if x.1 > best.1 { x } else { best },
        );
    Hindsight {
        optimum,
        best_fixed,
        best_fixed_index,
    }
}

/// The expected return of bidding `v̂_s / multiplier` all day with the best
/// creative on the day in `log`, with the day's `budget`.
pub fn replay_fixed(
    model: &AdsModel,
    log: &[OpportunityRecord],
    multiplier: f64,
    budget: f64,
) -> f64 {
    let c = model.config();
    let mut budget = budget;
    let mut total = 0.0;
    for o in log {
        let s = o.segment as usize;
        let bid = model.estimated_value(s) / multiplier;
        if let Some(payment) = auction_outcome(c.auction, bid, o.competing, c.reserve_price)
            && payment <= budget
        {
            budget -= payment;
            total += model.expected_impression_reward(s, model.best_creative(s));
        }
    }
    total
}
