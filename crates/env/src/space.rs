//! Observation and action spaces, and the discretiser that turns feature
//! vectors into table indices for tabular policies.

use thiserror::Error;

/// One feature of an observation vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// Name, used by scenario files to refer to the feature (`period`, `stock`).
    pub name: &'static str,
    /// Smallest value the feature takes.
    pub low: f32,
    /// Largest value the feature takes.
    pub high: f32,
    /// Integer-valued: the feature takes only `low, low + 1, …, high`.
    pub integer: bool,
    /// Bins a tabular policy uses for this feature unless told otherwise;
    /// 1 means the feature is ignored by default.
    pub suggested_bins: usize,
}

impl Feature {
    /// An integer feature over `0, 1, …, high`, binned `suggested_bins` ways.
    pub fn count(name: &'static str, high: f32, suggested_bins: usize) -> Self {
        Self {
            name,
            low: 0.0,
            high,
            integer: true,
            suggested_bins,
        }
    }
}

/// Describes an observation vector feature by feature.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationSpace {
    /// The features, in vector order.
    pub features: Vec<Feature>,
}

impl ObservationSpace {
    /// Position of the feature called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// True when there are no features.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}

/// A discrete action space whose actions carry human-readable labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpace {
    /// What the action means, for reports (`price 2.00`).
    pub labels: Vec<String>,
    /// A category per action that learners may generalise over (an item's
    /// topic), `0..n_categories`; empty when actions have none.
    pub categories: Vec<u32>,
}

impl ActionSpace {
    /// Number of actions.
    pub fn n(&self) -> usize {
        self.labels.len()
    }

    /// Actions described by their labels alone.
    pub fn labelled(labels: Vec<String>) -> Self {
        Self {
            labels,
            categories: Vec::new(),
        }
    }

    /// Number of action categories (0 without categories).
    pub fn n_categories(&self) -> usize {
        self.categories
            .iter()
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0)
    }
}

/// Why a discretiser could not be built.
#[derive(Debug, Error, PartialEq)]
pub enum DiscretiserError {
    /// A bin count names a feature the observation does not have.
    #[error("unknown feature `{name}` (the observation has: {known})")]
    UnknownFeature {
        /// The name given.
        name: String,
        /// The names available, comma-separated.
        known: String,
    },
    /// A bin count of zero.
    #[error("feature `{name}` needs at least 1 bin (found 0)")]
    ZeroBins {
        /// The feature.
        name: String,
    },
    /// The product of bin counts exceeds the limit.
    #[error("{states} discrete states exceed the limit of {limit}")]
    TooManyStates {
        /// The product of the bin counts (saturated).
        states: u128,
        /// The limit.
        limit: usize,
    },
}

/// Maps a feature vector to a state index by binning each feature and combining
/// the bins in mixed radix (the first feature varies slowest).
///
/// An integer feature with as many bins as values is mapped exactly; otherwise
/// the range `[low, high]` is cut into equal-width bins and values outside it
/// fall into the first or last bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Discretiser {
    bins: Vec<usize>,
    low: Vec<f32>,
    /// Bins per unit of the feature: the reciprocal of a bin's width.
    scale: Vec<f32>,
    n_states: usize,
}

