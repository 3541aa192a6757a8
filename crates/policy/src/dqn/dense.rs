//! A single-threaded fused dense layer as a candle op, with its gradient.
//!
//! candle's own CPU matmul asks how many threads to use on every call
//! (reading `RAYON_NUM_THREADS`, or the CPU list from `/proc` when that is
//! unset, a file read per product) and splits large products across them.
//! Deep Q-learning here runs many small products per step, one run per
//! thread, and needs results that do not depend on the thread count. This
//! op calls the same gemm kernels directly with no parallelism, so results
//! are identical whatever `RAYON_NUM_THREADS` is, and the per-call cost is
//! the product itself.
//!
//! The dense layer `y = act(x · Wᵀ + b)` runs as one op: a gemm and one pass
//! for the bias and ReLU forward; the ReLU mask, two gemms and a column sum
//! backward. Composed from candle's elementwise ops, the same layer
//! allocated and swept a tensor per step, which cost as much as the
//! products themselves at these sizes. The op takes `f32` tensors (training)
//! or `f64` ones (the session encoder's checks), the same code for both.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};

/// A matrix operand: its elements from the first one on, row stride and
/// column stride.
type Operand<'a, T> = (&'a [T], usize, usize);

/// The largest index an `rows × cols` operand with strides `(rs, cs)`
/// reaches, if it fits in `usize`.
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)
}

/// `dst = lhs · rhs` for an `m × k` lhs and a `k × n` rhs of any
/// non-negative strides, into the row-major `m × n` slice `dst`, on the
/// calling thread. Every index the strides reach is checked against the
/// slices first.
pub fn gemm_into<T: WithDType>(
    dst: &mut [T],
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_rs, lhs_cs): Operand<'_, T>,
    (rhs, rhs_rs, rhs_cs): Operand<'_, T>,
) -> candle_core::Result<()> {
    if T::DTYPE != candle_core::DType::F32 && T::DTYPE != candle_core::DType::F64 {
        candle_core::bail!("gemm: {:?} is neither f32 nor f64", T::DTYPE);
    }
    if dst.len() != m * n {
        candle_core::bail!("gemm: destination of {} for {m} × {n}", dst.len());
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        dst.fill(T::zero());
        return Ok(());
    }
    let fits =
        |len: usize, rows, cols, rs, cs| last_index(rows, cols, rs, cs).is_some_and(|i| i < len);
    if !fits(lhs.len(), m, k, lhs_rs, lhs_cs) || !fits(rhs.len(), k, n, rhs_rs, rhs_cs) {
        candle_core::bail!("gemm: an operand's strides reach past its storage");
    }
    let as_isize = |s: usize| isize::try_from(s).map_err(candle_core::Error::wrap);
    let (lhs_rs, lhs_cs) = (as_isize(lhs_rs)?, as_isize(lhs_cs)?);
    let (rhs_rs, rhs_cs) = (as_isize(rhs_rs)?, as_isize(rhs_cs)?);
    let dst_rs = as_isize(n)?;
    // SAFETY: `dst` holds exactly m × n elements, written row-major (column
    // stride 1, row stride n); every element the lhs (m × k) and rhs (k × n)
    // strides reach was checked to lie inside their slices above. Strides
    // are non-negative, and `dst` is a unique borrow, so no operand aliases
    // it. With `read_dst = false` the destination is only written. `T` is
    // f32 or f64 (checked above), types gemm has kernels for.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs,
            false,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// Rows, columns, row stride, column stride and offset of a 2-D layout, with
/// the largest element index it reaches checked against `len`.
fn view(layout: &Layout, len: usize) -> candle_core::Result<(usize, usize, usize, usize, usize)> {
    let (dims, stride) = (layout.dims(), layout.stride());
    if dims.len() != 2 {
        candle_core::bail!("dense expects 2-D tensors, found shape {dims:?}");
    }
    let (rows, cols) = (dims[0], dims[1]);
    let offset = layout.start_offset();
    if rows > 0 && cols > 0 {
        let last = (rows - 1)
            .checked_mul(stride[0])
            .and_then(|r| (cols - 1).checked_mul(stride[1]).map(|c| (r, c)))
            .and_then(|(r, c)| r.checked_add(c))
            .and_then(|i| i.checked_add(offset));
        if last.is_none_or(|i| i >= len) {
            candle_core::bail!("dense: layout {layout:?} reaches past its storage of {len}");
        }
    }
    Ok((rows, cols, stride[0], stride[1], offset))
}

/// The activation after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// None: the layer is linear.
    Identity,
}

/// `act(x · wᵀ + b)` for `x: [batch, in]`, `w: [out, in]` (PyTorch's layout)
/// and `b: [out]`, as one differentiable op on the calling thread.
pub fn dense(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    x.apply_op3(w, b, Dense(activation))
}

/// The op behind [`dense`].
struct Dense(Activation);

/// A tensor's elements as a contiguous f32 vector view, copied only when the
/// layout is not contiguous already.
pub(crate) fn contiguous_values<R>(
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> R,
) -> candle_core::Result<R> {
    contiguous_slice(t, f)
}

