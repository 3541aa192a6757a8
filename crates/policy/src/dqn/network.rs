//! The Q-network: an MLP on candle, initialised from our seeded generator,
//! trained with Adam applied in place.
//!
//! Parameters live in candle [`Var`]s kept in a `BTreeMap` by name, so every
//! pass over them (initialisation, optimiser, checkpoint) goes in sorted name
//! order. Layers are `hidden0 … hiddenK` (ReLU) and then either one linear
//! head `out` or, for the dueling architecture (Wang et al., 2016), a state
//! value head `value` and an advantage head `advantage` combined as
//! `Q(s, a) = V(s) + A(s, a) − mean_b A(s, b)`. Weights are stored
//! `[out, in]` as in PyTorch, so checkpoints read the same in both.
//!
//! Initialisation is PyTorch's default for linear layers, `U(−1/√fan_in,
//! 1/√fan_in)` for weights and biases, drawn from a [`SimRng`] in name
//! order: candle's own random initialisation cannot be seeded on the CPU.
//!
//! The optimiser is [`Adam`] with a global gradient-norm clip.

use super::dense::contiguous_values;
use crate::{CheckpointError, adam::Adam};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngExt;
use shoplab_env::seed::SimRng;
use std::collections::BTreeMap;

/// A failure of the network's tensor operations (candle's message), or a
/// gradient or optimiser state that should exist and does not.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NetError(pub String);

/// The result of a network operation.
pub type NetResult<T> = Result<T, NetError>;

fn err(e: candle_core::Error) -> NetError {
    NetError(e.to_string())
}

/// The shape of a Q-network.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    /// Input features.
    pub inputs: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Actions (outputs).
    pub outputs: usize,
    /// Separate value and advantage heads.
    pub dueling: bool,
}

impl Architecture {
    /// Parameter names and shapes, in layer order.
    fn layers(&self) -> Vec<(String, usize, usize)> {
        let mut layers = Vec::new();
        let mut fan_in = self.inputs;
        for (i, &width) in self.hidden.iter().enumerate() {
            layers.push((format!("hidden{i}"), width, fan_in));
            fan_in = width;
        }
        if self.dueling {
            layers.push(("advantage".into(), self.outputs, fan_in));
            layers.push(("value".into(), 1, fan_in));
        } else {
            layers.push(("out".into(), self.outputs, fan_in));
        }
        layers
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers().iter().map(|(_, o, i)| o * i + o).sum()
    }
}

/// Parameter tensors in layer order: `[w0, b0, w1, b1, …]` (the advantage
/// head before the value head when dueling).
pub type Params = Vec<Tensor>;

/// The online network with its optimiser state.
#[derive(Debug)]
pub struct QNetwork {
    arch: Architecture,
    /// Trainable parameters by name.
    vars: BTreeMap<String, Var>,
    /// The same parameters in layer order, as tracked tensors (training).
    tracked: Params,
    /// The same storage, untracked (acting and evaluation: no graph is built).
    detached: Params,
    /// The optimiser's state.
    adam: Adam,
    device: Device,
}

impl QNetwork {
    /// A network of shape `arch` initialised from `rng`.
    pub fn new(arch: Architecture, rng: &mut SimRng) -> NetResult<Self> {
        let device = Device::Cpu;
        let mut shapes = BTreeMap::new();
        for (name, out, fan_in) in arch.layers() {
            shapes.insert(format!("{name}.weight"), (vec![out, fan_in], fan_in));
            shapes.insert(format!("{name}.bias"), (vec![out], fan_in));
        }
        let mut vars = BTreeMap::new();
        // BTreeMap iteration: draws go in sorted name order.
        for (name, (shape, fan_in)) in shapes {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let var = Var::from_vec(values, shape, &device).map_err(err)?;
            vars.insert(name, var);
        }
        let mut network = Self {
            arch,
            tracked: Vec::new(),
            detached: Vec::new(),
            adam: Adam::new(&vars),
            vars,
            device,
        };
        network.index_params();
        Ok(network)
    }

