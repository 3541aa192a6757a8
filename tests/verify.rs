//! `shoplab verify` checks a run folder against its manifest, and
//! `reproduce` verifies first: a changed, missing or extra file, or a
//! tampered manifest, is found and named.
//!
//! Guards issue #11 (class 5, run folders are verified; must-hold 4).

mod common;

use common::{TempDir, assert_success, run_dirs, run_scenario, shoplab, small_pricing};
use std::path::{Path, PathBuf};

/// A fresh, small run folder under `tmp`.
fn run_folder(tmp: &TempDir) -> PathBuf {
    let file = tmp.path().join("verify-me.toml");
    std::fs::write(&file, small_pricing("verify-me", 30)).unwrap();
    let results = tmp.path().join("results");
    assert_success(&run_scenario(&file, &results, &[]));
    run_dirs(&results, "verify-me").remove(0)
}

fn verify(dir: &Path) -> (Option<i32>, String) {
    let out = shoplab(&["verify", dir.to_str().unwrap()], &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn an_untouched_folder_verifies() {
    let tmp = TempDir::new("verify-ok");
    let dir = run_folder(&tmp);
    let (code, text) = verify(&dir);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("files match the manifest"), "{text}");
}

#[test]
fn changed_missing_and_extra_files_are_named() {
    let tmp = TempDir::new("verify-tampered");
    let dir = run_folder(&tmp);
    // A changed CSV, a changed scenario, a missing chart, an extra CSV and
    // an extra checkpoint.
    let mut runs = std::fs::read(dir.join("runs.csv")).unwrap();
    runs.push(b'\n');
    std::fs::write(dir.join("runs.csv"), runs).unwrap();
    let scenario = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    std::fs::write(
        dir.join("scenario.toml"),
        scenario.replace("episodes = 30", "episodes = 31"),
    )
    .unwrap();
    std::fs::remove_file(dir.join("reward_curve.png")).unwrap();
    std::fs::write(dir.join("extra.csv"), "a,b\n").unwrap();
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join("checkpoints/stray.safetensors"), b"x").unwrap();
    let (code, text) = verify(&dir);
    assert_eq!(code, Some(1), "{text}");
    for line in [
        "changed  runs.csv",
        "changed  scenario.toml",
        "missing  reward_curve.png",
        "extra    extra.csv",
        "extra    checkpoints/stray.safetensors",
        "5 file(s) differ",
    ] {
        assert!(text.contains(line), "{line} not in: {text}");
    }
    // reproduce verifies first, and refuses.
    let out = shoplab(&["reproduce", dir.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("differ from the manifest"));
}

#[test]
fn a_tampered_or_missing_manifest_fails() {
    let tmp = TempDir::new("verify-manifest");
    let dir = run_folder(&tmp);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let first = json["csv_files"][0]["sha256"].as_str().unwrap().to_string();
    let name = json["csv_files"][0]["name"].as_str().unwrap().to_string();
    let edited = manifest.replace(&first, &"0".repeat(64));
    std::fs::write(dir.join("manifest.json"), edited).unwrap();
    let (code, text) = verify(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("changed  {name}")), "{text}");
    std::fs::write(dir.join("manifest.json"), "{\"csv_files\": 3}").unwrap();
    let (code, text) = verify(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("does not read as a run manifest"), "{text}");
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let (code, text) = verify(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("manifest.json"), "{text}");
}
