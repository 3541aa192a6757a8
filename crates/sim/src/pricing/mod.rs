//! Dynamic pricing: sell a fixed stock over a season by posting one price per period.
//!
//! A seller holds `inventory` units to sell over `horizon` periods; each
//! unit sold costs it `cost` (charged per unit sold). In period `t`
//! shoppers arrive as a Poisson stream with mean `λ(t)` ([`ArrivalRate`]),
//! in a mix of segments that may shift over the season; each is an entity
//! with a segment and a willingness to pay ([`Population`]) and wants one
//! unit when its WTP is at least the posted price. Sales are `min(stock, buyers)`. Unsold units are
//! worth `salvage_value` each at the end of the season.
//!
//! As an MDP:
//! - **action**: an index into `price_grid`;
//! - **observation**: `[period, stock, last_sales]` (the period about to be
//!   priced, units left, units sold in the previous period);
//! - **reward**: `(price − cost) · sales`, plus `salvage_value · stock` in the
//!   last period;
//! - **termination**: the season ends (the last period was priced) or stock
//!   runs out (every later reward would be zero). Both are true terminal
//!   states of the MDP, so no episode is ever truncated.
//!
//! By Poisson thinning the buyers in period `t` at price `p` are Poisson with
//! mean `λ(t) · P(wtp ≥ p)` ([`PricingModel::expected_buyers`]), which is what
//! makes the optimal policy exactly computable by dynamic programming.
//!
//! The systems of one period, in order: [`arrive_shoppers`] →
//! [`decide_purchases`] → [`settle_sales`].

pub mod family;

use crate::{
    Shopper, WillingnessToPay, WorldRng,
    arrivals::ArrivalRate,
    config::{ConfigError, at_least, in_range},
    population::{Population, Segment},
};
use bevy_ecs::{prelude::*, schedule::SingleThreadedExecutor};
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ActionSpace, Env, Feature, Info, Observation, ObservationSpace, Step, seed::rng_from_seed,
};

/// Largest season, in periods.
pub const MAX_HORIZON: u32 = 100_000;
/// Largest starting stock.
pub const MAX_INVENTORY: u32 = 1_000_000;
/// Largest `horizon × (inventory + 1)`: the size of the oracle's value table.
pub const MAX_STATES: u64 = 20_000_000;
/// Largest price grid.
pub const MAX_PRICES: usize = 1_000;
/// Largest expected arrivals in one period (all of a period's shoppers are in memory at once).
pub const MAX_ARRIVAL_RATE: f64 = 1_000_000.0;

/// The `[pricing]` table of a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Periods in the season (for example days), ≥ 1.
    pub horizon: u32,
    /// Units in stock at the start of the season, ≥ 1.
    pub inventory: u32,
    /// What each unit cost the seller, charged when it sells, ≥ 0.
    pub cost: f64,
    /// What each unsold unit is worth at the end of the season, ≥ 0.
    pub salvage_value: f64,
    /// The prices the seller may post, strictly increasing and > 0.
    pub price_grid: Vec<f64>,
    /// Expected shoppers per period, `λ(t)`.
    pub arrival_rate: ArrivalRate,
    /// The shopper population, as a mixture of segments.
    pub segments: Vec<Segment>,
}

/// A validated pricing config, with the exact demand model the oracle uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingModel {
    config: PricingConfig,
    population: Population,
}

