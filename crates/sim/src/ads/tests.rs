//! Tests of the ads scenario.

use super::*;
use rand::SeedableRng;
use shoplab_env::{check::check_determinism, seed::SimRng};

pub(crate) fn config() -> AdsConfig {
    AdsConfig {
        budget: 20.0,
        periods: 24,
        auction: AuctionKind::SecondPrice,
        reserve_price: 0.01,
        bid_multipliers: vec![0.5, 1.0, 1.5, 2.0, 3.0],
        n_creatives: 3,
        reward: AdsReward::Value,
        conversion_rate: 0.2,
        conversion_value: 10.0,
        opportunities: ArrivalRate::Constant { rate: 30.0 },
        competition: CompetitionConfig {
            mu: -1.5,
            sigma: 0.6,
            daily_amplitude: 0.3,
        },
        segments: vec![
            AdSegment {
                name: "a".into(),
                share: 0.6,
                click_rates: vec![0.05, 0.1, 0.02],
            },
            AdSegment {
                name: "b".into(),
                share: 0.4,
                click_rates: vec![0.08, 0.03, 0.04],
            },
        ],
        day_variation: None,
    }
}

#[test]
fn deterministic_per_seed() {
    let model = config().validate().unwrap();
    let (mut a, mut b) = (AdsEnv::new(model.clone()), AdsEnv::new(model));
    check_determinism(&mut a, &mut b, 3, 4, 100).unwrap();
}

/// Despawned opportunities leave no records behind: a schedule run by hand
/// must clear them each step, or a long-lived env grows without bound
/// (about a hundred bytes a period, found as gigabytes in long runs).
#[test]
fn despawned_opportunities_leave_no_records() {
    let mut c = config();
    c.opportunities = ArrivalRate::Constant { rate: 3.0 };
    let mut env = AdsEnv::new(c.validate().unwrap());
    for seed in 0..5 {
        env.reset(seed);
        while !env.step(4).terminated {}
    }
    assert_eq!(env.world().removed::<Opportunity>().count(), 0);
    assert_eq!(env.world().removed::<Shopper>().count(), 0);
}

/// Property: over 300 random scenarios and random actions, spend never
/// exceeds the budget, period by period or in total.
#[test]
fn spend_never_exceeds_the_budget() {
    let mut rng = SimRng::seed_from_u64(17);
    for case in 0..300 {
        let mut c = config();
        c.budget = 0.05 + 30.0 * rng.random::<f64>();
        c.periods = rng.random_range(1..40);
        c.auction = if rng.random_bool(0.5) {
            AuctionKind::FirstPrice
        } else {
            AuctionKind::SecondPrice
        };
        c.opportunities = ArrivalRate::Constant {
            rate: 100.0 * rng.random::<f64>(),
        };
        c.competition.mu = -3.0 + 3.0 * rng.random::<f64>();
        let mut env = AdsEnv::new(c.validate().unwrap());
        env.reset(case);
        let mut spent = 0.0;
        loop {
            let step = env.step(rng.random_range(0..15));
            spent += step.info[2];
            assert!(
                spent <= c.budget + 1e-9,
                "case {case}: spent {spent} of {}",
                c.budget
            );
            if step.done() {
                assert!((step.info[7] - (c.budget - spent)).abs() < 1e-6);
                break;
            }
        }
    }
}

/// In a second-price auction, bidding one's value is a dominant strategy:
/// for every draw of value and competing bid, truthful utility `v − price`
/// is at least the utility of any shaded or inflated bid. The bound is
/// exact (0), checked pointwise over 100,000 draws.
#[test]
fn truthful_bidding_dominates_in_second_price() {
    let mut rng = SimRng::seed_from_u64(5);
    let utility = |bid: f64, value: f64, competing: f64| {
        auction_outcome(AuctionKind::SecondPrice, bid, competing, 0.0).map_or(0.0, |p| value - p)
    };
    for _ in 0..100_000 {
        let (v, p): (f64, f64) = (rng.random(), rng.random());
        let truthful = utility(v, v, p);
        for factor in [0.5, 0.8, 0.95, 1.05, 1.2, 1.5] {
            assert!(truthful >= utility(v * factor, v, p) - 1e-12);
        }
    }
}

