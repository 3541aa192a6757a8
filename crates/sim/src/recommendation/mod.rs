//! Personalised recommendation: many shoppers in session at once, each shown
//! a slate of items per step.
//!
//! The parts, after RecSim's decomposition:
//! - **catalog** ([`Catalog`]): items with a unit feature vector, a topic, a
//!   price, a quality score and a clickbait appeal;
//! - **shoppers**: ECS entities with a preference vector (drawn around their
//!   segment's favourite topic), a price sensitivity, a patience budget,
//!   per-topic fatigue, the last `history_len` items they clicked, and their
//!   own random number generator, seeded from the episode seed, the slot and
//!   the session count, so no draw depends on query order;
//! - **choice model** ([`choice_probabilities`]): a multinomial logit over the
//!   slate and a no-click option, with utility
//!   `U_i = pref · x_i + quality_i + clickbait_i − β·price_i − fatigue[topic_i]`
//!   and `P(i) = e^{U_i/τ} / (e^{u_0/τ} + Σ_j e^{U_j/τ})`;
//! - **response and dynamics**: a click becomes a purchase with probability
//!   `σ(purchase_alpha − β·price)`; preferences drift toward the clicked item
//!   (`pref ← ‖pref‖·normalise((1−η)·pref/‖pref‖ + η·x_i)`); fatigue decays by
//!   `fatigue_decay` each step and rises by `fatigue_rise` for each shown
//!   item's topic; patience falls by `no_click_cost` without a click, and by
//!   `click_cost + clickbait_cost·[clickbait] + mismatch_cost·(1 − cos(pref, x_i))`
//!   after a click; the session ends when patience is spent or with
//!   probability `leave_probability` per step, and a new shopper takes the slot;
//! - **reward** ([`RewardKind`]): ±1 per click, clicks, or revenue.
//!
//! The systems of one step, in order: [`choose_items`] → [`evolve_shoppers`]
//! → [`replace_finished`]. A batch episode is `ticks` steps; sessions still
//! running at its end are truncated.

pub mod family;

use crate::{
    Shopper,
    catalog::{Catalog, GeneratedCatalog, near, normalise},
    config::{ConfigError, above, at_least, in_range, probability},
};
use bevy_ecs::{prelude::*, schedule::SingleThreadedExecutor};
use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
use serde::{Deserialize, Serialize};
use shoplab_env::{
    ActionSpace, Feature, Info, Observation, ObservationSpace,
    batch::{BatchEnv, BatchStep},
    seed::{derive_seed, rng_from_seed},
};
use std::{path::PathBuf, sync::Arc};

/// Longest click history kept per shopper.
pub const MAX_HISTORY: usize = 8;
/// Largest slate.
pub const MAX_SLATE: u32 = 32;
/// Most concurrent sessions.
pub const MAX_SESSIONS: u32 = 1_000_000;
/// Session steps observed exactly; later steps read as this value.
pub const STEP_CAP: u32 = 100;

const HISTORY_NAMES: [&str; MAX_HISTORY] = [
    "history_1",
    "history_2",
    "history_3",
    "history_4",
    "history_5",
    "history_6",
    "history_7",
    "history_8",
];

/// What the scenario rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// The textbook signal: +1 for a click, −1 otherwise.
    SignedClick,
    /// 1 for a click, 0 otherwise.
    Click,
    /// The price of a purchased item, 0 otherwise.
    Revenue,
}

/// The multinomial-logit choice settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChoiceConfig {
    /// Temperature τ of the logit, > 0: higher is more random.
    pub temperature: f64,
    /// Utility `u_0` of not clicking.
    pub no_click_utility: f64,
    /// Base utility of buying a clicked item; `P(buy) = σ(purchase_alpha − β·price)`.
    pub purchase_alpha: f64,
}

impl Default for ChoiceConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            no_click_utility: 0.0,
            purchase_alpha: 1.0,
        }
    }
}

/// How shoppers' states evolve within a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicsConfig {
    /// Interest drift η toward a clicked item, in `[0, 1]`.
    pub interest_drift: f64,
    /// Fatigue added to a topic each time one of its items is shown, ≥ 0.
    pub fatigue_rise: f64,
    /// Share of fatigue kept from one step to the next, in `[0, 1]`.
    pub fatigue_decay: f64,
    /// Patience lost on a step without a click, ≥ 0.
    pub no_click_cost: f64,
    /// Patience lost on every click, ≥ 0.
    pub click_cost: f64,
    /// Extra patience lost when the clicked item is clickbait, ≥ 0.
    pub clickbait_cost: f64,
    /// Patience lost per unit of mismatch `1 − cos(pref, x)` of a clicked item, ≥ 0.
    pub mismatch_cost: f64,
    /// Probability of leaving after any step, in `[0, 1]`.
    pub leave_probability: f64,
}

impl Default for DynamicsConfig {
    fn default() -> Self {
        Self {
            interest_drift: 0.1,
            fatigue_rise: 0.2,
            fatigue_decay: 0.8,
            no_click_cost: 1.0,
            click_cost: 0.2,
            clickbait_cost: 2.0,
            mismatch_cost: 1.0,
            leave_probability: 0.02,
        }
    }
}

