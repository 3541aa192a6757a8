//! A validated scenario, ready to run: envs, policies and the oracle.
//!
//! [`Prepared::new`] checks every rule of the scenario file, builds one env and
//! every policy once to catch errors in their settings, and solves the oracle,
//! all before any run starts. The scenario family's specifics live here: how to
//! build its env, what its fixed-action baseline means, and what its oracle is.

use crate::scenario::{PolicySpec, Scenario, ScenarioError};
use shoplab_env::{ActionSpace, Env, Observation, ObservationSpace, batch::BatchEnv};
use shoplab_policy::{
    Policy, PolicyError,
    dqn::Dqn,
    epsilon_greedy::EpsilonGreedy,
    fixed::Fixed,
    linucb::LinUcb,
    most_popular::MostPopular,
    myopic_oracle::MyopicOracle,
    paced_bidding::{CreativeRule, PacedBidding, Pacing},
    pricing_oracle::{PricingOracle, PricingProblem, PricingSolution},
    random::UniformRandom,
    tabular_q::TabularQ,
    thompson::Thompson,
    ucb::Ucb1,
};
use shoplab_sim::{
    ads::{AdsEnv, AdsModel},
    config::ConfigError,
    pricing::{PricingEnv, PricingModel},
    recommendation::{RecommendationEnv, RecommendationModel},
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
    /// The env's spaces and metric names, read once from a first env so
    /// building policies and reports needs no further world.
    spaces: (ObservationSpace, ActionSpace, Vec<&'static str>),
}

enum Family {
    Pricing {
        model: PricingModel,
        solution: Arc<PricingSolution>,
    },
    Recommendation {
        model: RecommendationModel,
    },
    Ads {
        model: AdsModel,
    },
}

/// An env of the scenario: one session at a time, or many at once.
pub enum EnvBox {
    /// A Gymnasium-style env (pricing).
    Single(Box<dyn Env>),
    /// A batched env (recommendation).
    Batch(Box<dyn BatchEnv>),
}

impl EnvBox {
    /// The observation space.
    pub fn observation_space(&self) -> &ObservationSpace {
        match self {
            Self::Single(e) => e.observation_space(),
            Self::Batch(e) => e.observation_space(),
        }
    }

    /// The action space.
    pub fn action_space(&self) -> &ActionSpace {
        match self {
            Self::Single(e) => e.action_space(),
            Self::Batch(e) => e.action_space(),
        }
    }

    /// The metric names.
    pub fn metric_names(&self) -> &[&'static str] {
        match self {
            Self::Single(e) => e.metric_names(),
            Self::Batch(e) => e.metric_names(),
        }
    }
}

/// A summary quantity computed from two summed metrics: `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Column name.
    pub name: &'static str,
    /// Metric summed above the line.
    pub numerator: &'static str,
    /// Metric summed below the line.
    pub denominator: &'static str,
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
    pub rows: Vec<f64>,
    /// Column values.
    pub cols: Vec<f64>,
    /// The value of the greedy action (a price) in each cell.
    pub values: Vec<Vec<f64>>,
}

/// A paced bidder for the ads scenario `model`.
fn paced(
    model: &AdsModel,
    pacing: Pacing,
    creative: CreativeRule,
    space: &ObservationSpace,
    seed: u64,
) -> Result<Box<dyn Policy>, PolicyError> {
    let c = model.config();
    Ok(Box::new(PacedBidding::new(
        pacing,
        creative,
        &c.bid_multipliers,
        c.n_creatives as usize,
        space,
        seed,
    )?))
}

/// A settings error of a nested table, its key prefixed with the table's name.
fn prefixed(table: &str, e: PolicyError) -> PolicyError {
    match e {
        PolicyError::Invalid { key, rule } if key.is_empty() => PolicyError::invalid(table, rule),
        PolicyError::Invalid { key, rule } => PolicyError::invalid(format!("{table}.{key}"), rule),
        other => other,
    }
}

