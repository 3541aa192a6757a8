//! An offline learner's checkpoint: its network (and BCQ's behaviour
//! model, under `imitation.`), and the standardisation of its inputs
//! (`input.mean`, `input.scale`), as safetensors with a `shoplab` metadata
//! entry naming the kind and the architecture.

use super::OfflineLearner;
use crate::CheckpointError;
use candle_core::{DType, Tensor};
use std::collections::HashMap;

impl OfflineLearner {
    /// The learner's parameters and standardisation as safetensors bytes;
    /// `kind` is recorded in the metadata.
    pub fn to_safetensors(&self, kind: &str) -> Result<Vec<u8>, CheckpointError> {
        let mut tensors = self.net.named_tensors();
        if let Some(g) = &self.imitation {
            tensors.extend(
                g.named_tensors()
                    .into_iter()
                    .map(|(n, t)| (format!("imitation.{n}"), t)),
            );
        }
        let device = self.net.device();
        for (name, values) in [("input.mean", &self.mean), ("input.scale", &self.scale)] {
            let t = Tensor::from_slice(values, values.len(), device)
                .map_err(|e| CheckpointError::Format(e.to_string()))?;
            tensors.push((name.to_string(), t));
        }
        let arch = self.net.architecture();
        let metadata = format!(
            "{{\"policy\":\"{kind}\",\"inputs\":{},\"hidden\":{:?},\"outputs\":{},\"gradient_steps\":{}}}",
            arch.inputs, arch.hidden, arch.outputs, self.steps
        );
        let info = HashMap::from([("shoplab".to_string(), metadata)]);
        let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        safetensors::tensor::serialize(refs, Some(info))
            .map_err(|e| CheckpointError::Format(e.to_string()))
    }

    /// Restores what [`to_safetensors`](Self::to_safetensors) saved: every
    /// tensor must be there with this learner's shape, finite (scales
    /// positive), and no other; the target network becomes the loaded one.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let loaded = candle_core::safetensors::load_buffer(bytes, self.net.device())
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        let mut known: Vec<String> = self.net.named_tensors().into_iter().map(|p| p.0).collect();
        if let Some(g) = &self.imitation {
            known.extend(
                g.named_tensors()
                    .into_iter()
                    .map(|(n, _)| format!("imitation.{n}")),
            );
        }
        known.extend(["input.mean".to_string(), "input.scale".to_string()]);
        if let Some(extra) = loaded.keys().find(|k| !known.contains(k)) {
            return Err(CheckpointError::UnknownTensor(extra.clone()));
        }
        let input = |name: &str, positive: bool| -> Result<Vec<f32>, CheckpointError> {
            let t = loaded
                .get(name)
                .ok_or_else(|| CheckpointError::MissingTensor(name.to_string()))?;
            if t.dims() != [self.mean.len()] || t.dtype() != DType::F32 {
                return Err(CheckpointError::Shape {
                    tensor: name.to_string(),
                    found: format!("{:?} {:?}", t.dtype(), t.dims()),
                    expected: format!("[{}] f32", self.mean.len()),
                });
            }
            let values = t
                .to_vec1::<f32>()
                .map_err(|e| CheckpointError::Format(e.to_string()))?;
            if let Some((index, &v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite() || (positive && **v <= 0.0))
            {
                return Err(CheckpointError::Value {
                    tensor: name.to_string(),
                    found: f64::from(v),
                    index,
                    rule: if positive {
                        "scales must be positive and finite"
                    } else {
                        "means must be finite"
                    },
                });
            }
            Ok(values)
        };
        let (mean, scale) = (input("input.mean", false)?, input("input.scale", true)?);
        self.net.load_from(&loaded, "")?;
        if let Some(g) = &mut self.imitation {
            g.load_from(&loaded, "imitation.")?;
        }
        self.mean = mean;
        self.scale = scale;
        self.target = self.net.snapshot()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Algorithm, OfflineConfig};
    use super::*;
    use crate::offline::Transitions;

    /// A trained BCQ learner saved and loaded into another of a different
    /// seed acts and values exactly as the first; a checkpoint of another
    /// shape is refused by name.
    #[test]
    fn checkpoints_round_trip() {
        let data = Transitions {
            dim: 2,
            obs: (0..400).map(|i| (i % 7) as f32).collect(),
            action: (0..200).map(|i| (i % 3) as u32).collect(),
            reward: (0..200).map(|i| f64::from(i % 5)).collect(),
            next: vec![None; 200],
            ..Default::default()
        };
        let make = |seed, hidden: usize| {
            let config = OfflineConfig {
                algorithm: Algorithm::Bcq { tau: 0.3 },
                hidden: vec![hidden],
                batch_size: 32,
                seed,
                ..OfflineConfig::default()
            };
            OfflineLearner::new(config, &data, 3).unwrap()
        };
        let mut trained = make(1, 8);
        for _ in 0..50 {
            trained.train_step(&data).unwrap();
        }
        let bytes = trained.to_safetensors("bcq").unwrap();
        let mut other = make(2, 8);
        other.load_safetensors(&bytes).unwrap();
        for i in 0..7 {
            let x = [i as f32, (6 - i) as f32];
            assert_eq!(trained.values(&x).unwrap(), other.values(&x).unwrap());
            assert_eq!(trained.act(&x).unwrap(), other.act(&x).unwrap());
        }
        let e = make(3, 9).load_safetensors(&bytes).unwrap_err().to_string();
        assert!(e.contains("hidden0") && e.contains("[9]"), "{e}");
    }
}