/// One segment of the shopper population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopperSegment {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Share of new shoppers from this segment, in `[0, 1]`; shares sum to 1.
    pub share: f64,
    /// The segment's favourite topic; a random topic per shopper when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<u32>,
    /// Spread of a shopper's preference direction around the topic centre, ≥ 0.
    #[serde(default = "default_spread")]
    pub preference_spread: f64,
    /// Length of the preference vector: how much taste matters, ≥ 0.
    #[serde(default = "default_strength")]
    pub preference_strength: f64,
    /// Price sensitivity β: utility lost per currency unit, ≥ 0.
    #[serde(default = "default_sensitivity")]
    pub price_sensitivity: f64,
    /// Patience budget at the start of a session, > 0.
    #[serde(default = "default_patience")]
    pub patience: f64,
}

fn default_spread() -> f64 {
    0.3
}
fn default_strength() -> f64 {
    2.0
}
fn default_sensitivity() -> f64 {
    0.5
}
fn default_patience() -> f64 {
    5.0
}

/// Where the catalog comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Seed of a generated catalog: the same seed, the same items in every run.
    #[serde(default = "default_catalog_seed")]
    pub seed: u64,
    /// A CSV file of items instead of a generated catalog (relative to the
    /// scenario file); see [`Catalog::from_csv`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// How a generated catalog looks.
    #[serde(flatten)]
    pub generated: GeneratedCatalog,
}

fn default_catalog_seed() -> u64 {
    1
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            seed: default_catalog_seed(),
            path: None,
            generated: GeneratedCatalog::default(),
        }
    }
}

/// The `[recommendation]` table of a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationConfig {
    /// Items in the catalog (ignored when the catalog is read from a file).
    pub n_items: u32,
    /// Dimension of item features and shopper preferences.
    pub dim: u32,
    /// Topics the items fall into.
    #[serde(default = "default_topics")]
    pub n_topics: u32,
    /// Items recommended per step.
    #[serde(default = "one")]
    pub slate_size: u32,
    /// Clicked items a shopper's observation remembers, `0..=8`.
    #[serde(default = "default_history")]
    pub history_len: u32,
    /// Shoppers in session at once, stepped together.
    pub concurrent_sessions: u32,
    /// Steps in one batch episode.
    pub ticks: u32,
    /// What the scenario rewards.
    pub reward: RewardKind,
    /// The choice model.
    #[serde(default)]
    pub choice: ChoiceConfig,
    /// Session dynamics.
    #[serde(default)]
    pub dynamics: DynamicsConfig,
    /// The catalog.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// The shopper population.
    pub segments: Vec<ShopperSegment>,
}

fn default_topics() -> u32 {
    10
}
fn one() -> u32 {
    1
}
fn default_history() -> u32 {
    3
}

/// A validated recommendation config with its catalog built.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendationModel {
    config: RecommendationConfig,
    catalog: Arc<Catalog>,
    cumulative_shares: Vec<f64>,
}

impl RecommendationConfig {
    /// Checks every rule and builds the catalog; `base` is the folder that a
    /// relative catalog path is read from. Keys are relative to `[recommendation]`.
    pub fn validate(&self, base: &std::path::Path) -> Result<RecommendationModel, ConfigError> {
        crate::catalog::validate_sizes(self.n_items, self.dim, self.n_topics)?;
        in_range("slate_size", self.slate_size.into(), 1, MAX_SLATE.into())?;
        in_range(
            "history_len",
            self.history_len.into(),
            0,
            MAX_HISTORY as u64,
        )?;
        in_range(
            "concurrent_sessions",
            self.concurrent_sessions.into(),
            1,
            MAX_SESSIONS.into(),
        )?;
        in_range("ticks", self.ticks.into(), 1, 1_000_000)?;
        let c = &self.choice;
        above("choice.temperature", c.temperature, 0.0)?;
        for (key, v) in [
            ("choice.no_click_utility", c.no_click_utility),
            ("choice.purchase_alpha", c.purchase_alpha),
        ] {
            if !v.is_finite() {
                return Err(ConfigError::new(key, format!("must be finite (found {v})")));
            }
        }
        let d = &self.dynamics;
        probability("dynamics.interest_drift", d.interest_drift)?;
        probability("dynamics.fatigue_decay", d.fatigue_decay)?;
        probability("dynamics.leave_probability", d.leave_probability)?;
        for (key, v) in [
            ("dynamics.fatigue_rise", d.fatigue_rise),
            ("dynamics.no_click_cost", d.no_click_cost),
            ("dynamics.click_cost", d.click_cost),
            ("dynamics.clickbait_cost", d.clickbait_cost),
            ("dynamics.mismatch_cost", d.mismatch_cost),
        ] {
            at_least(key, v, 0.0)?;
        }
        self.catalog
            .generated
            .validate()
            .map_err(|e| e.within("catalog"))?;
        let catalog = match &self.catalog.path {
            Some(path) => Catalog::from_csv(&base.join(path), self.dim as usize)?,
            None => Catalog::generate(
                self.n_items as usize,
                self.dim as usize,
                self.n_topics as usize,
                &self.catalog.generated,
                &mut rng_from_seed(self.catalog.seed),
            ),
        };
        if self.slate_size as usize > catalog.items.len() {
            return Err(ConfigError::new(
                "slate_size",
                format!(
                    "must not exceed the catalog's {} items (found {})",
                    catalog.items.len(),
                    self.slate_size
                ),
            ));
        }
        let shares: Vec<f64> = self.segments.iter().map(|s| s.share).collect();
        let cumulative_shares = crate::config::cumulative_shares(&shares)?;
        for (i, s) in self.segments.iter().enumerate() {
            let key = |k: &str| format!("segments[{i}].{k}");
            if let Some(t) = s.topic
                && t as usize >= catalog.n_topics
            {
                return Err(ConfigError::new(
                    key("topic"),
                    format!("must be below the {} topics (found {t})", catalog.n_topics),
                ));
            }
            at_least(&key("preference_spread"), s.preference_spread, 0.0)?;
            at_least(&key("preference_strength"), s.preference_strength, 0.0)?;
            at_least(&key("price_sensitivity"), s.price_sensitivity, 0.0)?;
            above(&key("patience"), s.patience, 0.0)?;
        }
        let bytes = self.concurrent_sessions as usize
            * (std::mem::size_of::<f32>() * (self.dim as usize + catalog.n_topics) + 256);
        if bytes > 4 << 30 {
            return Err(ConfigError::new(
                "concurrent_sessions",
                format!("{bytes} bytes of shopper state exceed the limit of 4 GiB"),
            ));
        }
        Ok(RecommendationModel {
            config: self.clone(),
            catalog: Arc::new(catalog),
            cumulative_shares,
        })
    }
}

