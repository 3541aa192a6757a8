//! The auction market as a batch env: markets are entities, one system runs
//! their auctions.

use super::{AuctionMarketModel, Mechanism, context_name};
use bevy_ecs::{prelude::*, query::QueryData, schedule::SingleThreadedExecutor};
use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
use rand_distr::{Distribution, StandardNormal};
use shoplab_env::{
    ActionSpace, Feature, Info, Observation, ObservationSpace,
    batch::{BatchEnv, BatchStep},
    seed::derive_seed,
};

/// Names of the metrics, summed over markets, in [`BatchStep::info`] order:
/// the policy's decisions, every auction run, and the policy's wins,
/// clicks, spend and click value, and the auctioneer's revenue and clicks.
pub const METRICS: [&str; 8] = [
    "decisions",
    "auctions",
    "wins",
    "clicks",
    "spend",
    "value",
    "revenue",
    "market_clicks",
];

/// The batch slot a market occupies.
#[derive(Component, Debug, Clone, Copy)]
pub struct MarketSlot(pub u32);

/// The market's own generator: draws never depend on query order.
#[derive(Component, Debug, Clone)]
pub struct MarketRng(pub Xoshiro256PlusPlus);

/// The auction the policy's advertiser is about to bid in.
#[derive(Component, Debug, Clone, Default)]
pub struct PendingAuction {
    /// The true context, the constant 1 last.
    pub context: Vec<f64>,
    /// The policy's best ad: its CTR and value per click.
    pub ctr: f64,
    /// The best ad's value per click.
    pub value: f64,
    /// Each competitor's bid, CTR and value, in draw order.
    pub competitors: Vec<(f64, f64, f64)>,
    /// A permutation of the advertisers, its first `participants` drawn.
    pub order: Vec<u16>,
}

/// What the market did this step.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct MarketOutcome {
    /// The policy's net utility.
    pub reward: f64,
    /// The policy's advertiser won.
    pub won: bool,
    /// Its ad was clicked.
    pub clicked: bool,
    /// What it paid.
    pub spend: f64,
    /// The value of its click.
    pub value: f64,
    /// Auctions run (its own and the others' until its next one).
    pub auctions: u32,
    /// Prices paid in all of them.
    pub revenue: f64,
    /// Clicks in all of them.
    pub market_clicks: u32,
}

/// The world's view of the scenario: the model and the episode seed.
#[derive(Resource, Debug, Clone)]
pub struct Auctions {
    /// The model.
    pub model: AuctionMarketModel,
    /// Seed of the current batch episode.
    pub episode_seed: u64,
}

/// Each market's chosen multiplier index this step.
#[derive(Resource, Debug, Clone, Default)]
pub struct BidChoices(pub Vec<usize>);

/// A market's mutable state, as one query.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct MarketState {
    slot: &'static MarketSlot,
    rng: &'static mut MarketRng,
    pending: &'static mut PendingAuction,
    outcome: &'static mut MarketOutcome,
}

/// Who wins among `bids` (the highest; the first drawn among equals) and
/// what it pays.
fn allocate(mechanism: Mechanism, bids: impl Iterator<Item = f64>) -> (usize, f64) {
    let (mut first, mut top, mut second) = (0, f64::NEG_INFINITY, 0.0f64);
    for (i, b) in bids.enumerate() {
        if b > top {
            second = top.max(0.0);
            first = i;
            top = b;
        } else if b > second {
            second = b;
        }
    }
    match mechanism {
        Mechanism::SecondPrice => (first, second),
        Mechanism::FirstPrice => (first, top),
    }
}

impl MarketStateItem<'_, '_> {
    /// Runs auctions until the policy's advertiser takes part in one, and
    /// leaves that one pending; counts the others' auctions and their
    /// revenue into the outcome.
    fn advance(&mut self, model: &AuctionMarketModel) {
        let config = model.config();
        let catalog = model.catalog();
        let (e, p) = (config.embedding_size as usize, config.participants as usize);
        let rng = &mut self.rng.0;
        let pending = &mut *self.pending;
        let outcome = &mut *self.outcome;
        loop {
            for x in &mut pending.context[..e] {
                let z: f64 = StandardNormal.sample(rng);
                *x = config.embedding_sd * z;
            }
            let order = &mut pending.order;
            for i in 0..p {
                let j = rng.random_range(i..order.len());
                order.swap(i, j);
            }
            pending.competitors.clear();
            let mut ours = false;
            for &bidder in &order[..p] {
                let (_, ctr, value) = catalog.best_ad(usize::from(bidder), &pending.context);
                if bidder == 0 {
                    ours = true;
                    (pending.ctr, pending.value) = (ctr, value);
                } else {
                    pending.competitors.push((ctr * value, ctr, value));
                }
            }
            if ours {
                return;
            }
            let (winner, price) =
                allocate(config.mechanism, pending.competitors.iter().map(|c| c.0));
            let clicked = rng.random::<f64>() < pending.competitors[winner].1;
            outcome.auctions += 1;
            outcome.revenue += price;
            outcome.market_clicks += u32::from(clicked);
        }
    }

