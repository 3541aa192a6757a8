//! The campaign world: opportunity records, resources and the systems of a
//! period (opportunities arrive → auctions run).

use super::*;

/// One opportunity as it arrived: what the hindsight references replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpportunityRecord {
    /// Period of arrival.
    pub period: u32,
    /// Segment of the shopper.
    pub segment: u16,
    /// Highest competing bid.
    pub competing: f64,
    /// Uniform draw deciding a click (clicked when below the click rate).
    pub click_draw: f32,
    /// Uniform draw deciding a conversion.
    pub conversion_draw: f32,
}

/// An opportunity's auction data.
#[derive(Component, Debug, Clone, Copy)]
pub struct Opportunity {
    /// Arrival order within the period: auctions run in this order.
    pub arrival: u32,
    /// What the auction and the shopper will do.
    pub record: OpportunityRecord,
}

/// The campaign's state.
#[derive(Resource, Debug, Clone)]
pub struct Campaign {
    /// The model.
    pub model: AdsModel,
    /// The period being simulated.
    pub period: u32,
    /// Budget left.
    pub budget_left: f64,
    /// This period's bid multiplier.
    pub multiplier: f64,
    /// This period's creative.
    pub creative: usize,
    /// Every opportunity of the day so far, in arrival order.
    pub log: Vec<OpportunityRecord>,
    /// The day's conditions.
    pub day: DayConditions,
}

/// What happened in the last period.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct PeriodResult {
    /// Opportunities that arrived.
    pub opportunities: u32,
    /// Auctions won.
    pub wins: u32,
    /// Money spent.
    pub spend: f64,
    /// Clicks.
    pub clicks: u32,
    /// Conversions.
    pub conversions: u32,
    /// Reward earned.
    pub reward: f64,
    /// Conversion value earned.
    pub value: f64,
    /// The expected reward of the impressions won, each with the creative
    /// shown: what the day's expected-value references bound.
    pub expected_reward: f64,
    /// Won impressions that showed the segment's best creative.
    pub best_creative_impressions: u32,
}

/// This period's opportunities arrive: a Poisson number, each with a segment,
/// a competing bid and its click and conversion draws, taken in arrival order
/// from the world's generator. Opportunity entities are pooled like shoppers.
pub fn arrive_opportunities(
    mut rng: ResMut<WorldRng>,
    mut campaign: ResMut<Campaign>,
    mut pool: Query<(Entity, &mut Opportunity, &mut Shopper)>,
    mut commands: Commands,
) {
    let model = campaign.model.clone();
    let c = model.config();
    let t = campaign.period;
    let rate = model.opportunity_rate(t, &campaign.day);
    let count = if rate > 0.0 {
        Poisson::new(rate).map_or(0.0, |d| d.sample(&mut rng.0)) as usize
    } else {
        0
    };
    let scale = model.competition_scale(t, &campaign.day);
    let first = campaign.log.len();
    for _ in 0..count {
        let segment = crate::config::pick(&model.cumulative_shares, rng.0.random());
        let z: f64 = StandardNormal.sample(&mut rng.0);
        let record = OpportunityRecord {
            period: t,
            segment: segment as u16,
            competing: (c.competition.mu + c.competition.sigma * z).exp() * scale,
            click_draw: rng.0.random(),
            conversion_draw: rng.0.random(),
        };
        campaign.log.push(record);
    }
    let mut next = 0;
    pool.iter_mut()
        .for_each(|(entity, mut opportunity, mut shopper)| {
            if next < count {
                let record = campaign.log[first + next];
                *opportunity = Opportunity {
                    arrival: next as u32,
                    record,
                };
                shopper.segment = record.segment;
                next += 1;
            } else {
                commands.entity(entity).despawn();
            }
        });
    let fresh: Vec<(Opportunity, Shopper)> = (next..count)
        .map(|k| {
            let record = campaign.log[first + k];
            (
                Opportunity {
                    arrival: k as u32,
                    record,
                },
                Shopper {
                    segment: record.segment,
                },
            )
        })
        .collect();
    commands.spawn_batch(fresh);
}

/// Runs the period's auctions in arrival order (budget makes order matter):
/// bid `v̂_s / λ`, skip any auction whose payment would overspend, and on a
/// win show the period's creative.
pub fn run_auctions(
    mut campaign: ResMut<Campaign>,
    mut result: ResMut<PeriodResult>,
    opportunities: Query<&Opportunity>,
    mut order: Local<Vec<Opportunity>>,
) {
    order.clear();
    opportunities.iter().for_each(|o| order.push(*o));
    order.sort_by_key(|o| o.arrival);
    let model = campaign.model.clone();
    let c = model.config();
    *result = PeriodResult {
        opportunities: order.len() as u32,
        ..PeriodResult::default()
    };
    for o in order.iter() {
        let s = o.record.segment as usize;
        let bid = model.estimated_value(s) / campaign.multiplier;
        let Some(payment) = auction_outcome(c.auction, bid, o.record.competing, c.reserve_price)
        else {
            continue;
        };
        if payment > campaign.budget_left {
            continue;
        }
        campaign.budget_left -= payment;
        result.wins += 1;
        result.spend += payment;
        let (click, conversion, reward) = model.impression_reward(&o.record, campaign.creative);
        result.clicks += u32::from(click);
        result.conversions += u32::from(conversion);
        result.reward += reward;
        result.expected_reward += model.expected_impression_reward(s, campaign.creative);
        if conversion {
            result.value += c.conversion_value;
        }
        if campaign.creative == model.best_creative(s) {
            result.best_creative_impressions += 1;
        }
    }
}
