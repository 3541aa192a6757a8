//! The ad campaign as an env.

use super::*;

/// Names of the per-step metrics, in [`Step::info`] order.
pub const METRICS: [&str; 10] = [
    "opportunities",
    "wins",
    "spend",
    "clicks",
    "conversions",
    "value",
    "best_creative_impressions",
    "budget_left_at_end",
    "best_fixed_multiplier_return",
    "expected_reward",
];

/// The state an ads observation describes, feature by feature.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdsObservation {
    /// The period of the day, from 0.
    pub period: u32,
    /// Budget left.
    pub budget_left: f64,
    /// Spend so far today.
    pub spend: f64,
    /// Auctions won so far today.
    pub wins: u32,
    /// Share of the last period's auctions won.
    pub win_rate: f32,
    /// Spend per click in the last period (0 without clicks).
    pub cost_per_click: f64,
    /// Auctions won in the last period.
    pub last_wins: u32,
    /// Clicks in the last period.
    pub last_clicks: u32,
    /// Budget share left minus day share left.
    pub pace: f64,
}

impl AdsObservation {
    /// The observation, in the order of [`AdsEnv`]'s observation space.
    pub fn observation(&self) -> Observation {
        Observation {
            features: vec![
                self.period as f32,
                self.budget_left as f32,
                self.spend as f32,
                self.wins as f32,
                self.win_rate,
                self.cost_per_click as f32,
                self.last_wins as f32,
                self.last_clicks as f32,
                self.pace as f32,
            ],
        }
    }
}

/// The ad campaign as an [`Env`].
pub struct AdsEnv {
    model: AdsModel,
    world: World,
    schedule: Schedule,
    space: ObservationSpace,
    actions: ActionSpace,
    totals: (f64, u32),
    last: PeriodResult,
    done: bool,
    /// The references of the day, once it has ended.
    ended: Option<Hindsight>,
}

impl AdsEnv {
    /// The env's world, for tests that look inside it.
    #[cfg(test)]
    pub(crate) fn world(&self) -> &World {
        &self.world
    }

    /// Builds the world and schedule for a validated model.
    pub fn new(model: AdsModel) -> Self {
        let c = model.config().clone();
        let mut world = World::new();
        world.insert_resource(WorldRng(rng_from_seed(0)));
        world.insert_resource(Campaign {
            model: model.clone(),
            period: 0,
            budget_left: c.budget,
            multiplier: c.bid_multipliers[0],
            creative: 0,
            log: Vec::new(),
            day: model.plain_day(),
        });
        world.insert_resource(PeriodResult::default());
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::default());
        schedule.add_systems((arrive_opportunities, run_auctions).chain());
        let feature = |name, high: f32, integer, bins| Feature {
            name,
            low: 0.0,
            high,
            integer,
            suggested_bins: bins,
        };
        let space = ObservationSpace {
            features: vec![
                // Periods 0 to periods − 1 are decisions; the observation
                // after the last one reads `periods` (the day is over).
                feature("period", c.periods as f32, true, c.periods.min(24) as usize),
                feature("budget_left", c.budget as f32, false, 10),
                feature("spend", c.budget as f32, false, 1),
                feature("wins", 1e6, true, 1),
                feature("win_rate", 1.0, false, 1),
                feature("cost_per_click", c.conversion_value as f32, false, 1),
                feature("last_wins", 1e5, true, 1),
                feature("last_clicks", 1e5, true, 1),
                // Budget share left (0 to 1) minus day share left (0 to 1).
                Feature {
                    name: "pace",
                    low: -1.0,
                    high: 1.0,
                    integer: false,
                    suggested_bins: 20,
                },
            ],
        };
        let labels = c
            .bid_multipliers
            .iter()
            .flat_map(|m| (0..c.n_creatives).map(move |k| format!("λ={m} creative {k}")))
            .collect();
        Self {
            model,
            world,
            schedule,
            space,
            actions: ActionSpace::labelled(labels),
            totals: (0.0, 0),
            last: PeriodResult::default(),
            done: true,
            ended: None,
        }
    }

    /// The model this env simulates.
    pub fn model(&self) -> &AdsModel {
        &self.model
    }

    /// The hindsight references of the day so far (the whole day once it ended).
    pub fn hindsight(&self) -> Hindsight {
        let campaign = self.world.resource::<Campaign>();
        hindsight(&self.model, &campaign.log, campaign.day.budget)
    }

    /// Budget share left minus day share left: positive when behind the even
    /// schedule (underspending), negative when ahead of it.
    fn pace(&self, period: u32, budget_left: f64, budget: f64) -> f64 {
        let c = self.model.config();
        budget_left / budget - f64::from(c.periods - period) / f64::from(c.periods)
    }

    fn observe(&self) -> Observation {
        let campaign = self.world.resource::<Campaign>();
        let last = &self.last;
        let win_rate = if last.opportunities > 0 {
            last.wins as f32 / last.opportunities as f32
        } else {
            0.0
        };
        let cost_per_click = if last.clicks > 0 {
            last.spend / f64::from(last.clicks)
        } else {
            0.0
        };
        AdsObservation {
            period: campaign.period,
            budget_left: campaign.budget_left,
            spend: self.totals.0,
            wins: self.totals.1,
            win_rate,
            cost_per_click,
            last_wins: last.wins,
            last_clicks: last.clicks,
            pace: self.pace(campaign.period, campaign.budget_left, campaign.day.budget),
        }
        .observation()
    }
}

