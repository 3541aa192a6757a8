//! The interest-evolution scenario as a batch env: users are entities, one
//! system steps them all.

use super::{InterestEvolutionModel, candidate_name, interest_name};
use bevy_ecs::{prelude::*, query::QueryData, schedule::SingleThreadedExecutor};
use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
use rand_distr::{Distribution, StandardNormal};
use shoplab_env::{
    ActionSpace, Feature, Info, Observation, ObservationSpace,
    batch::{BatchEnv, BatchStep},
    seed::derive_seed,
};

/// Names of the metrics, summed over slots, in [`BatchStep::info`] order.
pub const METRICS: [&str; 5] = [
    "steps",
    "clicks",
    "watch_time",
    "quality_watched",
    "sessions_ended",
];

/// The batch slot a user occupies.
#[derive(Component, Debug, Clone, Copy)]
pub struct UserSlot(pub u32);

/// Sessions the slot has started in this episode (seeds the user's generator).
#[derive(Component, Debug, Clone, Copy)]
pub struct UserGeneration(pub u32);

/// The user's interest in each cluster, in `[−1, 1]`.
#[derive(Component, Debug, Clone)]
pub struct Interests(pub Vec<f64>);

/// Minutes the user has left; the session ends at zero.
#[derive(Component, Debug, Clone, Copy)]
pub struct TimeBudget(pub f64);

/// The videos on offer to the user this step. Their features are the
/// one-hot vectors of their clusters, written out in full only in the
/// observation: a user's score of a video, `interests · features`, is the
/// interest in its cluster.
#[derive(Component, Debug, Clone, Default)]
pub struct CandidateVideos {
    /// Each video's cluster.
    pub cluster: Vec<u16>,
    /// Each video's hidden quality.
    pub quality: Vec<f64>,
}

/// The user's own generator: draws never depend on query order.
#[derive(Component, Debug, Clone)]
pub struct UserRng(pub Xoshiro256PlusPlus);

/// What the user did this step.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct WatchResponse {
    /// Slate position clicked, if any.
    pub clicked: Option<u8>,
    /// Minutes watched (the reward).
    pub watch_time: f64,
    /// Quality of the video watched (0 without a click).
    pub quality: f64,
    /// The session ended after this step.
    pub ended: bool,
}

/// The world's view of the scenario: the model and the episode seed.
#[derive(Resource, Debug, Clone)]
pub struct Videos {
    /// The model.
    pub model: InterestEvolutionModel,
    /// Seed of the current batch episode.
    pub episode_seed: u64,
}

/// The slates to show this step, `slate_size` positions per slot.
#[derive(Resource, Debug, Clone, Default)]
pub struct VideoSlates(pub Vec<u32>);

/// A user's mutable state, as one query.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct UserState {
    slot: &'static UserSlot,
    generation: &'static mut UserGeneration,
    interests: &'static mut Interests,
    budget: &'static mut TimeBudget,
    videos: &'static mut CandidateVideos,
    rng: &'static mut UserRng,
    response: &'static mut WatchResponse,
}

impl UserStateItem<'_, '_> {
    /// A new user for the slot: interests and budget, then the first offer.
    fn start_session(&mut self, model: &InterestEvolutionModel, episode_seed: u64) {
        let index = (u64::from(self.slot.0) << 32) | u64::from(self.generation.0);
        let seed = derive_seed(episode_seed, "interest_evolution user", index);
        self.rng.0 = Xoshiro256PlusPlus::seed_from_u64(seed);
        let rng = &mut self.rng.0;
        self.interests
            .0
            .iter_mut()
            .for_each(|x| *x = rng.random_range(-1.0..1.0));
        self.budget.0 = model.config().time_budget;
        self.draw_videos(model);
    }

    /// A fresh offer of `candidates` videos.
    fn draw_videos(&mut self, model: &InterestEvolutionModel) {
        let config = model.config();
        let k = config.clusters as usize;
        let videos = &mut *self.videos;
        let rng = &mut self.rng.0;
        for (cluster, quality) in videos.cluster.iter_mut().zip(&mut videos.quality) {
            let c = rng.random_range(0..k);
            *cluster = c as u16;
            let z: f64 = StandardNormal.sample(rng);
            *quality = model.cluster_means()[c] + config.quality_std * z;
        }
    }

    /// The user's score of video `i`.
    fn score(&self, model: &InterestEvolutionModel, i: usize) -> f64 {
        score(model, &self.interests.0, self.videos.cluster[i])
    }
}

/// `interests · features − min_normalizer` for a video of `cluster`
/// (its features are the cluster's one-hot vector).
fn score(model: &InterestEvolutionModel, interests: &[f64], cluster: u16) -> f64 {
    interests[usize::from(cluster)] - model.config().min_normalizer
}

