//! The recommendation scenario as a batch env.

use super::*;

/// Names of the metrics, summed over slots, in [`BatchStep::info`] order.
pub const METRICS: [&str; 5] = ["steps", "clicks", "purchases", "revenue", "sessions_ended"];

/// The recommendation scenario as a [`BatchEnv`].
pub struct RecommendationEnv {
    model: RecommendationModel,
    ecs: crate::ecs::HandDriven,
    space: ObservationSpace,
    actions: ActionSpace,
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
            ecs: crate::ecs::HandDriven::new(world, schedule),
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
        for_each_shopper(&mut self.ecs.world, |slot, pref, beta, fatigue| {
            out[slot] = (pref.to_vec(), beta, fatigue.to_vec());
        });
        out
    }

    fn observations(&mut self, out: &mut [Observation]) {
        let n_items = self.model.catalog.items.len() as f32;
        let n_topics = self.model.catalog.n_topics as f32;
        let history_len = self.model.config.history_len as usize;
        let catalog = &self.model.catalog;
        self.reader
            .iter(&self.ecs.world)
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

/// Calls `f` with each slot's index and its shopper's preference, price
/// sensitivity and fatigue.
fn for_each_shopper(world: &mut World, mut f: impl FnMut(usize, &[f32], f32, &[f32])) {
    let mut q = world.query::<(&Slot, &Preference, &PriceSensitivity, &Fatigue)>();
    q.iter(world).for_each(|(slot, pref, beta, fatigue)| {
        f(slot.0 as usize, &pref.0, beta.0, &fatigue.0);
    });
}

impl crate::ecs::Restart<RecommendationModel> for ShopperStateItem<'_, '_> {
    fn restart(&mut self, model: &RecommendationModel, seed: u64) {
        self.generation.0 = 0;
        *self.response = Response::default();
        self.start_session(model, seed);
    }
}

impl BatchEnv for RecommendationEnv {
    crate::ecs::env_spaces!();

    fn slate_size(&self) -> usize {
        self.model.config.slate_size as usize
    }

    fn batch_size(&self) -> usize {
        self.model.config.concurrent_sessions as usize
    }

    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info) {
        self.ecs.world.resource_mut::<Market>().episode_seed = seed;
        self.ecs.restart::<ShopperState, _>(&self.model, seed);
        crate::ecs::first_observations(self.batch_size(), METRICS.len(), |obs| {
            self.observations(obs)
        })
    }

    fn step(&mut self, slates: &[usize]) -> BatchStep {
        let (n, k) = (self.batch_size(), self.slate_size());
        assert_eq!(slates.len(), n * k, "one slate of {k} per slot");
        let n_items = self.actions.n();
        let shown = &mut self.ecs.world.resource_mut::<Slates>().0;
        crate::ecs::take_actions(shown, slates, (n_items, "items"), |i| i as u32);
        let ticks = self.model.config.ticks;
        let episode_over = self.ecs.run_tick(ticks);
        let reward_kind = self.model.config.reward;
        let unchosen = reward_kind.no_response();
        let mut out = BatchStep::blank(n, k, METRICS.len(), unchosen, episode_over);
        let mut info = [0.0f64; METRICS.len()];
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, _, _, _, _, response)| {
                let s = slot.0 as usize;
                let reward =
                    reward_kind.realised(response.clicked.is_some(), f64::from(response.revenue));
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
        for_each_shopper(&mut self.ecs.world, |slot, pref, beta, fatigue| {
            let row = &mut out[slot * n_items..(slot + 1) * n_items];
            for (item, value) in row.iter_mut().enumerate() {
                *value = model.expected_single(item, pref, beta, fatigue);
            }
        });
        true
    }
}
