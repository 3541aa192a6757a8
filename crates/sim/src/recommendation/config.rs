//! The `[recommendation]` table: settings, their rules, and the validated model.

use super::*;

/// Longest click history kept per shopper.
pub const MAX_HISTORY: usize = 20;
/// Largest slate.
pub const MAX_SLATE: u32 = 32;
/// Most concurrent sessions.
pub const MAX_SESSIONS: u32 = 1_000_000;
/// Session steps observed exactly; later steps read as this value.
pub const STEP_CAP: u32 = 100;

pub(super) const HISTORY_NAMES: [&str; MAX_HISTORY] = [
    "history_1",
    "history_2",
    "history_3",
    "history_4",
    "history_5",
    "history_6",
    "history_7",
    "history_8",
    "history_9",
    "history_10",
    "history_11",
    "history_12",
    "history_13",
    "history_14",
    "history_15",
    "history_16",
    "history_17",
    "history_18",
    "history_19",
    "history_20",
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

impl RewardKind {
    /// The reward of a shopper's response: whether it clicked, and the
    /// revenue of its purchase (0 without one).
    pub fn realised(self, clicked: bool, revenue: f64) -> f64 {
        match self {
            Self::SignedClick if clicked => 1.0,
            Self::SignedClick => -1.0,
            Self::Click => f64::from(u8::from(clicked)),
            Self::Revenue => revenue,
        }
    }

    /// The reward of no response, credited to the items not chosen.
    pub fn no_response(self) -> f64 {
        self.realised(false, 0.0)
    }

    /// The expected reward of a slate whose click probability is `click`;
    /// `revenue` gives the expected revenue, computed only when rewarded.
    pub fn expected(self, click: f64, revenue: impl FnOnce() -> f64) -> f64 {
        match self {
            Self::SignedClick => 2.0 * click - 1.0,
            Self::Click => click,
            Self::Revenue => revenue(),
        }
    }
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
    /// Clicked items a shopper's observation remembers, `0..=MAX_HISTORY` (20).
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
    pub(super) config: RecommendationConfig,
    pub(super) catalog: Arc<Catalog>,
    pub(super) cumulative_shares: Vec<f64>,
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
        // Utilities are exponentiated in the choice model: beyond ±1e3 every
        // probability is 0 or 1 and the scenario says nothing.
        crate::config::scale("choice.temperature", c.temperature, 1e3)?;
        for (key, v) in [
            ("choice.no_click_utility", c.no_click_utility),
            ("choice.purchase_alpha", c.purchase_alpha),
        ] {
            crate::config::within(key, v, -1e3, 1e3)?;
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
            crate::config::within(key, v, 0.0, 1e3)?;
        }
        self.catalog.validate().map_err(|e| e.within("catalog"))?;
        let catalog = match &self.catalog.path {
            Some(path) => Catalog::from_csv(&base.join(path), self.dim as usize)?,
            None => Catalog::generate(
                self.n_items as usize,
                self.dim as usize,
                self.n_topics as usize,
                &self.catalog,
                &mut rng_from_seed(self.catalog.seed),
            ),
        };
        // Derived numbers checked at build time: every item's price,
        // quality, appeal and features finite (prices positive), whatever
        // the catalog's parameters or file made of them.
        let sound = |it: &crate::catalog::Item| {
            it.price.is_finite()
                && it.price > 0.0
                && it.quality.is_finite()
                && it.clickbait.is_finite()
                && it.features.iter().all(|x| x.is_finite())
        };
        if let Some((i, item)) = catalog.items.iter().enumerate().find(|(_, it)| !sound(it)) {
            return Err(ConfigError::new(
                "catalog",
                format!(
                    "item {i} has a price, quality, appeal or feature that is not a finite \
                     number (price {}, quality {}, clickbait {}): use smaller parameters",
                    item.price, item.quality, item.clickbait
                ),
            ));
        }
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
            crate::config::within(&key("preference_spread"), s.preference_spread, 0.0, 1e3)?;
            crate::config::within(&key("preference_strength"), s.preference_strength, 0.0, 1e3)?;
            crate::config::within(&key("price_sensitivity"), s.price_sensitivity, 0.0, 1e3)?;
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
        self.config.reward.expected(click, || {
            slate
                .iter()
                .zip(&probs)
                .map(|(&i, &p)| {
                    f64::from(p)
                        * f64::from(self.purchase_probability(i, sensitivity))
                        * f64::from(self.catalog.items[i].price)
                })
                .sum()
        })
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
        self.config.reward.expected(click, || {
            click
                * f64::from(self.purchase_probability(item, sensitivity))
                * f64::from(self.catalog.items[item].price)
        })
    }

    /// Items ranked by their expected immediate reward, shown alone to a
    /// fresh shopper (no fatigue), averaged over `shoppers` new shoppers
    /// drawn from a generator seeded with `seed`: best first, ties by index.
    pub fn items_by_mean_reward(&self, seed: u64, shoppers: u32) -> Vec<usize> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let n = self.catalog.items.len();
        let fatigue = vec![0.0_f32; self.catalog.n_topics];
        let mut totals = vec![0.0_f64; n];
        for _ in 0..shoppers {
            let (_, pref, sensitivity, _) = self.new_shopper(&mut rng);
            for (item, total) in totals.iter_mut().enumerate() {
                *total += self.expected_single(item, &pref, sensitivity, &fatigue);
            }
        }
        let mut ranked: Vec<usize> = (0..n).collect();
        ranked.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
        ranked
    }

    /// Draws a new shopper's segment, preference, sensitivity and patience.
    pub(super) fn new_shopper(&self, rng: &mut Xoshiro256PlusPlus) -> (u16, Vec<f32>, f32, f32) {
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