/// Each user picks one video of its slate, or none, in proportion to the
/// scores; watching moves its interests and its budget; a user whose
/// budget is spent leaves and a new one takes the slot; every slot gets a
/// fresh offer.
pub fn watch_videos(videos: Res<Videos>, slates: Res<VideoSlates>, mut users: Query<UserState>) {
    let model = &videos.model;
    let c = model.config();
    let k = c.slate_size as usize;
    let no_click = c.no_click_mass - c.min_normalizer;
    let (x0, y0) = (c.alpha_x_intercept, c.alpha_y_intercept);
    let mut weights = vec![0.0; k];
    for mut user in &mut users {
        let slate = &slates.0[user.slot.0 as usize * k..][..k];
        let mut total = no_click;
        for (w, &i) in weights.iter_mut().zip(slate) {
            *w = user.score(model, i as usize);
            total += *w;
        }
        let mut u = user.rng.0.random::<f64>() * total;
        let chosen = weights.iter().position(|&w| {
            u -= w;
            u < 0.0
        });
        *user.response = WatchResponse::default();
        match chosen {
            Some(position) => {
                let video = slate[position] as usize;
                let expected_utility = weights[position];
                let flip: f64 = user.rng.0.random();
                // RecSim's update `α(x) · f · (f − x)` with `f` the one-hot
                // features moves the video's cluster alone, toward it with
                // probability `(x + 1)/2 · f`.
                let x = &mut user.interests.0[usize::from(user.videos.cluster[video])];
                let sign = if flip < (*x + 1.0) / 2.0 { 1.0 } else { -1.0 };
                let alpha = y0 - y0 / x0 * x.abs();
                *x = (*x + sign * alpha * (1.0 - *x)).clamp(-1.0, 1.0);
                let quality = user.videos.quality[video];
                let watch = user.budget.0.min(c.video_length);
                let utility =
                    c.user_quality_factor * expected_utility + c.document_quality_factor * quality;
                user.budget.0 += c.budget_alpha * watch * utility - watch;
                *user.response = WatchResponse {
                    clicked: Some(position as u8),
                    watch_time: watch,
                    quality,
                    ended: false,
                };
            }
            None => user.budget.0 -= c.step_penalty,
        }
        if user.budget.0 <= 0.0 {
            user.response.ended = true;
            user.generation.0 += 1;
            user.start_session(model, videos.episode_seed);
        } else {
            user.draw_videos(model);
        }
    }
}

/// RecSim's interest-evolution scenario as a [`BatchEnv`].
pub struct InterestEvolutionEnv {
    model: InterestEvolutionModel,
    ecs: crate::ecs::HandDriven,
    space: ObservationSpace,
    actions: ActionSpace,
    reader: QueryState<(
        &'static UserSlot,
        &'static Interests,
        &'static TimeBudget,
        &'static CandidateVideos,
        &'static WatchResponse,
    )>,
}

impl InterestEvolutionEnv {
    /// Builds the world: one user entity per slot, and the step schedule.
    pub fn new(model: InterestEvolutionModel) -> Self {
        let config = model.config().clone();
        let (n, c, k) = (
            config.concurrent_sessions as usize,
            config.candidates as usize,
            config.clusters as usize,
        );
        let mut world = World::new();
        world.insert_resource(Videos {
            model: model.clone(),
            episode_seed: 0,
        });
        world.insert_resource(VideoSlates(vec![0; n * config.slate_size as usize]));
        world.spawn_batch((0..config.concurrent_sessions).map(|slot| {
            (
                UserSlot(slot),
                UserGeneration(0),
                Interests(vec![0.0; k]),
                TimeBudget(0.0),
                CandidateVideos {
                    cluster: vec![0; c],
                    quality: vec![0.0; c],
                },
                UserRng(Xoshiro256PlusPlus::seed_from_u64(0)),
                WatchResponse::default(),
            )
        }));
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::default());
        schedule.add_systems(watch_videos);
        let mut features: Vec<Feature> = (0..k)
            .map(|j| Feature {
                name: interest_name(j),
                low: -1.0,
                high: 1.0,
                integer: false,
                suggested_bins: 1,
            })
            .collect();
        features.extend((0..c).flat_map(|i| {
            (0..k).map(move |j| Feature {
                name: candidate_name(i, j),
                low: 0.0,
                high: 1.0,
                integer: true,
                suggested_bins: 1,
            })
        }));
        features.push(Feature {
            name: "last_click_position",
            low: 0.0,
            high: config.slate_size as f32,
            integer: true,
            suggested_bins: 1,
        });
        features.push(Feature {
            name: "last_watch_time",
            low: 0.0,
            high: config.video_length as f32,
            integer: false,
            suggested_bins: 1,
        });
        let reader = world.query();
        Self {
            space: ObservationSpace { features },
            actions: ActionSpace::labelled((0..c).map(|i| format!("candidate {i}")).collect()),
            model,
            ecs: crate::ecs::HandDriven::new(world, schedule),
            reader,
        }
    }

    /// The model this env simulates.
    pub fn model(&self) -> &InterestEvolutionModel {
        &self.model
    }

    /// Each slot's user state, for tests: (interests, budget, qualities).
    pub fn user_states(&mut self) -> Vec<(Vec<f64>, f64, Vec<f64>)> {
        let mut out = vec![(Vec::new(), 0.0, Vec::new()); self.batch_size()];
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, interests, budget, videos, _)| {
                out[slot.0 as usize] = (interests.0.clone(), budget.0, videos.quality.clone());
            });
        out
    }

    fn observations(&mut self, out: &mut [Observation]) {
        let slate = self.model.config().slate_size as f32;
        let len = self.model.observation_len();
        let k = self.model.config().clusters as usize;
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, interests, _, videos, response)| {
                let f = &mut out[slot.0 as usize].features;
                f.clear();
                f.reserve_exact(len);
                f.extend(interests.0.iter().map(|&x| x as f32));
                f.resize(k + videos.cluster.len() * k, 0.0);
                for (i, &c) in videos.cluster.iter().enumerate() {
                    f[k + i * k + usize::from(c)] = 1.0;
                }
                f.push(response.clicked.map_or(slate, f32::from));
                f.push(response.watch_time as f32);
            });
    }
}

