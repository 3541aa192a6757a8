//! Who the shoppers are: willingness-to-pay distributions and a mixture of
//! population segments.
//!
//! Each distribution has an exact survival function `S(p) = P(wtp ≥ p)`: the
//! probability that an arriving shopper buys at posted price `p`. Oracles use it
//! to compute optimal prices exactly, and tests compare simulated purchase
//! rates against it.

use crate::config::{ConfigError, above};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use shoplab_env::seed::SimRng;
use std::borrow::Cow;

/// The distribution of a shopper's willingness to pay (WTP).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Wtp {
    /// Logit demand: a shopper's utility of buying at price `p` is
    /// `alpha − beta·p + ε` with `ε` standard logistic, and it buys when the
    /// utility is positive, so `S(p) = 1 / (1 + e^−(alpha − beta·p))`.
    /// Equivalently `wtp = (alpha + ε) / beta`.
    Logit {
        /// Base utility of the product.
        alpha: f64,
        /// Price sensitivity: utility lost per currency unit, > 0.
        beta: f64,
    },
    /// `ln(wtp) ~ Normal(mu, sigma²)`, so `S(p) = ½ erfc((ln p − mu) / (sigma √2))`.
    Lognormal {
        /// Mean of `ln(wtp)`; the median WTP is `e^mu`.
        mu: f64,
        /// Standard deviation of `ln(wtp)`, > 0.
        sigma: f64,
    },
    /// `wtp ~ Uniform(low, high)`, so `S(p) = (high − p) / (high − low)` clamped to `[0, 1]`.
    Uniform {
        /// Lowest WTP, ≥ 0.
        low: f64,
        /// Highest WTP, > low.
        high: f64,
    },
}

impl Wtp {
    /// `P(wtp ≥ price)`.
    pub fn survival(&self, price: f64) -> f64 {
        match *self {
            Self::Logit { alpha, beta } => 1.0 / (1.0 + (-(alpha - beta * price)).exp()),
            Self::Lognormal { mu, sigma } => {
                if price <= 0.0 {
                    1.0
                } else {
                    0.5 * libm::erfc((price.ln() - mu) / (sigma * std::f64::consts::SQRT_2))
                }
            }
            Self::Uniform { low, high } => ((high - price) / (high - low)).clamp(0.0, 1.0),
        }
    }

