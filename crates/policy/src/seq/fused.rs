//! The session encoder's fused single-threaded kernels: layer norm as one
//! candle op with its gradient, and the element-type plumbing they and the
//! fused attention share.
//!
//! Composed of candle ops, a layer norm is ten tensors a call (mean,
//! centre, square, mean, add, square root, divide, scale, shift) and as
//! many backward steps, each allocating and sweeping a tensor (with the
//! composed attention, the elementwise sweeps and their fresh pages cost
//! the encoder's training step more than its matrix products, in a
//! profile of `cargo bench --bench catalog -- encoder`). [`layer_norm`]
//! works row by row in one op each way: the row's mean and variance, then
//! its output (forward) or its gradient (backward). Every kernel runs on
//! the calling thread in one fixed order, so its bits do not depend on the
//! thread count, and is written once for `f32` (training) and `f64` (the
//! checks against the reference implementation).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Storage, Tensor, WithDType};

/// `f32` or `f64`: what the fused kernels compute in.
pub(crate) trait Real: WithDType {
    /// `eˣ`.
    fn exp(self) -> Self;
    /// `√x`.
    fn sqrt(self) -> Self;
    /// The larger of two values.
    fn larger(self, other: Self) -> Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn larger(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
        }
    };
}
real!(f32);
real!(f64);

/// The values of a contiguous CPU storage's layout.
pub(crate) fn storage_slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("a fused op expects contiguous inputs");
    };
    Ok(&T::cpu_storage_as_slice(storage)?[start..end])
}

/// A fused op's forward pass over three contiguous inputs, written once for
/// both element types.
pub(crate) trait Forward3 {
    /// The op's name, for errors.
    const NAME: &'static str;

    /// The output's values, of the first input's shape `shape`.
    fn forward3<T: Real>(&self, inputs: [&[T]; 3], shape: &Shape) -> candle_core::Result<Vec<T>>;
}

/// `op`'s forward pass on three CPU storages of one element type (`f32`
/// or `f64`), as [`CustomOp3::cpu_fwd`] returns it.
pub(crate) fn cpu_fwd3<O: Forward3>(
    op: &O,
    inputs: [(&CpuStorage, &Layout); 3],
) -> candle_core::Result<(CpuStorage, Shape)> {
    let out = match inputs[0].0 {
        CpuStorage::F32(_) => forward_typed::<f32, O>(op, inputs)?,
        CpuStorage::F64(_) => forward_typed::<f64, O>(op, inputs)?,
        _ => candle_core::bail!("{} expects f32 or f64 tensors", O::NAME),
    };
    Ok((out, inputs[0].1.shape().clone()))
}

/// [`cpu_fwd3`] for element type `T` (every input must be of it).
fn forward_typed<T: Real, O: Forward3>(
    op: &O,
    [(s1, l1), (s2, l2), (s3, l3)]: [(&CpuStorage, &Layout); 3],
) -> candle_core::Result<CpuStorage> {
    let values = [
        storage_slice(s1, l1)?,
        storage_slice(s2, l2)?,
        storage_slice(s3, l3)?,
    ];
    Ok(T::to_cpu_storage_owned(
        op.forward3::<T>(values, l1.shape())?,
    ))
}

/// Calls `f` with the values of `N` CPU tensors of type `T` (each made
/// contiguous first, copying only where it is not).
pub(crate) fn with_values<T: WithDType, R, const N: usize>(
    tensors: [&Tensor; N],
    f: impl FnOnce([&[T]; N]) -> R,
) -> candle_core::Result<R> {
    let owned = tensors
        .iter()
        .map(|t| t.contiguous())
        .collect::<candle_core::Result<Vec<_>>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(storage) => storage_slice(storage, layout),
            _ => candle_core::bail!("a fused op expects CPU tensors"),
        })
        .collect::<candle_core::Result<Vec<&[T]>>>()?;
    let Ok(slices) = <[&[T]; N]>::try_from(slices) else {
        candle_core::bail!("with_values: a tensor went missing");
    };
    Ok(f(slices))
}

