//! The pricing scenario against the math: purchase rates, the closed-form
//! logit price, the simulator against the DP oracle, and learning to ≥ 90%
//! of the optimum.
//!
//! Guards issue #2 (foundation and dynamic pricing, end to end).

use shoplab_env::EnvBox;
use shoplab_env::{Env, Observation, seed::derive_seed};
use shoplab_harness::{prepared::Prepared, runner, scenario, stats};
use shoplab_sim::{
    arrivals::ArrivalRate,
    population::{Population, Segment, Wtp},
    pricing::{PricingConfig, PricingEnv},
};
use std::path::Path;

fn segments() -> Vec<Segment> {
    vec![
        Segment {
            name: "logit".into(),
            share: 0.7,
            share_end: None,
            wtp: Wtp::Logit {
                alpha: 2.0,
                beta: 1.0,
            },
        },
        Segment {
            name: "lognormal".into(),
            share: 0.3,
            share_end: None,
            wtp: Wtp::Lognormal {
                mu: 1.1,
                sigma: 0.35,
            },
        },
    ]
}

/// With stock that never runs out, buyers / shoppers at a fixed price is a
/// binomial proportion with success probability `1 − F(p) = Σ share·S(p)`.
/// About 40,000 shoppers per price; the bound is 4 binomial standard errors
/// (two-sided false-alarm probability ≈ 6e-5 per price).
#[test]
fn simulated_purchase_rate_matches_survival_function() {
    let grid = vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0];
    let config = PricingConfig {
        horizon: 40,
        inventory: 200_000,
        cost: 0.0,
        salvage_value: 0.0,
        price_grid: grid.clone(),
        arrival_rate: ArrivalRate::Constant { rate: 1_000.0 },
        segments: segments(),
    };
    let population = Population::new(&config.segments).unwrap();
    let mut env = PricingEnv::new(config.validate().unwrap());
    for (a, &price) in grid.iter().enumerate() {
        env.reset(100 + a as u64);
        let (mut shoppers, mut buyers) = (0.0, 0.0);
        loop {
            let step = env.step(a);
            shoppers += step.info[0];
            buyers += step.info[1];
            assert_eq!(step.info[1], step.info[2], "stock never binds here");
            if step.done() {
                break;
            }
        }
        let q = population.purchase_probability(price, 0, 1);
        let hat = buyers / shoppers;
        let se = (q * (1.0 - q) / shoppers).sqrt();
        assert!(
            (hat - q).abs() < 4.0 * se,
            "price {price}: simulated {hat:.5}, exact {q:.5} (se {se:.5})"
        );
    }
}

fn prepare(text: &str) -> Prepared {
    let file = Path::new("inline.toml");
    Prepared::new(
        scenario::parse(text, file, &shoplab_harness::registry::Registry::default()).unwrap(),
        file,
    )
    .unwrap()
}

/// A season of `horizon` days and `inventory` units at no cost or salvage,
/// 10 shoppers a day of one segment with logit purchase probability
/// 1/(1 + e^−(2 − p)), the prices `grid` (TOML), and the oracle as policy.
fn logit_season(horizon: u32, inventory: u32, grid: &str) -> Prepared {
    prepare(&format!(
        r#"
[run]
seeds = [1]
episodes = 1
[pricing]
horizon = {horizon}
inventory = {inventory}
cost = 0.0
salvage_value = 0.0
price_grid = {grid}
arrival_rate = {{ kind = "constant", rate = 10.0 }}
[[pricing.segments]]
share = 1.0
wtp = {{ kind = "logit", alpha = 2.0, beta = 1.0 }}
[[policies]]
kind = "oracle"
"#
    ))
}

/// Unlimited stock, logit purchase probability 1/(1 + e^−(2 − p)), grid
/// 0.5, 1.0, …, 4.0: the best price is 2.0 with purchase probability 0.5 and
/// expected revenue 1.0 per shopper (p* = (1 + W(e^(α−1)))/β = 2 exactly).
#[test]
fn oracle_finds_the_closed_form_logit_price() {
    let prepared = logit_season(1, 100_000, "[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]");
    let v = prepared.optimal_value().unwrap();
    assert!(
        (v - 10.0).abs() < 1e-9,
        "V* = {v}, expected 10 shoppers × 1.0"
    );
    let oracle = prepared.make_policy(0, 0).unwrap();
    let action = oracle.greedy(&Observation {
        features: vec![0.0, 100_000.0, 0.0],
    });
    assert_eq!(action, 3, "price index 3 is 2.0");
}

