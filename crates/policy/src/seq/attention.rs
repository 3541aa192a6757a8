//! Causal multi-head self-attention as one fused candle op, forward and
//! backward, on the calling thread.
//!
//! Composed of candle ops, attention over a short history is mostly
//! overhead: a batched product of thousands of 4×8 matrices, a mask
//! tensor, transposes and copies, five ops of softmax, each with its own
//! backward. [`attention`] instead takes the projections `q`, `k`, `v`
//! as they come out of the linear layers — `[batch, tokens, dim]`, the
//! heads side by side in `dim` — and loops over sessions, heads and
//! queries directly: query `i` attends to keys `j ≤ i` that are not
//! padding, `softmax(q_i·k_j / √d_h)`, and its output is the weighted sum
//! of those values. A padding query attends to nothing and outputs zeros
//! (no valid token ever reads a padding position, so this changes no
//! session's state). The backward pass recomputes the weights `P` and
//! applies `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`,
//! `dQ = dS K / √d_h`, `dK = dSᵀ Q / √d_h`. Arithmetic is in `f64` for
//! either input type; the tests check both passes against the composed
//! ops and central differences.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use std::sync::Arc;

/// The fused op: `heads` heads, and which tokens are real (`[batch × tokens]`,
/// false for padding).
#[derive(Debug, Clone)]
struct CausalAttention {
    heads: usize,
    valid: Arc<Vec<bool>>,
}

/// Causal attention of `q`, `k`, `v` (`[batch, tokens, dim]`, contiguous)
/// with `heads` heads; `valid[s · tokens + i]` says whether token `i` of
/// session `s` is real. Gradients flow to all three inputs.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    valid: Arc<Vec<bool>>,
) -> candle_core::Result<Tensor> {
    let (b, t, d) = q.dims3()?;
    if k.dims() != q.dims() || v.dims() != q.dims() || valid.len() != b * t {
        candle_core::bail!("attention: q, k, v and the token mask disagree in shape");
    }
    if heads == 0 || !d.is_multiple_of(heads) {
        candle_core::bail!("attention: {heads} heads do not divide dim {d}");
    }
    q.apply_op3(k, v, CausalAttention { heads, valid })
}

/// A contiguous tensor's values in `f64`.
fn values(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Vec<f64>> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("attention expects contiguous inputs");
    };
    Ok(match storage {
        CpuStorage::F32(v) => v[start..end].iter().map(|&x| f64::from(x)).collect(),
        CpuStorage::F64(v) => v[start..end].to_vec(),
        _ => candle_core::bail!("attention expects f32 or f64"),
    })
}

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
}

impl CausalAttention {
    /// The attention weights of query `i` (session `s`, head `h`) over keys
    /// `0..=i`, into `p` (zero for padding keys); false for a padding query.
    fn weights(
        &self,
        n: Dims,
        (q, k): (&[f64], &[f64]),
        (s, h, i): (usize, usize, usize),
        p: &mut [f64],
    ) -> bool {
        let hd = n.head_dim();
        let scale = 1.0 / (hd as f64).sqrt();
        p.fill(0.0);
        if !self.valid[s * n.t + i] {
            return false;
        }
        let qi = &q[n.at(s, i, h)..n.at(s, i, h) + hd];
        let mut top = f64::NEG_INFINITY;
        for j in (0..=i).filter(|&j| self.valid[s * n.t + j]) {
            let kj = &k[n.at(s, j, h)..n.at(s, j, h) + hd];
            p[j] = scale * qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>();
            top = top.max(p[j]);
        }
        let mut total = 0.0;
        for j in (0..=i).filter(|&j| self.valid[s * n.t + j]) {
            p[j] = (p[j] - top).exp();
            total += p[j];
        }
        p[..=i].iter_mut().for_each(|x| *x /= total);
        true
    }

    /// Calls `f` with every real query's place (session, head, token) and
    /// its weights over keys `0..=i`.
    fn each_query(
        &self,
        n: Dims,
        (q, k): (&[f64], &[f64]),
        mut f: impl FnMut((usize, usize, usize), &[f64]),
    ) {
        let mut p = vec![0.0; n.t];
        for s in 0..n.b {
            for h in 0..n.heads {
                for i in 0..n.t {
                    if self.weights(n, (q, k), (s, h, i), &mut p) {
                        f((s, h, i), &p[..=i]);
                    }
                }
            }
        }
    }

    fn forward(&self, n: Dims, q: &[f64], k: &[f64], v: &[f64]) -> Vec<f64> {
        let hd = n.head_dim();
        let mut out = vec![0.0; q.len()];
        self.each_query(n, (q, k), |(s, h, i), p| {
            let o = n.at(s, i, h);
            for (j, &pj) in p.iter().enumerate().filter(|(_, p)| **p > 0.0) {
                let vj = &v[n.at(s, j, h)..n.at(s, j, h) + hd];
                for c in 0..hd {
                    out[o + c] += pj * vj[c];
                }
            }
        });
        out
    }

    /// `(dQ, dK, dV)` for the output gradient `go`.
    fn backward(&self, n: Dims, q: &[f64], k: &[f64], v: &[f64], go: &[f64]) -> [Vec<f64>; 3] {
        let hd = n.head_dim();
        let scale = 1.0 / (hd as f64).sqrt();
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        let mut dp = vec![0.0; n.t];
        self.each_query(n, (q, k), |(s, h, i), p| {
            let o = n.at(s, i, h);
            let goi = &go[o..o + hd];
            let mut weighted = 0.0;
            for j in 0..=i {
                let vj = n.at(s, j, h);
                dp[j] = goi.iter().zip(&v[vj..vj + hd]).map(|(a, b)| a * b).sum();
                weighted += p[j] * dp[j];
                for c in 0..hd {
                    dv[vj + c] += p[j] * goi[c];
                }
            }
            for j in (0..=i).filter(|&j| p[j] > 0.0) {
                let ds = p[j] * (dp[j] - weighted) * scale;
                let kj = n.at(s, j, h);
                for c in 0..hd {
                    dq[o + c] += ds * k[kj + c];
                    dk[kj + c] += ds * q[o + c];
                }
            }
        });
        [dq, dk, dv]
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
        let (b, t, d) = l1.shape().dims3()?;
        let n = Dims {
            b,
            t,
            d,
            heads: self.heads,
        };
        let out = self.forward(n, &values(s1, l1)?, &values(s2, l2)?, &values(s3, l3)?);
        let storage = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32(out.into_iter().map(|x| x as f32).collect()),
            _ => CpuStorage::F64(out),
        };
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t, d) = q.dims3()?;
        let n = Dims {
            b,
            t,
            d,
            heads: self.heads,
        };
        let [dq, dk, dv] = self.backward(
            n,
            &tensor_values(q)?,
            &tensor_values(k)?,
            &tensor_values(v)?,
            &tensor_values(grad)?,
        );
        let back = |g: Vec<f64>| Tensor::from_vec(g, (b, t, d), q.device())?.to_dtype(q.dtype());
        Ok((Some(back(dq)?), Some(back(dk)?), Some(back(dv)?)))
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
        let fused = attention(&q, &k, &v, heads, Arc::new(valid.clone())).unwrap();
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
            heads,
            Arc::new(valid.clone()),
        )
        .unwrap();
        for (a, c) in tensor_values(&single).unwrap().iter().zip(&f) {
            assert!((a - c).abs() < 1e-6);
        }
        assert!(attention(&q, &k, &v, 3, Arc::new(valid.clone())).is_err());
        assert!(attention(&q, &k, &v, heads, Arc::new(vec![true; 2])).is_err());
    }
}
