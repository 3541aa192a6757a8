//! Tests of the paced bidders.

use super::*;
use serde::Deserialize;

#[test]
fn nearest_multiplier_in_log_scale() {
    let grid = [0.5, 1.0, 2.0, 4.0];
    assert_eq!(PacedBidding::nearest(&grid, 1.3), 1);
    assert_eq!(PacedBidding::nearest(&grid, 1.5), 2);
    assert_eq!(PacedBidding::nearest(&grid, 100.0), 3);
    assert_eq!(PacedBidding::nearest(&grid, 0.01), 0);
}

mod stepped {
    use super::*;
    use crate::{
        schedule::LinearSchedule,
        tabular_q::{TabularQ, TabularQConfig},
    };
    use shoplab_env::Feature;

    pub(super) fn space() -> ObservationSpace {
        let f = |name, high: f32, bins| Feature {
            name,
            low: 0.0,
            high,
            integer: false,
            suggested_bins: bins,
        };
        ObservationSpace {
            features: vec![
                f("period", 10.0, 2),
                f("budget_left", 100.0, 1),
                f("last_wins", 1e5, 1),
                f("last_clicks", 1e5, 1),
            ],
        }
    }

    /// With ε = 1 the stepped pacer random-walks over the whole grid, one
    /// step at a time, and the move it learns from is the move it made.
    #[test]
    fn stepped_pacing_moves_one_grid_step_at_a_time() {
        let grid = [0.5, 1.0, 2.0, 4.0];
        let config = TabularQConfig {
            epsilon: LinearSchedule {
                start: 1.0,
                end: 1.0,
                decay_fraction: 1.0,
            },
            ..TabularQConfig::default()
        };
        let extended = PacedBidding::stepped_space(&space(), grid.len());
        let q = TabularQ::new(config, &extended, 3, 1).unwrap();
        let pacing = Pacing::Stepped {
            q: Box::new(q),
            start: 1,
            current: 1,
            last: (1, 1),
        };
        let mut bidder =
            PacedBidding::new(pacing, CreativeRule::Index(0), &grid, 1, &space(), 2).unwrap();
        bidder.begin_episode(0, 1);
        let obs = Observation {
            features: vec![0.0, 100.0, 0.0, 0.0],
        };
        let mut seen = [false; 4];
        let mut previous = 1usize;
        for _ in 0..500 {
            let action = bidder.act(&obs);
            assert!(action.abs_diff(previous) <= 1, "{previous} → {action}");
            seen[action] = true;
            previous = action;
            bidder.learn(&Transition {
                slot: 0,
                obs: &obs,
                action,
                reward: 0.0,
                next_obs: &obs,
                terminated: false,
                truncated: false,
            });
        }
        assert!(seen.iter().all(|&s| s), "visited {seen:?}");
    }
}

mod checkpoint {
    use super::*;
    use crate::dqn::{Dqn, DqnConfig};
    use shoplab_env::Feature;

    fn bidder(seed: u64) -> PacedBidding {
        let f = |name, high: f32| Feature {
            name,
            low: 0.0,
            high,
            integer: false,
            suggested_bins: 1,
        };
        let space = ObservationSpace {
            features: vec![
                f("period", 10.0),
                f("budget_left", 100.0),
                f("last_wins", 1e5),
                f("last_clicks", 1e5),
            ],
        };
        let grid = [0.5, 1.0, 2.0];
        let dqn = Dqn::new(DqnConfig::default(), &space, grid.len(), seed).unwrap();
        let pacing = Pacing::Learned {
            q: Box::new(dqn),
            every: 1,
            held: None,
        };
        let rule = CreativeRule::Bandit(CreativeBandit::Thompson);
        PacedBidding::new(pacing, rule, &grid, 3, &space, seed).unwrap()
    }