/// Layer norm over the last dimension of `x` (biased variance, as
/// PyTorch's): `(x − mean) / √(var + eps) · weight + bias`, one
/// differentiable op; `weight` and `bias` have the last dimension's size.
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let n = x.dims().last().copied().unwrap_or(0);
    if n == 0 || weight.dims() != [n] || bias.dims() != [n] {
        candle_core::bail!(
            "layer norm: input {:?}, weight {:?} and bias {:?} do not fit",
            x.dims(),
            weight.dims(),
            bias.dims()
        );
    }
    if !(eps > 0.0 && eps.is_finite()) {
        candle_core::bail!("layer norm: epsilon {eps} is not a positive number");
    }
    x.contiguous()?.apply_op3(weight, bias, LayerNorm { eps })
}

/// The op behind [`layer_norm`].
struct LayerNorm {
    eps: f64,
}

/// A row's mean and `1 / √(var + eps)`.
fn moments<T: Real>(row: &[T], eps: f64) -> (T, T) {
    let n = T::from_f64(row.len() as f64);
    let mut sum = T::zero();
    for &v in row {
        sum += v;
    }
    let mean = sum / n;
    let mut squares = T::zero();
    for &v in row {
        squares += (v - mean) * (v - mean);
    }
    let rstd = T::one() / (squares / n + T::from_f64(eps)).sqrt();
    (mean, rstd)
}

impl LayerNorm {
    fn forward<T: Real>(&self, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
        let n = w.len();
        let mut y = vec![T::zero(); x.len()];
        for (row, out) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            let (mean, rstd) = moments(row, self.eps);
            for (((o, &v), &w), &b) in out.iter_mut().zip(row).zip(w).zip(b) {
                *o = (v - mean) * rstd * w + b;
            }
        }
        y
    }

    /// With `x̂ = (x − mean)·r` and `ĝ = g ⊙ w` per row:
    /// `∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))`, `∂w = Σ_rows g ⊙ x̂`,
    /// `∂b = Σ_rows g`.
    fn backward<T: Real>(&self, x: &[T], w: &[T], g: &[T]) -> [Vec<T>; 3] {
        let n = w.len();
        let (mut dx, mut dw, mut db) = (
            vec![T::zero(); x.len()],
            vec![T::zero(); n],
            vec![T::zero(); n],
        );
        let count = T::from_f64(n as f64);
        let mut normed = vec![T::zero(); n];
        for ((row, grad), out) in x
            .chunks_exact(n)
            .zip(g.chunks_exact(n))
            .zip(dx.chunks_exact_mut(n))
        {
            let (mean, rstd) = moments(row, self.eps);
            let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
            for c in 0..n {
                let xhat = (row[c] - mean) * rstd;
                normed[c] = xhat;
                let gw = grad[c] * w[c];
                db[c] += grad[c];
                dw[c] += grad[c] * xhat;
                sum_g += gw;
                sum_gx += gw * xhat;
            }
            let (mean_g, mean_gx) = (sum_g / count, sum_gx / count);
            for c in 0..n {
                out[c] = rstd * (grad[c] * w[c] - mean_g - normed[c] * mean_gx);
            }
        }
        [dx, dw, db]
    }

    fn grads<T: Real>(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [dx, dw, db] =
            with_values([x, w, grad], |[x, w, g]: [&[T]; 3]| self.backward(x, w, g))?;
        let n = w.elem_count();
        let dx = if x.track_op() {
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, n, w.device())?),
            Some(Tensor::from_vec(db, n, w.device())?),
        ))
    }
}

impl Forward3 for LayerNorm {
    const NAME: &'static str = "layer norm";

