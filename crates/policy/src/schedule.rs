//! Exploration schedules.

use crate::PolicyError;
use serde::{Deserialize, Serialize};

/// A value that moves linearly from `start` to `end` over the first
/// `decay_fraction` of training episodes and stays at `end` after:
/// `v(e) = start + (end − start) · min(1, e / (decay_fraction · total))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSchedule {
    /// Value at the first episode.
    pub start: f64,
    /// Value once the decay is over.
    pub end: f64,
    /// Share of the training episodes over which the value decays, in `(0, 1]`.
    pub decay_fraction: f64,
}

impl LinearSchedule {
    /// The value at `episode` of `total`.
    pub fn value(&self, episode: usize, total: usize) -> f64 {
        let span = (self.decay_fraction * total as f64).max(1.0);
        let progress = (episode as f64 / span).min(1.0);
        self.start + (self.end - self.start) * progress
    }

    /// Checks `start` and `end` are probabilities and the fraction is in `(0, 1]`.
    pub fn validate_probability(&self, key: &str) -> Result<(), PolicyError> {
        for (name, v) in [("start", self.start), ("end", self.end)] {
            shoplab_env::config::probability(&format!("{key}.{name}"), v)?;
        }
        shoplab_env::config::fraction(&format!("{key}.decay_fraction"), self.decay_fraction)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_decay() {
        let s = LinearSchedule {
            start: 1.0,
            end: 0.0,
            decay_fraction: 0.5,
        };
        assert_eq!(s.value(0, 100), 1.0);
        assert_eq!(s.value(25, 100), 0.5);
        assert_eq!(s.value(50, 100), 0.0);
        assert_eq!(s.value(99, 100), 0.0);
    }
}
