//! The session encoder against its plain reference: outputs in `f64` and
//! `f32`, every parameter's gradient against central differences, and the
//! properties a state must have (padding, batch and thread count change
//! nothing; the history window is the last items).

use super::{
    encoder::{EncoderConfig, SessionEncoder},
    reference,
};
use candle_core::{DType, Tensor};
use shoplab_env::seed::rng_from_seed;

fn config() -> EncoderConfig {
    EncoderConfig {
        dim: 8,
        heads: 2,
        layers: 2,
        history: 4,
    }
}

const ITEMS: usize = 6;

fn sessions() -> Vec<Vec<u32>> {
    vec![
        vec![],
        vec![3],
        vec![0, 5, 2],
        vec![1, 1, 4, 2],
        vec![5, 4, 3, 2, 1, 0],
    ]
}

fn encoder(dtype: DType, seed: u64) -> SessionEncoder {
    SessionEncoder::new(config(), ITEMS, dtype, &mut rng_from_seed(seed)).unwrap()
}

fn params(e: &SessionEncoder) -> reference::Params {
    e.vars()
        .iter()
        .map(|(n, v)| {
            let values = v
                .as_tensor()
                .to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
                .unwrap();
            (n.clone(), values)
        })
        .collect()
}

fn ids(e: &SessionEncoder, session: &[u32]) -> Vec<u32> {
    e.tokens(&[session])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn outputs(e: &SessionEncoder, batch: &[Vec<u32>]) -> Vec<Vec<f64>> {
    let refs: Vec<&[u32]> = batch.iter().map(Vec::as_slice).collect();
    e.forward(&refs)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2()
        .unwrap()
}

#[test]
fn outputs_match_the_reference() {
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let e = encoder(dtype, 7);
        let p = params(&e);
        for (s, out) in sessions().iter().zip(outputs(&e, &sessions())) {
            let want = reference::forward(&config(), &p, &ids(&e, s));
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < tolerance, "{dtype:?} {s:?}: {a} vs {b}");
            }
            // A layer-normed state: mean 0, variance ≈ 1 before the affine
            // (weight 1, bias 0 at initialisation).
            let mean = out.iter().sum::<f64>() / out.len() as f64;
            assert!(mean.abs() < 1e-5);
        }
    }
}

/// Every parameter's gradient of `Σ R ⊙ h(s)` over a batch, by candle's
/// autograd in `f64`, against central differences of the reference (step
/// 1e-6: truncation error O(h²) ≈ 1e-12, rounding ≈ 1e-16/h = 1e-10).
#[test]
fn gradients_match_central_differences() {
    let e = encoder(DType::F64, 11);
    let batch = sessions();
    let refs: Vec<&[u32]> = batch.iter().map(Vec::as_slice).collect();
    let out = e.forward(&refs).unwrap();
    let n = out.elem_count();
    let weights: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0).collect();
    let r = Tensor::from_vec(weights.clone(), out.shape(), out.device()).unwrap();
    let loss = (out * r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let ids: Vec<Vec<u32>> = batch.iter().map(|s| ids(&e, s)).collect();
    let mut p = params(&e);
    let objective = |p: &reference::Params| -> f64 {
        ids.iter()
            .enumerate()
            .map(|(s, tokens)| {
                reference::forward(&config(), p, tokens)
                    .iter()
                    .enumerate()
                    .map(|(c, v)| v * weights[s * config().dim + c])
                    .sum::<f64>()
            })
            .sum()
    };
    let h = 1e-6;
    let mut checked = 0;
    let names: Vec<String> = p.keys().cloned().collect();
    for name in names {
        let var = &e.vars()[&name];
        let grad: Vec<f64> = grads
            .get(var.as_tensor())
            .map(|g| g.flatten_all().unwrap().to_vec1().unwrap())
            .unwrap_or_else(|| vec![0.0; p[&name].len()]);
        for i in 0..p[&name].len() {
            let old = p[&name][i];
            p.get_mut(&name).unwrap()[i] = old + h;
            let up = objective(&p);
            p.get_mut(&name).unwrap()[i] = old - h;
            let down = objective(&p);
            p.get_mut(&name).unwrap()[i] = old;
            let numeric = (up - down) / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-5 * (1.0 + numeric.abs()),
                "{name}[{i}]: autograd {} vs central difference {numeric}",
                grad[i]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, config().parameter_count(ITEMS));
}

#[test]
fn a_state_depends_on_its_session_alone() {
    let e = encoder(DType::F32, 3);
    let all = outputs(&e, &sessions());
    for (k, s) in sessions().iter().enumerate() {
        // Alone, or beside others: the same state (to rounding: the
        // products' blocking depends on the batch's size).
        let alone = outputs(&e, std::slice::from_ref(s));
        for (a, b) in alone[0].iter().zip(&all[k]) {
            assert!((a - b).abs() < 1e-6, "{s:?}: {a} vs {b}");
        }
    }
    // The same batch gives the same bits.
    assert_eq!(all, outputs(&e, &sessions()));
    // Only the last `history` items count.
    let long = outputs(&e, &[vec![5, 4, 3, 2, 1, 0]]);
    let last = outputs(&e, &[vec![3, 2, 1, 0]]);
    assert_eq!(long, last);
    // Padding is never read: a padded session's state is that of the
    // same items in a batch of one.
    let padded = outputs(&e, &[vec![2], vec![5, 4, 3, 1]]);
    let single = outputs(&e, &[vec![2]]);
    for (a, b) in padded[0].iter().zip(&single[0]) {
        assert!((a - b).abs() < 1e-6);
    }
    // Order matters.
    assert_ne!(outputs(&e, &[vec![1, 2]]), outputs(&e, &[vec![2, 1]]));
    // Items beyond the catalog are refused.
    assert!(
        e.forward(&[&[6]])
            .unwrap_err()
            .contains("outside the catalog")
    );
}

#[test]
fn initialisation_is_seeded_and_thread_counts_change_nothing() {
    let a = outputs(&encoder(DType::F32, 5), &sessions());
    assert_eq!(a, outputs(&encoder(DType::F32, 5), &sessions()));
    assert_ne!(a, outputs(&encoder(DType::F32, 6), &sessions()));
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let b = pool.install(|| outputs(&encoder(DType::F32, 5), &sessions()));
        assert_eq!(a, b, "{threads} threads");
    }
}

