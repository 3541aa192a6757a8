//! The pricing family: `[pricing]` tables, validated, with the season's
//! exact optimum solved before any run.

use super::{METRICS, PricingConfig, PricingEnv, PricingModel};
use crate::{config::ConfigError, table_grid};
use shoplab_env::{
    EnvBox, Family, FamilyKind, Observation,
    cost::EpisodeCost,
    family::{ActionRule, Baseline, GreedyTable, PriceGrid, Ratio, constant_rule},
    inventory::{PricingProblem, PricingSolution},
};
use std::{
    any::{Any, TypeId},
    path::Path,
    sync::Arc,
};

/// Largest oracle work, in elementary DP steps, accepted before a run.
pub const MAX_ORACLE_WORK: f64 = 4e9;

/// The `[pricing]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct PricingFamily;

/// The most (period, stock, last sales) states pricing evaluates a
/// policy over exactly: a million policy calls at most, and two tables of
/// `(inventory + 1)²` values, at most 2 × 2 million (32 MB), per run.
pub const EXACT_STATES: u64 = 1_000_000;

/// A validated pricing scenario with its solved oracle. Its setups: the
/// [`PriceGrid`], the problem as plain numbers (`Arc<PricingProblem>`) and
/// its solution (`Arc<PricingSolution>`).
pub struct Pricing {
    model: PricingModel,
    prices: PriceGrid,
    solution: Arc<PricingSolution>,
    problem: Arc<PricingProblem>,
    /// The best fixed price's index and exact expected return.
    best_fixed: (usize, f64),
}

impl Pricing {
    /// The validated model.
    pub fn model(&self) -> &PricingModel {
        &self.model
    }
}

/// The pricing MDP of a validated model, as plain numbers.
pub fn problem(model: &PricingModel) -> PricingProblem {
    let config = model.config();
    PricingProblem {
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
    }
}

impl FamilyKind for PricingFamily {
    type Config = PricingConfig;

    fn name(&self) -> &'static str {
        "pricing"
    }

    fn prepare(
        &self,
        config: &mut PricingConfig,
        _: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError> {
        let model = config.validate()?;
        let problem = problem(&model);
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
            return Err(ConfigError::new(
                "inventory",
                format!(
                    "the exact oracle would take about {work:.1e} steps (limit {MAX_ORACLE_WORK:.0e}): \
                     use a smaller horizon, inventory, price grid or arrival rate"
                ),
            ));
        }
        Ok(Arc::new(Pricing {
            prices: PriceGrid(config.price_grid.clone()),
            solution: Arc::new(problem.solve()),
            best_fixed: problem.best_fixed_price(),
            problem: Arc::new(problem),
            model,
        }))
    }
}

impl Family for Pricing {
    fn name(&self) -> &'static str {
        "pricing"
    }

    /// One decision per period; each period draws its shoppers (the
    /// busiest period's expected arrivals, with six standard deviations of
    /// headroom) and their purchases. The solved oracle keeps a value and
    /// an action per state.
    fn episode_cost(&self) -> EpisodeCost {
        let config = self.model.config();
        let peak = (0..config.horizon)
            .map(|t| self.model.arrival_rate(t))
            .fold(0.0, f64::max);
        let shoppers = peak + 6.0 * peak.sqrt() + 1.0;
        let states = f64::from(config.horizon) * (f64::from(config.inventory) + 1.0);
        EpisodeCost {
            decisions: f64::from(config.horizon),
            env_work: 50.0 * shoppers + 100.0,
            env_bytes: 64.0 * shoppers + 65_536.0,
            setup_bytes: 16.0 * states * 2.0
                + 8.0 * f64::from(config.horizon) * config.price_grid.len() as f64,
        }
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Single(Box::new(PricingEnv::new(self.model.clone())))
    }

    fn return_label(&self) -> &'static str {
        "return per episode (season profit)"
    }

    fn ratios(&self) -> Vec<Ratio> {
        vec![Ratio::of(
            &METRICS,
            "mean_price_paid",
            "revenue",
            "units_sold",
        )]
    }

    fn optimal_value(&self) -> Option<f64> {
        Some(self.solution.optimal_value())
    }

    fn oracle(&self) -> Option<ActionRule> {
        let solution = Arc::clone(&self.solution);
        let last = self.model.config().horizon - 1;
        Some(Arc::new(move |obs: &Observation, out: &mut Vec<usize>| {
            let (t, s) = PricingEnv::state(obs);
            out.clear();
            out.push(solution.best_action(t.min(last), s.min(solution.inventory())));
        }))
    }

    fn baseline(&self) -> Option<Baseline> {
        let (a, value) = self.best_fixed;
        Some(Baseline {
            name: format!("best fixed price {}", self.prices.0[a]),
            value,
            basis: "exact, by the DP's evaluation of every fixed price".into(),
            rule: constant_rule(a),
        })
    }

    fn greedy_table(&self, greedy: &dyn Fn(&Observation) -> usize) -> Option<GreedyTable> {
        let c = self.model.config();
        let periods = table_grid(c.horizon - 1);
        let stocks: Vec<u32> = table_grid(c.inventory - 1)
            .into_iter()
            .map(|s| s + 1)
            .collect();
        let values = periods
            .iter()
            .map(|&t| {
                stocks
                    .iter()
                    .map(|&s| c.price_grid[greedy(&PricingEnv::observation(t, s, 0))])
                    .collect()
            })
            .collect();
        Some(GreedyTable {
            row_name: "period".into(),
            col_name: "stock".into(),
            value_name: "price".into(),
            rows: periods.into_iter().map(f64::from).collect(),
            cols: stocks.into_iter().map(f64::from).collect(),
            values,
            visited: None,
        })
    }

    /// Policy evaluation over (period, stock, last sales), the state the
    /// observation holds ([`PricingProblem::evaluate_observed`]), for
    /// seasons of at most [`EXACT_STATES`] such states (its memory grows
    /// with the square of the inventory, its policy calls with the states).
    fn exact_value(&self, greedy: &dyn Fn(&Observation) -> usize) -> Option<f64> {
        let c = self.model.config();
        let w = u64::from(c.inventory) + 1;
        if u64::from(c.horizon) * w * (w + 1) / 2 > EXACT_STATES {
            return None;
        }
        let value = self.problem.evaluate_observed(|t, stock, last_sales| {
            greedy(&PricingEnv::observation(t, stock, last_sales))
        });
        // The optimal policy evaluates to V* but for the last bits of a
        // different summation order.
        let v_star = self.solution.optimal_value();
        let rounding = value > v_star && value - v_star <= 1e-9 * v_star.abs();
        Some(if rounding { v_star } else { value })
    }

    fn setup(&self, type_id: TypeId) -> Option<&dyn Any> {
        if type_id == TypeId::of::<PriceGrid>() {
            Some(&self.prices)
        } else if type_id == TypeId::of::<Arc<PricingSolution>>() {
            Some(&self.solution)
        } else if type_id == TypeId::of::<Arc<PricingProblem>>() {
            Some(&self.problem)
        } else {
            None
        }
    }
}
