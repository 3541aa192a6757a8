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

/// Checks `value` is finite and at least `min`.
pub fn at_least(key: &str, value: f64, min: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= min {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a finite number ≥ {min} (found {value})"),
        ))
    }
}

/// Checks `value` is finite and strictly above `min`.
pub fn above(key: &str, value: f64, min: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > min {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a finite number > {min} (found {value})"),
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