/// Softmax choice probabilities of a slate with utilities `utilities` against
/// a no-click option of utility `no_click`, at temperature `temperature`:
/// `out[i] = e^{U_i/τ} / (e^{u_0/τ} + Σ_j e^{U_j/τ})`, computed stably
/// (shifted by the largest utility). Returns the no-click probability.
pub fn choice_probabilities(
    utilities: &[f32],
    no_click: f32,
    temperature: f32,
    out: &mut Vec<f32>,
) -> f32 {
    let top = utilities.iter().copied().fold(no_click, f32::max);
    out.clear();
    out.extend(utilities.iter().map(|u| ((u - top) / temperature).exp()));
    let none = ((no_click - top) / temperature).exp();
    let total = none + out.iter().sum::<f32>();
    out.iter_mut().for_each(|p| *p /= total);
    none / total
}

/// The batch slot a shopper occupies.
#[derive(Component, Debug, Clone, Copy)]
pub struct Slot(pub u32);

/// Sessions the slot has started in this episode (seeds the shopper's generator).
#[derive(Component, Debug, Clone, Copy)]
pub struct Generation(pub u32);

/// The shopper's taste: a direction in item space, its length the weight of taste.
#[derive(Component, Debug, Clone)]
pub struct Preference(pub Vec<f32>);

/// Utility lost per currency unit of price.
#[derive(Component, Debug, Clone, Copy)]
pub struct PriceSensitivity(pub f32);

/// What is left of the shopper's patience; the session ends at zero.
#[derive(Component, Debug, Clone, Copy)]
pub struct Patience(pub f32);

/// Per-topic fatigue, subtracted from the utility of the topic's items.
#[derive(Component, Debug, Clone)]
pub struct Fatigue(pub Vec<f32>);

/// The last clicked items, most recent first.
#[derive(Component, Debug, Clone, Copy)]
pub struct History {
    /// Item indices; only the first `len` are meaningful.
    pub items: [u32; MAX_HISTORY],
    /// How many are recorded.
    pub len: u8,
}

/// Steps taken in the current session.
#[derive(Component, Debug, Clone, Copy)]
pub struct SessionStep(pub u32);

/// The shopper's own generator: draws never depend on query order.
#[derive(Component, Debug, Clone)]
pub struct ShopperRng(pub Xoshiro256PlusPlus);

/// What the shopper did this step.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Response {
    /// Slate position clicked, if any.
    pub clicked: Option<u8>,
    /// The click became a purchase.
    pub purchased: bool,
    /// Price paid (0 without a purchase).
    pub revenue: f32,
    /// The session ended after this step.
    pub ended: bool,
    /// Length of the session that ended (steps), when it ended.
    pub session_length: u32,
}

/// The world's view of the scenario: the model and the episode seed.
#[derive(Resource, Debug, Clone)]
pub struct Market {
    /// The model.
    pub model: RecommendationModel,
    /// Seed of the current batch episode.
    pub episode_seed: u64,
}

/// The slates to show this step, `slate_size` items per slot, slot by slot.
#[derive(Resource, Debug, Clone, Default)]
pub struct Slates(pub Vec<u32>);

