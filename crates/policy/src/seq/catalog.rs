//! Two-tower scoring of a large catalog: the logit of item `i` for a
//! shopper in state `s` is `h(s)·e_i + b_i`, so a decision costs one pass
//! over the item embeddings — `items × dim` multiply-adds — and no
//! per-item output layer; the top `k` come from a partial selection, not a
//! sort of the whole catalog.
//!
//! The products run as one matrix-vector gemm on the calling thread (the
//! same kernels as the deep Q-learner's dense layers, so the scores do not
//! depend on the thread count). At 100,000 items the pass reads the whole
//! embedding table (25.6 MB at dim 64 in `f32`): it is bound by memory
//! bandwidth, not arithmetic.

use crate::dqn::dense::gemm_into;

/// The item tower: one embedding and one bias per item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemTower {
    dim: usize,
    /// `items × dim`, row-major.
    embeddings: Vec<f32>,
    bias: Vec<f32>,
}

impl ItemTower {
    /// A tower of `bias.len()` items from their embeddings (`items × dim`,
    /// row-major) and biases.
    pub fn new(dim: usize, embeddings: Vec<f32>, bias: Vec<f32>) -> Result<Self, String> {
        if dim == 0 || embeddings.len() != dim * bias.len() {
            return Err(format!(
                "{} embedding values for {} items of dimension {dim}",
                embeddings.len(),
                bias.len()
            ));
        }
        Ok(Self {
            dim,
            embeddings,
            bias,
        })
    }

    /// Items in the catalog.
    pub fn items(&self) -> usize {
        self.bias.len()
    }

    /// The embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes the tower holds per item.
    pub fn bytes_per_item(&self) -> usize {
        (self.dim + 1) * std::mem::size_of::<f32>()
    }

    /// Every item's logit `h·e_i + b_i` for the state `h`, into `out`.
    pub fn score(&self, h: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        if h.len() != self.dim {
            return Err(format!(
                "a state of {} values for dimension {}",
                h.len(),
                self.dim
            ));
        }
        out.resize(self.items(), 0.0);
        gemm_into(
            out,
            (self.items(), 1, self.dim),
            (&self.embeddings, self.dim, 1),
            (h, 1, 1),
        )
        .map_err(|e| e.to_string())?;
        for (o, b) in out.iter_mut().zip(&self.bias) {
            *o += b;
        }
        Ok(())
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
        assert_eq!(tower.bytes_per_item(), 68);
    }
}