    fn index_params(&mut self) {
        self.tracked = self
            .arch
            .layers()
            .iter()
            .flat_map(|(name, _, _)| {
                [
                    self.vars[&format!("{name}.weight")].as_tensor().clone(),
                    self.vars[&format!("{name}.bias")].as_tensor().clone(),
                ]
            })
            .collect();
        self.detached = self.tracked.iter().map(Tensor::detach).collect();
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// The device tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Parameters that build a backward graph.
    pub fn tracked(&self) -> &Params {
        &self.tracked
    }

    /// Parameters that build no graph; they share storage with the tracked
    /// ones, so they always hold the current weights.
    pub fn detached(&self) -> &Params {
        &self.detached
    }

    /// Independent copies of the current parameters (for a target network).
    pub fn snapshot(&self) -> NetResult<Params> {
        self.detached
            .iter()
            .map(|t| t.copy().map(|c| c.detach()).map_err(err))
            .collect()
    }

    /// `Q(x, ·)` for one input row, into `out`, computed directly on the
    /// parameters' storage: acting calls this once per step, where a candle
    /// graph of a dozen small tensors would cost several times the
    /// arithmetic. Agrees with [`forward`] up to float rounding.
    pub fn forward_one(&self, x: &[f32], out: &mut Vec<f32>) -> NetResult<()> {
        let mut input = x.to_vec();
        let mut output = Vec::new();
        let dense = |params: &[Tensor], input: &[f32], output: &mut Vec<f32>| {
            contiguous_values(&params[0], |w| {
                contiguous_values(&params[1], |b| {
                    output.clear();
                    output.extend(b.iter().enumerate().map(|(o, &bias)| {
                        let row = &w[o * input.len()..(o + 1) * input.len()];
                        bias + dot(row, input)
                    }));
                })
            })
            .and_then(|r| r)
            .map_err(err)
        };
        let hidden = self.arch.hidden.len();
        for layer in 0..hidden {
            dense(&self.detached[2 * layer..], &input, &mut output)?;
            output.iter_mut().for_each(|v| *v = v.max(0.0));
            std::mem::swap(&mut input, &mut output);
        }
        let head = &self.detached[2 * hidden..];
        dense(head, &input, out)?;
        if self.arch.dueling {
            dense(&head[2..], &input, &mut output)?;
            let mean = out.iter().sum::<f32>() / out.len() as f32;
            let value = output[0];
            out.iter_mut().for_each(|a| *a += value - mean);
        }
        Ok(())
    }

    /// The parameters' values by name, flattened (for tests and checks).
    pub fn values(&self) -> NetResult<BTreeMap<String, Vec<f32>>> {
        self.vars
            .iter()
            .map(|(name, var)| {
                let values = var
                    .as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(err)?;
                Ok((name.clone(), values))
            })
            .collect()
    }

    /// The first parameter holding a NaN or infinity, if any.
    pub fn non_finite(&self) -> NetResult<Option<String>> {
        Ok(self
            .values()?
            .into_iter()
            .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
            .map(|(name, _)| name))
    }

    /// One Adam step from the gradients of `loss`, after clipping their
    /// global norm to `max_grad_norm`. Returns the norm before clipping.
    pub fn adam_step(&mut self, loss: &Tensor, lr: f64, max_grad_norm: f64) -> NetResult<f64> {
        let grads = loss.backward().map_err(err)?;
        self.adam.step(&self.vars, &grads, lr, max_grad_norm)
    }

    /// Parameters as safetensors bytes, names sorted, with `metadata` stored
    /// under the key `shoplab`.
    pub fn to_safetensors(&self, metadata: String) -> Result<Vec<u8>, CheckpointError> {
        crate::vars_to_safetensors(&self.vars, metadata)
    }

    /// The parameters by name, as tensors sharing their storage.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Loads parameters from safetensors bytes; every name and shape must
    /// match this network's. Adam's moments restart at zero.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let loaded = candle_core::safetensors::load_buffer(bytes, &self.device)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        if let Some(extra) = loaded.keys().find(|k| !self.vars.contains_key(*k)) {
            return Err(CheckpointError::UnknownTensor(extra.clone()));
        }
        self.load_from(&loaded, "")
    }

    /// Loads the parameters named `prefix` + each name from `loaded` (other
    /// tensors are the caller's); every one must be there, with this
    /// network's shape, f32 and finite. Adam's moments restart at zero.
    pub fn load_from(
        &mut self,
        loaded: &std::collections::HashMap<String, Tensor>,
        prefix: &str,
    ) -> Result<(), CheckpointError> {
        crate::load_vars(&self.vars, loaded, prefix)?;
        self.adam.reset();
        Ok(())
    }
}

/// `Q(s, ·)` for a batch of inputs `x` (`[batch, inputs]`) under `params`.
pub fn forward(arch: &Architecture, params: &Params, x: &Tensor) -> NetResult<Tensor> {
    use super::dense::{Activation, dense};
    let mut h = x.clone();
    let hidden = arch.hidden.len();
    for layer in 0..hidden {
        h = dense(
            &h,
            &params[2 * layer],
            &params[2 * layer + 1],
            Activation::Relu,
        )
        .map_err(err)?;
    }
    let head = 2 * hidden;
    let linear = |w: &Tensor, b: &Tensor| dense(&h, w, b, Activation::Identity).map_err(err);
    if arch.dueling {
        let advantage = linear(&params[head], &params[head + 1])?;
        let value = linear(&params[head + 2], &params[head + 3])?;
        let centred = advantage
            .broadcast_sub(&advantage.mean_keepdim(1).map_err(err)?)
            .map_err(err)?;
        centred.broadcast_add(&value).map_err(err)
    } else {
        linear(&params[head], &params[head + 1])
    }
}

/// `Σ a_i b_i` with eight running sums, which the compiler can keep in one
/// SIMD register (a single running sum fixes the order of additions and
/// cannot be vectorised); the order is fixed, so results are reproducible.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (chunks_a, rest_a) = a.as_chunks::<8>();
    let (chunks_b, rest_b) = b.as_chunks::<8>();
    for (x, y) in chunks_a.iter().zip(chunks_b) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = rest_a.iter().zip(rest_b).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// Polyak averaging `target ← τ · online + (1 − τ) · target`; `τ = 1` copies.
pub fn soft_update(target: &mut Params, online: &Params, tau: f64) -> NetResult<()> {
    for (t, o) in target.iter_mut().zip(online) {
        *t = if tau >= 1.0 {
            o.copy().map_err(err)?.detach()
        } else {
            ((o * tau).map_err(err)? + (&*t * (1.0 - tau)).map_err(err)?)
                .map_err(err)?
                .detach()
        };
    }
    Ok(())
}

/// Reads a tensor's values as a flat `Vec<f32>`.
pub fn to_vec(t: &Tensor) -> NetResult<Vec<f32>> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(err)
}

/// Builds a `[rows, cols]` tensor from row-major values.
pub fn matrix(values: &[f32], rows: usize, cols: usize, device: &Device) -> NetResult<Tensor> {
    Tensor::from_slice(values, (rows, cols), device).map_err(err)
}