/// The simulator and the oracle's model agree: the oracle's mean simulated
/// return over 4,000 seasons of `scenarios/pricing.toml` lies within 4
/// standard errors of its exact expected return V*.
#[test]
fn simulated_oracle_return_matches_dp_value() {
    let file = Path::new("scenarios/pricing.toml");
    let mut s = scenario::read(file, &shoplab_harness::registry::Registry::default()).unwrap();
    s.policies.retain(|p| p.kind() == "oracle");
    let prepared = Prepared::new(s, file).unwrap();
    let v = prepared.optimal_value().unwrap();
    let mut oracle = prepared.make_policy(0, 0).unwrap();
    let EnvBox::Single(mut env) = prepared.make_env() else {
        panic!("pricing is a single-session env");
    };
    assert_simulates_to(env.as_mut(), |obs| oracle.act(obs), 99, v);
}

/// Plays `act` for 4,000 seasons of `env` (seeds `derive_seed(seed, "env",
/// e)`) and checks that their mean return lies within 4 standard errors of
/// `expected` (a false alarm with probability about 6e-5).
fn assert_simulates_to(
    env: &mut dyn Env,
    mut act: impl FnMut(&Observation) -> usize,
    seed: u64,
    expected: f64,
) {
    let returns: Vec<f64> = (0..4_000)
        .map(|e| {
            let (mut obs, _) = env.reset(derive_seed(seed, "env", e));
            let mut total = 0.0;
            loop {
                let step = env.step(act(&obs));
                total += step.reward;
                if step.done() {
                    return total;
                }
                obs = step.obs;
            }
        })
        .collect();
    let mean = stats::mean(&returns);
    let se = stats::std_dev(&returns) / (returns.len() as f64).sqrt();
    assert!(
        (mean - expected).abs() < 4.0 * se,
        "simulated {mean:.3} vs expected {expected:.3} (se {se:.3})"
    );
}

/// Tabular Q-learning on `scenarios/pricing.toml` (its own settings, 6 seeds)
/// reaches ≥ 90% of the oracle's expected return over the last 10% of
/// episodes, after starting well below it.
#[test]
fn q_learning_reaches_ninety_percent_of_the_oracle() {
    let file = Path::new("scenarios/pricing.toml");
    let mut s = scenario::read(file, &shoplab_harness::registry::Registry::default()).unwrap();
    s.policies.retain(|p| p.kind() == "q_learning");
    s.run.seeds = (1..=6).collect();
    let episodes = s.run.episodes as usize;
    let prepared = Prepared::new(s, file).unwrap();
    let v = prepared.optimal_value().unwrap();
    let results = runner::run_all(&prepared, &|_| {});
    let tail = episodes / 10;
    let window = |r: &runner::RunResult, range: std::ops::Range<usize>| {
        stats::mean(&r.episodes[range].iter().map(|e| e.ret).collect::<Vec<_>>())
    };
    let last: Vec<f64> = results
        .iter()
        .map(|r| window(r, episodes - tail..episodes))
        .collect();
    let first: Vec<f64> = results.iter().map(|r| window(r, 0..tail / 5)).collect();
    let (last, first) = (stats::mean(&last), stats::mean(&first));
    assert!(last >= 0.9 * v, "Q-learning {last:.2} < 90% of V* {v:.2}");
    assert!(
        first < 0.75 * v,
        "the curve should start well below: {first:.2} vs V* {v:.2}"
    );
}

/// The pricing flagship (issue #10, must-hold 1): selling in sequence
/// matters, so V* is at least 1.15 times the best fixed price's exact
/// expected return; tabular Q-learning's greedy policy closes more than 60%
/// of that gap on held-out seasons (4 seeds, paired against the oracle and
/// the best fixed price on the same 100 seasons each), and the fluid
/// re-solving heuristic more than 90%.
#[test]
fn seasonal_flagship_rewards_sequential_pricing() {
    let file = Path::new("scenarios/pricing-seasonal.toml");
    let registry = shoplab_harness::registry::Registry::default();
    let mut s = scenario::read(file, &registry).unwrap();
    s.run.seeds = vec![1, 2, 3, 4];
    s.run.eval_episodes = 100;
    s.run.eval_every = 0;
    s.policies
        .retain(|p| ["q_learning", "fluid_resolving"].contains(&p.base_name().as_str()));
    let prepared = Prepared::new(s, file).unwrap();
    let optimum = prepared.optimal_value().unwrap();
    let baseline = prepared.baseline().unwrap();
    assert!(
        optimum >= 1.15 * baseline.value,
        "V* {optimum} vs {}: {}",
        baseline.name,
        baseline.value
    );
    let results = runner::run_all(&prepared, &|_| {});
    let report = shoplab_harness::report::build(&prepared, &results);
    for (name, least) in [("q_learning", 60.0), ("fluid_resolving", 90.0)] {
        let s = report.summaries.iter().find(|s| s.name == name).unwrap();
        let gap = s.eval_gap_closed.unwrap();
        assert!(gap.mean > least, "{name} closes {gap:?} of the gap");
    }
}