impl RecommendationModel {
    /// The validated config.
    pub fn config(&self) -> &RecommendationConfig {
        &self.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Utility of `item` for a shopper with this preference, sensitivity and fatigue.
    pub fn utility(&self, item: usize, pref: &[f32], sensitivity: f32, fatigue: &[f32]) -> f32 {
        let it = &self.catalog.items[item];
        let taste: f32 = pref.iter().zip(&it.features).map(|(p, x)| p * x).sum();
        taste + it.quality + it.clickbait - sensitivity * it.price - fatigue[it.topic as usize]
    }

    /// Probability that a clicked `item` is bought by a shopper of sensitivity β.
    pub fn purchase_probability(&self, item: usize, sensitivity: f32) -> f32 {
        let price = self.catalog.items[item].price;
        1.0 / (1.0 + (-(self.config.choice.purchase_alpha as f32 - sensitivity * price)).exp())
    }

    /// Expected immediate reward of showing `slate` to a shopper in this state.
    pub fn expected_reward(
        &self,
        slate: &[usize],
        pref: &[f32],
        sensitivity: f32,
        fatigue: &[f32],
    ) -> f64 {
        let utilities: Vec<f32> = slate
            .iter()
            .map(|&i| self.utility(i, pref, sensitivity, fatigue))
            .collect();
        let mut probs = Vec::new();
        let c = &self.config.choice;
        choice_probabilities(
            &utilities,
            c.no_click_utility as f32,
            c.temperature as f32,
            &mut probs,
        );
        let click: f64 = probs.iter().map(|&p| f64::from(p)).sum();
        match self.config.reward {
            RewardKind::SignedClick => 2.0 * click - 1.0,
            RewardKind::Click => click,
            RewardKind::Revenue => slate
                .iter()
                .zip(&probs)
                .map(|(&i, &p)| {
                    f64::from(p)
                        * f64::from(self.purchase_probability(i, sensitivity))
                        * f64::from(self.catalog.items[i].price)
                })
                .sum(),
        }
    }

    /// [`expected_reward`](Self::expected_reward) of a slate of one item, in
    /// closed form: the click probability is `σ((U − u_0)/τ)`.
    pub fn expected_single(
        &self,
        item: usize,
        pref: &[f32],
        sensitivity: f32,
        fatigue: &[f32],
    ) -> f64 {
        let c = &self.config.choice;
        let u = f64::from(self.utility(item, pref, sensitivity, fatigue));
        let click = 1.0 / (1.0 + (-(u - c.no_click_utility) / c.temperature).exp());
        match self.config.reward {
            RewardKind::SignedClick => 2.0 * click - 1.0,
            RewardKind::Click => click,
            RewardKind::Revenue => {
                click
                    * f64::from(self.purchase_probability(item, sensitivity))
                    * f64::from(self.catalog.items[item].price)
            }
        }
    }

    /// Draws a new shopper's segment, preference, sensitivity and patience.
    fn new_shopper(&self, rng: &mut Xoshiro256PlusPlus) -> (u16, Vec<f32>, f32, f32) {
        let k = crate::config::pick(&self.cumulative_shares, rng.random());
        let segment = &self.config.segments[k];
        let topic = segment.topic.map_or_else(
            || rng.random_range(0..self.catalog.n_topics),
            |t| t as usize,
        );
        let mut pref = near(
            &self.catalog.topic_centres[topic],
            segment.preference_spread,
            rng,
        );
        let strength = segment.preference_strength as f32;
        pref.iter_mut().for_each(|p| *p *= strength);
        (
            k as u16,
            pref,
            segment.price_sensitivity as f32,
            segment.patience as f32,
        )
    }
}

/// Each shopper picks one item of its slate, or none, by the logit choice
/// model, and a click may become a purchase.
pub fn choose_items(
    market: Res<Market>,
    slates: Res<Slates>,
    mut shoppers: Query<(
        &Slot,
        &Preference,
        &PriceSensitivity,
        &Fatigue,
        &mut ShopperRng,
        &mut Response,
    )>,
    mut scratch: Local<(Vec<f32>, Vec<f32>)>,
) {
    let model = &market.model;
    let k = model.config.slate_size as usize;
    let c = &model.config.choice;
    let (no_click, temperature) = (c.no_click_utility as f32, c.temperature as f32);
    let (utilities, probs) = &mut *scratch;
    shoppers
        .iter_mut()
        .for_each(|(slot, pref, beta, fatigue, mut rng, mut response)| {
            let slate = &slates.0[slot.0 as usize * k..(slot.0 as usize + 1) * k];
            utilities.clear();
            utilities.extend(
                slate
                    .iter()
                    .map(|&i| model.utility(i as usize, &pref.0, beta.0, &fatigue.0)),
            );
            choice_probabilities(utilities, no_click, temperature, probs);
            let mut u: f32 = rng.0.random();
            let mut clicked = None;
            for (position, &p) in probs.iter().enumerate() {
                if u < p {
                    clicked = Some(position as u8);
                    break;
                }
                u -= p;
            }
            *response = Response {
                clicked,
                ..Response::default()
            };
            if let Some(position) = clicked {
                let item = slate[usize::from(position)] as usize;
                if rng.0.random::<f32>() < model.purchase_probability(item, beta.0) {
                    response.purchased = true;
                    response.revenue = model.catalog.items[item].price;
                }
            }
        });
}

/// Shoppers' states evolve: interest drift, fatigue, patience, history; and
/// each decides whether its session ends.
#[allow(clippy::type_complexity)]
pub fn evolve_shoppers(
    market: Res<Market>,
    slates: Res<Slates>,
    mut shoppers: Query<(
        &Slot,
        &mut Preference,
        &mut Fatigue,
        &mut Patience,
        &mut History,
        &mut SessionStep,
        &mut ShopperRng,
        &mut Response,
    )>,
) {
    let model = &market.model;
    let d = &model.config.dynamics;
    let k = model.config.slate_size as usize;
    let history_len = model.config.history_len as usize;
    shoppers.iter_mut().for_each(
        |(
            slot,
            mut pref,
            mut fatigue,
            mut patience,
            mut history,
            mut step,
            mut rng,
            mut response,
        )| {
            let slate = &slates.0[slot.0 as usize * k..(slot.0 as usize + 1) * k];
            fatigue
                .0
                .iter_mut()
                .for_each(|f| *f *= d.fatigue_decay as f32);
            for &i in slate {
                fatigue.0[model.catalog.items[i as usize].topic as usize] += d.fatigue_rise as f32;
            }
            let cost = match response.clicked {
                None => d.no_click_cost as f32,
                Some(position) => {
                    let item = &model.catalog.items[slate[usize::from(position)] as usize];
                    let strength = pref.0.iter().map(|p| p * p).sum::<f32>().sqrt();
                    let cos = if strength > 0.0 {
                        pref.0
                            .iter()
                            .zip(&item.features)
                            .map(|(p, x)| p * x)
                            .sum::<f32>()
                            / strength
                    } else {
                        0.0
                    };
                    // Drift toward the clicked item, keeping the preference's strength.
                    let eta = d.interest_drift as f32;
                    if strength > 0.0 && eta > 0.0 {
                        pref.0
                            .iter_mut()
                            .zip(&item.features)
                            .for_each(|(p, x)| *p = (1.0 - eta) * *p / strength + eta * x);
                        normalise(&mut pref.0);
                        pref.0.iter_mut().for_each(|p| *p *= strength);
                    }
                    if history_len > 0 {
                        history.items.copy_within(0..history_len - 1, 1);
                        history.items[0] = slate[usize::from(position)];
                        history.len = (usize::from(history.len) + 1).min(history_len) as u8;
                    }
                    d.click_cost as f32
                        + if item.clickbait > 0.0 {
                            d.clickbait_cost as f32
                        } else {
                            0.0
                        }
                        + d.mismatch_cost as f32 * (1.0 - cos)
                }
            };
            patience.0 -= cost;
            step.0 += 1;
            let leaves = rng.0.random::<f64>() < d.leave_probability;
            response.ended = patience.0 <= 0.0 || leaves;
            response.session_length = if response.ended { step.0 } else { 0 };
        },
    );
}

/// The seed of slot `slot`'s `generation`-th session in the episode `episode_seed`.
fn session_seed(episode_seed: u64, slot: u32, generation: u32) -> u64 {
    derive_seed(
        episode_seed,
        "session",
        (u64::from(slot) << 32) | u64::from(generation),
    )
}

/// Sets up a fresh shopper in an existing entity's components.
#[allow(clippy::too_many_arguments)]
fn start_session(
    model: &RecommendationModel,
    seed: u64,
    shopper: &mut Shopper,
    pref: &mut Preference,
    beta: &mut PriceSensitivity,
    patience: &mut Patience,
    fatigue: &mut Fatigue,
    history: &mut History,
    step: &mut SessionStep,
    rng: &mut ShopperRng,
) {
    rng.0 = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (segment, p, b, budget) = model.new_shopper(&mut rng.0);
    shopper.segment = segment;
    pref.0 = p;
    beta.0 = b;
    patience.0 = budget;
    fatigue.0.iter_mut().for_each(|f| *f = 0.0);
    history.len = 0;
    step.0 = 0;
}

/// Finished sessions leave and a new shopper takes each freed slot (the entity
/// is reused, with a generator seeded for the slot's next session).
#[allow(clippy::type_complexity)]
pub fn replace_finished(
    market: Res<Market>,
    mut shoppers: Query<(
        &Slot,
        &mut Generation,
        &Response,
        &mut Shopper,
        &mut Preference,
        &mut PriceSensitivity,
        &mut Patience,
        &mut Fatigue,
        &mut History,
        &mut SessionStep,
        &mut ShopperRng,
    )>,
) {
    let model = &market.model;
    shoppers.iter_mut().for_each(
        |(
            slot,
            mut generation,
            response,
            mut shopper,
            mut pref,
            mut beta,
            mut patience,
            mut fatigue,
            mut history,
            mut step,
            mut rng,
        )| {
            if response.ended {
                generation.0 += 1;
                let seed = session_seed(market.episode_seed, slot.0, generation.0);
                start_session(
                    model,
                    seed,
                    &mut shopper,
                    &mut pref,
                    &mut beta,
                    &mut patience,
                    &mut fatigue,
                    &mut history,
                    &mut step,
                    &mut rng,
                );
            }
        },
    );
}

/// Names of the metrics, summed over slots, in [`BatchStep::info`] order.
pub const METRICS: [&str; 5] = ["steps", "clicks", "purchases", "revenue", "sessions_ended"];

/// The recommendation scenario as a [`BatchEnv`].
pub struct RecommendationEnv {
    model: RecommendationModel,
    world: World,
    schedule: Schedule,
    space: ObservationSpace,
    actions: ActionSpace,
    tick: u32,
    reader: QueryState<(
        &'static Slot,
        &'static Shopper,
        &'static PriceSensitivity,
        &'static History,
        &'static SessionStep,
        &'static Response,
    )>,
}

impl RecommendationEnv {
    /// Builds the world: one shopper entity per slot, and the step schedule.
    pub fn new(model: RecommendationModel) -> Self {
        let config = model.config().clone();
        let catalog = model.catalog();
        let n_items = catalog.items.len();
        let n_topics = catalog.n_topics;
        let mut world = World::new();
        world.insert_resource(Market {
            model: model.clone(),
            episode_seed: 0,
        });
        world.insert_resource(Slates(vec![
            0;
            (config.concurrent_sessions * config.slate_size)
                as usize
        ]));
        world.spawn_batch((0..config.concurrent_sessions).map(|slot| {
            (
                (
                    Slot(slot),
                    Generation(0),
                    Shopper { segment: 0 },
                    Preference(vec![0.0; config.dim as usize]),
                    PriceSensitivity(0.0),
                    Patience(0.0),
                ),
                (
                    Fatigue(vec![0.0; n_topics]),
                    History {
                        items: [0; MAX_HISTORY],
                        len: 0,
                    },
                    SessionStep(0),
                    ShopperRng(Xoshiro256PlusPlus::seed_from_u64(0)),
                    Response::default(),
                ),
            )
        }));
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::default());
        schedule.add_systems((choose_items, evolve_shoppers, replace_finished).chain());
        let mut features = vec![
            Feature {
                name: "session_step",
                low: 0.0,
                high: STEP_CAP as f32,
                integer: true,
                suggested_bins: 1,
            },
            Feature {
                name: "segment",
                low: 0.0,
                high: (config.segments.len() - 1) as f32,
                integer: true,
                suggested_bins: config.segments.len(),
            },
            Feature {
                name: "price_sensitivity",
                low: 0.0,
                high: config
                    .segments
                    .iter()
                    .map(|s| s.price_sensitivity as f32)
                    .fold(0.0, f32::max)
                    .max(1.0),
                integer: false,
                suggested_bins: 1,
            },
            Feature {
                name: "last_topic",
                low: 0.0,
                high: n_topics as f32,
                integer: true,
                suggested_bins: n_topics + 1,
            },
        ];
        features.extend(
            HISTORY_NAMES[..config.history_len as usize]
                .iter()
                .map(|&name| Feature {
                    name,
                    low: 0.0,
                    high: n_items as f32,
                    integer: true,
                    suggested_bins: 1,
                }),
        );
        let reader = world.query();
        Self {
            space: ObservationSpace { features },
            actions: ActionSpace {
                labels: (0..n_items).map(|i| format!("item {i}")).collect(),
                categories: catalog.items.iter().map(|i| i.topic).collect(),
            },
            model,
            world,
            schedule,
            tick: 0,
            reader,
        }
    }

