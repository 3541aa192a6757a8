//! The `[ads]` table: settings, their rules, and the validated model.

use super::*;

/// The auction format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuctionKind {
    /// The winner pays its own bid.
    FirstPrice,
    /// The winner pays the larger of the highest competing bid and the reserve.
    SecondPrice,
}

/// What the advertiser is rewarded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdsReward {
    /// Conversion value won.
    Value,
    /// Clicks won.
    Clicks,
}

/// The highest competing bid: `exp(N(mu, sigma²)) · (1 + daily_amplitude · sin(2π t / periods))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompetitionConfig {
    /// Mean of the log of the competing bid.
    pub mu: f64,
    /// Standard deviation of the log of the competing bid, > 0.
    pub sigma: f64,
    /// Relative daily swing of competing bids, in `[0, 1)`.
    #[serde(default)]
    pub daily_amplitude: f64,
}

/// How days differ: each day draws its conditions when it starts, from the
/// env's seeded generator, so no two days ask for the same pacing. All
/// default to 0 (every day alike).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayVariation {
    /// The day's budget is `budget · e^−u`, `u` uniform in `[0, budget]`
    /// (so `budget` is the largest), in `[0, 5]`.
    #[serde(default)]
    pub budget: f64,
    /// The day's opportunities are scaled by `e^u`, `u` uniform in
    /// `[−traffic, traffic]`, in `[0, 3]`.
    #[serde(default)]
    pub traffic: f64,
    /// The day's competing bids are scaled by `e^u`, `u` uniform in
    /// `[−competition, competition]`, in `[0, 3]`.
    #[serde(default)]
    pub competition: f64,
    /// The day's traffic pattern is shifted by a whole number of periods,
    /// uniform in `[−peak_shift, peak_shift]` (its peak comes earlier or later).
    #[serde(default)]
    pub peak_shift: u32,
}

/// The conditions of one day (all 1 and 0 without [`DayVariation`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayConditions {
    /// The day's budget.
    pub budget: f64,
    /// Factor on the expected opportunities.
    pub traffic: f64,
    /// Factor on competing bids.
    pub competition: f64,
    /// Shift of the traffic pattern, in periods.
    pub shift: i64,
}

/// One segment of the shoppers behind the impressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdSegment {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Share of opportunities from this segment, in `[0, 1]`; shares sum to 1.
    pub share: f64,
    /// Click probability of each creative for this segment.
    pub click_rates: Vec<f64>,
}

/// The `[ads]` table of a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsConfig {
    /// The day's budget, in currency, > 0.
    pub budget: f64,
    /// Periods in the day (96 for 15 minutes).
    pub periods: u32,
    /// First or second price.
    pub auction: AuctionKind,
    /// The lowest price an impression sells for, ≥ 0.
    #[serde(default)]
    pub reserve_price: f64,
    /// The grid of bid multipliers λ (bid = estimated value ÷ λ), strictly increasing, > 0.
    pub bid_multipliers: Vec<f64>,
    /// Creatives the advertiser can show.
    pub n_creatives: u32,
    /// What counts as reward.
    pub reward: AdsReward,
    /// Probability that a click converts, in `[0, 1]`.
    pub conversion_rate: f64,
    /// Value of a conversion, > 0.
    pub conversion_value: f64,
    /// Expected opportunities per period.
    pub opportunities: ArrivalRate,
    /// Competing bids.
    pub competition: CompetitionConfig,
    /// The segments.
    pub segments: Vec<AdSegment>,
    /// How days differ (by default they do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_variation: Option<DayVariation>,
}

/// Most bid multipliers (each is a baseline candidate, played on
/// calibration episodes before every run).
pub const MAX_MULTIPLIERS: usize = 1_000;

/// Most opportunities expected in one period.
pub const MAX_OPPORTUNITIES: f64 = 100_000.0;

/// A validated ads config.
#[derive(Debug, Clone, PartialEq)]
pub struct AdsModel {
    pub(super) config: AdsConfig,
    pub(super) cumulative_shares: Vec<f64>,
    /// `v̂_s`, the advertiser's value estimate per segment.
    pub(super) estimates: Vec<f64>,
}

