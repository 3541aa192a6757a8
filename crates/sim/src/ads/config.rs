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
}

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
        if self.budget > 1e12 {
            return Err(ConfigError::new(
                "budget",
                format!("must be at most 1e12 (found {})", self.budget),
            ));
        }
        in_range("periods", self.periods.into(), 1, 10_000)?;
        at_least("reserve_price", self.reserve_price, 0.0)?;
        if self.bid_multipliers.is_empty() {
            return Err(ConfigError::new(
                "bid_multipliers",
                "must list at least one multiplier",
            ));
        }
        for (i, &m) in self.bid_multipliers.iter().enumerate() {
            above(&format!("bid_multipliers[{i}]"), m, 0.0)?;
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
        if !c.mu.is_finite() {
            return Err(ConfigError::new(
                "competition.mu",
                format!("must be finite (found {})", c.mu),
            ));
        }
        above("competition.sigma", c.sigma, 0.0)?;
        if !(0.0..1.0).contains(&c.daily_amplitude) {
            return Err(ConfigError::new(
                "competition.daily_amplitude",
                format!("must be in [0, 1) (found {})", c.daily_amplitude),
            ));
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

    /// The highest competing bid's scale in period `t`.
    pub(super) fn competition_scale(&self, t: u32) -> f64 {
        let c = &self.config;
        1.0 + c.competition.daily_amplitude
            * (std::f64::consts::TAU * f64::from(t) / f64::from(c.periods)).sin()
    }
}