/// First price, two bidders, values uniform on [0, 1]. Against an opponent
/// bidding half its value, a bidder of value v bidding b wins with
/// probability min(2b, 1), so its expected utility (v − b)·2b peaks at
/// b = v/2: by simulation (200,000 opponent draws per candidate, common to
/// all), shading to v/2 earns at least as much as every other shading
/// factor tried. When both bid half their values the seller's expected
/// revenue is E[max(V₁, V₂)]/2 = 1/3, checked within 4 standard errors.
#[test]
fn first_price_half_value_is_a_best_response_with_revenue_one_third() {
    let mut rng = SimRng::seed_from_u64(11);
    let n = 200_000;
    let draws: Vec<(f64, f64)> = (0..n).map(|_| (rng.random(), rng.random())).collect();
    let expected_utility = |factor: f64| {
        draws
            .iter()
            .map(|&(v, w)| {
                auction_outcome(AuctionKind::FirstPrice, factor * v, w / 2.0, 0.0)
                    .map_or(0.0, |p| v - p)
            })
            .sum::<f64>()
            / n as f64
    };
    let half = expected_utility(0.5);
    for factor in [0.3, 0.4, 0.45, 0.55, 0.6, 0.7, 0.9] {
        assert!(
            half >= expected_utility(factor),
            "shading {factor} beats v/2"
        );
    }
    // Closed form for the check: E[(V − V/2)·V] = E[V²]/2 = 1/6.
    assert!((half - 1.0 / 6.0).abs() < 0.005, "{half}");
    let revenues: Vec<f64> = draws.iter().map(|&(v, w)| v.max(w) / 2.0).collect();
    let mean = revenues.iter().sum::<f64>() / n as f64;
    let var = revenues.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    assert!(
        (mean - 1.0 / 3.0).abs() < 4.0 * se,
        "revenue {mean} vs 1/3 (se {se})"
    );
}

/// The greedy fractional knapsack equals the LP optimum found by brute
/// force: some LP optimum takes a subset whole and at most one more item
/// in part, so enumerating every subset and the best fractional filler
/// finds it.
#[test]
fn hindsight_optimum_equals_brute_force() {
    let mut rng = SimRng::seed_from_u64(23);
    for case in 0..200 {
        let mut c = config();
        c.budget = 0.05 + 0.6 * rng.random::<f64>();
        c.reward = AdsReward::Clicks;
        c.segments[0].click_rates = vec![0.9, 0.5, 0.2];
        c.segments[1].click_rates = vec![0.3, 0.7, 0.6];
        let model = c.validate().unwrap();
        let log: Vec<OpportunityRecord> = (0..rng.random_range(1..9))
            .map(|_| OpportunityRecord {
                period: 0,
                segment: rng.random_range(0..2),
                competing: 0.02 + 0.3 * rng.random::<f64>(),
                click_draw: rng.random(),
                conversion_draw: rng.random(),
            })
            .collect();
        let items: Vec<(f64, f64)> = log
            .iter()
            .map(|o| {
                let s = o.segment as usize;
                (
                    o.competing.max(c.reserve_price),
                    model.expected_impression_reward(s, model.best_creative(s)),
                )
            })
            .collect();
        let mut best = 0.0f64;
        for mask in 0u32..(1 << items.len()) {
            let (mut cost, mut value) = (0.0, 0.0);
            for (i, &(ci, vi)) in items.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    cost += ci;
                    value += vi;
                }
            }
            if cost > c.budget {
                continue;
            }
            let filler = items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) == 0)
                .map(|(_, &(ci, vi))| vi * ((c.budget - cost) / ci).min(1.0))
                .fold(0.0, f64::max);
            best = best.max(value + filler);
        }
        let h = hindsight(&model, &log, model.config().budget);
        assert!(
            (h.optimum - best).abs() < 1e-9,
            "case {case}: {} vs {best}",
            h.optimum
        );
        assert!(h.best_fixed <= h.optimum + 1e-9);
    }
}

#[test]
fn validation_names_keys() {
    let mut c = config();
    c.budget = -1.0;
    assert_eq!(c.validate().unwrap_err().key, "budget");
    let mut c = config();
    c.bid_multipliers.clear();
    assert_eq!(c.validate().unwrap_err().key, "bid_multipliers");
    let mut c = config();
    c.reserve_price = 100.0;
    let e = c.validate().unwrap_err();
    assert_eq!(e.key, "reserve_price");
    assert!(e.rule.contains("above every possible bid"));
    let mut c = config();
    c.segments[1].click_rates.pop();
    assert_eq!(c.validate().unwrap_err().key, "segments[1].click_rates");
}
