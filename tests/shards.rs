//! Sweeps past one process: `run --shard K/N` and `merge` give the bytes of
//! an unsharded run, and a run or shard killed with SIGKILL midway resumes
//! (`--resume`) to the same bytes as an uninterrupted one. Plain
//! processes, as a cluster's job array would run them.
//!
//! Guards issue #16 (experiments as researchers run them).

mod common;

use common::{TempDir, assert_success, shoplab};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A sweep with enough jobs (4 configurations × 5 policies × 10 seeds)
/// that a run can be killed halfway.
fn scenario(dir: &Path, episodes: u32) -> PathBuf {
    let text = common::small_pricing("sharded", episodes).replace(
        "seeds = [1, 2, 3, 4]",
        "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    ) + "\n[sweep]\n[sweep.parameters]\n\"policies.q_learning.alpha\" = [0.1, 0.5]\n\
           \"pricing.inventory\" = [8, 12]\n";
    let file = dir.join("sharded.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The published run folders under `results/<scenario>` (not partial
/// folders, not shard folders).
fn run_dirs(results: &Path, scenario: &str) -> Vec<PathBuf> {
    common::run_dirs(results, scenario)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.starts_with("shard-")
        })
        .collect()
}

/// Every CSV and the scenario of a run folder, by relative name.
fn tables(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "csv" || e == "toml") {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn assert_same_tables(a: &Path, b: &Path) {
    let (x, y) = (tables(a), tables(b));
    assert_eq!(
        x.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        y.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(x.len() > 20, "{} tables", x.len());
    for ((name, p), (_, q)) in x.iter().zip(&y) {
        assert!(
            p == q,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The scenario file of `episodes` episodes in `tmp`, and the run folder
/// of its uninterrupted, unsharded run: what every other way must match.
fn uninterrupted(tmp: &TempDir, episodes: u32) -> (PathBuf, PathBuf) {
    let file = scenario(tmp.path(), episodes);
    let whole = tmp.path().join("whole");
    assert_success(&common::run_scenario(&file, &whole, &[]));
    let expected = run_dirs(&whole, "sharded").remove(0);
    (file, expected)
}

#[test]
fn four_shards_merge_into_the_unsharded_run() {
    let tmp = TempDir::new("shards");
    let (file, expected) = uninterrupted(&tmp, 60);
    let expected = &expected;

    let results = tmp.path().join("sharded-results");
    let f = file.to_str().unwrap();
    let r = results.to_str().unwrap();
    let mut shards = Vec::new();
    // Shards run in any order, each on its own thread count.
    for (k, threads) in [(3, "1"), (1, "2"), (4, "3"), (2, "1")] {
        let shard = format!("{k}/4");
        let out = shoplab(
            &["run", f, "--shard", &shard, "--results", r, "--quiet"],
            &[("RAYON_NUM_THREADS", threads)],
        );
        assert_success(&out);
        shards.push(results.join(format!("sharded/shard-{k}-of-4")));
    }
    // A merge missing a shard, or given one twice, is refused.
    let names: Vec<&str> = shards.iter().map(|p| p.to_str().unwrap()).collect();
    let out = shoplab(
        &["merge", names[0], names[1], names[2], "--results", r],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard(s) 2/4 missing"));
    let out = shoplab(
        &[
            "merge",
            names[0],
            names[1],
            names[2],
            names[2],
            "--results",
            r,
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
    // A shard folder is not run over without --resume.
    let out = shoplab(
        &["run", f, "--shard", "1/4", "--results", r, "--quiet"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));

    let out = shoplab(
        &[
            "merge",
            names[0],
            names[1],
            names[2],
            names[3],
            "--results",
            r,
        ],
        &[],
    );
    assert_success(&out);
    let merged = &run_dirs(&results, "sharded")[0];
    assert_same_tables(expected, merged);
    let out = shoplab(&["verify", merged.to_str().unwrap()], &[]);
    assert_success(&out);

    // A shard of another scenario (another inventory) does not merge.
    let other = scenario(tmp.path(), 60);
    let text = std::fs::read_to_string(&other)
        .unwrap()
        .replace("[8, 12]", "[8, 13]");
    std::fs::write(&other, text).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    let e = elsewhere.to_str().unwrap();
    assert_success(&shoplab(
        &[
            "run",
            other.to_str().unwrap(),
            "--shard",
            "2/4",
            "--results",
            e,
            "--quiet",
        ],
        &[],
    ));
    let foreign = elsewhere.join("sharded/shard-2-of-4");
    let out = shoplab(
        &[
            "merge",
            names[0],
            foreign.to_str().unwrap(),
            names[2],
            names[3],
            "--results",
            r,
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("another run"));
}

/// Starts `shoplab ARGS` on two threads, its output discarded.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_shoplab"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `shoplab ARGS`, waits until `jobs` holds at least `at_least`
/// finished job files, and kills it with SIGKILL.
fn kill_midway(args: &[&str], jobs: &Path, at_least: usize) {
    let mut child = spawn(args);
    let start = Instant::now();
    let count = |dir: &Path| {
        std::fs::read_dir(dir).map_or(0, |e| {
            e.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".job"))
                .count()
        })
    };
    while count(jobs) < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no jobs finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// The partial folder of the interrupted run under `parent`.
fn partial(parent: &Path) -> PathBuf {
    std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(".partial")
        })
        .expect("the killed run left its partial folder")
}

#[test]
fn a_run_killed_midway_resumes_to_the_same_bytes() {
    let tmp = TempDir::new("resume");
    let (file, expected) = uninterrupted(&tmp, 400);
    let expected = &expected;

    let results = tmp.path().join("killed");
    let parent = results.join("sharded");
    let f = file.to_str().unwrap();
    let r = results.to_str().unwrap();
    std::fs::create_dir_all(&parent).unwrap();
    // The partial folder appears at the start; its jobs as they finish.
    let args = ["run", f, "--results", r, "--quiet"];
    let mut child = spawn(&args);
    let start = Instant::now();
    let jobs = loop {
        if let Some(p) = std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".partial") && p.join(".jobs").is_dir())
        {
            break p.join(".jobs");
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed at once, possibly before any job: a second run is killed
    // after a few jobs, resuming the first.
    kill_midway(
        &["run", f, "--results", r, "--quiet", "--resume"],
        &jobs,
        20,
    );
    assert!(
        run_dirs(&results, "sharded").is_empty(),
        "no run folder was published"
    );
    let held = partial(&parent).join(".jobs");
    assert!(std::fs::read_dir(&held).unwrap().count() >= 20);
    // A plain run leaves the partial folder with finished jobs alone...
    let out = shoplab(&["run", f, "--results", r, "--quiet"], &[]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let fresh = run_dirs(&results, "sharded");
    assert_eq!(fresh.len(), 1);
    assert_same_tables(expected, &fresh[0]);
    // ... and the resume finishes it: the same bytes, jobs not rerun.
    let out = shoplab(
        &["run", f, "--results", r, "--resume"],
        &[("RAYON_NUM_THREADS", "1")],
    );
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("job(s) finished before"), "{said}");
    let dirs = run_dirs(&results, "sharded");
    assert_eq!(dirs.len(), 2);
    let resumed = dirs.iter().find(|d| **d != fresh[0]).unwrap();
    assert_same_tables(expected, resumed);
    assert_success(&shoplab(&["verify", resumed.to_str().unwrap()], &[]));
    assert!(
        !std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial")),
        "the resumed partial folder was published"
    );
}

#[test]
fn a_killed_shard_resumes_and_merges() {
    let tmp = TempDir::new("shard-resume");
    let (file, expected) = uninterrupted(&tmp, 400);
    let expected = &expected;
    let results = tmp.path().join("r");
    let (f, r) = (file.to_str().unwrap(), results.to_str().unwrap());
    let shard1 = results.join("sharded/shard-1-of-2");
    kill_midway(
        &["run", f, "--shard", "1/2", "--results", r, "--quiet"],
        &shard1.join(".jobs"),
        10,
    );
    assert!(!shard1.join("shard.json").exists());
    let shard2 = results.join("sharded/shard-2-of-2");
    assert_success(&shoplab(
        &["run", f, "--shard", "2/2", "--results", r, "--quiet"],
        &[],
    ));
    // An unfinished shard does not merge.
    let (s1, s2) = (shard1.to_str().unwrap(), shard2.to_str().unwrap());
    let out = shoplab(&["merge", s1, s2, "--results", r], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a finished shard"));
    let out = shoplab(
        &["run", f, "--shard", "1/2", "--results", r, "--resume"],
        &[],
    );
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("resumed"));
    assert_success(&shoplab(&["merge", s1, s2, "--results", r], &[]));
    assert_same_tables(expected, &run_dirs(&results, "sharded")[0]);
}
