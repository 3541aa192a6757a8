//! Checkpoints are not trusted (issue #11, class 6): values are checked on
//! load — a NaN or infinite weight, a NaN, negative, infinite or fractional
//! bandit count, more clicks than impressions — and the refusal names the
//! tensor; a checkpoint the manifest lists but the folder lacks fails
//! `eval` unless `--skip-missing` is given, and the summary says how many
//! seeds were evaluated out of how many.

mod common;

use common::{TempDir, assert_names, assert_success, replaced, run_dirs, run_scenario, shoplab};
use std::path::{Path, PathBuf};

/// Overwrites element `index` of tensor `name` in the safetensors file at
/// `path` with `value` (little-endian bytes of the tensor's element type).
fn poke(path: &Path, name: &str, index: usize, value: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header[name]["data_offsets"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no tensor {name} in {}", path.display()))
        as usize;
    let at = 8 + header_len + start + index * value.len();
    bytes[at..at + value.len()].copy_from_slice(value);
    std::fs::write(path, bytes).unwrap();
}

/// Runs `text` (named `name`) in `tmp`; the run folder.
fn run(tmp: &TempDir, name: &str, text: &str) -> PathBuf {
    let file = tmp.path().join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    assert_success(&run_scenario(&file, &results, &[]));
    run_dirs(&results, name).remove(0)
}

/// `shoplab eval` on `dir` with `extra` arguments: (success, stdout, stderr).
fn eval(dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["eval", dir.to_str().unwrap(), "--episodes", "3"];
    args.extend_from_slice(extra);
    let out = shoplab(&args, &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn damaged_weights_and_missing_checkpoints() {
    let tmp = TempDir::new("checkpoints");
    let text = format!(
        "{}\n[[policies]]\nkind = \"dqn\"\nhidden = [8]\nlearning_starts = 20\n",
        common::small_pricing("ckpt", 20)
    );
    let dir = run(&tmp, "ckpt", &text);
    let checkpoint = dir.join("checkpoints/dqn-seed2.safetensors");
    let original = std::fs::read(&checkpoint).unwrap();
    for (value, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        poke(&checkpoint, "hidden0.weight", 3, &value.to_le_bytes());
        let (ok, _, error) = eval(&dir, &[]);
        assert!(!ok, "a {shown} weight was accepted");
        assert_names(
            &error,
            &[
                "dqn-seed2.safetensors",
                "tensor `hidden0.weight` holds",
                shown,
                "at index 3",
                "weights must be finite",
            ],
        );
        std::fs::write(&checkpoint, &original).unwrap();
    }
    let (ok, out, _) = eval(&dir, &[]);
    assert!(ok && out.contains("over 4 of 4 seeds"), "{out}");

    std::fs::remove_file(&checkpoint).unwrap();
    let (ok, _, error) = eval(&dir, &[]);
    assert!(!ok, "a missing checkpoint was skipped silently");
    assert_names(
        &error,
        &[
            "dqn-seed2.safetensors",
            "the manifest lists this checkpoint",
            "--skip-missing",
        ],
    );
    let (ok, out, error) = eval(&dir, &["--skip-missing"]);
    assert!(ok, "{error}");
    assert_names(&error, &["skipped the checkpoint of dqn, seed 2"]);
    assert_names(&out, &["over 3 of 4 seeds"]);
}

#[test]
fn damaged_bandit_counts() {
    let tmp = TempDir::new("ads-checkpoints");
    let ads =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ads.toml"))
            .unwrap();
    let world = &ads[..ads.find("[[policies]]").unwrap()];
    let world = world
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some(("seeds", _)) => "seeds = [1, 2]".to_string(),
            Some(("episodes", _)) => "episodes = 4".to_string(),
            Some(("eval_episodes", _)) => "eval_episodes = 0".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = replaced(
        &format!("{world}\n[[policies]]\nkind = \"dqn_pacing\"\ncreative = \"ucb1\"\n"),
        "name = \"ads\"",
        "name = \"ads-ckpt\"",
    );
    let dir = run(&tmp, "ads-ckpt", &text);
    let checkpoint = dir.join("checkpoints/dqn_pacing_ucb1-seed1.safetensors");
    let original = std::fs::read(&checkpoint).unwrap();
    for (tensor, value, rule) in [
        (
            "creative_bandit.impressions",
            f64::NAN,
            "whole numbers from 0 to 1e15",
        ),
        (
            "creative_bandit.impressions",
            -1e18,
            "whole numbers from 0 to 1e15",
        ),
        (
            "creative_bandit.clicks",
            f64::INFINITY,
            "whole numbers from 0 to 1e15",
        ),
        (
            "creative_bandit.clicks",
            0.5,
            "whole numbers from 0 to 1e15",
        ),
        (
            "creative_bandit.clicks",
            1e15,
            "clicks cannot exceed its impressions",
        ),
    ] {
        poke(&checkpoint, tensor, 1, &value.to_le_bytes());
        let (ok, _, error) = eval(&dir, &[]);
        assert!(!ok, "{tensor} = {value} was accepted");
        assert_names(&error, &["dqn_pacing_ucb1-seed1.safetensors", tensor, rule]);
        std::fs::write(&checkpoint, &original).unwrap();
    }
    let (ok, out, error) = eval(&dir, &[]);
    assert!(ok, "{error}");
    assert_names(&out, &["over 2 of 2 seeds"]);
}
