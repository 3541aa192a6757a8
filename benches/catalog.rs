//! Large catalogs and the session encoder (issue #17):
//! - two-tower scoring of a 100,000-item catalog for one shopper, and its
//!   top 10, at dimensions 32 and 64 (one thread);
//! - the transformer encoder's training throughput: forward and backward
//!   of a 2-layer, 64-dimensional, 4-head encoder over histories of 20
//!   items, batch 64, one thread.
//!
//! `cargo bench --bench catalog`; each figure the median of repeated runs.

use candle_core::{DType, Tensor};
use rand::RngExt;
use shoplab_env::seed::rng_from_seed;
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
    let tower = ItemTower::new(dim, embeddings, bias).unwrap();
    let (mut scores, mut best) = (Vec::new(), Vec::new());
    let mut times = Vec::new();
    let mut sum = 0usize;
    for round in 0..300 {
        let h: Vec<f32> = (0..dim)
            .map(|c| ((round * 7 + c) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let start = Instant::now();
        tower.score(&h, &mut scores).unwrap();
        top_k(&scores, 10, &mut best);
        times.push(start.elapsed().as_secs_f64());
        sum += best[0];
    }
    println!(
        "score {items} items at dim {dim} and take the top 10: {:.3} ms a shopper (median of 300; {} MB of embeddings; checksum {sum})",
        1e3 * median(times),
        items * (dim + 1) * 4 / 1_000_000
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
    scoring(100_000, 32);
    scoring(100_000, 64);
    encoder_training();
}
