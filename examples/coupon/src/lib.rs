//! shoplab as a library: a new scenario family and a new policy, added from
//! this crate without editing shoplab's.
//!
//! - [`CouponFamily`] (`[coupon]` in scenario files): a day of `shoppers`
//!   arrivals, one at a time; each shopper belongs to a segment that the shop
//!   sees, and the shop offers a discount from `discounts`. A shopper of
//!   segment `s` offered discount `d` buys with probability
//!   `σ(base[s] + sensitivity[s] · d)` and the sale earns
//!   `price · (1 − d) − cost`. The best discount per segment is known, so the
//!   family reports the exact optimum of a day as its reference.
//! - [`SegmentGreedyKind`] (`kind = "segment_epsilon_greedy"`): ε-greedy
//!   with one table of mean rewards per segment, for any family whose
//!   observation has a `segment` feature.
//!
//! [`registry`] adds both to shoplab's default registry: that is all it
//! takes for scenario files to name them.
#![deny(missing_docs)]

use rand::RngExt;
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ActionSpace, Env, EnvBox, Family, FamilyKind, Feature, Info, Observation, ObservationSpace,
    Step,
    config::{ConfigError, above, at_least, cumulative_shares, in_range, pick},
    cost::EpisodeCost,
    family::Ratio,
    seed::{SimRng, derive_seed, rng_from_seed},
};
use shoplab_harness::registry::Registry;
use shoplab_policy::{
    Policy, PolicyError, Transition, argmax,
    registry::{BuildContext, Built, PolicyKind},
};
use std::{path::Path, sync::Arc};

/// shoplab's registry with the coupon family and the per-segment policy added.
pub fn registry() -> Registry {
    Registry::default()
        .with_family(CouponFamily)
        .with_policy(SegmentGreedyKind)
}

/// One shopper segment of the `[coupon]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponSegment {
    /// Share of shoppers, in `[0, 1]`; shares sum to 1.
    pub share: f64,
    /// Purchase log-odds without a discount.
    pub base: f64,
    /// Added log-odds per unit of discount (a discount of 0.2 adds `0.2 · sensitivity`).
    pub sensitivity: f64,
}

/// The `[coupon]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponConfig {
    /// Shoppers in a day (steps in an episode).
    pub shoppers: u32,
    /// List price.
    pub price: f64,
    /// Cost of a unit sold.
    pub cost: f64,
    /// Discounts the shop may offer, as shares of the price in `[0, 1)`.
    pub discounts: Vec<f64>,
    /// The shopper segments.
    pub segments: Vec<CouponSegment>,
}

/// Names of the per-step metrics.
pub const METRICS: [&str; 3] = ["shoppers", "purchases", "revenue"];

impl CouponConfig {
    /// `P(buy | segment, discount index)`.
    fn buy_probability(&self, segment: usize, discount: usize) -> f64 {
        let s = &self.segments[segment];
        1.0 / (1.0 + (-(s.base + s.sensitivity * self.discounts[discount])).exp())
    }

    /// Expected reward of offering discount `d` to a shopper of `segment`.
    pub fn expected_reward(&self, segment: usize, d: usize) -> f64 {
        self.buy_probability(segment, d) * (self.price * (1.0 - self.discounts[d]) - self.cost)
    }

    /// The optimal expected reward of a day: the best discount for every
    /// segment, weighted by the shares, times the shoppers.
    pub fn optimal_value(&self) -> f64 {
        let per_shopper: f64 = (0..self.segments.len())
            .map(|s| {
                let best = (0..self.discounts.len())
                    .map(|d| self.expected_reward(s, d))
                    .fold(f64::NEG_INFINITY, f64::max);
                self.segments[s].share * best
            })
            .sum();
        f64::from(self.shoppers) * per_shopper
    }

