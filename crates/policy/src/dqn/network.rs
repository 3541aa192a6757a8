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
//! The optimiser is Adam (Kingma and Ba, 2015) with PyTorch's bias-corrected
//! update, after scaling the gradients so that their global L2 norm is at
//! most `max_grad_norm` (as `clip_grad_norm_` does). It runs as an in-place
//! candle op over each parameter's storage, with the moments in plain
//! vectors: no tensors are allocated per step.

use super::dense::contiguous_values;
use crate::CheckpointError;
use candle_core::{CpuStorage, DType, Device, InplaceOp1, Layout, Tensor, Var};
use rand::RngExt;
use shoplab_env::seed::SimRng;
use std::{cell::RefCell, collections::BTreeMap};

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
    /// Adam's first and second moments, by name.
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
    steps: u64,
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
        let mut moments = BTreeMap::new();
        // BTreeMap iteration: draws go in sorted name order.
        for (name, (shape, fan_in)) in shapes {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let var = Var::from_vec(values, shape, &device).map_err(err)?;
            moments.insert(name.clone(), (vec![0.0; count], vec![0.0; count]));
            vars.insert(name, var);
        }
        let mut network = Self {
            arch,
            vars,
            tracked: Vec::new(),
            detached: Vec::new(),
            moments,
            steps: 0,
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
        let grad_of = |name: &str, var: &Var| {
            grads
                .get(var.as_tensor())
                .ok_or_else(|| NetError(format!("no gradient for {name}")))
        };
        let mut norm_sq = 0.0f64;
        for (name, var) in &self.vars {
            norm_sq += contiguous_values(grad_of(name, var)?, sum_of_squares).map_err(err)?;
        }
        let norm = norm_sq.sqrt();
        // As torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6), at most 1.
        let scale = (max_grad_norm / (norm + 1e-6)).min(1.0) as f32;
        self.steps += 1;
        let t = self.steps as i32;
        let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let correction1 = 1.0 - beta1.powi(t);
        let correction2 = 1.0 - beta2.powi(t);
        for (name, var) in &self.vars {
            let (m, v) = self
                .moments
                .get_mut(name)
                .ok_or_else(|| NetError(format!("no moments for {name}")))?;
            contiguous_values(grad_of(name, var)?, |grad| {
                let op = AdamStep {
                    grad,
                    grad_scale: scale,
                    moments: RefCell::new((m, v)),
                    beta1: beta1 as f32,
                    beta2: beta2 as f32,
                    step_size: (lr / correction1) as f32,
                    sqrt_correction2: correction2.sqrt() as f32,
                    eps: eps as f32,
                };
                var.as_tensor().inplace_op1(&op)
            })
            .and_then(|r| r)
            .map_err(err)?;
        }
        Ok(norm)
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
        for (m, v) in self.moments.values_mut() {
            m.fill(0.0);
            v.fill(0.0);
        }
        self.steps = 0;
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

/// `Σ x_i²` in `f64`, with eight running sums (a fixed order, so the
/// result is reproducible, that the compiler can vectorise).
fn sum_of_squares(x: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (chunks, rest) = x.as_chunks::<8>();
    for chunk in chunks {
        for k in 0..8 {
            lanes[k] += f64::from(chunk[k]) * f64::from(chunk[k]);
        }
    }
    lanes.iter().sum::<f64>()
        + rest
            .iter()
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
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

/// Adam's update of one parameter, in place.
struct AdamStep<'a> {
    grad: &'a [f32],
    grad_scale: f32,
    moments: RefCell<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
    beta1: f32,
    beta2: f32,
    step_size: f32,
    sqrt_correction2: f32,
    eps: f32,
}

impl InplaceOp1 for AdamStep<'_> {
    fn name(&self) -> &'static str {
        "adam-step"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(theta) = storage else {
            candle_core::bail!("Adam expects f32 parameters");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("Adam expects contiguous parameters");
        };
        let theta = &mut theta[start..end];
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        let n = theta.len();
        if self.grad.len() != n || m.len() != n || v.len() != n {
            candle_core::bail!("Adam: a parameter, its gradient and its moments differ in size");
        }
        let (grad, m, v) = (&self.grad[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let g = grad[i] * self.grad_scale;
            m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g;
            v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g * g;
            let denom = v[i].sqrt() / self.sqrt_correction2 + self.eps;
            theta[i] -= self.step_size * m[i] / denom;
        }
        Ok(())
    }
}