impl Env for AdsEnv {
    crate::ecs::env_spaces!();

    fn reset(&mut self, seed: u64) -> (Observation, Info) {
        let mut rng = rng_from_seed(seed);
        let day = self.model.draw_day(&mut rng);
        self.world.resource_mut::<WorldRng>().0 = rng;
        let mut campaign = self.world.resource_mut::<Campaign>();
        campaign.period = 0;
        campaign.budget_left = day.budget;
        campaign.day = day;
        campaign.log.clear();
        self.totals = (0.0, 0);
        self.last = PeriodResult::default();
        self.done = false;
        self.ended = None;
        (self.observe(), vec![0.0; METRICS.len()])
    }

    fn step(&mut self, action: usize) -> Step {
        assert!(!self.done, "step called on a finished episode; call reset");
        let n_creatives = self.model.config().n_creatives as usize;
        let multiplier = self.model.config().bid_multipliers[action / n_creatives];
        {
            let mut campaign = self.world.resource_mut::<Campaign>();
            campaign.multiplier = multiplier;
            campaign.creative = action % n_creatives;
        }
        self.schedule.run(&mut self.world);
        // A schedule run by hand (not by a bevy App) must clear the
        // removed-component records of despawned entities itself, or they
        // pile up for as long as the env lives.
        self.world.clear_trackers();
        let result = *self.world.resource::<PeriodResult>();
        let mut campaign = self.world.resource_mut::<Campaign>();
        campaign.period += 1;
        let over = campaign.period == self.model.config().periods;
        let budget_left = campaign.budget_left;
        self.totals.0 += result.spend;
        self.totals.1 += result.wins;
        self.last = result;
        self.done = over;
        if over {
            self.ended = Some(self.hindsight());
        }
        let best_fixed = self.ended.map_or(0.0, |h| h.best_fixed);
        Step {
            obs: self.observe(),
            reward: result.reward,
            terminated: over,
            truncated: false,
            info: vec![
                f64::from(result.opportunities),
                f64::from(result.wins),
                result.spend,
                f64::from(result.clicks),
                f64::from(result.conversions),
                result.value,
                f64::from(result.best_creative_impressions),
                if over { budget_left } else { 0.0 },
                best_fixed,
                result.expected_reward,
            ],
        }
    }

    /// The hindsight optimum of the finished day.
    fn episode_reference(&self) -> Option<f64> {
        self.ended.map(|h| h.optimum)
    }
}
