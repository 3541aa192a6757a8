//! Arrival-rate patterns: shoppers arrive in period `t` as a Poisson stream
//! with mean `λ(t)` shoppers per period.

use crate::config::{ConfigError, at_least, probability};
use serde::{Deserialize, Serialize};

/// The expected number of arriving shoppers per period, `λ(t)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalRate {
    /// `λ(t) = rate`.
    Constant {
        /// Shoppers per period.
        rate: f64,
    },
    /// Weekly (or any periodic) seasonality:
    /// `λ(t) = base · (1 + amplitude · sin(2π (t + phase) / period))`.
    Weekly {
        /// Mean shoppers per period.
        base: f64,
        /// Relative swing, in `[0, 1]`.
        amplitude: f64,
        /// Length of a cycle in periods (7 for daily periods in a week).
        #[serde(default = "default_cycle")]
        period: f64,
        /// Shift of the cycle, in periods.
        #[serde(default)]
        phase: f64,
    },
    /// A linear ramp from `start` in the first period to `end` in the last.
    Ramp {
        /// Shoppers per period at `t = 0`.
        start: f64,
        /// Shoppers per period at `t = horizon − 1`.
        end: f64,
    },
    /// One rate per period, as listed; the list must be `horizon` long.
    Table {
        /// Shoppers per period, period by period.
        rates: Vec<f64>,
    },
}

fn default_cycle() -> f64 {
    7.0
}

impl ArrivalRate {
    /// `λ(t)` for period `t` of a season of `horizon` periods.
    pub fn rate(&self, t: u32, horizon: u32) -> f64 {
        match self {
            Self::Constant { rate } => *rate,
            Self::Weekly {
                base,
                amplitude,
                period,
                phase,
            } => {
                let angle = std::f64::consts::TAU * (f64::from(t) + phase) / period;
                base * (1.0 + amplitude * angle.sin())
            }
            Self::Ramp { start, end } => {
                if horizon <= 1 {
                    *start
                } else {
                    start + (end - start) * f64::from(t) / f64::from(horizon - 1)
                }
            }
            Self::Table { rates } => rates[t as usize],
        }
    }

    /// Checks the pattern's parameters; `max_rate` bounds λ(t) so a period's
    /// shoppers fit in memory. Keys are relative to the pattern's table.
    pub fn validate(&self, horizon: u32, max_rate: f64) -> Result<(), ConfigError> {
        let cap = |key: &str, v: f64| {
            if v > max_rate {
                return Err(ConfigError::new(
                    key,
                    format!("must be at most {max_rate} shoppers per period (found {v})"),
                ));
            }
            at_least(key, v, 0.0)
        };
        match self {
            Self::Constant { rate } => cap("rate", *rate),
            Self::Weekly {
                base,
                amplitude,
                period,
                phase,
            } => {
                cap("base", base * (1.0 + amplitude))?;
                probability("amplitude", *amplitude)?;
                crate::config::scale("period", *period, 1e6)?;
                crate::config::bounded("phase", *phase)?;
                Ok(())
            }
            Self::Ramp { start, end } => {
                cap("start", *start)?;
                cap("end", *end)
            }
            Self::Table { rates } => {
                if rates.len() != horizon as usize {
                    return Err(ConfigError::new(
                        "rates",
                        format!(
                            "must list one rate per period: {horizon} (found {})",
                            rates.len()
                        ),
                    ));
                }
                for (i, r) in rates.iter().enumerate() {
                    cap(&format!("rates[{i}]"), *r)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let w = ArrivalRate::Weekly {
            base: 10.0,
            amplitude: 0.5,
            period: 4.0,
            phase: 0.0,
        };
        assert!((w.rate(1, 8) - 15.0).abs() < 1e-12);
        assert!((w.rate(3, 8) - 5.0).abs() < 1e-12);
        let r = ArrivalRate::Ramp {
            start: 2.0,
            end: 6.0,
        };
        assert_eq!(r.rate(0, 5), 2.0);
        assert_eq!(r.rate(4, 5), 6.0);
        assert!(
            ArrivalRate::Table { rates: vec![1.0] }
                .validate(2, 1e6)
                .is_err()
        );
        assert!(
            ArrivalRate::Constant { rate: -1.0 }
                .validate(2, 1e6)
                .is_err()
        );
    }
}