/// The learned pacing rule of `control` (`"level"` or `"step"`), with a
/// learner built by `learner` over a space and a number of actions.
fn learned_pacing(
    model: &AdsModel,
    control: &str,
    decide_every: u32,
    space: &ObservationSpace,
    learner: impl Fn(&ObservationSpace, usize) -> Result<Box<dyn Policy>, PolicyError>,
) -> Result<Pacing, PolicyError> {
    let grid = &model.config().bid_multipliers;
    match control {
        "level" => {
            if decide_every == 0 || decide_every > model.config().periods {
                return Err(PolicyError::invalid(
                    "decide_every",
                    format!(
                        "must be between 1 and the {} periods (found {decide_every})",
                        model.config().periods
                    ),
                ));
            }
            Ok(Pacing::Learned {
                q: learner(space, grid.len())?,
                every: decide_every as usize,
                held: None,
            })
        }
        "step" => {
            let extended = PacedBidding::stepped_space(space, grid.len());
            let start = PacedBidding::nearest(grid, 1.0);
            Ok(Pacing::Stepped {
                q: learner(&extended, 3)?,
                start,
                current: start,
                last: (start, 1),
            })
        }
        other => Err(PolicyError::invalid(
            "control",
            format!("must be \"step\" or \"level\" (found {other:?})"),
        )),
    }
}