    /// Settles the pending auction with the policy's bid.
    fn settle(&mut self, model: &AuctionMarketModel, multiplier: f64) {
        let mechanism = model.config().mechanism;
        let pending = &*self.pending;
        let ours = multiplier * pending.value * pending.ctr;
        let bids = std::iter::once(ours).chain(pending.competitors.iter().map(|c| c.0));
        let (winner, price) = allocate(mechanism, bids);
        let ctr = if winner == 0 {
            pending.ctr
        } else {
            pending.competitors[winner - 1].1
        };
        let clicked = self.rng.0.random::<f64>() < ctr;
        let won = winner == 0;
        let value = if won && clicked { pending.value } else { 0.0 };
        let spend = if won { price } else { 0.0 };
        *self.outcome = MarketOutcome {
            reward: value - spend,
            won,
            clicked: won && clicked,
            spend,
            value,
            auctions: 1,
            revenue: price,
            market_clicks: u32::from(clicked),
        };
    }
}

/// Every market settles its pending auction with the policy's bid, then
/// runs the others' auctions until the policy's advertiser is drawn again.
pub fn run_markets(
    auctions: Res<Auctions>,
    choices: Res<BidChoices>,
    mut markets: Query<MarketState>,
) {
    let model = &auctions.model;
    let multipliers = &model.config().bid_multipliers;
    for mut market in &mut markets {
        let multiplier = multipliers[choices.0[market.slot.0 as usize]];
        market.settle(model, multiplier);
        market.advance(model);
    }
}

/// The auction market as a [`BatchEnv`].
pub struct AuctionMarketEnv {
    model: AuctionMarketModel,
    ecs: crate::ecs::HandDriven,
    space: ObservationSpace,
    actions: ActionSpace,
    reader: QueryState<(
        &'static MarketSlot,
        &'static PendingAuction,
        &'static MarketOutcome,
    )>,
}

impl AuctionMarketEnv {
    /// Builds the world: one market entity per slot, and the step schedule.
    pub fn new(model: AuctionMarketModel) -> Self {
        let config = model.config().clone();
        let mut world = World::new();
        world.insert_resource(Auctions {
            model: model.clone(),
            episode_seed: 0,
        });
        world.insert_resource(BidChoices(vec![0; config.concurrent_markets as usize]));
        let width = config.embedding_size as usize + 1;
        world.spawn_batch((0..config.concurrent_markets).map(|slot| {
            let mut context = vec![0.0; width];
            context[width - 1] = 1.0;
            (
                MarketSlot(slot),
                MarketRng(Xoshiro256PlusPlus::seed_from_u64(0)),
                PendingAuction {
                    context,
                    order: (0..config.bidders as u16).collect(),
                    ..PendingAuction::default()
                },
                MarketOutcome::default(),
            )
        }));
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::default());
        schedule.add_systems(run_markets);
        let mut features = vec![
            Feature {
                name: "value_ctr",
                low: 0.0,
                high: model.catalog().values.iter().fold(0.0f64, |a, &v| a.max(v)) as f32,
                integer: false,
                suggested_bins: 10,
            },
            Feature {
                name: "ctr",
                low: 0.0,
                high: 1.0,
                integer: false,
                suggested_bins: 1,
            },
            Feature {
                name: "value",
                low: 0.0,
                high: model.catalog().values.iter().fold(0.0f64, |a, &v| a.max(v)) as f32,
                integer: false,
                suggested_bins: 1,
            },
        ];
        // rand_distr's normal sampler cannot go past about 14 standard
        // deviations (its tail draw is bounded by the smallest uniform).
        let sd = (16.0 * config.embedding_sd) as f32;
        features.extend((0..config.obs_embedding_size as usize).map(|k| Feature {
            name: context_name(k),
            low: -sd,
            high: sd,
            integer: false,
            suggested_bins: 1,
        }));
        let labels = config
            .bid_multipliers
            .iter()
            .map(|m| format!("bid × {m}"))
            .collect();
        let reader = world.query();
        Self {
            space: ObservationSpace { features },
            actions: ActionSpace::labelled(labels),
            model,
            ecs: crate::ecs::HandDriven::new(world, schedule),
            reader,
        }
    }

    /// The model this env simulates.
    pub fn model(&self) -> &AuctionMarketModel {
        &self.model
    }

    fn observations(&mut self, out: &mut [Observation]) {
        let o = self.model.config().obs_embedding_size as usize;
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, pending, _)| {
                let f = &mut out[slot.0 as usize].features;
                f.clear();
                f.push((pending.ctr * pending.value) as f32);
                f.push(pending.ctr as f32);
                f.push(pending.value as f32);
                f.extend(pending.context[..o].iter().map(|&x| x as f32));
            });
    }
}

