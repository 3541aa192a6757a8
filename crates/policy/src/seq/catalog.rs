//! Two-tower scoring of a large catalog: the logit of item `i` for a
//! shopper in state `s` is `h(s)·e_i + b_i`, so a decision costs one pass
//! over the item embeddings — `items × dim` multiply-adds — and no
//! per-item output layer; the top `k` come from a partial selection, not a
//! sort of the whole catalog.
//!
//! [`ItemTower`] serves one shopper at a time (candidate generation): at
//! 100,000 items a pass reads the whole table, 25.6 MB at dimension 64 in
//! `f32`, so it is bound by memory bandwidth, not arithmetic. It keeps a
//! second copy in 8-bit integers with a scale per item (a quarter of the
//! bytes) and finds the exact top `k` in two steps: a pass over the
//! integers keeps every item whose coarse score could still be among the
//! `k` best — within twice a proven bound on the quantization's and the
//! roundings' effect of the `k`-th best coarse score — and those few are
//! scored again in `f32`. The answer is the one a full `f32` pass and
//! [`top_k`] give, bit for bit (scores, ties to the lower index). The
//! passes are the grouped scans of `scan`, the same bits with or without
//! AVX2. A batch of states (the learners' acting and training) is one
//! gemm, [`score_states`], which reads the table once for the batch.

use super::scan::{self, GROUP};
use crate::dqn::dense::gemm_into;

/// The item tower: one embedding and one bias per item, the embedding in
/// `f32` for exact scores and in 8-bit integers (with a scale) for the
/// coarse pass of [`ItemTower::top_k`].
#[derive(Debug, Clone, PartialEq)]
pub struct ItemTower {
    items: usize,
    dim: usize,
    /// Grouped `f32` embeddings (`scan`'s layout).
    exact: Vec<f32>,
    /// Grouped 8-bit embeddings, and one scale per item (zeros to whole
    /// groups).
    coarse: Vec<i8>,
    scales: Vec<f32>,
    /// One bias per item, zeros to whole groups.
    bias: Vec<f32>,
    /// The largest `‖e_i‖₂`, `|b_i|`, scale, and `|e_ic − scale_i·q_ic|`:
    /// the terms of the rounding bound.
    max_norm: f64,
    max_bias: f64,
    max_scale: f64,
    max_error: f64,
}

