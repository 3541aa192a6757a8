//! The registry redesign changed no result: reduced copies of the four
//! shipped scenarios (every shipped policy, plus extra variants of the
//! learners' options) still write CSVs and checkpoints whose SHA-256 values
//! match those recorded with the code before the redesign.
//!
//! Guards issue #9 (registries), must-hold 1. Two more copies cover the
//! other reward kinds (revenue with slates of two, ±1 clicks). `tests/golden/expected.sha256`
//! was written by `sha256sum` over run folders that the pre-registry `shoplab
//! run` (commit 510aacd) made from `tests/golden/*.toml`; it lists every CSV
//! and checkpoint a run folder holds, so a file gained or lost fails the test
//! too. The env checker's fixes changed what they had to, each in its own
//! commit with its hashes re-recorded: the pricing `period` feature now
//! declares the terminal period (DQN's input scaling moved, so the DQN rows
//! and checkpoints changed; every other policy's rows are byte-identical,
//! the golden file's Q-learning bins keeping one bin per period); the ads
//! `period` feature does too, and `pace` declares its full range [−1, 1]
//! (DQN pacing and per-period Q-learning pacing changed; pacing that decides
//! every 24 periods bins its decision points one to one as before, so its
//! rows, like every other policy's, are byte-identical).
//!
//! Later changes meant to move results re-record the list with
//! `tests/golden/record`, each in its own commit that says which files moved:
//! the studentised bootstrap (issue #10) moved only `summary.csv` and
//! `curves.csv`, the files that print intervals; the baselines, paired
//! evaluation and the ads score (issue #10) added columns to `summary.csv`
//! and `evaluations.csv`, the golden pricing file gained a
//! `fluid_resolving` policy (so its run's files all moved), and no
//! checkpoint changed; the recommendation baseline (the best fixed slate,
//! issue #10) moved only the recommendation files' `summary.csv` and
//! `evaluations.csv`; the `notes` column (issue #11: a statistic that is
//! no number is left empty, with its reason) moved only `summary.csv`,
//! and the bounded numeric ranges and the envs' cleared bevy trackers, in
//! the same re-recording, moved nothing else.
//! Exact evaluation of greedy policies (issue #10: the greedy share of V*
//! by policy evaluation where the family computes it) moved only
//! `summary.csv`: three `eval_exact_return_*` columns in every file, and
//! the pricing rows' `eval_pct_of_oracle`.
//! The recommendation baseline's search over every window of the ranking
//! (the first 200, every item with slates of one) moved only the
//! long-term copy's `summary.csv` and `evaluations.csv`, where it finds a
//! better fixed item.
//! gemm's AVX-512 kernels (cargo feature `x86-v4`) were dropped so that
//! every x86-64 CPU with AVX2 and FMA runs the same kernels: the list had
//! been recorded on a CPU with AVX-512, whose kernels sum the small
//! products (16-unit layers, a dueling head) in another order. With the
//! AVX2 kernels the golden pricing file's Boltzmann DQN (`dqn_2`) trains
//! other weights, so its checkpoints and every pricing CSV but `runs.csv`
//! moved; the ads UCB1 pacer's DQN checkpoints and `learning.csv` moved
//! too; every other file is unchanged.

mod common;

use common::{TempDir, assert_success, run_dirs, run_scenario};
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, path::Path};

/// `scenario/file` → SHA-256, from the recorded list.
fn expected() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/expected.sha256"),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (hash, name) = l.split_once("  ").expect("sha256sum's format");
            (name.to_string(), hash.to_string())
        })
        .collect()
}

/// Every CSV and checkpoint under `dir`, as `prefix/relative path` → SHA-256.
fn hashes(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            hashes(&path, &format!("{prefix}/{name}"), out);
        } else if name.ends_with(".csv") || name.ends_with(".safetensors") {
            let digest = Sha256::digest(std::fs::read(&path).unwrap());
            out.insert(format!("{prefix}/{name}"), format!("{digest:x}"));
        }
    }
}

fn check(scenario: &str) {
    let tmp = TempDir::new(&format!("golden-{scenario}"));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{scenario}.toml"));
    let results = tmp.path().join("results");
    assert_success(&run_scenario(&file, &results, &[]));
    let dirs = run_dirs(&results, &format!("golden-{scenario}"));
    assert_eq!(dirs.len(), 1);
    let mut found = BTreeMap::new();
    hashes(&dirs[0], scenario, &mut found);
    let wanted: BTreeMap<String, String> = expected()
        .into_iter()
        .filter(|(name, _)| name.starts_with(&format!("{scenario}/")))
        .collect();
    assert!(!wanted.is_empty(), "no recorded hashes for {scenario}");
    // Every difference at once: which files moved tells what moved (a
    // checkpoint alone, or the rows it was trained from too).
    let mut problems = Vec::new();
    for (name, hash) in &wanted {
        match found.get(name) {
            Some(h) if h == hash => {}
            Some(h) => problems.push(format!("{name} changed: {h}, recorded {hash}")),
            None => problems.push(format!("{name} is no longer written")),
        }
    }
    for name in found.keys().filter(|n| !wanted.contains_key(*n)) {
        problems.push(format!("{name} is new"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn pricing_results_unchanged() {
    check("pricing");
}

#[test]
fn ads_results_unchanged() {
    check("ads");
}

/// Days that differ and dual-descent pacing (added with issue #10).
#[test]
fn ads_varied_results_unchanged() {
    check("ads-varied");
}

#[test]
fn recommendation_results_unchanged() {
    check("recommendation");
}

#[test]
fn recommendation_longterm_results_unchanged() {
    check("recommendation-longterm");
}

/// Revenue rewards and slates of two (hashes from the pre-registry binary).
#[test]
fn recommendation_revenue_results_unchanged() {
    check("recommendation-revenue");
}

/// ±1 click rewards (hashes from the pre-registry binary).
#[test]
fn recommendation_signed_results_unchanged() {
    check("recommendation-signed");
}

/// The AVX-512 kernels stay out of the build: with them a DQN trained on a
/// CPU that has AVX-512 writes other bytes than on one that has AVX2 only.
#[test]
fn gemm_is_built_without_its_avx512_kernels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests = vec![root.join("Cargo.toml")];
    for crate_dir in std::fs::read_dir(root.join("crates")).unwrap() {
        manifests.push(crate_dir.unwrap().path().join("Cargo.toml"));
    }
    manifests.push(root.join("python/Cargo.toml"));
    for manifest in manifests.iter().filter(|m| m.exists()) {
        let text = std::fs::read_to_string(manifest).unwrap();
        let features = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| l.contains("x86-v4"))
            .count();
        assert_eq!(features, 0, "{} enables gemm's x86-v4", manifest.display());
    }
}
