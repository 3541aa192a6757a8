//! Causal multi-head self-attention as one fused candle op, forward and
//! backward, on the calling thread.
//!
//! Composed of candle ops, attention over a short history is mostly
//! overhead: a batched product of thousands of 4×8 matrices, a mask
//! tensor, transposes and copies, five ops of softmax, each with its own
//! backward. [`attention`] instead takes the projections `q`, `k`, `v`
//! as they come out of the linear layers — `[batch, tokens, dim]` or the
//! same rows as `[batch · tokens, dim]`, the heads side by side in `dim` —
//! and works one head of one session at a time: the head's `tokens ×
//! d_h` blocks gathered contiguously, `S = Q Kᵀ / √d_h` and `O = P V` as
//! single-threaded gemm products, the softmax over keys `j ≤ i` that are
//! not padding in between. A padding query attends to nothing and outputs
//! zeros (no valid token ever reads a padding position, so this changes no
//! session's state). The forward pass keeps the weights `P` for the
//! backward pass, which applies `dV = Pᵀ dO`, `dP = dO Vᵀ`,
//! `dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √d_h`, `dQ = dS K`, `dK = dSᵀ Q`
//! (four more products a block). Arithmetic is in the inputs' type (`f32`
//! in training, `f64` in the checks), every sum in a fixed order, so the
//! bits do not depend on the thread count. The tests check both passes
//! against the composed ops and central differences.

use super::fused::{Forward3, Real, cpu_fwd3, with_values};
use super::scan::dispatch;
use crate::dqn::dense::gemm_into;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use std::sync::{Arc, Mutex};

/// The fused op: `heads` heads, and which tokens are real (`[batch × tokens]`,
/// false for padding). The forward pass keeps its attention weights
/// (`[batch, heads, tokens, tokens]`, in the inputs' type) for the backward
/// pass.
#[derive(Debug)]
struct CausalAttention {
    tokens: usize,
    heads: usize,
    valid: Arc<Vec<bool>>,
    weights: Mutex<Option<CpuStorage>>,
}

/// Causal attention of `q`, `k`, `v` (each `[batch, tokens, dim]`, or the
/// same rows as `[batch · tokens, dim]`; contiguous) with `heads` heads
/// over sessions of `tokens` tokens; `valid[s · tokens + i]` says whether
/// token `i` of session `s` is real. The output has `q`'s shape; gradients
/// flow to all three inputs.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    (tokens, heads): (usize, usize),
    valid: Arc<Vec<bool>>,
) -> candle_core::Result<Tensor> {
    let d = q.dims().last().copied().unwrap_or(0);
    let rows = q.elem_count() / d.max(1);
    if k.dims() != q.dims()
        || v.dims() != q.dims()
        || tokens == 0
        || !rows.is_multiple_of(tokens)
        || valid.len() != rows
    {
        candle_core::bail!(
            "attention: q {:?}, k, v, sessions of {tokens} tokens and a mask of {} disagree",
            q.dims(),
            valid.len()
        );
    }
    if heads == 0 || d == 0 || !d.is_multiple_of(heads) {
        candle_core::bail!("attention: {heads} heads do not divide dim {d}");
    }
    q.apply_op3(
        k,
        v,
        CausalAttention {
            tokens,
            heads,
            valid,
            weights: Mutex::new(None),
        },
    )
}

#[cfg(test)]
fn tensor_values(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.flatten_all()?.to_dtype(DType::F64)?.to_vec1()
}

/// The sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    d: usize,
    heads: usize,
}

impl Dims {
    fn head_dim(&self) -> usize {
        self.d / self.heads
    }

    /// The offset of head `h` of token `i` of session `s`.
    fn at(&self, s: usize, i: usize, h: usize) -> usize {
        (s * self.t + i) * self.d + h * self.head_dim()
    }

    /// Head `h` of session `s`'s tokens, `[t, head_dim]` contiguous, into
    /// `out`.
    #[inline(always)]
    fn gather<T: Real>(&self, x: &[T], (s, h): (usize, usize), out: &mut [T]) {
        let hd = self.head_dim();
        for (j, row) in out.chunks_exact_mut(hd).enumerate() {
            row.copy_from_slice(&x[self.at(s, j, h)..self.at(s, j, h) + hd]);
        }
    }

    /// The inverse of [`Self::gather`]: `from` written to head `h` of
    /// session `s`'s tokens in `x`.
    #[inline(always)]
    fn scatter<T: Real>(&self, from: &[T], (s, h): (usize, usize), x: &mut [T]) {
        let hd = self.head_dim();
        for (j, row) in from.chunks_exact(hd).enumerate() {
            x[self.at(s, j, h)..self.at(s, j, h) + hd].copy_from_slice(row);
        }
    }
}