impl PricingConfig {
    /// Checks every rule, reporting keys relative to the `[pricing]` table.
    pub fn validate(&self) -> Result<PricingModel, ConfigError> {
        in_range("horizon", self.horizon.into(), 1, MAX_HORIZON.into())?;
        in_range("inventory", self.inventory.into(), 1, MAX_INVENTORY.into())?;
        let states = u64::from(self.horizon) * (u64::from(self.inventory) + 1);
        if states > MAX_STATES {
            return Err(ConfigError::new(
                "inventory",
                format!(
                    "horizon × (inventory + 1) = {states} states exceed the limit of {MAX_STATES}"
                ),
            ));
        }
        at_least("cost", self.cost, 0.0)?;
        at_least("salvage_value", self.salvage_value, 0.0)?;
        if self.price_grid.is_empty() {
            return Err(ConfigError::new(
                "price_grid",
                "must list at least one price",
            ));
        }
        if self.price_grid.len() > MAX_PRICES {
            return Err(ConfigError::new(
                "price_grid",
                format!(
                    "must list at most {MAX_PRICES} prices (found {})",
                    self.price_grid.len()
                ),
            ));
        }
        for (i, &p) in self.price_grid.iter().enumerate() {
            crate::config::above(&format!("price_grid[{i}]"), p, 0.0)?;
            if i > 0 && p <= self.price_grid[i - 1] {
                return Err(ConfigError::new(
                    format!("price_grid[{i}]"),
                    format!(
                        "prices must be strictly increasing ({} then {p})",
                        self.price_grid[i - 1]
                    ),
                ));
            }
        }
        self.arrival_rate
            .validate(self.horizon, MAX_ARRIVAL_RATE)
            .map_err(|e| e.within("arrival_rate"))?;
        let population = Population::new(&self.segments)?;
        Ok(PricingModel {
            config: self.clone(),
            population,
        })
    }
}

impl PricingModel {
    /// The validated config.
    pub fn config(&self) -> &PricingConfig {
        &self.config
    }

    /// The shopper population.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// Expected shoppers arriving in period `t`, `λ(t)`.
    pub fn arrival_rate(&self, t: u32) -> f64 {
        self.config.arrival_rate.rate(t, self.config.horizon)
    }

    /// Expected buyers in period `t` at price `price`: `λ(t) · P(wtp ≥ price)`,
    /// with the segment mix of period `t`.
    pub fn expected_buyers(&self, t: u32, price: f64) -> f64 {
        let horizon = self.config.horizon;
        self.arrival_rate(t) * self.population.purchase_probability(price, t, horizon)
    }
}

/// The state of the season: the period being priced, stock left, posted price.
#[derive(Resource, Debug, Clone, Copy)]
pub struct Season {
    /// The period about to be simulated, `0..horizon`.
    pub period: u32,
    /// Periods in the season.
    pub horizon: u32,
    /// Units left.
    pub stock: u32,
    /// The price posted for this period.
    pub price: f64,
}

/// What happened in the last simulated period.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct PeriodOutcome {
    /// Shoppers who arrived.
    pub shoppers: u32,
    /// Shoppers whose WTP was at least the price.
    pub buyers: u32,
    /// Units sold: `min(stock, buyers)`.
    pub sales: u32,
}

/// The demand side of the world: arrival pattern and population.
#[derive(Resource, Debug, Clone)]
pub struct Demand {
    /// `λ(t)`.
    pub arrival_rate: ArrivalRate,
    /// Who arrives.
    pub population: Population,
}

/// This period's shoppers arrive: a Poisson number of them, each with a
/// segment and a WTP drawn from the world's generator.
///
/// Shopper entities are pooled: last period's shoppers left, and their
/// entities are reused for this period's arrivals (surplus ones despawned,
/// missing ones spawned), which saves a spawn and a despawn per shopper.
/// Draws are taken in one sequence from the world's generator; which pooled
/// entity receives which draw follows query order, which cannot change any
/// outcome, since shoppers are exchangeable and only the count of buyers matters.
pub fn arrive_shoppers(
    mut rng: ResMut<WorldRng>,
    demand: Res<Demand>,
    season: Res<Season>,
    mut outcome: ResMut<PeriodOutcome>,
    mut pool: Query<(Entity, &mut Shopper, &mut WillingnessToPay)>,
    mut commands: Commands,
) {
    let rate = demand.arrival_rate.rate(season.period, season.horizon);
    let arrivals = if rate > 0.0 {
        Poisson::new(rate).map_or(0.0, |d| d.sample(&mut rng.0)) as usize
    } else {
        0
    };
    outcome.shoppers = arrivals as u32;
    let mix = demand
        .population
        .cumulative_at(season.period, season.horizon);
    let mut placed = 0;
    pool.iter_mut().for_each(|(entity, mut shopper, mut wtp)| {
        if placed < arrivals {
            let (segment, value) = demand.population.sample(&mix, &mut rng.0);
            shopper.segment = segment;
            wtp.0 = value;
            placed += 1;
        } else {
            commands.entity(entity).despawn();
        }
    });
    if placed < arrivals {
        let population = &demand.population;
        let fresh: Vec<(Shopper, WillingnessToPay)> = (placed..arrivals)
            .map(|_| {
                let (segment, value) = population.sample(&mix, &mut rng.0);
                (Shopper { segment }, WillingnessToPay(value))
            })
            .collect();
        commands.spawn_batch(fresh);
    }
}