/// `C(n, k)` as a float.
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

impl crate::ecs::Restart<AuctionMarketModel> for MarketStateItem<'_, '_> {
    fn restart(&mut self, model: &AuctionMarketModel, seed: u64) {
        let index = u64::from(self.slot.0);
        self.rng.0 = Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, "auction market", index));
        self.pending.order = (0..model.config().bidders as u16).collect();
        self.advance(model);
        *self.outcome = MarketOutcome::default();
    }
}

impl BatchEnv for AuctionMarketEnv {
    crate::ecs::env_spaces!();

    fn slate_size(&self) -> usize {
        1
    }

    fn batch_size(&self) -> usize {
        self.model.config().concurrent_markets as usize
    }

    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info) {
        self.ecs.world.resource_mut::<Auctions>().episode_seed = seed;
        self.ecs.restart::<MarketState, _>(&self.model, seed);
        crate::ecs::first_observations(self.batch_size(), METRICS.len(), |obs| {
            self.observations(obs)
        })
    }

    fn step(&mut self, actions: &[usize]) -> BatchStep {
        let n = self.batch_size();
        let n_actions = self.actions.n();
        assert_eq!(actions.len(), n, "one action per market");
        let choices = &mut self.ecs.world.resource_mut::<BidChoices>().0;
        crate::ecs::take_actions(choices, actions, (n_actions, "multipliers"), |a| a);
        let ticks = self.model.config().ticks;
        let episode_over = self.ecs.run_tick(ticks);
        let mut out = BatchStep::blank(n, 1, METRICS.len(), 0.0, episode_over);
        out.truncated.fill(episode_over);
        let mut info = [0.0f64; METRICS.len()];
        self.reader.iter(&self.ecs.world).for_each(|(slot, _, o)| {
            let s = slot.0 as usize;
            out.rewards[s] = o.reward;
            out.item_rewards[s] = o.reward;
            info[0] += 1.0;
            info[1] += f64::from(o.auctions);
            info[2] += f64::from(u8::from(o.won));
            info[3] += f64::from(u8::from(o.clicked));
            info[4] += o.spend;
            info[5] += o.value;
            info[6] += o.revenue;
            info[7] += f64::from(o.market_clicks);
        });
        out.info = info.to_vec();
        self.observations(&mut out.obs);
        out
    }

    /// For each multiplier, the expected net utility over the competitors
    /// the policy cannot see: they are a uniform draw of `q = participants −
    /// 1` of the `m` other advertisers, so with the others' bids `b₍₁₎ ≤ … ≤
    /// b₍ₘ₎` for this context, the highest of them is `b₍ᵣ₎` with
    /// probability `C(r−1, q−1) / C(m, q)`; the policy's bid `x` wins when
    /// it is not below (ties go to it), and then earns `value × CTR` less the price (`b₍ᵣ₎`,
    /// or `x` in a first-price auction).
    fn expected_rewards(&mut self, out: &mut Vec<f64>) -> bool {
        let config = self.model.config();
        let catalog = self.model.catalog();
        let multipliers = &config.bid_multipliers;
        let m = config.bidders as usize - 1;
        let q = config.participants as usize - 1;
        let total = choose(m, q);
        out.clear();
        out.resize(self.batch_size() * multipliers.len(), 0.0);
        let mut others = Vec::with_capacity(m);
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, pending, _)| {
                others.clear();
                others.extend((1..=m).map(|b| {
                    let (_, ctr, value) = catalog.best_ad(b, &pending.context);
                    ctr * value
                }));
                others.sort_by(f64::total_cmp);
                let ours = pending.ctr * pending.value;
                let row = &mut out[slot.0 as usize * multipliers.len()..][..multipliers.len()];
                for (value, &mult) in row.iter_mut().zip(multipliers) {
                    let x = mult * ours;
                    *value = (q..=m)
                        .take_while(|&r| others[r - 1] <= x)
                        .map(|r| {
                            let price = match config.mechanism {
                                Mechanism::SecondPrice => others[r - 1],
                                Mechanism::FirstPrice => x,
                            };
                            choose(r - 1, q - 1) / total * (ours - price)
                        })
                        .sum();
                }
            });
        true
    }
}
