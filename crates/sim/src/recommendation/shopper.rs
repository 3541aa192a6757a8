//! The user model: shopper components, the market resources, and the
//! systems of one step (choose → evolve → replace finished sessions).

use super::*;

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
pub fn evolve_shoppers(
    market: Res<Market>,
    slates: Res<Slates>,
    mut shoppers: Query<ShopperState>,
) {
    let model = &market.model;
    let d = &model.config.dynamics;
    let k = model.config.slate_size as usize;
    let history_len = model.config.history_len as usize;
    shoppers.iter_mut().for_each(|s| {
        let ShopperStateItem {
            slot,
            mut pref,
            mut fatigue,
            mut patience,
            mut history,
            mut step,
            mut rng,
            mut response,
            ..
        } = s;
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
    });
}

/// The seed of slot `slot`'s `generation`-th session in the episode `episode_seed`.
pub(super) fn session_seed(episode_seed: u64, slot: u32, generation: u32) -> u64 {
    derive_seed(
        episode_seed,
        "session",
        (u64::from(slot) << 32) | u64::from(generation),
    )
}

/// A shopper's whole state: one entity per batch slot.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct ShopperState {
    /// The slot.
    pub slot: &'static Slot,
    /// Sessions the slot has started in this episode, from 0.
    pub generation: &'static mut Generation,
    /// The segment.
    pub shopper: &'static mut Shopper,
    /// Taste.
    pub pref: &'static mut Preference,
    /// Price sensitivity β.
    pub beta: &'static mut PriceSensitivity,
    /// Patience left.
    pub patience: &'static mut Patience,
    /// Fatigue per topic.
    pub fatigue: &'static mut Fatigue,
    /// Clicked items.
    pub history: &'static mut History,
    /// Steps into the session.
    pub step: &'static mut SessionStep,
    /// The session's generator.
    pub rng: &'static mut ShopperRng,
    /// The last step's response.
    pub response: &'static mut Response,
}

impl ShopperStateItem<'_, '_> {
    /// Sets up a fresh shopper for the slot's current generation, its
    /// generator seeded from the episode seed, the slot and the generation.
    pub(super) fn start_session(&mut self, model: &RecommendationModel, episode_seed: u64) {
        let seed = session_seed(episode_seed, self.slot.0, self.generation.0);
        self.rng.0 = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (segment, p, b, budget) = model.new_shopper(&mut self.rng.0);
        self.shopper.segment = segment;
        self.pref.0 = p;
        self.beta.0 = b;
        self.patience.0 = budget;
        self.fatigue.0.iter_mut().for_each(|f| *f = 0.0);
        self.history.len = 0;
        self.step.0 = 0;
    }
}

/// Finished sessions leave and a new shopper takes each freed slot (the entity
/// is reused, with a generator seeded for the slot's next session).
pub fn replace_finished(market: Res<Market>, mut shoppers: Query<ShopperState>) {
    for mut shopper in &mut shoppers {
        if shopper.response.ended {
            shopper.generation.0 += 1;
            shopper.start_session(&market.model, market.episode_seed);
        }
    }
}