impl crate::ecs::Restart<InterestEvolutionModel> for UserStateItem<'_, '_> {
    fn restart(&mut self, model: &InterestEvolutionModel, seed: u64) {
        self.generation.0 = 0;
        *self.response = WatchResponse::default();
        self.start_session(model, seed);
    }
}

impl BatchEnv for InterestEvolutionEnv {
    crate::ecs::env_spaces!();

    fn slate_size(&self) -> usize {
        self.model.config().slate_size as usize
    }

    fn batch_size(&self) -> usize {
        self.model.config().concurrent_sessions as usize
    }

    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info) {
        self.ecs.world.resource_mut::<Videos>().episode_seed = seed;
        self.ecs.restart::<UserState, _>(&self.model, seed);
        crate::ecs::first_observations(self.batch_size(), METRICS.len(), |obs| {
            self.observations(obs)
        })
    }

    fn step(&mut self, slates: &[usize]) -> BatchStep {
        let (n, k) = (self.batch_size(), self.slate_size());
        let candidates = self.model.config().candidates as usize;
        assert_eq!(slates.len(), n * k, "one slate of {k} per slot");
        let shown = &mut self.ecs.world.resource_mut::<VideoSlates>().0;
        crate::ecs::take_actions(shown, slates, (candidates, "candidates"), |i| i as u32);
        let ticks = self.model.config().ticks;
        let episode_over = self.ecs.run_tick(ticks);
        let mut out = BatchStep::blank(n, k, METRICS.len(), 0.0, episode_over);
        let mut info = [0.0f64; METRICS.len()];
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, _, _, _, response)| {
                let s = slot.0 as usize;
                out.rewards[s] = response.watch_time;
                if let Some(position) = response.clicked {
                    out.item_rewards[s * k + usize::from(position)] = response.watch_time;
                }
                out.terminated[s] = response.ended;
                out.truncated[s] = episode_over && !response.ended;
                info[0] += 1.0;
                info[1] += f64::from(u8::from(response.clicked.is_some()));
                info[2] += response.watch_time;
                info[3] += response.quality;
                info[4] += f64::from(u8::from(response.ended));
            });
        out.info = info.to_vec();
        self.observations(&mut out.obs);
        out
    }

    /// Showing candidate `i` alone: clicked with probability
    /// `s_i / (s_i + s_none)`, then watched for `min(budget, length)`.
    fn expected_rewards(&mut self, out: &mut Vec<f64>) -> bool {
        let config = self.model.config();
        let c = config.candidates as usize;
        let no_click = config.no_click_mass - config.min_normalizer;
        out.clear();
        out.resize(self.batch_size() * c, 0.0);
        let model = &self.model;
        self.reader
            .iter(&self.ecs.world)
            .for_each(|(slot, interests, budget, videos, _)| {
                let watch = budget.0.min(config.video_length);
                let row = &mut out[slot.0 as usize * c..][..c];
                for (i, value) in row.iter_mut().enumerate() {
                    let s = score(model, &interests.0, videos.cluster[i]);
                    *value = if s + no_click > 0.0 {
                        s / (s + no_click) * watch
                    } else {
                        0.0
                    };
                }
            });
        true
    }
}
