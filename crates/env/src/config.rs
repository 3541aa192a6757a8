//! Validation of scenario configs: every rule broken is reported with the key
//! that broke it, so the harness can name the file, the key and the rule.

use thiserror::Error;

/// A config value that breaks a rule.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("key `{key}`: {rule}")]
pub struct ConfigError {
    /// Dotted path of the offending key, relative to the config's table.
    pub key: String,
    /// The rule broken, with the value found.
    pub rule: String,
}

impl ConfigError {
    /// An error for `key` breaking `rule`.
    pub fn new(key: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            rule: rule.into(),
        }
    }

    /// The same error with `prefix.` put before its key.
    pub fn within(mut self, prefix: &str) -> Self {
        self.key = format!("{prefix}.{}", self.key);
        self
    }
}

/// Largest magnitude of a number in a scenario file that has no tighter
/// bound of its own (prices, costs, utilities, weights): 10⁹. Beyond it,
/// products of a few such numbers overflow and their exponentials are
/// infinite, so runs would report nonsense instead of failing.
pub const MAX_MAGNITUDE: f64 = 1e9;

/// Smallest positive value of a scale that divides (a standard deviation,
/// a temperature, a slope): 10⁻⁶. Below it, quotients overflow.
pub const MIN_SCALE: f64 = 1e-6;

/// Checks `value` lies in `[low, high]`.
pub fn within(key: &str, value: f64, low: f64, high: f64) -> Result<(), ConfigError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in [{low}, {high}] (found {value})"),
        ))
    }
}

/// Checks `value` is at least `min` and at most [`MAX_MAGNITUDE`].
pub fn at_least(key: &str, value: f64, min: f64) -> Result<(), ConfigError> {
    if value >= min && value <= MAX_MAGNITUDE {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a number ≥ {min} and ≤ {MAX_MAGNITUDE:e} (found {value})"),
        ))
    }
}

/// Checks `value` is strictly above `min` and at most [`MAX_MAGNITUDE`].
pub fn above(key: &str, value: f64, min: f64) -> Result<(), ConfigError> {
    if value > min && value <= MAX_MAGNITUDE {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a number > {min} and ≤ {MAX_MAGNITUDE:e} (found {value})"),
        ))
    }
}

/// Checks `value` is finite and at most [`MAX_MAGNITUDE`] in magnitude (a
/// utility, a log-mean, an initial value that may be negative).
pub fn bounded(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.abs() <= MAX_MAGNITUDE {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a number in [−{MAX_MAGNITUDE:e}, {MAX_MAGNITUDE:e}] (found {value})"),
        ))
    }
}

/// Checks a scale that divides: in [[`MIN_SCALE`], `max`].
pub fn scale(key: &str, value: f64, max: f64) -> Result<(), ConfigError> {
    if (MIN_SCALE..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in [{MIN_SCALE:e}, {max}] (found {value})"),
        ))
    }
}

/// Checks `value` is a probability, in `[0, 1]`.
pub fn probability(key: &str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a probability in [0, 1] (found {value})"),
        ))
    }
}

/// Checks `value` lies in `[0, 1]` (a discount, an exponent, a share).
pub fn unit_interval(key: &str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in [0, 1] (found {value})"),
        ))
    }
}

/// Checks `value` lies in `(0, 1]` (a step size, a fraction of a run).
pub fn fraction(key: &str, value: f64) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in (0, 1] (found {value})"),
        ))
    }
}

/// Checks a count is at least 1.
pub fn at_least_one(key: &str, value: u64) -> Result<(), ConfigError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(ConfigError::new(key, "must be at least 1 (found 0)"))
    }
}

/// Checks an integer lies in `[min, max]`.
pub fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be between {min} and {max} (found {value})"),
        ))
    }
}

/// Checks a population's shares — at least one segment, each share a
/// probability (`segments[i].share`), summing to 1 — and returns the
/// cumulative shares that [`pick`] samples from.
pub fn cumulative_shares(shares: &[f64]) -> Result<Vec<f64>, ConfigError> {
    if shares.is_empty() {
        return Err(ConfigError::new(
            "segments",
            "must list at least one segment",
        ));
    }
    let mut total = 0.0;
    let mut cumulative = Vec::with_capacity(shares.len());
    for (i, &share) in shares.iter().enumerate() {
        probability(&format!("segments[{i}].share"), share)?;
        total += share;
        cumulative.push(total);
    }
    if (total - 1.0).abs() > 1e-9 {
        return Err(ConfigError::new(
            "segments",
            format!("shares must sum to 1 (found {total})"),
        ));
    }
    Ok(cumulative)
}

/// The segment a uniform draw `u` in `[0, 1)` falls in, given cumulative shares.
pub fn pick(cumulative: &[f64], u: f64) -> usize {
    cumulative
        .iter()
        .position(|&c| u < c)
        .unwrap_or(cumulative.len() - 1)
}