/// Each shopper decides: it wants a unit when its WTP is at least the posted price.
pub fn decide_purchases(
    shoppers: Query<&WillingnessToPay, With<Shopper>>,
    season: Res<Season>,
    mut outcome: ResMut<PeriodOutcome>,
) {
    let mut buyers = 0u32;
    shoppers
        .iter()
        .for_each(|wtp| buyers += u32::from(wtp.0 >= season.price));
    outcome.buyers = buyers;
}

/// Sells `min(stock, buyers)` units; which buyers get them does not matter,
/// since all pay the posted price. Shoppers then leave; their entities wait in
/// the pool for the next period's arrivals.
pub fn settle_sales(mut season: ResMut<Season>, mut outcome: ResMut<PeriodOutcome>) {
    outcome.sales = outcome.buyers.min(season.stock);
    season.stock -= outcome.sales;
}

/// The dynamic-pricing scenario as an [`Env`].
pub struct PricingEnv {
    model: PricingModel,
    world: World,
    schedule: Schedule,
    space: ObservationSpace,
    actions: ActionSpace,
    last_sales: u32,
    done: bool,
}

/// Names of the per-step metrics, in [`Step::info`] order.
pub const METRICS: [&str; 5] = ["shoppers", "buyers", "units_sold", "revenue", "salvage"];

impl PricingEnv {
    /// The env's world, for tests that look inside it.
    #[cfg(test)]
    pub(crate) fn world(&self) -> &World {
        &self.world
    }

    /// Builds the world and schedule for a validated model.
    pub fn new(model: PricingModel) -> Self {
        let config = model.config();
        let mut world = World::new();
        world.insert_resource(Demand {
            arrival_rate: config.arrival_rate.clone(),
            population: model.population().clone(),
        });
        world.insert_resource(Season {
            period: 0,
            horizon: config.horizon,
            stock: config.inventory,
            price: config.price_grid[0],
        });
        world.insert_resource(PeriodOutcome::default());
        world.insert_resource(WorldRng(rng_from_seed(0)));
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::default());
        schedule.add_systems((arrive_shoppers, decide_purchases, settle_sales).chain());
        let space = ObservationSpace {
            features: vec![
                // Periods 0 to horizon − 1 are decisions; the observation
                // after the last one reads `horizon` (the season is over).
                Feature::count(
                    "period",
                    config.horizon as f32,
                    (config.horizon + 1).min(50) as usize,
                ),
                Feature::count(
                    "stock",
                    config.inventory as f32,
                    (config.inventory + 1).min(21) as usize,
                ),
                Feature::count("last_sales", config.inventory as f32, 1),
            ],
        };
        let actions =
            ActionSpace::labelled(config.price_grid.iter().map(|p| format!("{p}")).collect());
        Self {
            model,
            world,
            schedule,
            space,
            actions,
            last_sales: 0,
            done: true,
        }
    }

    /// The model this env simulates.
    pub fn model(&self) -> &PricingModel {
        &self.model
    }

    /// The observation of a state: the period, the stock left and the
    /// units sold in the last period, in the order of the observation space.
    pub fn observation(period: u32, stock: u32, last_sales: u32) -> Observation {
        Observation {
            features: vec![period as f32, stock as f32, last_sales as f32],
        }
    }

    /// The period and stock an observation made by
    /// [`observation`](Self::observation) reads.
    pub fn state(obs: &Observation) -> (u32, u32) {
        (obs.features[0] as u32, obs.features[1] as u32)
    }

    fn observe(&self) -> Observation {
        let season = self.world.resource::<Season>();
        Self::observation(season.period, season.stock, self.last_sales)
    }
}

impl Env for PricingEnv {
    crate::ecs::env_spaces!();