impl ItemTower {
    /// A tower of `bias.len()` items from their embeddings (`items × dim`,
    /// row-major) and biases, every value finite.
    pub fn new(dim: usize, embeddings: Vec<f32>, bias: Vec<f32>) -> Result<Self, String> {
        if dim == 0 || embeddings.len() != dim * bias.len() {
            return Err(format!(
                "{} embedding values for {} items of dimension {dim}",
                embeddings.len(),
                bias.len()
            ));
        }
        if let Some(i) = embeddings.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "item {}'s embedding holds {} (values must be finite)",
                i / dim,
                embeddings[i]
            ));
        }
        if let Some(i) = bias.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "item {i}'s bias is {} (values must be finite)",
                bias[i]
            ));
        }
        let items = bias.len();
        let max_norm = embeddings
            .chunks_exact(dim)
            .map(|e| e.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        let max_bias = bias.iter().map(|&b| f64::from(b.abs())).fold(0.0, f64::max);
        let (q, scales, max_error) = scan::quantize(&embeddings, dim);
        let max_scale = scales.iter().map(|&m| f64::from(m)).fold(0.0, f64::max);
        let padded = |mut v: Vec<f32>| {
            v.resize(items.div_ceil(GROUP) * GROUP, 0.0);
            v
        };
        Ok(Self {
            items,
            dim,
            exact: scan::grouped(&embeddings, dim),
            coarse: scan::grouped(&q, dim),
            scales: padded(scales),
            bias: padded(bias),
            max_norm,
            max_bias,
            max_scale,
            max_error,
        })
    }

    /// Items in the catalog.
    pub fn items(&self) -> usize {
        self.items
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes the tower holds per item: the embedding in `f32` and in 8-bit
    /// integers, its scale and the bias (`5·dim + 8`; the last group's
    /// padding aside).
    pub fn bytes_per_item(&self) -> usize {
        self.dim * (std::mem::size_of::<f32>() + std::mem::size_of::<i8>())
            + 2 * std::mem::size_of::<f32>()
    }

    /// `h`'s length and values, checked.
    fn check(&self, h: &[f32]) -> Result<(), String> {
        if h.len() != self.dim {
            return Err(format!(
                "a state of {} values for dimension {}",
                h.len(),
                self.dim
            ));
        }
        if let Some(x) = h.iter().find(|x| !x.is_finite()) {
            return Err(format!("a state holding {x} (values must be finite)"));
        }
        Ok(())
    }

    /// Every item's logit `h·e_i + b_i` for the state `h`, into `out`: for
    /// each item the fused sum over the columns in order, then the bias
    /// (`scan`), one `f32` pass over the table.
    pub fn score(&self, h: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        self.check(h)?;
        out.clear();
        out.resize(self.bias.len(), 0.0);
        scan::dispatch(FullPass {
            table: &self.exact,
            h,
            bias: &self.bias,
            out,
        });
        out.truncate(self.items);
        Ok(())
    }

    /// The `k` items of highest [`score`](Self::score) for `h`, best first,
    /// ties to the lower index — exactly [`top_k`] of the scores — into
    /// `out`; returns how many items were scored again in `f32` after the
    /// 8-bit pass (0 when the answer came from one `f32` pass: `k` above an
    /// eighth of the catalog, or sums that could overflow the bound).
    pub fn top_k(&self, h: &[f32], k: usize, out: &mut Vec<usize>) -> Result<usize, String> {
        self.check(h)?;
        let k = k.min(self.items);
        let Some(slack) = self.rounding_bound(h) else {
            return self.top_k_exactly(h, k, out);
        };
        if k == 0 || 8 * k > self.items {
            return self.top_k_exactly(h, k, out);
        }
        let candidates = scan::dispatch(CoarsePass {
            table: &self.coarse,
            h,
            scales: &self.scales,
            bias: &self.bias,
            items: self.items,
            k,
            slack,
        });
        let mut exact = scan::dispatch(Rescore {
            table: &self.exact,
            h,
            bias: &self.bias,
            candidates: &candidates,
        });
        exact.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.clear();
        out.extend(exact.iter().take(k).map(|&(_, i)| i));
        Ok(exact.len())
    }

    /// The top `k` from one `f32` pass.
    fn top_k_exactly(&self, h: &[f32], k: usize, out: &mut Vec<usize>) -> Result<usize, String> {
        let mut scores = Vec::new();
        self.score(h, &mut scores)?;
        top_k(&scores, k, out);
        Ok(0)
    }

    /// A bound, for every item, on `|coarse score − exact score|`: `None`
    /// when sums could come near `f32`'s range. With `u = 2⁻²⁴`,
    /// `γ = n·u/(1 − n·u)` for the `n = dim` fused roundings of a sum,
    /// `A = Σ|e_c·h_c| ≤ ‖e‖₂·‖h‖₂` and `Q = max|e_c − scale·q_c|·‖h‖₁`
    /// (the quantization's effect): the stored values' products differ by
    /// at most `Q`; the exact sum rounds by at most `γ·A` and the coarse one
    /// by `γ·(A + Q)`; the coarse sum's product with its scale and each
    /// score's bias add one rounding `u` each, on values at most `A + Q`
    /// and `|b|` — in all `Q + (2γ + 3u)·(A + Q) + 2u·|b|`, plus `f32`'s
    /// subnormal spacing (times the largest scale) as absolute terms; then
    /// 0.1% more for the `f64` arithmetic of the bound itself and the
    /// `(1 + γ)` factors left out.
    fn rounding_bound(&self, h: &[f32]) -> Option<f64> {
        let u = 2f64.powi(-24);
        let n = self.dim as f64;
        let gamma = n * u / (1.0 - n * u);
        let h_norm = h.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let h_abs: f64 = h.iter().map(|&x| f64::from(x.abs())).sum();
        let a = self.max_norm * h_norm;
        let q = self.max_error * h_abs;
        let bound = q
            + (2.0 * gamma + 3.0 * u) * (a + q)
            + 2.0 * u * self.max_bias
            + 2.0 * (n + 3.0) * 2f64.powi(-149) * (1.0 + self.max_scale);
        let bound = bound * 1.001;
        // Sums that could overflow `f32` (the coarse one is at most
        // `127·max scale·‖h‖₁`) are left to the exact pass.
        let largest = (a + q).max(127.0 * self.max_scale * h_abs) + self.max_bias;
        (bound.is_finite() && largest < 1e37).then_some(bound)
    }
}