/// The forward pass (output and weights) as a pass for
/// [`dispatch`](super::scan::dispatch): its loops compiled for AVX2 where
/// the CPU has it, the same bits either way (no sum is reordered, no
/// product fused); the block products are gemm's, which picks its own
/// kernels.
struct ForwardPass<'a, T> {
    op: &'a CausalAttention,
    n: Dims,
    qkv: [&'a [T]; 3],
}

impl<T: Real> pulp::NullaryFnOnce for ForwardPass<'_, T> {
    type Output = candle_core::Result<(Vec<T>, Vec<T>)>;

    #[inline(always)]
    fn call(self) -> Self::Output {
        let [q, k, v] = self.qkv;
        self.op.forward(self.n, q, k, v)
    }
}

/// The backward pass for [`dispatch`](super::scan::dispatch), with the
/// forward pass's weights (`None`: computed again).
struct BackwardPass<'a, T> {
    op: &'a CausalAttention,
    n: Dims,
    values: [&'a [T]; 4],
    weights: Option<&'a [T]>,
}

impl<T: Real> pulp::NullaryFnOnce for BackwardPass<'_, T> {
    type Output = candle_core::Result<[Vec<T>; 3]>;

    #[inline(always)]
    fn call(self) -> Self::Output {
        match self.weights {
            Some(p) => self.op.backward(self.n, self.values, p),
            None => {
                let p = self
                    .op
                    .probabilities(self.n, self.values[0], self.values[1])?;
                self.op.backward(self.n, self.values, &p)
            }
        }
    }
}

impl CausalAttention {
    /// Every real query's attention weights: `[b, heads, t, t]`, row `i`
    /// of a (session, head) block holding `softmax(q_i·k_j / √d_h)` over
    /// real keys `j ≤ i` and zeros elsewhere (a padding query's row is all
    /// zeros).
    #[inline(always)]
    fn probabilities<T: Real>(&self, n: Dims, q: &[T], k: &[T]) -> candle_core::Result<Vec<T>> {
        let (t, hd) = (n.t, n.head_dim());
        let scale = T::from_f64(1.0 / (hd as f64).sqrt());
        let mut p = vec![T::zero(); n.b * n.heads * t * t];
        let (mut qh, mut kh) = (vec![T::zero(); t * hd], vec![T::zero(); t * hd]);
        for s in 0..n.b {
            let valid = &self.valid[s * t..(s + 1) * t];
            for h in 0..n.heads {
                n.gather(q, (s, h), &mut qh);
                n.gather(k, (s, h), &mut kh);
                let block = &mut p[(s * n.heads + h) * t * t..(s * n.heads + h + 1) * t * t];
                // S = Q Kᵀ.
                gemm_into(block, (t, t, hd), (&qh, hd, 1), (&kh, 1, hd))?;
                for (i, row) in block.chunks_exact_mut(t).enumerate() {
                    if !valid[i] {
                        row.fill(T::zero());
                        continue;
                    }
                    let mut top = T::NEG_INFINITY;
                    for (j, pj) in row.iter_mut().enumerate() {
                        if j <= i && valid[j] {
                            *pj *= scale;
                            top = top.larger(*pj);
                        } else {
                            *pj = T::NEG_INFINITY;
                        }
                    }
                    let mut total = T::zero();
                    for pj in row.iter_mut() {
                        *pj = (*pj - top).exp();
                        total += *pj;
                    }
                    for pj in row.iter_mut() {
                        *pj /= total;
                    }
                }
            }
        }
        Ok(p)
    }

    #[inline(always)]
    fn forward<T: Real>(
        &self,
        n: Dims,
        q: &[T],
        k: &[T],
        v: &[T],
    ) -> candle_core::Result<(Vec<T>, Vec<T>)> {
        let (t, hd) = (n.t, n.head_dim());
        let p = self.probabilities(n, q, k)?;
        let mut out = vec![T::zero(); q.len()];
        let (mut vh, mut oh) = (vec![T::zero(); t * hd], vec![T::zero(); t * hd]);
        for s in 0..n.b {
            for h in 0..n.heads {
                n.gather(v, (s, h), &mut vh);
                let block = &p[(s * n.heads + h) * t * t..(s * n.heads + h + 1) * t * t];
                // O = P V.
                gemm_into(&mut oh, (t, hd, t), (block, t, 1), (&vh, hd, 1))?;
                n.scatter(&oh, (s, h), &mut out);
            }
        }
        Ok((out, p))
    }