    /// Checks every rule; returns the segments' cumulative shares, which
    /// arrivals are drawn from.
    fn validate(&self) -> Result<Vec<f64>, ConfigError> {
        in_range("shoppers", self.shoppers.into(), 1, 100_000)?;
        above("price", self.price, 0.0)?;
        at_least("cost", self.cost, 0.0)?;
        if self.discounts.is_empty() || self.discounts.len() > 100 {
            return Err(ConfigError::new(
                "discounts",
                "must list 1 to 100 discounts",
            ));
        }
        for (i, &d) in self.discounts.iter().enumerate() {
            if !(0.0..1.0).contains(&d) {
                return Err(ConfigError::new(
                    format!("discounts[{i}]"),
                    format!("must be in [0, 1) (found {d})"),
                ));
            }
        }
        if self.segments.len() > 16 {
            return Err(ConfigError::new("segments", "must list 1 to 16 segments"));
        }
        for (i, s) in self.segments.iter().enumerate() {
            for (key, v) in [("base", s.base), ("sensitivity", s.sensitivity)] {
                if !v.is_finite() || v.abs() > 50.0 {
                    return Err(ConfigError::new(
                        format!("segments[{i}].{key}"),
                        format!("must be finite and within ±50 (found {v})"),
                    ));
                }
            }
        }
        let shares: Vec<f64> = self.segments.iter().map(|s| s.share).collect();
        cumulative_shares(&shares)
    }
}

/// The coupon day as an [`Env`]: one shopper per step.
pub struct CouponEnv {
    config: Arc<CouponConfig>,
    /// The segments' cumulative shares.
    cumulative: Arc<[f64]>,
    space: ObservationSpace,
    actions: ActionSpace,
    rng: SimRng,
    step: u32,
    segment: usize,
}

impl CouponEnv {
    /// A fresh env of a validated config.
    /// `cumulative` holds the segments' cumulative shares, from validation.
    pub fn new(config: Arc<CouponConfig>, cumulative: Arc<[f64]>) -> Self {
        let segments = config.segments.len();
        let space = ObservationSpace {
            features: vec![
                Feature {
                    name: "segment",
                    low: 0.0,
                    high: (segments - 1) as f32,
                    integer: true,
                    suggested_bins: segments,
                },
                Feature {
                    name: "shopper",
                    low: 0.0,
                    high: config.shoppers as f32,
                    integer: true,
                    suggested_bins: 1,
                },
            ],
        };
        let actions = ActionSpace::labelled(
            config
                .discounts
                .iter()
                .map(|d| format!("{}% off", d * 100.0))
                .collect(),
        );
        Self {
            config,
            cumulative,
            space,
            actions,
            rng: rng_from_seed(0),
            step: 0,
            segment: 0,
        }
    }

    /// Draws the next shopper's segment.
    fn arrive(&mut self) {
        self.segment = pick(&self.cumulative, self.rng.random());
    }

    fn observe(&self) -> Observation {
        Observation {
            features: vec![self.segment as f32, self.step as f32],
        }
    }
}

impl Env for CouponEnv {
    fn observation_space(&self) -> &ObservationSpace {
        &self.space
    }

    fn action_space(&self) -> &ActionSpace {
        &self.actions
    }

    fn metric_names(&self) -> &[&'static str] {
        &METRICS
    }

    fn reset(&mut self, seed: u64) -> (Observation, Info) {
        self.rng = rng_from_seed(seed);
        self.step = 0;
        self.arrive();
        (self.observe(), vec![0.0; METRICS.len()])
    }

    fn step(&mut self, action: usize) -> Step {
        let c = Arc::clone(&self.config);
        let bought = self
            .rng
            .random_bool(c.buy_probability(self.segment, action));
        let revenue = if bought {
            c.price * (1.0 - c.discounts[action])
        } else {
            0.0
        };
        let reward = if bought { revenue - c.cost } else { 0.0 };
        self.step += 1;
        let terminated = self.step == c.shoppers;
        if !terminated {
            self.arrive();
        }
        Step {
            obs: self.observe(),
            reward,
            terminated,
            truncated: false,
            info: vec![1.0, f64::from(u8::from(bought)), revenue],
        }
    }
}

/// The `[coupon]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct CouponFamily;

/// A validated coupon scenario.
pub struct Coupon {
    config: Arc<CouponConfig>,
    cumulative: Arc<[f64]>,
}

impl FamilyKind for CouponFamily {
    type Config = CouponConfig;