impl AdsConfig {
    /// Checks every rule; keys are relative to `[ads]`.
    pub fn validate(&self) -> Result<AdsModel, ConfigError> {
        above("budget", self.budget, 0.0)?;
        in_range("periods", self.periods.into(), 1, 10_000)?;
        at_least("reserve_price", self.reserve_price, 0.0)?;
        if self.bid_multipliers.is_empty() || self.bid_multipliers.len() > MAX_MULTIPLIERS {
            return Err(ConfigError::new(
                "bid_multipliers",
                format!(
                    "must list between 1 and {MAX_MULTIPLIERS} multipliers (found {})",
                    self.bid_multipliers.len()
                ),
            ));
        }
        for (i, &m) in self.bid_multipliers.iter().enumerate() {
            crate::config::scale(&format!("bid_multipliers[{i}]"), m, 1e6)?;
            if i > 0 && m <= self.bid_multipliers[i - 1] {
                return Err(ConfigError::new(
                    format!("bid_multipliers[{i}]"),
                    format!(
                        "multipliers must be strictly increasing ({} then {m})",
                        self.bid_multipliers[i - 1]
                    ),
                ));
            }
        }
        in_range("n_creatives", self.n_creatives.into(), 1, 64)?;
        probability("conversion_rate", self.conversion_rate)?;
        above("conversion_value", self.conversion_value, 0.0)?;
        self.opportunities
            .validate(self.periods, MAX_OPPORTUNITIES)
            .map_err(|e| e.within("opportunities"))?;
        let c = &self.competition;
        // Competing bids are e^(mu + sigma·z), in money.
        crate::config::within("competition.mu", c.mu, -30.0, 30.0)?;
        crate::config::scale("competition.sigma", c.sigma, 10.0)?;
        if !(0.0..1.0).contains(&c.daily_amplitude) {
            return Err(ConfigError::new(
                "competition.daily_amplitude",
                format!("must be in [0, 1) (found {})", c.daily_amplitude),
            ));
        }
        if let Some(d) = &self.day_variation {
            for (key, v, high) in [
                ("day_variation.budget", d.budget, 5.0),
                ("day_variation.traffic", d.traffic, 3.0),
                ("day_variation.competition", d.competition, 3.0),
            ] {
                if !(0.0..=high).contains(&v) {
                    return Err(ConfigError::new(
                        key,
                        format!("must be in [0, {high}] (found {v})"),
                    ));
                }
            }
            in_range(
                "day_variation.peak_shift",
                d.peak_shift.into(),
                0,
                self.periods.into(),
            )?;
            let peak = (0..self.periods)
                .map(|t| self.opportunities.rate(t, self.periods))
                .fold(0.0, f64::max)
                * d.traffic.exp();
            if peak > MAX_OPPORTUNITIES {
                return Err(ConfigError::new(
                    "day_variation.traffic",
                    format!(
                        "the busiest day's busiest period expects {peak:.0} opportunities, \
                         above the limit of {MAX_OPPORTUNITIES}"
                    ),
                ));
            }
        }
        let shares: Vec<f64> = self.segments.iter().map(|s| s.share).collect();
        let cumulative_shares = crate::config::cumulative_shares(&shares)?;
        let mut estimates = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            if s.click_rates.len() != self.n_creatives as usize {
                return Err(ConfigError::new(
                    format!("segments[{i}].click_rates"),
                    format!(
                        "must list one click rate per creative: {} (found {})",
                        self.n_creatives,
                        s.click_rates.len()
                    ),
                ));
            }
            for (j, &r) in s.click_rates.iter().enumerate() {
                probability(&format!("segments[{i}].click_rates[{j}]"), r)?;
            }
            let mean_ctr = s.click_rates.iter().sum::<f64>() / s.click_rates.len() as f64;
            estimates.push(self.conversion_rate * self.conversion_value * mean_ctr);
        }
        let highest_bid = estimates.iter().copied().fold(0.0, f64::max) / self.bid_multipliers[0];
        if self.reserve_price > highest_bid {
            return Err(ConfigError::new(
                "reserve_price",
                format!(
                    "{} is above every possible bid (the highest is {highest_bid:.4}: the best \
                     segment's estimated value ÷ the smallest multiplier)",
                    self.reserve_price
                ),
            ));
        }
        Ok(AdsModel {
            config: self.clone(),
            cumulative_shares,
            estimates,
        })
    }
}

