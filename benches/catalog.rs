//! Large catalogs and the session encoder (issue #17):
//! - two-tower scoring of a 100,000-item catalog for one shopper, and its
//!   top 10, at dimensions 32 and 64 (one thread): the tower's exact top 10
//!   (a pass over 8-bit integers, candidates rescored in `f32`), every score in `f32`
//!   (the tower's pass, and one gemm), and the time to read the `f32`
//!   table once, the floor of any `f32` pass;
//! - the transformer encoder's training throughput: forward and backward
//!   of a 2-layer, 64-dimensional, 4-head encoder over histories of 20
//!   items, batch 64, one thread (`benches/peers/encoder_torch.py` is the
//!   same work in PyTorch).
//!
//! `cargo bench --bench catalog` (`-- scoring` or `-- encoder` for one
//! part); each figure the median of repeated runs. Like the `shoplab`
//! binary, the bench first asks the allocator to keep freed memory
//! (`shoplab_policy::memory`).

use candle_core::{DType, Tensor};
use rand::RngExt;
use shoplab_env::seed::rng_from_seed;
use shoplab_policy::dqn::dense::gemm_into;
use shoplab_policy::seq::{
    catalog::{ItemTower, top_k},
    encoder::{EncoderConfig, SessionEncoder},
};
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn scoring(items: usize, dim: usize) {
    let mut rng = rng_from_seed(1);
    let embeddings: Vec<f32> = (0..items * dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let bias: Vec<f32> = (0..items).map(|_| rng.random_range(-0.1..0.1)).collect();
    let tower = ItemTower::new(dim, embeddings.clone(), bias.clone()).unwrap();
    let state = |round: usize| -> Vec<f32> {
        (0..dim)
            .map(|c| ((round * 7 + c) % 13) as f32 / 13.0 - 0.5)
            .collect()
    };
    let rounds = 300;
    let (mut scores, mut best, mut two_pass) = (Vec::new(), Vec::new(), Vec::new());
    // The floor: reading the f32 table once (eight running sums).
    let mut read = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut sums = [0.0f32; 8];
        for chunk in embeddings.chunks_exact(8) {
            for (s, x) in sums.iter_mut().zip(chunk) {
                *s += x;
            }
        }
        std::hint::black_box(sums);
        read.push(start.elapsed().as_secs_f64());
    }
    // Every item's f32 score as one gemm (the learners' batch path, one
    // state), then the top 10.
    let mut gemm = Vec::new();
    for round in 0..rounds {
        let h = state(round);
        let start = Instant::now();
        scores.resize(items, 0.0);
        gemm_into(
            &mut scores,
            (items, 1, dim),
            (&embeddings, dim, 1),
            (&h, 1, 1),
        )
        .unwrap();
        scores.iter_mut().zip(&bias).for_each(|(s, b)| *s += b);
        top_k(&scores, 10, &mut best);
        gemm.push(start.elapsed().as_secs_f64());
    }
    // The tower's f32 pass, then the top 10.
    let mut full = Vec::new();
    for round in 0..rounds {
        let h = state(round);
        let start = Instant::now();
        tower.score(&h, &mut scores).unwrap();
        top_k(&scores, 10, &mut best);
        full.push(start.elapsed().as_secs_f64());
    }
    // The tower's exact top 10: an 8-bit pass, the few candidates in f32.
    let (mut fast, mut rescored, mut agree) = (Vec::new(), 0, 0);
    for round in 0..rounds {
        let h = state(round);
        let start = Instant::now();
        rescored += tower.top_k(&h, 10, &mut two_pass).unwrap();
        fast.push(start.elapsed().as_secs_f64());
        tower.score(&h, &mut scores).unwrap();
        top_k(&scores, 10, &mut best);
        agree += usize::from(best == two_pass);
    }
    assert_eq!(agree, rounds, "the two-pass top 10 is the exact one");
    let mb = |bytes: usize| bytes as f64 / 1e6;
    println!(
        "{items} items at dim {dim}, one shopper, top 10 (median of {rounds}; tower {:.1} MB, {} bytes an item):",
        mb(items * tower.bytes_per_item()),
        tower.bytes_per_item()
    );
    println!(
        "  exact top 10, 8-bit pass + f32 rescoring:  {:.3} ms ({:.1} items rescored on average)",
        1e3 * median(fast),
        rescored as f64 / rounds as f64
    );
    println!(
        "  every score in f32 (tower pass) + top 10:  {:.3} ms",
        1e3 * median(full)
    );
    println!(
        "  every score in f32 (one gemm) + top 10:    {:.3} ms",
        1e3 * median(gemm)
    );
    println!(
        "  reading the f32 table once ({:.1} MB):     {:.3} ms",
        mb(items * dim * 4),
        1e3 * median(read)
    );
}

fn encoder_training() {
    let config = EncoderConfig {
        dim: 64,
        heads: 4,
        layers: 2,
        history: 20,
    };
    let items = 1_000;
    let encoder = SessionEncoder::new(config, items, DType::F32, &mut rng_from_seed(2)).unwrap();
    let mut rng = rng_from_seed(3);
    let batch: Vec<Vec<u32>> = (0..64)
        .map(|_| (0..20).map(|_| rng.random_range(0..items as u32)).collect())
        .collect();
    let refs: Vec<&[u32]> = batch.iter().map(Vec::as_slice).collect();
    let mut times = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let out = encoder.forward(&refs).unwrap();
        let target = Tensor::ones_like(&out).unwrap();
        let loss = (out - target).unwrap().sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        assert!(
            grads
                .get(encoder.vars()["embed.items"].as_tensor())
                .is_some()
        );
        times.push(start.elapsed().as_secs_f64());
    }
    let t = median(times);
    println!(
        "encoder 2 layers × dim 64 × 4 heads, history 20, batch 64, forward + backward: {:.1} ms a batch, {:.0} sequences/s (median of 30)",
        1e3 * t,
        64.0 / t
    );
}

fn main() {
    // As the `shoplab` binary does.
    shoplab_policy::memory::keep_freed_memory();
    // `cargo bench --bench catalog -- encoder` (or `-- scoring`) runs one part.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|a| a == part);
    if wants("scoring") {
        scoring(100_000, 32);
        scoring(100_000, 64);
    }
    if wants("encoder") {
        encoder_training();
    }
}