/// Every item's `f32` score into `out` (padded to whole groups).
struct FullPass<'a> {
    table: &'a [f32],
    h: &'a [f32],
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::NullaryFnOnce for FullPass<'_> {
    type Output = ();
    #[inline(always)]
    fn call(self) {
        for (g, out) in self.out.chunks_exact_mut(GROUP).enumerate() {
            out.copy_from_slice(&scan::scan_group(self.table, self.h, None, self.bias, g));
        }
    }
}

/// The 8-bit pass of [`ItemTower::top_k`]: every item whose coarse score
/// is within `2·slack` of the `k`-th best coarse score, as
/// `(coarse score, item)`. The list is pruned whenever it doubles, against
/// the `k`-th best so far (which only rises, so nothing needed is dropped).
struct CoarsePass<'a> {
    table: &'a [i8],
    h: &'a [f32],
    scales: &'a [f32],
    bias: &'a [f32],
    items: usize,
    k: usize,
    slack: f64,
}

impl CoarsePass<'_> {
    /// Drops every candidate below the `k`-th best's score less `2·slack`;
    /// returns that cut.
    fn prune(&self, candidates: &mut Vec<(f32, u32)>) -> f64 {
        let (_, kth, _) = candidates.select_nth_unstable_by(self.k - 1, |a, b| b.0.total_cmp(&a.0));
        let cut = f64::from(kth.0) - 2.0 * self.slack;
        candidates.retain(|&(x, _)| f64::from(x) >= cut);
        cut
    }
}

impl pulp::NullaryFnOnce for CoarsePass<'_> {
    type Output = Vec<(f32, u32)>;
    #[inline(always)]
    fn call(self) -> Vec<(f32, u32)> {
        let keep = (2 * self.k).max(256);
        let mut candidates = Vec::with_capacity(2 * keep);
        let mut cut = f64::NEG_INFINITY;
        for g in 0..scan::groups(self.table, self.h.len()) {
            let s = scan::scan_group(self.table, self.h, Some(self.scales), self.bias, g);
            let best = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if f64::from(best) < cut {
                continue;
            }
            let first = g * GROUP;
            for (i, &x) in (first..(first + GROUP).min(self.items)).zip(&s) {
                if f64::from(x) >= cut {
                    candidates.push((x, i as u32));
                }
            }
            if candidates.len() >= 2 * keep {
                cut = self.prune(&mut candidates);
            }
        }
        if candidates.len() > self.k {
            self.prune(&mut candidates);
        }
        candidates
    }
}

/// The candidates' exact `f32` scores, as `(score, item)`.
struct Rescore<'a> {
    table: &'a [f32],
    h: &'a [f32],
    bias: &'a [f32],
    candidates: &'a [(f32, u32)],
}

impl pulp::NullaryFnOnce for Rescore<'_> {
    type Output = Vec<(f32, usize)>;
    #[inline(always)]
    fn call(self) -> Vec<(f32, usize)> {
        self.candidates
            .iter()
            .map(|&(_, i)| {
                let i = i as usize;
                (
                    scan::score_one(self.table, self.h, None, self.bias[i], i),
                    i,
                )
            })
            .collect()
    }
}

/// Every item's score `h·e_i + b_i` for each state of `h` (`[states, dim]`),
/// row-major `[states, items]` into `out`: `table` holds the item
/// embeddings after `skip` other rows (the encoder's padding and start
/// tokens), `bias` one value per item. One product on the calling thread,
/// into a buffer the caller keeps (at 100,000 items a state's scores are
/// 400 kB).
pub(crate) fn score_states(
    h: &candle_core::Tensor,
    table: &candle_core::Tensor,
    skip: usize,
    bias: &candle_core::Tensor,
    items: usize,
    out: &mut Vec<f32>,
) -> Result<(), String> {
    use crate::dqn::dense::contiguous_values;
    let err = |e: candle_core::Error| e.to_string();
    let (rows, d) = h.dims2().map_err(err)?;
    out.resize(rows * items, 0.0);
    contiguous_values(h, |h| {
        contiguous_values(table, |table| {
            gemm_into(out, (rows, items, d), (h, d, 1), (&table[skip * d..], 1, d))
        })
    })
    .and_then(|r| r)
    .and_then(|r| r)
    .map_err(err)?;
    contiguous_values(bias, |bias| {
        for row in out.chunks_exact_mut(items) {
            row.iter_mut().zip(bias).for_each(|(z, b)| *z += b);
        }
    })
    .map_err(err)
}