    /// The model this env simulates.
    pub fn model(&self) -> &RecommendationModel {
        &self.model
    }

    /// Each slot's shopper state, for oracles and tests: (preference,
    /// sensitivity, fatigue).
    pub fn shopper_states(&mut self) -> Vec<(Vec<f32>, f32, Vec<f32>)> {
        let n = self.model.config.concurrent_sessions as usize;
        let mut out = vec![(Vec::new(), 0.0, Vec::new()); n];
        let mut q = self
            .world
            .query::<(&Slot, &Preference, &PriceSensitivity, &Fatigue)>();
        q.iter(&self.world).for_each(|(slot, pref, beta, fatigue)| {
            out[slot.0 as usize] = (pref.0.clone(), beta.0, fatigue.0.clone());
        });
        out
    }

    fn observations(&mut self, out: &mut [Observation]) {
        let n_items = self.model.catalog.items.len() as f32;
        let n_topics = self.model.catalog.n_topics as f32;
        let history_len = self.model.config.history_len as usize;
        let catalog = &self.model.catalog;
        self.reader
            .iter(&self.world)
            .for_each(|(slot, shopper, beta, history, step, _)| {
                let f = &mut out[slot.0 as usize].features;
                f.clear();
                f.push(step.0.min(STEP_CAP) as f32);
                f.push(f32::from(shopper.segment));
                f.push(beta.0);
                f.push(if history.len > 0 {
                    catalog.items[history.items[0] as usize].topic as f32
                } else {
                    n_topics
                });
                f.extend((0..history_len).map(|j| {
                    if j < usize::from(history.len) {
                        history.items[j] as f32
                    } else {
                        n_items
                    }
                }));
            });
    }
}