    /// `(dQ, dK, dV)` for the output gradient `go`, with the forward
    /// pass's weights `p`.
    #[inline(always)]
    fn backward<T: Real>(
        &self,
        n: Dims,
        [q, k, v, go]: [&[T]; 4],
        p: &[T],
    ) -> candle_core::Result<[Vec<T>; 3]> {
        let (t, hd) = (n.t, n.head_dim());
        let scale = T::from_f64(1.0 / (hd as f64).sqrt());
        let zeros = || vec![T::zero(); q.len()];
        let (mut dq, mut dk, mut dv) = (zeros(), zeros(), zeros());
        let head = || vec![T::zero(); t * hd];
        let (mut qh, mut kh, mut vh, mut goh) = (head(), head(), head(), head());
        let (mut dqh, mut dkh, mut dvh) = (head(), head(), head());
        let mut ds = vec![T::zero(); t * t];
        for s in 0..n.b {
            for h in 0..n.heads {
                for (x, xh) in [(q, &mut qh), (k, &mut kh), (v, &mut vh), (go, &mut goh)] {
                    n.gather(x, (s, h), xh);
                }
                let block = &p[(s * n.heads + h) * t * t..(s * n.heads + h + 1) * t * t];
                // dV = Pᵀ dO; dP = dO Vᵀ.
                gemm_into(&mut dvh, (t, hd, t), (block, 1, t), (&goh, hd, 1))?;
                gemm_into(&mut ds, (t, t, hd), (&goh, hd, 1), (&vh, 1, hd))?;
                // dS = P ⊙ (dP − Σ_j P_ij dP_ij) / √d_h (zero where P is).
                for (row, dsr) in block.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                    let mut weighted = T::zero();
                    for (&pj, &dpj) in row.iter().zip(dsr.iter()) {
                        weighted += pj * dpj;
                    }
                    for (&pj, dsj) in row.iter().zip(dsr.iter_mut()) {
                        *dsj = pj * (*dsj - weighted) * scale;
                    }
                }
                // dQ = dS K; dK = dSᵀ Q.
                gemm_into(&mut dqh, (t, hd, t), (&ds, t, 1), (&kh, hd, 1))?;
                gemm_into(&mut dkh, (t, hd, t), (&ds, 1, t), (&qh, hd, 1))?;
                for (xh, x) in [(&dqh, &mut dq), (&dkh, &mut dk), (&dvh, &mut dv)] {
                    n.scatter(xh, (s, h), x);
                }
            }
        }
        Ok([dq, dk, dv])
    }

    /// The sizes of a call on inputs of `shape`.
    fn dims(&self, shape: &Shape) -> Dims {
        let d = shape.dims().last().copied().unwrap_or(0);
        Dims {
            b: shape.elem_count() / (d * self.tokens).max(1),
            t: self.tokens,
            d,
            heads: self.heads,
        }
    }

    fn grads<T: Real>(
        &self,
        [q, k, v, grad]: [&Tensor; 4],
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = self.dims(q.shape());
        let kept = self
            .weights
            .lock()
            .map_err(|_| candle_core::Error::msg("attention: the weights' lock was poisoned"))?;
        let [dq, dk, dv] = with_values([q, k, v, grad], |values: [&[T]; 4]| {
            // Not kept (or of another type): computed again.
            let weights = match kept.as_ref().map(T::cpu_storage_as_slice) {
                Some(Ok(p)) if p.len() == n.b * n.heads * n.t * n.t => Some(p),
                _ => None,
            };
            dispatch(BackwardPass {
                op: self,
                n,
                values,
                weights,
            })
        })??;
        let back = |g: Vec<T>| Tensor::from_vec(g, q.shape(), q.device());
        Ok((Some(back(dq)?), Some(back(dk)?), Some(back(dv)?)))
    }

    /// The forward pass for one element type, keeping the weights.
    fn run<T: Real>(&self, n: Dims, [q, k, v]: [&[T]; 3]) -> candle_core::Result<Vec<T>> {
        let (out, p) = dispatch(ForwardPass {
            op: self,
            n,
            qkv: [q, k, v],
        })?;
        *self
            .weights
            .lock()
            .map_err(|_| candle_core::Error::msg("attention: the weights' lock was poisoned"))? =
            Some(T::to_cpu_storage_owned(p));
        Ok(out)
    }
}

impl Forward3 for CausalAttention {
    const NAME: &'static str = "attention";