#[test]
fn bad_settings_are_refused_with_their_key() {
    let at = "policies[1].encoder";
    let cases = [
        (
            EncoderConfig {
                dim: 10,
                heads: 4,
                ..config()
            },
            "heads",
            "must divide dim",
        ),
        (
            EncoderConfig {
                history: 0,
                ..config()
            },
            "history",
            "at least 1",
        ),
        (
            EncoderConfig {
                layers: 0,
                ..config()
            },
            "layers",
            "",
        ),
        (EncoderConfig { dim: 0, ..config() }, "dim", ""),
    ];
    for (c, key, words) in cases {
        let e = c.validate(at, ITEMS).unwrap_err();
        assert_eq!(e.key, format!("{at}.{key}"), "{c:?}");
        assert!(e.rule.contains(words), "{}", e.rule);
    }
    assert!(config().validate(at, ITEMS).is_ok());
    // Embeddings, positions, two blocks and the final norm.
    let d = 8;
    let block = 4 * (d * d + d) + 2 * 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d);
    assert_eq!(
        config().parameter_count(ITEMS),
        (ITEMS + 2) * d + 5 * d + 2 * block + 2 * d
    );
}

#[test]
fn checkpoints_round_trip_and_refuse_what_does_not_fit() {
    let trained = encoder(DType::F32, 21);
    let bytes = trained.to_safetensors().unwrap();
    let mut fresh = encoder(DType::F32, 22);
    assert_ne!(outputs(&fresh, &sessions()), outputs(&trained, &sessions()));
    fresh.load_safetensors(&bytes).unwrap();
    assert_eq!(outputs(&fresh, &sessions()), outputs(&trained, &sessions()));
    // Another shape (a wider encoder) is refused, naming the tensor, and
    // changes nothing.
    let wide = EncoderConfig {
        dim: 12,
        ..config()
    };
    let other = SessionEncoder::new(wide, ITEMS, DType::F32, &mut rng_from_seed(1)).unwrap();
    let mut kept = encoder(DType::F32, 23);
    let before = outputs(&kept, &sessions());
    let e = kept
        .load_safetensors(&other.to_safetensors().unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("block0.attention.key.bias") && e.to_string().contains("[12]"),
        "{e}"
    );
    assert_eq!(outputs(&kept, &sessions()), before);
    assert!(kept.load_safetensors(b"not a checkpoint").is_err());
}