/// A CPU tensor's elements of type `T` as a contiguous slice, copied only
/// when the layout is not contiguous already.
pub(crate) fn contiguous_slice<T: WithDType, R>(
    t: &Tensor,
    f: impl FnOnce(&[T]) -> R,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(storage) = &*storage else {
        candle_core::bail!("expected a CPU tensor");
    };
    let values = T::cpu_storage_as_slice(storage)?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("a contiguous tensor has no contiguous offsets");
    };
    Ok(f(&values[start..end]))
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                self.forward((x, l1), (w, l2), (b, l3))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                self.forward((x, l1), (w, l2), (b, l3))
            }
            _ => candle_core::bail!("dense expects f32 or f64 tensors, all of one type"),
        }
    }

    /// With `g` the gradient of `y` masked by the ReLU (`y > 0`):
    /// `∂x = g · w`, `∂w = gᵀ · x` and `∂b = Σ_rows g`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (x_grad, w_grad, b_grad) = match x.dtype() {
            candle_core::DType::F32 => self.backward::<f32>(x, w, y, grad)?,
            candle_core::DType::F64 => self.backward::<f64>(x, w, y, grad)?,
            other => candle_core::bail!("dense expects f32 or f64 tensors, found {other:?}"),
        };
        Ok((x_grad, Some(w_grad), Some(b_grad)))
    }
}

impl Dense {
    /// The forward pass for one element type.
    fn forward<T: WithDType>(
        &self,
        (x, l1): (&[T], &Layout),
        (w, l2): (&[T], &Layout),
        (b, l3): (&[T], &Layout),
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, inputs, x_rs, x_cs, x_offset) = view(l1, x.len())?;
        let (outputs, w_inputs, w_rs, w_cs, w_offset) = view(l2, w.len())?;
        let Some((b_start, b_end)) = l3.contiguous_offsets() else {
            candle_core::bail!("dense expects a contiguous bias");
        };
        let b = &b[b_start..b_end];
        if inputs != w_inputs || b.len() != outputs {
            candle_core::bail!(
                "dense: input {:?}, weight {:?} and bias {:?} do not fit",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let mut y = vec![T::zero(); batch * outputs];
        // x · wᵀ: the transpose of `w` is a view with its strides swapped.
        gemm_into(
            &mut y,
            (batch, outputs, inputs),
            (&x[x_offset..], x_rs, x_cs),
            (&w[w_offset..], w_cs, w_rs),
        )?;
        for row in y.chunks_exact_mut(outputs.max(1)) {
            for (v, &bias) in row.iter_mut().zip(b) {
                *v += bias;
                if self.0 == Activation::Relu && *v < T::zero() {
                    *v = T::zero();
                }
            }
        }
        Ok((T::to_cpu_storage_owned(y), Shape::from((batch, outputs))))
    }

    /// With `g` the gradient of `y` masked by the ReLU (`y > 0`):
    /// `∂x = g · w`, `∂w = gᵀ · x` and `∂b = Σ_rows g`; `∂x` only when `x`
    /// is tracked (a first layer's input is data).
    #[allow(clippy::type_complexity)]
    fn backward<T: WithDType>(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Tensor, Tensor)> {
        let (batch, outputs) = y.dims2()?;
        let inputs = x.dims2()?.1;
        let g = contiguous_slice(grad, |grad: &[T]| match self.0 {
            Activation::Identity => Ok(grad.to_vec()),
            // The ReLU passes gradient only where it passed the value.
            Activation::Relu => contiguous_slice(y, |y: &[T]| {
                grad.iter()
                    .zip(y)
                    .map(|(&g, &y)| if y > T::zero() { g } else { T::zero() })
                    .collect::<Vec<T>>()
            }),
        })??;
        let mut grad_b = vec![T::zero(); outputs];
        for row in g.chunks_exact(outputs.max(1)) {
            for (sum, &v) in grad_b.iter_mut().zip(row) {
                *sum += v;
            }
        }
        let mut grad_w = vec![T::zero(); outputs * inputs];
        contiguous_slice(x, |x: &[T]| {
            gemm_into(
                &mut grad_w,
                (outputs, inputs, batch),
                (&g, 1, outputs),
                (x, inputs, 1),
            )
        })??;
        let grad_x = if x.track_op() {
            let mut grad_x = vec![T::zero(); batch * inputs];
            contiguous_slice(w, |w: &[T]| {
                gemm_into(
                    &mut grad_x,
                    (batch, inputs, outputs),
                    (&g, outputs, 1),
                    (w, inputs, 1),
                )
            })??;
            Some(Tensor::from_vec(grad_x, (batch, inputs), x.device())?)
        } else {
            None
        };
        Ok((
            grad_x,
            Tensor::from_vec(grad_w, (outputs, inputs), w.device())?,
            Tensor::from_vec(grad_b, outputs, w.device())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused dense layer equals matmul + bias + ReLU composed from
    /// candle's own ops, forward and backward, within float rounding.
    #[test]
    fn dense_matches_composed_ops_and_their_gradients() {
        let device = Device::Cpu;
        let values = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * scale)
                .collect()
        };
        for activation in [Activation::Relu, Activation::Identity] {
            let x = Var::from_vec(values(6 * 4, 0.3), (6, 4), &device).unwrap();
            let w = Var::from_vec(values(5 * 4, 0.2), (5, 4), &device).unwrap();
            let b = Var::from_vec(values(5, 0.1), 5, &device).unwrap();
            let ours = dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), activation).unwrap();
            let mut theirs = x
                .as_tensor()
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap();
            if activation == Activation::Relu {
                theirs = theirs.relu().unwrap();
            }
            let close = |a: &Tensor, b: &Tensor| {
                let (a, b) = (
                    a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                );
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
                }
            };
            close(&ours, &theirs);
            let weights = Tensor::from_vec(values(30, 1.0), (6, 5), &device).unwrap();
            let g1 = (ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (theirs * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for var in [&x, &w, &b] {
                close(
                    g1.get(var.as_tensor()).unwrap(),
                    g2.get(var.as_tensor()).unwrap(),
                );
            }
        }
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let device = Device::Cpu;
        let x = Tensor::zeros((2, 3), candle_core::DType::F32, &device).unwrap();
        let w = Tensor::zeros((4, 2), candle_core::DType::F32, &device).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &device).unwrap();
        assert!(dense(&x, &w, &b, Activation::Relu).is_err());
    }
}