/// Paired evaluation (issue #10, must-hold 5): on the shipped pricing
/// scenario's evaluation seasons (20 seeds × 500), the oracle scores
/// exactly 100% against itself played on the same seasons, and its
/// unpaired mean lies within 0.5% of V* (the standard error of that mean
/// is about 0.11% of V*, so this is a 4.5σ band); its greedy share of V*,
/// by exact policy evaluation, is 100%.
#[test]
fn oracle_paired_score_is_exact_and_unpaired_close_to_v_star() {
    let file = Path::new("scenarios/pricing.toml");
    let registry = shoplab_harness::registry::Registry::default();
    let mut s = scenario::read(file, &registry).unwrap();
    s.run.episodes = 1;
    s.policies.retain(|p| p.base_name() == "oracle");
    let prepared = Prepared::new(s, file).unwrap();
    let results = runner::run_all(&prepared, &|_| {});
    let report = shoplab_harness::report::build(&prepared, &results);
    let oracle = &report.summaries[0];
    let paired = oracle.eval_paired_pct.unwrap();
    assert_eq!(
        (paired.mean, paired.low, paired.high),
        (100.0, 100.0, 100.0)
    );
    assert_eq!(oracle.eval_paired_diff.unwrap().mean, 0.0);
    let unpaired = oracle.eval_return.unwrap().mean / prepared.optimal_value().unwrap();
    assert!((unpaired - 1.0).abs() < 0.005, "{unpaired}");
    // Issue #10, must-hold 3: the greedy share of V* is the exact one,
    // 100% for the oracle and never above it.
    let exact = oracle.eval_pct_of_oracle.unwrap();
    assert_eq!((exact.mean, exact.low, exact.high), (100.0, 100.0, 100.0));
}

/// Exact policy evaluation of a greedy policy that reads every feature of
/// the observation agrees with the simulator: a rule that prices by the
/// period, the stock and last period's sales, played for 4,000 seasons of
/// `scenarios/pricing-seasonal.toml`, averages within 4 standard errors of
/// the family's exact value (false alarm ≈ 6e-5), which lies below V*.
#[test]
fn exact_evaluation_of_a_state_reading_rule_matches_the_simulator() {
    let file = Path::new("scenarios/pricing-seasonal.toml");
    let s = scenario::read(file, &shoplab_harness::registry::Registry::default()).unwrap();
    let prepared = Prepared::new(s, file).unwrap();
    let EnvBox::Single(mut env) = prepared.make_env() else {
        panic!("pricing is a single-session env");
    };
    let n = env.action_space().n();
    // Dearer while stock is plentiful and the season young, cheaper after a
    // slow period.
    let rule = |obs: &Observation| {
        let (t, stock, sold) = (obs.features[0], obs.features[1], obs.features[2]);
        let level = if stock > 30.0 - t { 2 } else { 1 } + usize::from(sold >= 3.0);
        level.min(n - 1)
    };
    let exact = prepared.family().exact_value(&rule).unwrap();
    let v = prepared.optimal_value().unwrap();
    assert!(exact < v, "exact {exact} vs V* {v}");
    assert_simulates_to(env.as_mut(), rule, 7, exact);
}

/// Exact evaluation is bounded: a season whose (period, stock, last sales)
/// states exceed `EXACT_STATES` is not evaluated (its tables would grow
/// with the square of the inventory), and the summary samples instead.
#[test]
fn exact_evaluation_declines_seasons_too_large_for_it() {
    let prepared = logit_season(2, 5000, "[1.0, 2.0]");
    const { assert!(2 * 5001 * 5002 / 2 > shoplab_sim::pricing::family::EXACT_STATES) };
    assert_eq!(prepared.family().exact_value(&|_| 0), None);
}