#[test]
fn item_embeddings_start_from_the_catalog_and_score_as_a_tower() {
    let mut e = encoder(DType::F32, 9);
    let d = config().dim;
    let features: Vec<f32> = (0..ITEMS * d).map(|i| (i % 7) as f32 / 7.0 - 0.5).collect();
    e.init_items_from(&features, d).unwrap();
    let tower = e.item_tower().unwrap();
    assert_eq!((tower.items(), tower.dim()), (ITEMS, d));
    // The tower's score of item i is h·(item i's features).
    let h: Vec<f32> = (0..d).map(|c| c as f32 / d as f32).collect();
    let mut scores = Vec::new();
    tower.score(&h, &mut scores).unwrap();
    for (i, s) in scores.iter().enumerate() {
        let want: f32 = (0..d).map(|c| h[c] * features[i * d + c]).sum();
        assert!((s - want).abs() < 1e-5, "{s} vs {want}");
    }
    assert!(
        e.init_items_from(&features[1..], d)
            .unwrap_err()
            .contains("dimension")
    );
    assert!(e.init_items_from(&features, d + 1).is_err());
    let mut bad = features.clone();
    bad[3] = f32::NAN;
    assert!(e.init_items_from(&bad, d).unwrap_err().contains("finite"));
    // Narrower features fill the first columns, zeros after.
    let narrow: Vec<f32> = (0..ITEMS * 3).map(|i| i as f32).collect();
    e.init_items_from(&narrow, 3).unwrap();
    e.item_tower().unwrap().score(&h, &mut scores).unwrap();
    for (i, s) in scores.iter().enumerate() {
        let want: f32 = (0..3).map(|c| h[c] * narrow[i * 3 + c]).sum();
        assert!((s - want).abs() < 1e-4, "{s} vs {want}");
    }
}

/// A start offset (a shopper's context) moves the state as the reference
/// says, and its gradient matches central differences (f64, step 1e-6).
#[test]
fn start_offsets_match_the_reference_and_their_gradients() {
    let e = encoder(DType::F64, 13);
    let p = params(&e);
    let batch = sessions();
    let refs: Vec<&[u32]> = batch.iter().map(Vec::as_slice).collect();
    let d = config().dim;
    let offsets: Vec<f64> = (0..batch.len() * d)
        .map(|i| ((i * 29 % 13) as f64 - 6.0) / 6.0)
        .collect();
    let var =
        candle_core::Var::from_vec(offsets.clone(), (batch.len(), d), &candle_core::Device::Cpu)
            .unwrap();
    let out = e.forward_with_start(&refs, var.as_tensor()).unwrap();
    let got: Vec<Vec<f64>> = out.to_vec2().unwrap();
    let ids: Vec<Vec<u32>> = batch.iter().map(|s| ids(&e, s)).collect();
    let weights: Vec<f64> = (0..batch.len() * d)
        .map(|i| ((i * 7 % 5) as f64) - 2.0)
        .collect();
    for (s, tokens) in ids.iter().enumerate() {
        let want = reference::forward_with_start(
            &config(),
            &p,
            tokens,
            Some(&offsets[s * d..(s + 1) * d]),
        );
        for (a, b) in got[s].iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
    // The offset changes the state (it is read).
    assert_ne!(got, outputs(&e, &batch));
    let r = Tensor::from_vec(weights.clone(), out.shape(), out.device()).unwrap();
    let grads = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad: Vec<f64> = grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let objective = |offsets: &[f64]| -> f64 {
        ids.iter()
            .enumerate()
            .map(|(s, tokens)| {
                reference::forward_with_start(
                    &config(),
                    &p,
                    tokens,
                    Some(&offsets[s * d..(s + 1) * d]),
                )
                .iter()
                .enumerate()
                .map(|(c, v)| v * weights[s * d + c])
                .sum::<f64>()
            })
            .sum()
    };
    for i in 0..offsets.len() {
        let (mut up, mut down) = (offsets.clone(), offsets.clone());
        up[i] += 1e-6;
        down[i] -= 1e-6;
        let numeric = (objective(&up) - objective(&down)) / 2e-6;
        assert!(
            (grad[i] - numeric).abs() < 1e-5 * (1.0 + numeric.abs()),
            "start[{i}]: {} vs {numeric}",
            grad[i]
        );
    }
}