    fn name(&self) -> &'static str {
        "coupon"
    }

    fn prepare(&self, config: &mut CouponConfig, _: &Path) -> Result<Arc<dyn Family>, ConfigError> {
        let cumulative = config.validate()?;
        Ok(Arc::new(Coupon {
            cumulative: cumulative.into(),
            config: Arc::new(config.clone()),
        }))
    }
}

impl Family for Coupon {
    fn name(&self) -> &'static str {
        "coupon"
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Single(Box::new(CouponEnv::new(
            Arc::clone(&self.config),
            Arc::clone(&self.cumulative),
        )))
    }

    fn return_label(&self) -> &'static str {
        "profit per day"
    }

    /// One decision per shopper of the day, each a single draw.
    fn episode_cost(&self) -> EpisodeCost {
        EpisodeCost {
            decisions: f64::from(self.config.shoppers),
            env_work: 20.0,
            env_bytes: 4096.0,
            setup_bytes: 64.0 * self.config.segments.len() as f64,
        }
    }

    fn ratios(&self) -> Vec<Ratio> {
        vec![
            Ratio::of(&METRICS, "conversion_rate", "purchases", "shoppers"),
            Ratio::of(&METRICS, "revenue_per_sale", "revenue", "purchases"),
        ]
    }

    fn optimal_value(&self) -> Option<f64> {
        Some(self.config.optimal_value())
    }
}

/// Settings of `kind = "segment_epsilon_greedy"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentGreedyConfig {
    /// Probability of a uniformly random action.
    pub epsilon: f64,
}

impl Default for SegmentGreedyConfig {
    fn default() -> Self {
        Self { epsilon: 0.1 }
    }
}

/// ε-greedy with one table of sample-mean rewards per segment.
#[derive(Debug)]
pub struct SegmentGreedy {
    epsilon: f64,
    segment: usize,
    /// `(count, mean)` per segment × action.
    stats: Vec<Vec<(f64, f64)>>,
    rng: SimRng,
}

impl SegmentGreedy {
    fn row(&self, obs: &Observation) -> usize {
        (obs.features[self.segment].max(0.0) as usize).min(self.stats.len() - 1)
    }
}

impl Policy for SegmentGreedy {
    fn act(&mut self, obs: &Observation) -> usize {
        let n = self.stats[0].len();
        if self.rng.random_bool(self.epsilon) {
            self.rng.random_range(0..n)
        } else {
            self.greedy(obs)
        }
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let means: Vec<f64> = self.stats[self.row(obs)].iter().map(|s| s.1).collect();
        argmax(&means)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        let row = self.row(t.obs);
        let (count, mean) = &mut self.stats[row][t.action];
        *count += 1.0;
        *mean += (t.reward - *mean) / *count;
    }
}

/// `kind = "segment_epsilon_greedy"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentGreedyKind;

impl PolicyKind for SegmentGreedyKind {
    type Config = SegmentGreedyConfig;

    fn kind(&self) -> &'static str {
        "segment_epsilon_greedy"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn build(&self, config: &SegmentGreedyConfig, cx: &BuildContext<'_>) -> Built {
        if !(0.0..=1.0).contains(&config.epsilon) {
            return Err(PolicyError::invalid(
                "epsilon",
                format!("must be a probability in [0, 1] (found {})", config.epsilon),
            ));
        }
        let segment = cx
            .observation_space
            .index_of("segment")
            .ok_or(PolicyError::MissingFeature("segment"))?;
        let feature = &cx.observation_space.features[segment];
        let rows = (feature.high - feature.low) as usize + 1;
        Ok(Box::new(SegmentGreedy {
            epsilon: config.epsilon,
            segment,
            stats: vec![vec![(0.0, 0.0); cx.action_space.n()]; rows],
            rng: rng_from_seed(derive_seed(cx.seed, "segment-greedy", 0)),
        }))
    }
}

/// Runs the scenario file `file` with [`registry`] and writes its run folder
/// under `results`; returns the folder.
pub fn run(file: &Path, results: &Path) -> anyhow::Result<std::path::PathBuf> {
    let prepared = shoplab_harness::load(file, &registry())?;
    let finished = shoplab_harness::execute(&prepared, results, &|_| {})?;
    Ok(finished.dir)
}