    /// A checkpoint carries the pacing network and the creative bandit's
    /// counts: a fresh bidder loaded from it acts greedily as the original.
    #[test]
    fn checkpoint_restores_network_and_creative_counts() {
        let mut trained = bidder(1);
        trained.impressions = vec![100.0, 200.0, 50.0];
        trained.clicks = vec![3.0, 15.0, 1.0];
        let bytes = trained.checkpoint().unwrap().unwrap();
        let mut fresh = bidder(2);
        fresh.load_checkpoint(&bytes).unwrap();
        assert_eq!(fresh.impressions, trained.impressions);
        assert_eq!(fresh.clicks, trained.clicks);
        for period in 0..10 {
            let obs = Observation {
                features: vec![period as f32, 50.0, 0.0, 0.0],
            };
            assert_eq!(fresh.act_greedy(&obs), trained.act_greedy(&obs));
            // Creative 1 has the best click rate.
            assert_eq!(fresh.act_greedy(&obs) % 3, 1);
        }
        // The same bytes again, whatever the order of the tensors.
        assert_eq!(fresh.checkpoint().unwrap().unwrap(), bytes);
    }
}

/// The settings' `Default` is what an entry with no settings reads as.
#[test]
fn defaults_match_an_empty_entry() {
    use super::{DqnPacingConfig, DualPacingConfig, PidConfig, QPacingConfig};
    let empty = || {
        serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(std::iter::empty::<(
            &str,
            &str,
        )>())
    };
    assert_eq!(
        PidConfig::deserialize(empty()).unwrap(),
        PidConfig::default()
    );
    assert_eq!(
        QPacingConfig::deserialize(empty()).unwrap(),
        QPacingConfig::default()
    );
    assert_eq!(
        DqnPacingConfig::deserialize(empty()).unwrap(),
        DqnPacingConfig::default()
    );
    assert_eq!(
        DualPacingConfig::deserialize(empty()).unwrap(),
        DualPacingConfig::default()
    );
}

/// Dual descent moves the shadow price by each period's relative overspend:
/// spending twice the per-period target raises μ by η, spending nothing
/// lowers it by η, and μ stays inside the grid's range (λ − 1).
#[test]
fn dual_descent_follows_the_overspend() {
    // Period 0..=10, budget 100.
    let space = stepped::space();
    let grid = [1.0, 1.5, 2.0, 3.0];
    let dual = Pacing::Dual {
        step: 0.5,
        start: 0.0,
        mu: 0.0,
        last_spent: 0.0,
    };
    let mut bidder = PacedBidding::new(dual, CreativeRule::Index(0), &grid, 1, &space, 1).unwrap();
    let obs = |period: f32, left: f32| Observation {
        features: vec![period, left, 0.0, 0.0],
    };
    let mu = |b: &PacedBidding| match b.pacing {
        Pacing::Dual { mu, .. } => mu,
        _ => unreachable!(),
    };
    bidder.begin_episode(0, 1);
    // Budget 100 over 10 periods: the target is 10 per period.
    assert_eq!(bidder.act(&obs(0.0, 100.0)), 0);
    bidder.act(&obs(1.0, 80.0)); // spent 20: overspend 1, μ = 0.5
    assert!((mu(&bidder) - 0.5).abs() < 1e-12);
    // Spent 30: μ = 1.5, λ = 2.5, nearer 3 than 2 in log scale.
    assert_eq!(bidder.act(&obs(2.0, 50.0)), 3);
    assert!((mu(&bidder) - 1.5).abs() < 1e-12);
    bidder.act(&obs(3.0, 10.0)); // spent 40: μ = 3.0, clamped to 2 (λ = 3)
    assert!((mu(&bidder) - 2.0).abs() < 1e-12);
    bidder.act(&obs(4.0, 10.0)); // spent nothing: μ = 1.5
    assert!((mu(&bidder) - 1.5).abs() < 1e-12);
    for period in 5..10 {
        bidder.act(&obs(period as f32, 10.0));
    }
    assert_eq!(mu(&bidder), 0.0, "clamped at the grid's lowest λ");
}