/// The indices of the `k` highest scores, best first (ties to the lower
/// index), by partial selection: `O(n + k log k)`.
pub use crate::top_k;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use shoplab_env::seed::rng_from_seed;

    #[test]
    fn scores_and_top_k_match_a_plain_computation() {
        let (items, dim) = (1_000, 16);
        let mut rng = rng_from_seed(4);
        let embeddings: Vec<f32> = (0..items * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let bias: Vec<f32> = (0..items).map(|_| rng.random_range(-0.1..0.1)).collect();
        let h: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let tower = ItemTower::new(dim, embeddings.clone(), bias.clone()).unwrap();
        let mut scores = Vec::new();
        tower.score(&h, &mut scores).unwrap();
        let plain: Vec<f64> = (0..items)
            .map(|i| {
                f64::from(bias[i])
                    + (0..dim)
                        .map(|c| f64::from(embeddings[i * dim + c]) * f64::from(h[c]))
                        .sum::<f64>()
            })
            .collect();
        for (a, b) in scores.iter().zip(&plain) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
        let mut best = Vec::new();
        top_k(&scores, 10, &mut best);
        let mut sorted: Vec<usize> = (0..items).collect();
        sorted.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        assert_eq!(best, sorted[..10]);
        // With many ties (scores to one decimal), one pass and partial
        // selection keep the same indices as a full sort, for any k.
        let tied: Vec<f32> = scores.iter().map(|s| (s * 10.0).round() / 10.0).collect();
        let mut sorted: Vec<usize> = (0..items).collect();
        sorted.sort_by(|&a, &b| tied[b].total_cmp(&tied[a]).then(a.cmp(&b)));
        for k in [1, 5, 64, 65, 200, 999, 1000] {
            top_k(&tied, k, &mut best);
            assert_eq!(best, sorted[..k], "k = {k}");
        }
        top_k(&[1.0, 3.0, 3.0, 2.0], 3, &mut best);
        assert_eq!(best, [1, 2, 3]);
        top_k(&[1.0], 5, &mut best);
        assert_eq!(best, [0]);
        assert!(tower.score(&h[..3], &mut scores).is_err());
        assert!(ItemTower::new(4, vec![0.0; 7], vec![0.0; 2]).is_err());
        assert_eq!(tower.bytes_per_item(), 5 * 16 + 8);
    }

    /// `tower.top_k` against `top_k` of the full `f32` scores.
    fn same_as_full_pass(tower: &ItemTower, h: &[f32], ks: &[usize]) -> usize {
        let mut scores = Vec::new();
        tower.score(h, &mut scores).unwrap();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let mut rescored = 0;
        for &k in ks {
            top_k(&scores, k, &mut want);
            rescored += tower.top_k(h, k, &mut got).unwrap();
            assert_eq!(got, want, "k = {k}");
        }
        rescored
    }

    #[test]
    fn the_two_pass_top_k_is_the_exact_top_k() {
        let mut rng = rng_from_seed(5);
        for (items, dim) in [(5_000, 64), (3_001, 7), (777, 1), (40, 3)] {
            let embeddings: Vec<f32> = (0..items * dim)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let bias: Vec<f32> = (0..items).map(|_| rng.random_range(-0.5..0.5)).collect();
            let tower = ItemTower::new(dim, embeddings, bias).unwrap();
            for _ in 0..5 {
                let h: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
                same_as_full_pass(&tower, &h, &[1, 3, 10, 64, 100, items / 8, items]);
            }
        }
    }

    #[test]
    fn near_ties_and_exact_ties_are_settled_in_f32() {
        // 4,000 items of one embedding, each nudged by an ulp or a few in
        // one coordinate: the 8-bit copies are all equal (the coarse scores
        // tie or nearly), the f32 scores are not, and copies of one item tie
        // exactly (the lower index wins).
        let (items, dim) = (4_000, 16);
        let mut rng = rng_from_seed(6);
        let base: Vec<f32> = (0..dim).map(|_| rng.random_range(0.5..1.0)).collect();
        let mut embeddings = Vec::with_capacity(items * dim);
        for i in 0..items {
            for (c, &x) in base.iter().enumerate() {
                let mut x = x;
                if c == i % dim {
                    for _ in 0..(i * 7919) % 5 {
                        x = x.next_up();
                    }
                }
                embeddings.push(x);
            }
        }
        let tower = ItemTower::new(dim, embeddings, vec![0.25; items]).unwrap();
        let h: Vec<f32> = (0..dim).map(|c| 1.0 + c as f32 / 8.0).collect();
        // The pruning cannot drop anything here: every item is rescored.
        let rescored = same_as_full_pass(&tower, &h, &[1, 10, 50]);
        assert!(rescored >= 3 * items, "{rescored}");
    }

    #[test]
    fn a_typical_catalog_rescores_few_items() {
        let (items, dim) = (100_000, 64);
        let mut rng = rng_from_seed(7);
        let embeddings: Vec<f32> = (0..items * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let bias: Vec<f32> = (0..items).map(|_| rng.random_range(-0.1..0.1)).collect();
        let tower = ItemTower::new(dim, embeddings, bias).unwrap();
        let h: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let rescored = same_as_full_pass(&tower, &h, &[10]);
        // The bound is about half a scale (1/254) times ‖h‖₁ ≈ 32: 0.13,
        // against scores of standard deviation ‖h‖₂/√3 ≈ 2.7 whose 10th
        // best of 100,000 lies 4.3 deviations up, where an interval of
        // twice the bound holds well under one more item on average: a
        // few past k.
        assert!((10..100).contains(&rescored), "{rescored}");
    }

    #[test]
    fn extreme_values_stay_exact_and_overflowing_sums_take_the_f32_pass() {
        // One item of 3.395e38 beside items of 1 (its other values quantize
        // to 0): the bound covers it, and the answer is still exact.
        let mut embeddings = vec![1.0f32; 200 * 4];
        embeddings[17] = 3.395e38;
        let tower = ItemTower::new(4, embeddings, vec![0.0; 200]).unwrap();
        let h = [1e-30f32, 1e-30, 0.0, 0.0];
        assert!(same_as_full_pass(&tower, &h, &[1, 5]) > 0);
        // Sums near f32's range are not bounded: one f32 pass.
        let tower = ItemTower::new(2, vec![1e20; 400], vec![0.0; 200]).unwrap();
        assert_eq!(same_as_full_pass(&tower, &[1e20, 1e20], &[3]), 0);
        assert!(ItemTower::new(2, vec![f32::NAN, 0.0], vec![0.0]).is_err());
        assert!(ItemTower::new(2, vec![0.0, 0.0], vec![f32::INFINITY]).is_err());
        let tower = ItemTower::new(2, vec![0.0; 2], vec![0.0]).unwrap();
        let mut out = Vec::new();
        assert!(tower.top_k(&[f32::NAN, 0.0], 1, &mut out).is_err());
        assert!(tower.top_k(&[0.0], 1, &mut out).is_err());
        tower.top_k(&[0.0, 0.0], 0, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn coarse_scores_stay_within_the_bound() {
        let mut rng = rng_from_seed(8);
        for (items, dim, spread) in [(2_000, 64, 1.0f32), (2_000, 5, 1e6), (500, 33, 1e-20)] {
            // Items of very different sizes, so scales differ by 10^4.
            let embeddings: Vec<f32> = (0..items * dim)
                .map(|j| rng.random_range(-spread..spread) * 10f32.powi((j / dim % 5) as i32 - 2))
                .collect();
            let bias: Vec<f32> = (0..items)
                .map(|_| rng.random_range(-spread..spread))
                .collect();
            let tower = ItemTower::new(dim, embeddings, bias).unwrap();
            let h: Vec<f32> = (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect();
            let bound = tower.rounding_bound(&h).unwrap();
            let mut exact = Vec::new();
            tower.score(&h, &mut exact).unwrap();
            let worst = (0..items)
                .map(|i| {
                    let g = i / GROUP;
                    let coarse =
                        scan::scan_group(&tower.coarse, &h, Some(&tower.scales), &tower.bias, g);
                    f64::from((coarse[i % GROUP] - exact[i]).abs())
                })
                .fold(0.0, f64::max);
            assert!(worst <= bound, "{worst} > {bound}");
            assert!(worst > 0.0 && worst * 1e4 > bound, "{worst} ≪ {bound}");
        }
    }
}