    fn forward3<T: Real>(&self, qkv: [&[T]; 3], shape: &Shape) -> candle_core::Result<Vec<T>> {
        self.run(self.dims(shape), qkv)
    }
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
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
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match q.dtype() {
            DType::F32 => self.grads::<f32>([q, k, v, grad]),
            DType::F64 => self.grads::<f64>([q, k, v, grad]),
            other => candle_core::bail!("attention expects f32 or f64, found {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};
    use rand::RngExt;
    use shoplab_env::seed::rng_from_seed;

    /// Attention composed of candle ops, as the encoder first computed it:
    /// batched products, an additive mask, a shifted softmax.
    fn composed(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, valid: &[bool]) -> Tensor {
        let (b, t, d) = q.dims3().unwrap();
        let hd = d / heads;
        let split = |x: &Tensor| {
            x.reshape((b, t, heads, hd))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let mut mask = vec![0f64; b * t * t];
        for s in 0..b {
            for i in 0..t {
                for j in 0..t {
                    if j > i || !valid[s * t + j] {
                        mask[(s * t + i) * t + j] = -1e9;
                    }
                }
            }
        }
        let mask = Tensor::from_vec(mask, (b, 1, t, t), &Device::Cpu).unwrap();
        let scores = (split(q)
            .matmul(&split(k).transpose(2, 3).unwrap().contiguous().unwrap())
            .unwrap()
            / (hd as f64).sqrt())
        .unwrap()
        .broadcast_add(&mask)
        .unwrap();
        let max = scores.max_keepdim(D::Minus1).unwrap().detach();
        let e = scores.broadcast_sub(&max).unwrap().exp().unwrap();
        let weights = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
        weights
            .matmul(&split(v))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, t, d))
            .unwrap()
    }

    /// On real tokens, the fused op's outputs and the gradients of a
    /// weighted sum of them agree with the composed ops' to 1e-12 (`f64`),
    /// with padding at the front of some sessions; padding queries output
    /// zeros.
    #[test]
    fn fused_attention_matches_the_composed_ops() {
        let (b, t, d, heads) = (3, 5, 8, 2);
        let mut rng = rng_from_seed(8);
        let mut random = || -> Vec<f64> {
            (0..b * t * d)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect()
        };
        let var = |x: Vec<f64>| Var::from_vec(x, (b, t, d), &Device::Cpu).unwrap();
        let (q, k, v) = (var(random()), var(random()), var(random()));
        let weights = Tensor::from_vec(random(), (b, t, d), &Device::Cpu).unwrap();
        // Session 0 full, session 1 two padding tokens, session 2 four.
        let valid: Vec<bool> = (0..b * t).map(|i| i % t >= [0, 2, 4][i / t]).collect();
        let mask = Tensor::from_vec(
            valid
                .iter()
                .map(|&r| f64::from(u8::from(r)))
                .collect::<Vec<_>>(),
            (b, t, 1),
            &Device::Cpu,
        )
        .unwrap();
        let fused = attention(&q, &k, &v, (t, heads), Arc::new(valid.clone())).unwrap();
        let plain = composed(&q, &k, &v, heads, &valid);
        let (f, p): (Vec<f64>, Vec<f64>) = (
            tensor_values(&fused).unwrap(),
            tensor_values(&plain).unwrap(),
        );
        for (i, (a, c)) in f.iter().zip(&p).enumerate() {
            if valid[i / d] {
                assert!((a - c).abs() < 1e-12, "output {i}: {a} vs {c}");
            } else {
                assert_eq!(*a, 0.0);
            }
        }
        let loss = |out: &Tensor| {
            out.broadcast_mul(&mask)
                .unwrap()
                .mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let (gf, gp) = (
            loss(&fused).backward().unwrap(),
            loss(&plain).backward().unwrap(),
        );
        for x in [&q, &k, &v] {
            let a = tensor_values(gf.get(x.as_tensor()).unwrap()).unwrap();
            let c = tensor_values(gp.get(x.as_tensor()).unwrap()).unwrap();
            for (i, (a, c)) in a.iter().zip(&c).enumerate() {
                assert!((a - c).abs() < 1e-12, "gradient {i}: {a} vs {c}");
            }
        }
        // In f32, the same to 1e-6.
        let f32s = |x: &Var| x.as_tensor().to_dtype(DType::F32).unwrap();
        let single = attention(
            &f32s(&q),
            &f32s(&k),
            &f32s(&v),
            (t, heads),
            Arc::new(valid.clone()),
        )
        .unwrap();
        for (a, c) in tensor_values(&single).unwrap().iter().zip(&f) {
            assert!((a - c).abs() < 1e-6);
        }
        assert!(attention(&q, &k, &v, (t, 3), Arc::new(valid.clone())).is_err());
        assert!(attention(&q, &k, &v, (t, heads), Arc::new(vec![true; 2])).is_err());
        assert!(attention(&q, &k, &v, (2, heads), Arc::new(valid.clone())).is_err());
        // The same rows as [b · t, d]: the same values.
        let rows = |x: &Var| x.as_tensor().reshape((b * t, d)).unwrap();
        let flat = attention(
            &rows(&q),
            &rows(&k),
            &rows(&v),
            (t, heads),
            Arc::new(valid.clone()),
        )
        .unwrap();
        assert_eq!(flat.dims(), [b * t, d]);
        assert_eq!(tensor_values(&flat).unwrap(), f);
    }
}