    fn forward3<T: Real>(&self, [x, w, b]: [&[T]; 3], _: &Shape) -> candle_core::Result<Vec<T>> {
        Ok(self.forward(x, w, b))
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
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
        cpu_fwd3(self, [(s1, l1), (s2, l2), (s3, l3)])
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match x.dtype() {
            candle_core::DType::F32 => self.grads::<f32>(x, w, grad),
            candle_core::DType::F64 => self.grads::<f64>(x, w, grad),
            other => candle_core::bail!("layer norm expects f32 or f64, found {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, DType, Device, Var};
    use rand::RngExt;
    use shoplab_env::seed::rng_from_seed;

    /// Layer norm composed of candle ops (what the encoder computed before).
    fn composed(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let centered = x.broadcast_sub(&mean).unwrap();
        let var = centered.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let normed = centered
            .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
            .unwrap();
        normed.broadcast_mul(w).unwrap().broadcast_add(b).unwrap()
    }

    /// The fused op's output and the gradients (input, weight, bias) of a
    /// weighted sum of it against the composed ops in `f64` on the same
    /// values, on rows of very different scales (1e-3 to 1e3 around 0.5,
    /// which a wrong variance term would show). In `f64` to 1e-12; in
    /// `f32` to 1e-4 relative: a rounding of `x` (u = 6e-8, |x| ≈ 0.5)
    /// divided by the smallest row's `√(var + eps)` ≈ 3.2e-3 is 1e-5, and
    /// a handful of such roundings add up.
    #[test]
    fn fused_layer_norm_matches_the_composed_ops() {
        let (rows, n) = (7, 12);
        let mut rng = rng_from_seed(4);
        let mut random = |count: usize, scale: f64| -> Vec<f64> {
            (0..count)
                .map(|_| scale * rng.random_range(-1.0..1.0))
                .collect()
        };
        let mut xs = Vec::new();
        for r in 0..rows {
            xs.extend(random(n, 10f64.powi(r as i32 - 3)).iter().map(|v| v + 0.5));
        }
        let weights = random(rows * n, 1.0);
        let (w, b) = (random(n, 1.0), random(n, 1.0));
        let dev = &Device::Cpu;
        let values = |t: &Tensor| -> Vec<f64> {
            t.flatten_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-4)] {
            // The inputs in `dtype`, and the same values in f64.
            let vars = |dtype: DType| {
                let var = |v: &[f64], shape: &[usize]| {
                    let t = Tensor::from_slice(v, shape, dev).unwrap();
                    Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
                };
                (var(&xs, &[rows, n]), var(&w, &[n]), var(&b, &[n]))
            };
            let (x, wv, bv) = vars(dtype);
            let exact =
                |v: &Var| Var::from_tensor(&v.as_tensor().to_dtype(DType::F64).unwrap()).unwrap();
            let (x64, w64, b64) = (exact(&x), exact(&wv), exact(&bv));
            let mix = Tensor::from_slice(&weights, (rows, n), dev).unwrap();
            let fused = layer_norm(&x, &wv, &bv, 1e-5).unwrap();
            let plain = composed(&x64, &w64, &b64, 1e-5);
            let close = |a: &Tensor, c: &Tensor, what: &str| {
                for (i, (a, c)) in values(a).iter().zip(values(c)).enumerate() {
                    assert!(
                        (a - c).abs() < tolerance * (1.0 + c.abs()),
                        "{dtype:?} {what} {i}: {a} vs {c}"
                    );
                }
            };
            close(&fused, &plain, "output");
            let loss = |out: &Tensor| {
                (out * mix.to_dtype(out.dtype()).unwrap())
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            let (gf, gp) = (
                loss(&fused).backward().unwrap(),
                loss(&plain).backward().unwrap(),
            );
            for ((v, v64), what) in [(&x, &x64), (&wv, &w64), (&bv, &b64)]
                .into_iter()
                .zip(["∂x", "∂w", "∂b"])
            {
                close(
                    gf.get(v.as_tensor()).unwrap(),
                    gp.get(v64.as_tensor()).unwrap(),
                    what,
                );
            }
        }
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let dev = &Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, dev).unwrap();
        let w = Tensor::ones(4, DType::F32, dev).unwrap();
        assert!(layer_norm(&x, &w, &w, 1e-5).is_err());
        let w = Tensor::ones(3, DType::F32, dev).unwrap();
        assert!(layer_norm(&x, &w, &w, 0.0).is_err());
        assert!(layer_norm(&x, &w, &w, 1e-5).is_ok());
    }
}
