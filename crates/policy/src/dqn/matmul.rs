//! A single-threaded matrix product as a candle op, with its gradient.
//!
//! candle's own CPU matmul asks how many threads to use on every call
//! (reading `RAYON_NUM_THREADS`, or the CPU list from `/proc` when that is
//! unset, a file read per product) and splits large products across them.
//! Deep Q-learning here runs many small products per step, one run per
//! thread, and needs results that do not depend on the thread count. This
//! op calls the same gemm kernels directly with no parallelism, so results
//! are identical whatever `RAYON_NUM_THREADS` is, and the per-call cost is
//! the product itself.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// `a · b` for 2-D f32 tensors of any strides (transposed views included),
/// computed on the calling thread; differentiable.
pub fn matmul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    a.apply_op2(b, SingleThreadMatMul)
}

/// The op behind [`matmul`].
struct SingleThreadMatMul;

/// Rows, columns, row stride, column stride and offset of a 2-D layout, with
/// the largest element index it reaches checked against `len`.
fn view(layout: &Layout, len: usize) -> candle_core::Result<(usize, usize, usize, usize, usize)> {
    let (dims, stride) = (layout.dims(), layout.stride());
    if dims.len() != 2 {
        candle_core::bail!("matmul expects 2-D tensors, found shape {dims:?}");
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
            candle_core::bail!("matmul: layout {layout:?} reaches past its storage of {len}");
        }
    }
    Ok((rows, cols, stride[0], stride[1], offset))
}

impl CustomOp2 for SingleThreadMatMul {
    fn name(&self) -> &'static str {
        "single-thread-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(lhs), CpuStorage::F32(rhs)) = (s1, s2) else {
            candle_core::bail!("matmul expects f32 tensors");
        };
        let (m, k, lhs_rs, lhs_cs, lhs_offset) = view(l1, lhs.len())?;
        let (k2, n, rhs_rs, rhs_cs, rhs_offset) = view(l2, rhs.len())?;
        if k != k2 {
            candle_core::bail!(
                "matmul: shapes {:?} and {:?} do not chain",
                l1.dims(),
                l2.dims()
            );
        }
        let mut dst = vec![0f32; m * n];
        if m > 0 && n > 0 && k > 0 {
            let as_isize = |s: usize| isize::try_from(s).map_err(candle_core::Error::wrap);
            let (lhs_rs, lhs_cs) = (as_isize(lhs_rs)?, as_isize(lhs_cs)?);
            let (rhs_rs, rhs_cs) = (as_isize(rhs_rs)?, as_isize(rhs_cs)?);
            let dst_rs = as_isize(n)?;
            let lhs = &lhs[lhs_offset..];
            let rhs = &rhs[rhs_offset..];
            // SAFETY: `dst` holds m × n elements, written row-major (column
            // stride 1, row stride n); `view` checked that every element the
            // lhs (m × k) and rhs (k × n) strides reach lies inside their
            // slices, which start at the layouts' offsets. Strides are
            // non-negative and no buffer aliases another. With
            // `read_dst = false` the destination is only written.
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
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }

    /// For `C = A · B`: `∂A = ∂C · Bᵀ` and `∂B = Aᵀ · ∂C`.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _result: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_a = matmul(grad, &b.t()?)?;
        let grad_b = matmul(&a.t()?, grad)?;
        Ok((Some(grad_a), Some(grad_b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Products and gradients agree with candle's own matmul (on exactly
    /// representable values, so to the bit), for plain and transposed views.
    #[test]
    fn matches_candle_matmul_and_its_gradients() {
        let device = Device::Cpu;
        let values = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) * scale)
                .collect()
        };
        let a = Var::from_vec(values(3 * 4, 0.5), (3, 4), &device).unwrap();
        let b = Var::from_vec(values(5 * 4, 0.25), (5, 4), &device).unwrap();
        let ours = matmul(a.as_tensor(), &b.as_tensor().t().unwrap()).unwrap();
        let theirs = a.as_tensor().matmul(&b.as_tensor().t().unwrap()).unwrap();
        assert_eq!(
            ours.to_vec2::<f32>().unwrap(),
            theirs.to_vec2::<f32>().unwrap()
        );
        let weights = Tensor::from_vec(values(15, 1.0), (3, 5), &device).unwrap();
        let ours_grads = (ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let theirs_grads = (theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in [&a, &b] {
            let g1 = ours_grads.get(var.as_tensor()).unwrap();
            let g2 = theirs_grads.get(var.as_tensor()).unwrap();
            assert_eq!(g1.to_vec2::<f32>().unwrap(), g2.to_vec2::<f32>().unwrap());
        }
    }

    #[test]
    fn refuses_shapes_that_do_not_chain() {
        let device = Device::Cpu;
        let a = Tensor::zeros((2, 3), candle_core::DType::F32, &device).unwrap();
        assert!(matmul(&a, &a).is_err());
    }
}