impl Discretiser {
    /// Builds a discretiser over `space`, with each feature's suggested bins
    /// unless `overrides` names it. Fails past `max_states` states.
    pub fn new(
        space: &ObservationSpace,
        overrides: &[(String, usize)],
        max_states: usize,
    ) -> Result<Self, DiscretiserError> {
        let mut bins: Vec<usize> = space.features.iter().map(|f| f.suggested_bins).collect();
        for (name, count) in overrides {
            let i = space
                .index_of(name)
                .ok_or_else(|| DiscretiserError::UnknownFeature {
                    name: name.clone(),
                    known: space
                        .features
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            bins[i] = *count;
        }
        let mut states: u128 = 1;
        for (f, &b) in space.features.iter().zip(&bins) {
            if b == 0 {
                return Err(DiscretiserError::ZeroBins {
                    name: f.name.to_string(),
                });
            }
            states = states.saturating_mul(b as u128);
        }
        if states > max_states as u128 {
            return Err(DiscretiserError::TooManyStates {
                states,
                limit: max_states,
            });
        }
        let scale = space
            .features
            .iter()
            .zip(&bins)
            .map(|(f, &b)| {
                // Integer features span `high - low + 1` unit cells.
                let span = if f.integer {
                    f.high - f.low + 1.0
                } else {
                    f.high - f.low
                };
                b as f32 / span.max(f32::MIN_POSITIVE)
            })
            .collect();
        Ok(Self {
            low: space.features.iter().map(|f| f.low).collect(),
            bins,
            scale,
            n_states: states as usize,
        })
    }

    /// Number of discrete states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Bins per feature.
    pub fn bins(&self) -> &[usize] {
        &self.bins
    }

    /// The bin of value `x` of feature `i`.
    #[inline]
    pub fn bin(&self, i: usize, x: f32) -> usize {
        let b = self.bins[i];
        if b == 1 {
            0
        } else {
            // Casting truncates toward zero, which is `floor` for the
            // non-negative values left after `max` (and maps NaN to 0).
            let raw = ((x - self.low[i]) * self.scale[i]).max(0.0);
            (raw as usize).min(b - 1)
        }
    }

    /// The state index of a feature vector.
    #[inline]
    pub fn state(&self, features: &[f32]) -> usize {
        features
            .iter()
            .enumerate()
            .fold(0, |index, (i, &x)| index * self.bins[i] + self.bin(i, x))
    }

    /// One-hot encoding of the bins: for each feature with more than one bin,
    /// the position of its active bin in the concatenated one-hot vector
    /// (whose length is [`one_hot_len`](Self::one_hot_len)).
    pub fn one_hot(&self, features: &[f32], active: &mut Vec<usize>) {
        active.clear();
        let mut offset = 0;
        for (i, &x) in features.iter().enumerate() {
            if self.bins[i] > 1 {
                active.push(offset + self.bin(i, x));
                offset += self.bins[i];
            }
        }
    }

    /// Length of the one-hot encoding: the sum of bins over features with more than one.
    pub fn one_hot_len(&self) -> usize {
        self.bins.iter().filter(|&&b| b > 1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ObservationSpace {
        ObservationSpace {
            features: vec![
                Feature {
                    name: "period",
                    low: 0.0,
                    high: 9.0,
                    integer: true,
                    suggested_bins: 10,
                },
                Feature {
                    name: "stock",
                    low: 0.0,
                    high: 99.0,
                    integer: true,
                    suggested_bins: 10,
                },
                Feature {
                    name: "noise",
                    low: -1.0,
                    high: 1.0,
                    integer: false,
                    suggested_bins: 1,
                },
            ],
        }
    }

    #[test]
    fn exact_integer_bins_and_mixed_radix() {
        let d = Discretiser::new(&space(), &[], 1000).unwrap();
        assert_eq!(d.n_states(), 100);
        assert_eq!(d.state(&[0.0, 0.0, 0.3]), 0);
        assert_eq!(d.state(&[3.0, 9.0, -0.3]), 30);
        assert_eq!(d.state(&[3.0, 10.0, 0.0]), 31);
        assert_eq!(d.state(&[9.0, 99.0, 0.0]), 99);
        // Out of range values clamp into the edge bins.
        assert_eq!(d.state(&[12.0, 1000.0, 0.0]), 99);
    }

    #[test]
    fn overrides_and_errors() {
        let d = Discretiser::new(&space(), &[("noise".into(), 2)], 1000).unwrap();
        assert_eq!(d.n_states(), 200);
        assert_eq!(d.state(&[0.0, 0.0, 0.5]), 1);
        let mut active = Vec::new();
        d.one_hot(&[3.0, 25.0, 0.5], &mut active);
        assert_eq!(active, vec![3, 10 + 2, 20 + 1]);
        assert_eq!(d.one_hot_len(), 22);
        assert!(matches!(
            Discretiser::new(&space(), &[("nope".into(), 2)], 1000),
            Err(DiscretiserError::UnknownFeature { .. })
        ));
        assert!(matches!(
            Discretiser::new(&space(), &[("stock".into(), 0)], 1000),
            Err(DiscretiserError::ZeroBins { .. })
        ));
        assert!(matches!(
            Discretiser::new(&space(), &[("stock".into(), 1000)], 1000),
            Err(DiscretiserError::TooManyStates { .. })
        ));
    }
}
