//! Input encoding: each observation feature scaled to about [−1, 1] from its
//! declared range, or one-hot over its integer values.

use super::MAX_ONE_HOT;
use crate::PolicyError;
use shoplab_env::ObservationSpace;

/// How one observation feature becomes network inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Input {
    /// `(x − centre) · inverse`: the range mapped to [−1, 1].
    Scaled { centre: f32, inverse: f32 },
    /// One input per integer value from `low`, 1 at the value's place.
    OneHot { low: f32, values: usize },
}

/// The inputs of each feature of `space`, one-hot for the features named.
pub(crate) fn inputs(
    space: &ObservationSpace,
    one_hot: &[String],
) -> Result<Vec<Input>, PolicyError> {
    if let Some(name) = one_hot.iter().find(|n| space.index_of(n).is_none()) {
        let known: Vec<&str> = space.features.iter().map(|f| f.name).collect();
        return Err(PolicyError::invalid(
            "one_hot",
            format!(
                "unknown feature `{name}` (the observation has: {})",
                known.join(", ")
            ),
        ));
    }
    space
        .features
        .iter()
        .map(|f| {
            let (low, high) = (f.low, f.high);
            if one_hot.iter().any(|n| n == f.name) {
                let values = f64::from(high - low) + 1.0;
                if !f.integer || !(1.0..=MAX_ONE_HOT as f64).contains(&values) {
                    return Err(PolicyError::invalid(
                        "one_hot",
                        format!(
                            "feature `{}` must be an integer feature with at most {MAX_ONE_HOT} values to be one-hot encoded",
                            f.name
                        ),
                    ));
                }
                Ok(Input::OneHot {
                    low,
                    values: values as usize,
                })
            } else if low.is_finite() && high.is_finite() && high > low {
                Ok(Input::Scaled {
                    centre: (low + high) / 2.0,
                    inverse: 2.0 / (high - low),
                })
            } else {
                Ok(Input::Scaled {
                    centre: 0.0,
                    inverse: 1.0,
                })
            }
        })
        .collect()
}

/// Encodes `features` by `encoding` into `out` (cleared first).
pub(crate) fn encode(encoding: &[Input], features: &[f32], out: &mut Vec<f32>) {
    out.clear();
    for (&x, input) in features.iter().zip(encoding) {
        match *input {
            Input::Scaled { centre, inverse } => out.push((x - centre) * inverse),
            Input::OneHot { low, values } => {
                let at = ((x - low).round().max(0.0) as usize).min(values - 1);
                out.extend((0..values).map(|v| if v == at { 1.0 } else { 0.0 }));
            }
        }
    }
}
