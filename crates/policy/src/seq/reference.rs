//! The session encoder written out plainly in `f64`, loop by loop, from
//! the same named parameters: what the candle implementation is checked
//! against (outputs directly, gradients by central differences).

use super::encoder::{EncoderConfig, LN_EPS, PAD, START};
use std::collections::BTreeMap;

/// Parameters by name, flattened row-major.
pub type Params = BTreeMap<String, Vec<f64>>;

fn layer_norm(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let sd = (var + LN_EPS).sqrt();
    x.iter()
        .zip(w.iter().zip(b))
        .map(|(v, (w, b))| (v - mean) / sd * w + b)
        .collect()
}

/// `W x + b` for `W` of `out × in`, row-major.
fn linear(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    b.iter()
        .enumerate()
        .map(|(o, bias)| bias + (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum::<f64>())
        .collect()
}

/// `h(s)` of one session's token ids (as [`super::encoder::SessionEncoder::tokens`] makes them).
pub fn forward(config: &EncoderConfig, params: &Params, ids: &[u32]) -> Vec<f64> {
    forward_with_start(config, params, ids, None)
}

/// [`forward`] with `start` added to the start token's embedding.
pub fn forward_with_start(
    config: &EncoderConfig,
    params: &Params,
    ids: &[u32],
    start: Option<&[f64]>,
) -> Vec<f64> {
    let (d, heads) = (config.dim, config.heads);
    let hd = d / heads;
    let t = ids.len();
    let p = |n: &str| params[n].as_slice();
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(pos, &id)| {
            let e = &p("embed.items")[id as usize * d..(id as usize + 1) * d];
            let q = &p("embed.positions")[pos * d..(pos + 1) * d];
            let offset = |c: usize| match start {
                Some(s) if id == START => s[c],
                _ => 0.0,
            };
            e.iter()
                .zip(q)
                .enumerate()
                .map(|(c, (a, b))| a + b + offset(c))
                .collect()
        })
        .collect();
    for l in 0..config.layers {
        let n = |k: &str| format!("block{l}.{k}");
        let h: Vec<Vec<f64>> = x
            .iter()
            .map(|row| layer_norm(row, p(&n("norm1.weight")), p(&n("norm1.bias"))))
            .collect();
        let proj = |which: &str| -> Vec<Vec<f64>> {
            h.iter()
                .map(|row| {
                    linear(
                        row,
                        p(&n(&format!("attention.{which}.weight"))),
                        p(&n(&format!("attention.{which}.bias"))),
                    )
                })
                .collect()
        };
        let (q, k, v) = (proj("query"), proj("key"), proj("value"));
        let mut attended = vec![vec![0.0; d]; t];
        for head in 0..heads {
            let r = head * hd..(head + 1) * hd;
            for i in 0..t {
                let allowed: Vec<usize> = (0..=i).filter(|&j| ids[j] != PAD).collect();
                let scores: Vec<f64> = (0..t)
                    .map(|j| {
                        if allowed.contains(&j) {
                            r.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (hd as f64).sqrt()
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores
                    .iter()
                    .map(|s| if s.is_finite() { (s - max).exp() } else { 0.0 })
                    .collect();
                let total: f64 = exps.iter().sum();
                // A padding query attends to nothing; no real token reads it.
                for c in r.clone().filter(|_| total > 0.0) {
                    attended[i][c] = allowed.iter().map(|&j| exps[j] / total * v[j][c]).sum();
                }
            }
        }
        for i in 0..t {
            let out = linear(
                &attended[i],
                p(&n("attention.output.weight")),
                p(&n("attention.output.bias")),
            );
            for c in 0..d {
                x[i][c] += out[c];
            }
            let h = layer_norm(&x[i], p(&n("norm2.weight")), p(&n("norm2.bias")));
            let up: Vec<f64> = linear(&h, p(&n("mlp.up.weight")), p(&n("mlp.up.bias")))
                .into_iter()
                .map(|v| v.max(0.0))
                .collect();
            let down = linear(&up, p(&n("mlp.down.weight")), p(&n("mlp.down.bias")));
            for c in 0..d {
                x[i][c] += down[c];
            }
        }
    }
    layer_norm(&x[t - 1], p("final_norm.weight"), p("final_norm.bias"))
}