/// Validates a `[pricing]` table and solves its oracle.
fn pricing_family(config: &shoplab_sim::pricing::PricingConfig) -> Result<Family, ConfigError> {
    let model = config.validate().map_err(|e| e.within("pricing"))?;
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
        return Err(ConfigError::new(
            "pricing.inventory",
            format!(
                "the exact oracle would take about {work:.1e} steps (limit {MAX_ORACLE_WORK:.0e}): \
                 use a smaller horizon, inventory, price grid or arrival rate"
            ),
        ));
    }
    Ok(Family::Pricing {
        model,
        solution: Arc::new(problem.solve()),
    })
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
    pub fn new(mut scenario: Scenario, source: &Path) -> Result<Self, ScenarioError> {
        let invalid = |e: ConfigError| ScenarioError::invalid(source, e);
        scenario.validate_common().map_err(invalid)?;
        let tables = [
            scenario.pricing.is_some(),
            scenario.recommendation.is_some(),
            scenario.ads.is_some(),
        ];
        if tables.iter().filter(|&&t| t).count() > 1 {
            return Err(invalid(ConfigError::new(
                "pricing",
                "a scenario has one family table: [pricing], [recommendation] or [ads], not several",
            )));
        }
        let family = match (
            &scenario.pricing,
            &mut scenario.recommendation,
            &scenario.ads,
        ) {
            (_, _, Some(config)) => Family::Ads {
                model: config.validate().map_err(|e| invalid(e.within("ads")))?,
            },
            (Some(config), None, None) => pricing_family(config).map_err(invalid)?,
            (None, Some(config), None) => {
                let base = source.parent().unwrap_or(Path::new("."));
                let model = config
                    .validate(base)
                    .map_err(|e| invalid(e.within("recommendation")))?;
                // Record where the catalog came from as an absolute path, so the
                // resolved scenario reads the same file from anywhere.
                if let Some(path) = &mut config.catalog.path {
                    *path = std::fs::canonicalize(base.join(&*path)).unwrap_or(base.join(&*path));
                }
                Family::Recommendation { model }
            }
            _ => {
                return Err(invalid(ConfigError::new(
                    "pricing",
                    "the scenario needs a family table: [pricing], [recommendation] or [ads]",
                )));
            }
        };
        let mut prepared = Self {
            names: scenario.policy_names(),
            source: source.to_path_buf(),
            family,
            scenario,
            spaces: (
                ObservationSpace { features: vec![] },
                ActionSpace::labelled(vec![]),
                vec![],
            ),
        };
        let env = prepared.make_env();
        prepared.spaces = (
            env.observation_space().clone(),
            env.action_space().clone(),
            env.metric_names().to_vec(),
        );
        for index in 0..prepared.scenario.policies.len() {
            prepared.make_policy(index, 0).map_err(|e| {
                let (key, rule) = match e {
                    PolicyError::Invalid { key, rule } if key.is_empty() => (String::new(), rule),
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

    /// Names of the env's per-step metrics.
    pub fn metric_names(&self) -> &[&'static str] {
        &self.spaces.2
    }

    /// The scenario family's name.
    pub fn family_name(&self) -> &'static str {
        match self.family {
            Family::Pricing { .. } => "pricing",
            Family::Recommendation { .. } => "recommendation",
            Family::Ads { .. } => "ads",
        }
    }

    /// Steps in a batch episode, for batched scenarios.
    pub fn episode_ticks(&self) -> Option<u32> {
        match &self.family {
            Family::Pricing { .. } | Family::Ads { .. } => None,
            Family::Recommendation { model } => Some(model.config().ticks),
        }
    }

    /// What an episode's return measures, for reports.
    pub fn return_label(&self) -> &'static str {
        match self.family {
            Family::Pricing { .. } => "return per episode (season profit)",
            Family::Recommendation { .. } => "reward per session",
            Family::Ads { .. } => "reward per day",
        }
    }

    /// Summary ratios of summed metrics.
    pub fn ratios(&self) -> &'static [Ratio] {
        const RECOMMENDATION: [Ratio; 4] = [
            Ratio {
                name: "ctr",
                numerator: "clicks",
                denominator: "steps",
            },
            Ratio {
                name: "purchases_per_session",
                numerator: "purchases",
                denominator: "sessions_ended",
            },
            Ratio {
                name: "revenue_per_session",
                numerator: "revenue",
                denominator: "sessions_ended",
            },
            Ratio {
                name: "session_length",
                numerator: "steps",
                denominator: "sessions_ended",
            },
        ];
        const PRICING: [Ratio; 1] = [Ratio {
            name: "mean_price_paid",
            numerator: "revenue",
            denominator: "units_sold",
        }];
        const ADS: [Ratio; 3] = [
            Ratio {
                name: "win_rate",
                numerator: "wins",
                denominator: "opportunities",
            },
            Ratio {
                name: "cost_per_click",
                numerator: "spend",
                denominator: "clicks",
            },
            Ratio {
                name: "best_creative_share",
                numerator: "best_creative_impressions",
                denominator: "wins",
            },
        ];
        match self.family {
            Family::Pricing { .. } => &PRICING,
            Family::Recommendation { .. } => &RECOMMENDATION,
            Family::Ads { .. } => &ADS,
        }
    }

    /// A fresh env of the scenario.
    pub fn make_env(&self) -> EnvBox {
        match &self.family {
            Family::Pricing { model, .. } => {
                EnvBox::Single(Box::new(PricingEnv::new(model.clone())))
            }
            Family::Recommendation { model } => {
                EnvBox::Batch(Box::new(RecommendationEnv::new(model.clone())))
            }
            Family::Ads { model } => EnvBox::Single(Box::new(AdsEnv::new(model.clone()))),
        }
    }

    /// Builds policy `index` of the list, seeded with `seed`.
    pub fn make_policy(&self, index: usize, seed: u64) -> Result<Box<dyn Policy>, PolicyError> {
        let (space, actions, _) = &self.spaces;
        let n = actions.n();
        let only = |family: &str, instead: &str| {
            PolicyError::invalid(
                "",
                format!(
                    "kind `{}` is only available in {family} scenarios, not {}{instead}",
                    self.scenario.policies[index].base_name(),
                    self.family_name()
                ),
            )
        };
        Ok(match (&self.scenario.policies[index], &self.family) {
            (PolicySpec::Fixed { price }, Family::Pricing { model, .. }) => {
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
            (PolicySpec::Fixed { .. }, _) => return Err(only("pricing", "")),
            (
                PolicySpec::FixedMultiplier {
                    multiplier,
                    creative,
                },
                Family::Ads { model },
            ) => {
                let grid = &model.config().bid_multipliers;
                let index = grid
                    .iter()
                    .position(|m| (m - multiplier).abs() <= 1e-9 * m.abs().max(1.0))
                    .ok_or_else(|| {
                        PolicyError::invalid(
                            "multiplier",
                            format!(
                                "must be one of the bid multipliers {grid:?} (found {multiplier})"
                            ),
                        )
                    })?;
                paced(model, Pacing::Fixed(index), *creative, space, seed)?
            }
            (PolicySpec::Greedy { creative }, Family::Ads { model }) => {
                let truthful = PacedBidding::nearest(&model.config().bid_multipliers, 1.0);
                paced(model, Pacing::Fixed(truthful), *creative, space, seed)?
            }
            (PolicySpec::EvenPacing { creative }, Family::Ads { model }) => {
                let truthful = PacedBidding::nearest(&model.config().bid_multipliers, 1.0);
                paced(model, Pacing::Even { truthful }, *creative, space, seed)?
            }
            (
                PolicySpec::Pid {
                    kp,
                    ki,
                    kd,
                    start_multiplier,
                    creative,
                },
                Family::Ads { model },
            ) => {
                for (key, v) in [("kp", kp), ("ki", ki), ("kd", kd)] {
                    if !v.is_finite() {
                        return Err(PolicyError::invalid(
                            key,
                            format!("must be finite (found {v})"),
                        ));
                    }
                }
                if !(*start_multiplier > 0.0 && start_multiplier.is_finite()) {
                    return Err(PolicyError::invalid(
                        "start_multiplier",
                        format!("must be a finite number > 0 (found {start_multiplier})"),
                    ));
                }
                let start =
                    PacedBidding::nearest(&model.config().bid_multipliers, *start_multiplier);
                let pid = Pacing::Pid {
                    kp: *kp,
                    ki: *ki,
                    kd: *kd,
                    start,
                    integral: 0.0,
                    previous: 0.0,
                };
                paced(model, pid, *creative, space, seed)?
            }
            (
                PolicySpec::QPacing {
                    control,
                    decide_every,
                    q,
                    creative,
                },
                Family::Ads { model },
            ) => {
                let learner = |space: &ObservationSpace, n: usize| {
                    TabularQ::new(q.clone(), space, n, seed)
                        .map(|l| Box::new(l) as Box<dyn Policy>)
                        .map_err(|e| prefixed("q", e))
                };
                let pacing = learned_pacing(model, control, *decide_every, space, learner)?;
                paced(model, pacing, *creative, space, seed)?
            }
            (
                PolicySpec::DqnPacing {
                    control,
                    decide_every,
                    dqn,
                    creative,
                },
                Family::Ads { model },
            ) => {
                let learner = |space: &ObservationSpace, n: usize| {
                    Dqn::new(dqn.clone(), space, n, seed)
                        .map(|l| Box::new(l) as Box<dyn Policy>)
                        .map_err(|e| prefixed("dqn", e))
                };
                let pacing = learned_pacing(model, control, *decide_every, space, learner)?;
                paced(model, pacing, *creative, space, seed)?
            }
            (
                PolicySpec::Greedy { .. }
                | PolicySpec::EvenPacing { .. }
                | PolicySpec::Pid { .. }
                | PolicySpec::QPacing { .. }
                | PolicySpec::DqnPacing { .. },
                _,
            ) => return Err(only("ads", "")),
            (PolicySpec::FixedMultiplier { .. }, _) => return Err(only("ads", "")),
            (PolicySpec::Random {}, _) => Box::new(UniformRandom::new(n, seed)),
            (PolicySpec::EpsilonGreedy(c), _) => Box::new(EpsilonGreedy::new(*c, n, seed)?),
            (PolicySpec::Ucb1(c), _) => Box::new(Ucb1::new(*c, n)?),
            (PolicySpec::QLearning(c), Family::Recommendation { .. }) if c.monte_carlo => {
                return Err(PolicyError::invalid(
                    "monte_carlo",
                    "Monte Carlo control needs one session at a time; recommendation steps many \
                     sessions together, interleaving their transitions",
                ));
            }
            (PolicySpec::QLearning(c), _) => Box::new(TabularQ::new(c.clone(), space, n, seed)?),
            (PolicySpec::Dqn(c), _) => Box::new(Dqn::new(c.clone(), space, n, seed)?),
            (PolicySpec::MostPopular {}, _) => Box::new(MostPopular::new(n)),
            (PolicySpec::LinUcb(c), _) => Box::new(LinUcb::new(c, space, actions)?),
            (PolicySpec::Thompson {}, Family::Recommendation { .. }) => {
                Box::new(Thompson::new(n, seed))
            }
            (PolicySpec::Thompson {}, _) => {
                return Err(only(
                    "recommendation",
                    " (its Beta–Bernoulli model needs click or purchase rewards)",
                ));
            }
            (PolicySpec::Oracle {}, Family::Pricing { solution, model }) => Box::new(
                PricingOracle::from_solution(Arc::clone(solution), model.config().horizon, space)?,
            ),
            (PolicySpec::Oracle {}, _) => {
                return Err(only("pricing", " (use `myopic_oracle`)"));
            }
            (PolicySpec::MyopicOracle {}, Family::Recommendation { .. }) => {
                Box::new(MyopicOracle::new())
            }
            (PolicySpec::MyopicOracle {}, _) => {
                return Err(only("recommendation", " (use `oracle`, the exact optimum)"));
            }
        })
    }

    /// The optimal expected return of an episode, where the scenario has one.
    pub fn optimal_value(&self) -> Option<f64> {
        match &self.family {
            Family::Pricing { solution, .. } => Some(solution.optimal_value()),
            Family::Recommendation { .. } | Family::Ads { .. } => None,
        }
    }

    /// The greedy action of `policy` over a grid of states, as action
    /// values, for scenarios whose state fits a chart.
    pub fn greedy_table(&self, policy: &dyn Policy) -> Option<GreedyTable> {
        match &self.family {
            Family::Recommendation { .. } => None,
            Family::Ads { model } => {
                let c = model.config();
                let (budget, periods) = (c.budget, f64::from(c.periods));
                let rows: Vec<f64> = grid(c.periods - 1, TABLE_CELLS)
                    .into_iter()
                    .map(f64::from)
                    .collect();
                let cols: Vec<f64> = (-10..=10).map(|i| f64::from(i) / 20.0).collect();
                let n_creatives = c.n_creatives as usize;
                let values = rows
                    .iter()
                    .map(|&t| {
                        cols.iter()
                            .map(|&pace| {
                                let left =
                                    ((pace + (periods - t) / periods) * budget).clamp(0.0, budget);
                                let obs = Observation {
                                    features: vec![
                                        t as f32,
                                        left as f32,
                                        (budget - left) as f32,
                                        0.0,
                                        0.0,
                                        0.0,
                                        0.0,
                                        0.0,
                                        pace as f32,
                                    ],
                                };
                                c.bid_multipliers[policy.greedy(&obs) / n_creatives]
                            })
                            .collect()
                    })
                    .collect();
                Some(GreedyTable {
                    row_name: "period",
                    col_name: "pace",
                    value_name: "bid multiplier",
                    rows,
                    cols,
                    values,
                })
            }
            Family::Pricing { model, .. } => {
                let c = model.config();
                let rows: Vec<f64> = grid(c.horizon - 1, TABLE_CELLS)
                    .into_iter()
                    .map(f64::from)
                    .collect();
                let cols: Vec<f64> = grid(c.inventory - 1, TABLE_CELLS)
                    .into_iter()
                    .map(|s| f64::from(s + 1))
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
                Some(GreedyTable {
                    row_name: "period",
                    col_name: "stock",
                    value_name: "price",
                    rows,
                    cols,
                    values,
                })
            }
        }
    }
}