    fn reset(&mut self, seed: u64) -> (Observation, Info) {
        self.world.resource_mut::<WorldRng>().0 = rng_from_seed(seed);
        let inventory = self.model.config().inventory;
        let mut season = self.world.resource_mut::<Season>();
        season.period = 0;
        season.stock = inventory;
        self.last_sales = 0;
        self.done = false;
        (self.observe(), vec![0.0; METRICS.len()])
    }

    fn step(&mut self, action: usize) -> Step {
        assert!(!self.done, "step called on a finished episode; call reset");
        let config = self.model.config();
        let price = config.price_grid[action];
        self.world.resource_mut::<Season>().price = price;
        self.schedule.run(&mut self.world);
        // A schedule run by hand (not by a bevy App) must clear the
        // removed-component records of despawned entities itself, or they
        // pile up for as long as the env lives.
        self.world.clear_trackers();
        let outcome = *self.world.resource::<PeriodOutcome>();
        let (cost, salvage_value) = (config.cost, config.salvage_value);
        let mut season = self.world.resource_mut::<Season>();
        season.period += 1;
        let season_over = season.period == season.horizon;
        let salvage = if season_over {
            salvage_value * f64::from(season.stock)
        } else {
            0.0
        };
        let terminated = season_over || season.stock == 0;
        let sales = f64::from(outcome.sales);
        self.last_sales = outcome.sales;
        self.done = terminated;
        Step {
            obs: self.observe(),
            reward: (price - cost) * sales + salvage,
            terminated,
            truncated: false,
            info: vec![
                f64::from(outcome.shoppers),
                f64::from(outcome.buyers),
                sales,
                price * sales,
                salvage,
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::Wtp;
    use shoplab_env::check::check_determinism;

    fn config() -> PricingConfig {
        PricingConfig {
            horizon: 10,
            inventory: 30,
            cost: 0.5,
            salvage_value: 0.1,
            price_grid: vec![1.0, 2.0, 3.0],
            arrival_rate: ArrivalRate::Constant { rate: 5.0 },
            segments: vec![Segment {
                name: String::new(),
                share: 1.0,
                share_end: None,
                wtp: Wtp::Logit {
                    alpha: 2.0,
                    beta: 1.0,
                },
            }],
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let model = config().validate().unwrap();
        let mut a = PricingEnv::new(model.clone());
        let mut b = PricingEnv::new(model);
        check_determinism(&mut a, &mut b, 10, 11, 100).unwrap();
    }

    /// Shoppers despawned when fewer arrive leave no records behind (a
    /// schedule run by hand must clear them each step).
    #[test]
    fn despawned_shoppers_leave_no_records() {
        let mut env = PricingEnv::new(config().validate().unwrap());
        for seed in 0..5 {
            env.reset(seed);
            while !env.step(2).terminated {}
        }
        assert_eq!(env.world().removed::<Shopper>().count(), 0);
        assert_eq!(env.world().removed::<WillingnessToPay>().count(), 0);
    }

    #[test]
    fn stock_is_conserved_and_episode_ends() {
        let mut env = PricingEnv::new(config().validate().unwrap());
        env.reset(5);
        let (mut sold, mut steps) = (0.0, 0);
        loop {
            let s = env.step(0);
            sold += s.info[2];
            steps += 1;
            assert!(s.info[2] <= s.info[1] && s.info[1] <= s.info[0]);
            if s.done() {
                assert!(s.terminated && !s.truncated);
                assert_eq!(sold + f64::from(s.obs.features[1]), 30.0);
                break;
            }
        }
        assert!(steps <= 10);
    }

    #[test]
    fn validation_names_keys() {
        let mut c = config();
        c.price_grid = vec![2.0, 1.0];
        assert_eq!(c.validate().unwrap_err().key, "price_grid[1]");
        let mut c = config();
        c.price_grid.clear();
        assert_eq!(c.validate().unwrap_err().key, "price_grid");
        let mut c = config();
        c.inventory = 0;
        assert_eq!(c.validate().unwrap_err().key, "inventory");
        let mut c = config();
        c.arrival_rate = ArrivalRate::Constant { rate: f64::NAN };
        assert_eq!(c.validate().unwrap_err().key, "arrival_rate.rate");
    }
}
