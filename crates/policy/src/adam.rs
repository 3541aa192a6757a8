//! Adam (Kingma and Ba, 2015) with PyTorch's bias-corrected update, after
//! scaling the gradients so that their global L2 norm is at most
//! `max_grad_norm` (as `clip_grad_norm_` does): the optimiser of every
//! network here (the Q-network, the session encoder's policies).
//!
//! Parameters are visited in sorted name order (a `BTreeMap`), so the
//! norm's sum — and every bit of the update — is the same on any thread
//! count. The update runs as an in-place candle op over each parameter's
//! storage, with the moments in plain vectors: no tensors are allocated
//! per step.

use crate::dqn::{dense::contiguous_values, network::NetError};
use candle_core::{CpuStorage, InplaceOp1, Layout, Var, backprop::GradStore};
use std::{cell::RefCell, collections::BTreeMap};

/// Adam's state: first and second moments by parameter name, and the
/// steps taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
    steps: u64,
}

fn err(e: candle_core::Error) -> NetError {
    NetError(e.to_string())
}

impl Adam {
    /// Zero moments for every parameter of `vars`.
    pub fn new(vars: &BTreeMap<String, Var>) -> Self {
        Self {
            moments: vars
                .iter()
                .map(|(name, var)| {
                    let n = var.elem_count();
                    (name.clone(), (vec![0.0; n], vec![0.0; n]))
                })
                .collect(),
            steps: 0,
        }
    }

    /// Forgets the moments and the step count (after loading weights).
    pub fn reset(&mut self) {
        for (m, v) in self.moments.values_mut() {
            m.fill(0.0);
            v.fill(0.0);
        }
        self.steps = 0;
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step of every parameter of `vars` (f32, contiguous) along its
    /// gradient in `grads`, at learning rate `lr`, after clipping the
    /// gradients' global norm to `max_grad_norm`. Returns the norm before
    /// clipping. A parameter without a gradient is an error.
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &GradStore,
        lr: f64,
        max_grad_norm: f64,
    ) -> Result<f64, NetError> {
        let grad_of = |name: &str, var: &Var| {
            grads
                .get(var.as_tensor())
                .ok_or_else(|| NetError(format!("no gradient for {name}")))
        };
        let mut norm_sq = 0.0f64;
        for (name, var) in vars {
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
        for (name, var) in vars {
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