    /// Draws one shopper's WTP.
    pub fn sample(&self, rng: &mut SimRng) -> f64 {
        match *self {
            Self::Logit { alpha, beta } => {
                // Inverse CDF of the standard logistic; u in (0, 1) exclusive.
                let u = open_unit(rng);
                (alpha + (u / (1.0 - u)).ln()) / beta
            }
            Self::Lognormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
            Self::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // Willingness to pay is in money: e^mu and spreads far beyond any
        // price grid only make purchases certain or impossible.
        match *self {
            Self::Logit { alpha, beta } => {
                crate::config::within("alpha", alpha, -1e3, 1e3)?;
                crate::config::scale("beta", beta, 1e3)
            }
            Self::Lognormal { mu, sigma } => {
                crate::config::within("mu", mu, -30.0, 30.0)?;
                crate::config::scale("sigma", sigma, 10.0)
            }
            Self::Uniform { low, high } => {
                crate::config::at_least("low", low, 0.0)?;
                above("high", high, low)
            }
        }
    }
}

/// A uniform draw in the open interval (0, 1): 53 random bits, offset by half a step.
fn open_unit(rng: &mut SimRng) -> f64 {
    ((rng.random::<u64>() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// One segment of the shopper population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Share of arriving shoppers from this segment, in `[0, 1]`; shares sum to 1.
    pub share: f64,
    /// The share in the last period of a season, when the mix changes over
    /// it (enthusiasts early, bargain hunters late): the share moves
    /// linearly from `share` in the first period to `share_end` in the last.
    /// Where any segment sets it, every segment must, and these shares sum to 1 too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_end: Option<f64>,
    /// The segment's willingness-to-pay distribution.
    pub wtp: Wtp,
}

/// A validated mixture of segments, ready to sample from.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    segments: Vec<Segment>,
    cumulative: Vec<f64>,
    /// Shares in the last period, where the mix changes over the season.
    end_shares: Option<Vec<f64>>,
}

impl Population {
    /// Validates `segments` (keys relative to the list, as `segments[i].share`).
    pub fn new(segments: &[Segment]) -> Result<Self, ConfigError> {
        if segments.len() > usize::from(u16::MAX) {
            return Err(ConfigError::new(
                "segments",
                format!("must list at most {} segments", u16::MAX),
            ));
        }
        let shares: Vec<f64> = segments.iter().map(|s| s.share).collect();
        let cumulative = crate::config::cumulative_shares(&shares)?;
        for (i, s) in segments.iter().enumerate() {
            s.wtp
                .validate()
                .map_err(|e| e.within(&format!("segments[{i}].wtp")))?;
        }
        let end_shares = if segments.iter().any(|s| s.share_end.is_some()) {
            let mut ends = Vec::with_capacity(segments.len());
            for (i, s) in segments.iter().enumerate() {
                let key = format!("segments[{i}].share_end");
                let end = s.share_end.ok_or_else(|| {
                    ConfigError::new(
                        &key,
                        "is missing: where one segment sets `share_end`, every segment must",
                    )
                })?;
                crate::config::probability(&key, end)?;
                ends.push(end);
            }
            let total: f64 = ends.iter().sum();
            if (total - 1.0).abs() > 1e-9 {
                return Err(ConfigError::new(
                    "segments",
                    format!("`share_end` values must sum to 1 (found {total})"),
                ));
            }
            Some(ends)
        } else {
            None
        };
        Ok(Self {
            segments: segments.to_vec(),
            cumulative,
            end_shares,
        })
    }

    /// Whether the mix of segments changes over the season.
    pub fn changes(&self) -> bool {
        self.end_shares.is_some()
    }

    /// Cumulative shares in period `t` of a season of `horizon` periods:
    /// the segment of a shopper arriving then is [`pick`](crate::config::pick)ed from them.
    pub fn cumulative_at(&self, t: u32, horizon: u32) -> Cow<'_, [f64]> {
        let Some(ends) = &self.end_shares else {
            return Cow::Borrowed(&self.cumulative);
        };
        let mut total = 0.0;
        Cow::Owned(
            self.segments
                .iter()
                .zip(ends)
                .map(|(s, &end)| {
                    total += mixed(s.share, end, t, horizon);
                    total
                })
                .collect(),
        )
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Probability that a shopper arriving in period `t` of `horizon`
    /// buys at `price`: `Σ_k share_k(t) · S_k(price)`.
    pub fn purchase_probability(&self, price: f64, t: u32, horizon: u32) -> f64 {
        match &self.end_shares {
            None => self
                .segments
                .iter()
                .map(|s| s.share * s.wtp.survival(price))
                .sum(),
            Some(ends) => self
                .segments
                .iter()
                .zip(ends)
                .map(|(s, &end)| mixed(s.share, end, t, horizon) * s.wtp.survival(price))
                .sum(),
        }
    }

    /// Draws a shopper from the mix `cumulative` (from
    /// [`cumulative_at`](Self::cumulative_at)): its segment index and its WTP.
    pub fn sample(&self, cumulative: &[f64], rng: &mut SimRng) -> (u16, f64) {
        let k = if self.segments.len() == 1 {
            0
        } else {
            crate::config::pick(cumulative, rng.random())
        };
        (k as u16, self.segments[k].wtp.sample(rng))
    }
}

/// A share moving linearly from `start` in period 0 to `end` in period
/// `horizon − 1` (the start in a season of one period).
fn mixed(start: f64, end: f64, t: u32, horizon: u32) -> f64 {
    if horizon <= 1 {
        start
    } else {
        start + (end - start) * f64::from(t) / f64::from(horizon - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::seed::rng_from_seed;

    /// Empirical survival from `n` draws lies within 4 binomial standard errors
    /// of the exact `S(p)` (a false alarm has probability ≈ 6e-5 per check).
    fn assert_survival_matches(wtp: Wtp, prices: &[f64]) {
        let mut rng = rng_from_seed(3);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| wtp.sample(&mut rng)).collect();
        for &p in prices {
            let q = wtp.survival(p);
            let hat = draws.iter().filter(|&&w| w >= p).count() as f64 / n as f64;
            let se = (q * (1.0 - q) / n as f64).sqrt().max(1e-9);
            assert!((hat - q).abs() < 4.0 * se, "{wtp:?} at {p}: {hat} vs {q}");
        }
    }

    #[test]
    fn samplers_match_survival_functions() {
        let prices = [0.5, 1.0, 2.0, 3.0];
        assert_survival_matches(
            Wtp::Logit {
                alpha: 2.0,
                beta: 1.0,
            },
            &prices,
        );
        assert_survival_matches(
            Wtp::Lognormal {
                mu: 0.5,
                sigma: 0.6,
            },
            &prices,
        );
        assert_survival_matches(
            Wtp::Uniform {
                low: 0.5,
                high: 3.5,
            },
            &prices,
        );
    }

    #[test]
    fn logit_closed_form() {
        let w = Wtp::Logit {
            alpha: 2.0,
            beta: 1.0,
        };
        assert!((w.survival(2.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn shares_must_sum_to_one() {
        let seg = |share| Segment {
            name: String::new(),
            share,
            share_end: None,
            wtp: Wtp::Uniform {
                low: 0.0,
                high: 1.0,
            },
        };
        assert!(Population::new(&[seg(0.5), seg(0.5)]).is_ok());
        let e = Population::new(&[seg(0.5), seg(0.4)]).unwrap_err();
        assert_eq!(e.key, "segments");
        let e = Population::new(&[seg(1.5)]).unwrap_err();
        assert_eq!(e.key, "segments[0].share");
    }
}