impl BatchEnv for RecommendationEnv {
    fn observation_space(&self) -> &ObservationSpace {
        &self.space
    }

    fn action_space(&self) -> &ActionSpace {
        &self.actions
    }

    fn slate_size(&self) -> usize {
        self.model.config.slate_size as usize
    }

    fn batch_size(&self) -> usize {
        self.model.config.concurrent_sessions as usize
    }

    fn metric_names(&self) -> &[&'static str] {
        &METRICS
    }

    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info) {
        self.tick = 0;
        self.world.resource_mut::<Market>().episode_seed = seed;
        let model = self.model.clone();
        let mut q = self.world.query::<(
            &Slot,
            &mut Generation,
            &mut Shopper,
            &mut Preference,
            &mut PriceSensitivity,
            &mut Patience,
            &mut Fatigue,
            &mut History,
            &mut SessionStep,
            &mut ShopperRng,
            &mut Response,
        )>();
        q.iter_mut(&mut self.world).for_each(
            |(
                slot,
                mut generation,
                mut shopper,
                mut pref,
                mut beta,
                mut patience,
                mut fatigue,
                mut history,
                mut step,
                mut rng,
                mut response,
            )| {
                generation.0 = 0;
                *response = Response::default();
                start_session(
                    &model,
                    session_seed(seed, slot.0, 0),
                    &mut shopper,
                    &mut pref,
                    &mut beta,
                    &mut patience,
                    &mut fatigue,
                    &mut history,
                    &mut step,
                    &mut rng,
                );
            },
        );
        let mut obs = vec![
            Observation {
                features: Vec::new()
            };
            self.batch_size()
        ];
        self.observations(&mut obs);
        (obs, vec![0.0; METRICS.len()])
    }

    fn step(&mut self, slates: &[usize]) -> BatchStep {
        let (n, k) = (self.batch_size(), self.slate_size());
        assert_eq!(slates.len(), n * k, "one slate of {k} per slot");
        {
            let mut shown = self.world.resource_mut::<Slates>();
            shown.0.clear();
            shown.0.extend(slates.iter().map(|&i| i as u32));
        }
        self.schedule.run(&mut self.world);
        self.tick += 1;
        let episode_over = self.tick >= self.model.config.ticks;
        let reward_kind = self.model.config.reward;
        let unchosen = match reward_kind {
            RewardKind::SignedClick => -1.0,
            RewardKind::Click | RewardKind::Revenue => 0.0,
        };
        let mut out = BatchStep {
            obs: vec![
                Observation {
                    features: Vec::new()
                };
                n
            ],
            rewards: vec![0.0; n],
            item_rewards: vec![unchosen; n * k],
            terminated: vec![false; n],
            truncated: vec![false; n],
            info: vec![0.0; METRICS.len()],
            episode_over,
        };
        let mut info = [0.0f64; METRICS.len()];
        self.reader
            .iter(&self.world)
            .for_each(|(slot, _, _, _, _, response)| {
                let s = slot.0 as usize;
                let reward = match (reward_kind, response.clicked) {
                    (RewardKind::SignedClick, Some(_)) => 1.0,
                    (RewardKind::SignedClick, None) => -1.0,
                    (RewardKind::Click, c) => f64::from(u8::from(c.is_some())),
                    (RewardKind::Revenue, _) => f64::from(response.revenue),
                };
                out.rewards[s] = reward;
                if let Some(position) = response.clicked {
                    out.item_rewards[s * k + usize::from(position)] = reward;
                }
                out.terminated[s] = response.ended;
                out.truncated[s] = episode_over && !response.ended;
                info[0] += 1.0;
                info[1] += f64::from(u8::from(response.clicked.is_some()));
                info[2] += f64::from(u8::from(response.purchased));
                info[3] += f64::from(response.revenue);
                info[4] += f64::from(u8::from(response.ended));
            });
        out.info = info.to_vec();
        self.observations(&mut out.obs);
        out
    }

    fn expected_rewards(&mut self, out: &mut Vec<f64>) -> bool {
        let n_items = self.model.catalog.items.len();
        out.clear();
        out.resize(self.batch_size() * n_items, 0.0);
        let model = &self.model;
        let mut q = self
            .world
            .query::<(&Slot, &Preference, &PriceSensitivity, &Fatigue)>();
        q.iter(&self.world).for_each(|(slot, pref, beta, fatigue)| {
            let row = &mut out[slot.0 as usize * n_items..(slot.0 as usize + 1) * n_items];
            for (item, value) in row.iter_mut().enumerate() {
                *value = model.expected_single(item, &pref.0, beta.0, &fatigue.0);
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> RecommendationConfig {
        RecommendationConfig {
            n_items: 30,
            dim: 6,
            n_topics: 5,
            slate_size: 3,
            history_len: 2,
            concurrent_sessions: 64,
            ticks: 40,
            reward: RewardKind::Click,
            choice: ChoiceConfig::default(),
            dynamics: DynamicsConfig::default(),
            catalog: CatalogConfig {
                generated: GeneratedCatalog {
                    clickbait_share: 0.2,
                    clickbait_appeal: 1.5,
                    ..GeneratedCatalog::default()
                },
                ..CatalogConfig::default()
            },
            segments: vec![ShopperSegment {
                name: String::new(),
                share: 1.0,
                topic: None,
                preference_spread: 0.3,
                preference_strength: 2.0,
                price_sensitivity: 0.5,
                patience: 5.0,
            }],
        }
    }

    #[test]
    fn choice_probabilities_are_a_softmax() {
        let mut p = Vec::new();
        let none = choice_probabilities(&[1.0, 0.0, 2.0], 0.5, 1.0, &mut p);
        let e = [1.0f32.exp(), 1.0, 2.0f32.exp(), 0.5f32.exp()];
        let total: f32 = e.iter().sum();
        for (got, want) in p.iter().zip(&e) {
            assert!((got - want / total).abs() < 1e-6);
        }
        assert!((none - e[3] / total).abs() < 1e-6);
    }

    /// A quiet world: no fatigue, drift, patience loss or leaving, so a
    /// shopper's utilities stay fixed while we count its choices.
    fn frozen() -> RecommendationConfig {
        let mut c = config();
        c.concurrent_sessions = 1;
        c.ticks = 1_000_000;
        c.dynamics = DynamicsConfig {
            interest_drift: 0.0,
            fatigue_rise: 0.0,
            fatigue_decay: 1.0,
            no_click_cost: 0.0,
            click_cost: 0.0,
            clickbait_cost: 0.0,
            mismatch_cost: 0.0,
            leave_probability: 0.0,
        };
        c
    }

    /// Simulated choice frequencies match the softmax probabilities: over
    /// 40,000 steps each slate position's (and no-click's) count lies within
    /// 4 binomial standard errors of `n·p` (false alarm ≈ 6e-5 per option).
    #[test]
    fn logit_choice_frequencies_match_softmax() {
        let model = frozen().validate(std::path::Path::new(".")).unwrap();
        let mut env = RecommendationEnv::new(model.clone());
        env.reset(3);
        let slate = [4usize, 11, 17];
        let (pref, beta, fatigue) = env.shopper_states().remove(0);
        let utilities: Vec<f32> = slate
            .iter()
            .map(|&i| model.utility(i, &pref, beta, &fatigue))
            .collect();
        let mut probs = Vec::new();
        let none = choice_probabilities(&utilities, 0.0, 1.0, &mut probs);
        probs.push(none);
        let n = 40_000;
        let mut counts = [0u32; 4];
        for _ in 0..n {
            let step = env.step(&slate);
            let clicked = step.item_rewards.iter().position(|&r| r > 0.0);
            counts[clicked.unwrap_or(3)] += 1;
        }
        for (count, p) in counts.iter().zip(&probs) {
            let p = f64::from(*p);
            let se = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (f64::from(*count) - n as f64 * p).abs() < 4.0 * se,
                "{counts:?} vs {probs:?}"
            );
        }
    }

    /// Clicking an item moves the preference toward it.
    #[test]
    fn interest_drifts_toward_clicked_items() {
        let mut c = frozen();
        c.dynamics.interest_drift = 0.3;
        c.choice.no_click_utility = -20.0; // always click the single item shown
        c.slate_size = 1;
        let model = c.validate(std::path::Path::new(".")).unwrap();
        let mut env = RecommendationEnv::new(model.clone());
        env.reset(1);
        let item = 7;
        let features = &model.catalog().items[item].features;
        let cos = |pref: &[f32]| {
            let norm = pref.iter().map(|p| p * p).sum::<f32>().sqrt();
            pref.iter().zip(features).map(|(p, x)| p * x).sum::<f32>() / norm
        };
        let before = cos(&env.shopper_states()[0].0);
        for _ in 0..5 {
            env.step(&[item]);
        }
        let after = cos(&env.shopper_states()[0].0);
        assert!(after > before + 0.5 && after > 0.9, "{before} → {after}");
    }

    /// Sessions end: with a patience of 5 and a cost of at least 1 per step
    /// (no click) or 0.2 per click, every session ends within 26 steps, and
    /// new shoppers take the freed slots.
    #[test]
    fn sessions_end_and_slots_refill() {
        let mut c = config();
        c.dynamics.leave_probability = 0.0;
        c.dynamics.mismatch_cost = 0.0;
        c.dynamics.clickbait_cost = 0.0;
        let model = c.validate(std::path::Path::new(".")).unwrap();
        let mut env = RecommendationEnv::new(model);
        env.reset(2);
        let slates: Vec<usize> = (0..64)
            .flat_map(|s| [s % 30, (s + 1) % 30, (s + 2) % 30])
            .collect();
        let mut ended = 0.0;
        for _ in 0..40 {
            let step = env.step(&slates);
            ended += step.info[4];
            for obs in &step.obs {
                assert!(obs.features[0] <= 26.0, "a session outlived its patience");
            }
        }
        assert!(ended >= 64.0, "only {ended} sessions ended");
    }

    #[test]
    fn batch_episodes_are_deterministic() {
        let model = config().validate(std::path::Path::new(".")).unwrap();
        let mut a = RecommendationEnv::new(model.clone());
        let mut b = RecommendationEnv::new(model);
        shoplab_env::check::check_batch_determinism(&mut a, &mut b, 5, 6).unwrap();
    }

    #[test]
    fn single_item_closed_form_matches_the_slate_formula() {
        for reward in [
            RewardKind::SignedClick,
            RewardKind::Click,
            RewardKind::Revenue,
        ] {
            let mut c = config();
            c.reward = reward;
            let model = c.validate(std::path::Path::new(".")).unwrap();
            let mut env = RecommendationEnv::new(model.clone());
            env.reset(9);
            let (pref, beta, fatigue) = env.shopper_states().remove(0);
            for item in 0..30 {
                let slate = model.expected_reward(&[item], &pref, beta, &fatigue);
                let single = model.expected_single(item, &pref, beta, &fatigue);
                assert!((slate - single).abs() < 1e-5, "{reward:?} item {item}");
            }
        }
    }

    #[test]
    fn validation_names_keys() {
        let base = std::path::Path::new(".");
        let mut c = config();
        c.slate_size = 31;
        assert_eq!(c.validate(base).unwrap_err().key, "slate_size");
        let mut c = config();
        c.dim = 0;
        assert_eq!(c.validate(base).unwrap_err().key, "dim");
        let mut c = config();
        c.history_len = 9;
        assert_eq!(c.validate(base).unwrap_err().key, "history_len");
        let mut c = config();
        c.catalog.path = Some("no-such-items.csv".into());
        let e = c.validate(base).unwrap_err();
        assert_eq!(e.key, "catalog.path");
        assert!(e.rule.contains("no-such-items.csv"));
    }
}
