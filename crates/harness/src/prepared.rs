//! A validated scenario, ready to run: envs, policies and the oracle.
//!
//! [`Prepared::new`] checks every rule of the scenario file, builds one env and
//! every policy once to catch errors in their settings, and solves the oracle,
//! all before any run starts. The scenario family's specifics live here: how to
//! build its env, what its fixed-action baseline means, and what its oracle is.

use crate::scenario::{PolicySpec, Scenario, ScenarioError};
use shoplab_env::{Env, Observation};
use shoplab_policy::{
    Policy, PolicyError,
    epsilon_greedy::EpsilonGreedy,
    fixed::Fixed,
    pricing_oracle::{PricingOracle, PricingProblem, PricingSolution},
    random::UniformRandom,
    tabular_q::TabularQ,
    ucb::Ucb1,
};
use shoplab_sim::{
    config::ConfigError,
    pricing::{PricingEnv, PricingModel},
};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// Largest oracle work, in elementary DP steps, accepted before a run.
pub const MAX_ORACLE_WORK: f64 = 4e9;

/// Most rows or columns in a learned-policy table chart.
const TABLE_CELLS: u32 = 60;

/// A scenario that passed validation, with its oracle solved.
pub struct Prepared {
    /// The scenario, defaults filled in.
    pub scenario: Scenario,
    /// The file it came from.
    pub source: PathBuf,
    /// Unique report names of the policies.
    pub names: Vec<String>,
    family: Family,
}

enum Family {
    Pricing {
        model: PricingModel,
        solution: Arc<PricingSolution>,
    },
}

/// A policy's greedy action over a grid of states, for charts: `actions[row][col]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyTable {
    /// Name of the row variable.
    pub row_name: &'static str,
    /// Name of the column variable.
    pub col_name: &'static str,
    /// What the greedy action's value is (`price`).
    pub value_name: &'static str,
    /// Row values.
    pub rows: Vec<u32>,
    /// Column values.
    pub cols: Vec<u32>,
    /// The value of the greedy action (a price) in each cell.
    pub values: Vec<Vec<f64>>,
}

/// Up to `cells` evenly spaced integers from `0` to `max`, inclusive.
fn grid(max: u32, cells: u32) -> Vec<u32> {
    if max < cells {
        (0..=max).collect()
    } else {
        (0..cells)
            .map(|i| (f64::from(i) * f64::from(max) / f64::from(cells - 1)).round() as u32)
            .collect()
    }
}

impl Prepared {
    /// Validates `scenario` (read from `source`) and solves its oracle.
    pub fn new(scenario: Scenario, source: &Path) -> Result<Self, ScenarioError> {
        let invalid = |e: ConfigError| ScenarioError::invalid(source, e);
        scenario.validate_common().map_err(invalid)?;
        let Some(config) = &scenario.pricing else {
            return Err(invalid(ConfigError::new(
                "pricing",
                "the scenario needs a family table: [pricing]",
            )));
        };
        let model = config
            .validate()
            .map_err(|e| invalid(e.within("pricing")))?;
        let problem = PricingProblem {
            horizon: config.horizon,
            inventory: config.inventory,
            prices: config.price_grid.clone(),
            cost: config.cost,
            salvage_value: config.salvage_value,
            expected_buyers: (0..config.horizon)
                .map(|t| {
                    config
                        .price_grid
                        .iter()
                        .map(|&p| model.expected_buyers(t, p))
                        .collect()
                })
                .collect(),
        };
        let peak = problem
            .expected_buyers
            .iter()
            .flatten()
            .copied()
            .fold(0.0, f64::max);
        let width = f64::from(config.inventory) + 1.0;
        let work = f64::from(config.horizon)
            * config.price_grid.len() as f64
            * width
            * width.min(peak + 12.0 * peak.sqrt() + 30.0);
        if work > MAX_ORACLE_WORK {
            return Err(invalid(ConfigError::new(
                "pricing.inventory",
                format!(
                    "the exact oracle would take about {work:.1e} steps (limit {MAX_ORACLE_WORK:.0e}): \
                     use a smaller horizon, inventory, price grid or arrival rate"
                ),
            )));
        }
        let prepared = Self {
            names: scenario.policy_names(),
            source: source.to_path_buf(),
            family: Family::Pricing {
                model,
                solution: Arc::new(problem.solve()),
            },
            scenario,
        };
        for index in 0..prepared.scenario.policies.len() {
            prepared.make_policy(index, 0).map_err(|e| {
                let (key, rule) = match e {
                    PolicyError::Invalid { key, rule } => (format!(".{key}"), rule),
                    other => (String::new(), other.to_string()),
                };
                ScenarioError::Invalid {
                    file: source.to_path_buf(),
                    key: format!("policies[{index}]{key}"),
                    rule,
                }
            })?;
        }
        Ok(prepared)
    }

