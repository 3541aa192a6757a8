//! Determinism end to end: the same scenario gives byte-identical CSVs, with
//! any thread count, and `shoplab reproduce` checks a run folder.
//!
//! Guards issue #2 (foundation and dynamic pricing, end to end).

mod common;

use common::{TempDir, run_dirs, run_scenario, shoplab, small_pricing};

const CSVS: [&str; 5] = [
    "episodes.csv",
    "runs.csv",
    "summary.csv",
    "curves.csv",
    "policy_tables.csv",
];

#[test]
fn same_scenario_same_bytes_with_any_thread_count() {
    let tmp = TempDir::new("repro");
    let file = tmp.path().join("repro.toml");
    std::fs::write(&file, small_pricing("repro", 300)).unwrap();
    let results = tmp.path().join("results");
    let dirs = common::run_with_threads(&file, &results, "repro", &["1", "2", "3"]);
    for name in CSVS {
        let first = std::fs::read(dirs[0].join(name)).unwrap();
        assert!(!first.is_empty());
        for dir in &dirs[1..] {
            assert!(
                first == std::fs::read(dir.join(name)).unwrap(),
                "{name} differs between {} and {}",
                dirs[0].display(),
                dir.display()
            );
        }
    }

    // `reproduce` re-runs the folder and agrees with it ...
    let dir = dirs[0].to_str().unwrap();
    let out = shoplab(&["reproduce", dir, "--quiet"], &[]);
    common::assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("byte-identical"));

    // ... and fails once a CSV has been altered (verification against the
    // manifest, before any re-run, names it).
    let summary = dirs[0].join("summary.csv");
    let mut bytes = std::fs::read(&summary).unwrap();
    bytes.extend_from_slice(b"tampered\n");
    std::fs::write(&summary, bytes).unwrap();
    let out = shoplab(&["reproduce", dir, "--quiet"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL changed  summary.csv"));
}

#[test]
fn run_folder_is_complete() {
    let tmp = TempDir::new("folder");
    let file = tmp.path().join("folder.toml");
    std::fs::write(&file, small_pricing("folder", 50)).unwrap();
    let results = tmp.path().join("results");
    let out = run_scenario(&file, &results, &[]);
    common::assert_success(&out);
    let dirs = run_dirs(&results, "folder");
    assert_eq!(dirs.len(), 1, "no staging folder is left behind: {dirs:?}");
    let dir = &dirs[0];
    for name in CSVS.iter().chain(&["scenario.toml", "manifest.json"]) {
        assert!(dir.join(name).is_file(), "missing {name}");
    }
    let charts = [
        "reward_curve",
        "regret_curve",
        "final_comparison",
        "policy_tables",
    ];
    for chart in charts {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{chart}.{ext}"));
            assert!(
                std::fs::metadata(&path).unwrap().len() > 1_000,
                "{path:?} is empty"
            );
        }
    }
    // Tidy episodes: one row per policy × seed × episode, plus a header.
    let episodes = std::fs::read_to_string(dir.join("episodes.csv")).unwrap();
    assert_eq!(episodes.lines().count(), 1 + 5 * 4 * 50);
    assert!(episodes.starts_with("scenario,policy,seed,episode,return,regret,"));
    // The resolved scenario spells out the defaults and runs again as is.
    let resolved = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert!(resolved.contains("bootstrap_resamples = 200"));
    assert!(resolved.contains("alpha_exponent"));
}

/// The run id is the UTC time the runs start, not the time they end: a
/// run of several seconds is stamped with the second it began.
#[test]
fn the_run_id_is_the_start_time() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let tmp = common::TempDir::new("run-id");
    let file = tmp.path().join("long.toml");
    std::fs::write(&file, common::small_pricing("long", 40_000)).unwrap();
    let results = tmp.path().join("results");
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    common::assert_success(&common::run_scenario(
        &file,
        &results,
        &[("RAYON_NUM_THREADS", "1")],
    ));
    let after = now();
    assert!(
        after >= before + 3,
        "the run must outlast the stamp's resolution ({} s)",
        after - before
    );
    let dir = &common::run_dirs(&results, "long")[0];
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    // YYYYMMDD-HHMMSS → seconds of the day, compared with the clock's.
    let of_day = |s: u64| s % 86_400;
    let hms: u64 = id[9..15].parse().unwrap();
    let stamped = hms / 10_000 * 3600 + hms / 100 % 100 * 60 + hms % 100;
    let started = of_day(before);
    let gap = (stamped + 86_400 - started) % 86_400;
    assert!(
        gap <= 1,
        "run id {id}: {gap} s after the start, the run took {} s",
        after - before
    );
}