impl AdsModel {
    /// The validated config.
    pub fn config(&self) -> &AdsConfig {
        &self.config
    }

    /// The advertiser's value estimate of an impression from segment `s`.
    pub fn estimated_value(&self, segment: usize) -> f64 {
        self.estimates[segment]
    }

    /// The creative with the highest click rate for segment `s` (lowest index among ties).
    pub fn best_creative(&self, segment: usize) -> usize {
        let rates = &self.config.segments[segment].click_rates;
        (0..rates.len()).fold(0, |best, c| if rates[c] > rates[best] { c } else { best })
    }

    /// The creative with the highest expected reward over the segment mix
    /// (lowest index among ties): the one to show when the segment is not
    /// known in advance.
    pub fn best_creative_overall(&self) -> usize {
        let n = self.config.n_creatives as usize;
        let value = |k: usize| -> f64 {
            self.config
                .segments
                .iter()
                .map(|s| s.share * s.click_rates[k])
                .sum()
        };
        (0..n).fold(0, |best, k| if value(k) > value(best) { k } else { best })
    }

    /// The reward of an impression with the given draws, segment and creative.
    pub fn impression_reward(&self, o: &OpportunityRecord, creative: usize) -> (bool, bool, f64) {
        let c = &self.config;
        let click = f64::from(o.click_draw) < c.segments[o.segment as usize].click_rates[creative];
        let conversion = click && f64::from(o.conversion_draw) < c.conversion_rate;
        let reward = match c.reward {
            AdsReward::Value => {
                if conversion {
                    c.conversion_value
                } else {
                    0.0
                }
            }
            AdsReward::Clicks => f64::from(u8::from(click)),
        };
        (click, conversion, reward)
    }

    /// The expected reward of an impression of segment `s` with creative `c`:
    /// `ctr(s, c) · conversion_rate · conversion_value` (value), or `ctr(s, c)` (clicks).
    pub fn expected_impression_reward(&self, segment: usize, creative: usize) -> f64 {
        let c = &self.config;
        let ctr = c.segments[segment].click_rates[creative];
        match c.reward {
            AdsReward::Value => ctr * c.conversion_rate * c.conversion_value,
            AdsReward::Clicks => ctr,
        }
    }

    /// The highest competing bid's scale in period `t` of a day with `day`'s conditions.
    pub(super) fn competition_scale(&self, t: u32, day: &DayConditions) -> f64 {
        let c = &self.config;
        (1.0 + c.competition.daily_amplitude
            * (std::f64::consts::TAU * f64::from(t) / f64::from(c.periods)).sin())
            * day.competition
    }

    /// Expected opportunities in period `t` of a day with `day`'s conditions:
    /// the pattern, shifted and wrapped around the day, times the traffic factor.
    pub(super) fn opportunity_rate(&self, t: u32, day: &DayConditions) -> f64 {
        let c = &self.config;
        let periods = i64::from(c.periods);
        let shifted = (i64::from(t) - day.shift).rem_euclid(periods) as u32;
        c.opportunities.rate(shifted, c.periods) * day.traffic
    }

    /// An ordinary day: the configured budget, no factors, no shift.
    pub fn plain_day(&self) -> DayConditions {
        DayConditions {
            budget: self.config.budget,
            traffic: 1.0,
            competition: 1.0,
            shift: 0,
        }
    }

    /// Draws a day's conditions (an ordinary day, drawing nothing, without
    /// [`DayVariation`]).
    pub fn draw_day(&self, rng: &mut SimRng) -> DayConditions {
        let Some(d) = self.config.day_variation else {
            return self.plain_day();
        };
        let mut uniform = |half: f64| -> f64 { half * (2.0 * rng.random::<f64>() - 1.0) };
        let budget = self.config.budget * (-(d.budget * (0.5 + 0.5 * uniform(1.0)))).exp();
        let traffic = uniform(d.traffic).exp();
        let competition = uniform(d.competition).exp();
        let span = 2 * u64::from(d.peak_shift) + 1;
        let shift = (rng.random::<u64>() % span) as i64 - i64::from(d.peak_shift);
        DayConditions {
            budget,
            traffic,
            competition,
            shift,
        }
    }
}