    /// A fresh env of the scenario.
    pub fn make_env(&self) -> Box<dyn Env> {
        match &self.family {
            Family::Pricing { model, .. } => Box::new(PricingEnv::new(model.clone())),
        }
    }

    /// Builds policy `index` of the list, seeded with `seed`.
    pub fn make_policy(&self, index: usize, seed: u64) -> Result<Box<dyn Policy>, PolicyError> {
        let env = self.make_env();
        let space = env.observation_space();
        let n = env.action_space().n();
        Ok(match &self.scenario.policies[index] {
            PolicySpec::Fixed { price } => {
                let Family::Pricing { model, .. } = &self.family;
                let grid = &model.config().price_grid;
                let action = grid
                    .iter()
                    .position(|p| (p - price).abs() <= 1e-9 * p.abs().max(1.0))
                    .ok_or_else(|| {
                        PolicyError::invalid(
                            "price",
                            format!("must be one of the price grid {grid:?} (found {price})"),
                        )
                    })?;
                Box::new(Fixed::new(action))
            }
            PolicySpec::Random {} => Box::new(UniformRandom::new(n, seed)),
            PolicySpec::EpsilonGreedy(c) => Box::new(EpsilonGreedy::new(*c, n, seed)?),
            PolicySpec::Ucb1(c) => Box::new(Ucb1::new(*c, n)?),
            PolicySpec::QLearning(c) => Box::new(TabularQ::new(c.clone(), space, n, seed)?),
            PolicySpec::Oracle {} => match &self.family {
                Family::Pricing { solution, model } => Box::new(PricingOracle::from_solution(
                    Arc::clone(solution),
                    model.config().horizon,
                    space,
                )?),
            },
        })
    }

    /// The optimal expected return of an episode, where the scenario has one.
    pub fn optimal_value(&self) -> Option<f64> {
        match &self.family {
            Family::Pricing { solution, .. } => Some(solution.optimal_value()),
        }
    }

    /// The greedy action of `policy` over a grid of states, as action values.
    pub fn greedy_table(&self, policy: &dyn Policy) -> GreedyTable {
        match &self.family {
            Family::Pricing { model, .. } => {
                let c = model.config();
                let rows = grid(c.horizon - 1, TABLE_CELLS);
                let cols: Vec<u32> = grid(c.inventory - 1, TABLE_CELLS)
                    .into_iter()
                    .map(|s| s + 1)
                    .collect();
                let values = rows
                    .iter()
                    .map(|&t| {
                        cols.iter()
                            .map(|&s| {
                                let obs = Observation {
                                    features: vec![t as f32, s as f32, 0.0],
                                };
                                c.price_grid[policy.greedy(&obs)]
                            })
                            .collect()
                    })
                    .collect();
                GreedyTable {
                    row_name: "period",
                    col_name: "stock",
                    value_name: "price",
                    rows,
                    cols,
                    values,
                }
            }
        }
    }
}
