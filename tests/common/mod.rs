//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A fresh, empty folder under the system's temp dir, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shoplab-test-{label}-"))
            .tempdir()
            .unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Runs the `shoplab` binary with `args` from the repository root.
pub fn shoplab(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoplab"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the shoplab binary runs")
}

/// Fails the test, showing the command's output, unless it succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs scenario `file` with run folders under `results`, without a progress bar.
pub fn run_scenario(file: &Path, results: &Path, envs: &[(&str, &str)]) -> Output {
    shoplab(
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--quiet",
        ],
        envs,
    )
}

/// A small but complete pricing scenario, `episodes` long, named `name`.
pub fn small_pricing(name: &str, episodes: u32) -> String {
    format!(
        r#"
name = "{name}"
[run]
seeds = [1, 2, 3, 4]
episodes = {episodes}
bootstrap_resamples = 200
curve_points = 10

[pricing]
horizon = 8
inventory = 12
cost = 0.4
salvage_value = 0.1
price_grid = [1.0, 1.5, 2.0, 2.5, 3.0]
arrival_rate = {{ kind = "ramp", start = 2.0, end = 4.0 }}

[[pricing.segments]]
share = 0.6
wtp = {{ kind = "logit", alpha = 2.0, beta = 1.0 }}

[[pricing.segments]]
share = 0.4
wtp = {{ kind = "uniform", low = 0.5, high = 3.5 }}

[[policies]]
kind = "fixed"
price = 2.0

[[policies]]
kind = "random"

[[policies]]
kind = "ucb1"

[[policies]]
kind = "q_learning"

[[policies]]
kind = "oracle"
"#
    )
}

/// Runs scenario `file` (named `scenario`) once per thread count, each run
/// required to succeed; returns the run folders, one per count.
pub fn run_with_threads(
    file: &Path,
    results: &Path,
    scenario: &str,
    threads: &[&str],
) -> Vec<PathBuf> {
    for t in threads {
        let out = run_scenario(file, results, &[("RAYON_NUM_THREADS", t)]);
        assert_success(&out);
    }
    let dirs = run_dirs(results, scenario);
    assert_eq!(
        dirs.len(),
        threads.len(),
        "each run gets its own folder: {dirs:?}"
    );
    dirs
}

/// The run folders under `results/<scenario>/`.
pub fn run_dirs(results: &Path, scenario: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results.join(scenario))
        .map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Runs `text` as scenario `bad.toml` (with `extra` files beside it) and
/// returns its error message, checking that the run failed with one line
/// naming the file and wrote nothing under `results/`.
pub fn refused(text: &str, extra: &[(&str, &str)]) -> String {
    let tmp = TempDir::new("bad");
    for (name, content) in extra {
        std::fs::write(tmp.path().join(name), content).unwrap();
    }
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    let out = run_scenario(&file, &results, &[]);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert!(!results.exists(), "something was written under results/");
    let message = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        message.contains("bad.toml"),
        "the file is not named: {message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one message: {message}");
    message
}

/// Checks `message` contains every one of `parts`.
pub fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
}

/// `base` with the first `from` replaced by `to`, checking `from` is there.
pub fn replaced(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "fixture lacks {from:?}");
    base.replacen(from, to, 1)
}

/// Runs the shipped scenario `file` with seeds `1..=seeds`, only the policies
/// named in `keep`, and `adjust` applied to it; returns its report, checking
/// that every run finished.
pub fn run_shrunk(
    file: &str,
    seeds: u64,
    keep: &[&str],
    adjust: impl FnOnce(&mut shoplab_harness::scenario::Scenario),
) -> shoplab_harness::report::Report {
    let path = Path::new(file);
    let mut s =
        shoplab_harness::scenario::read(path, &shoplab_harness::registry::Registry::default())
            .unwrap();
    s.run.seeds = (1..=seeds).collect();
    s.policies
        .retain(|p| keep.contains(&p.base_name().as_str()));
    assert_eq!(
        s.policies.len(),
        keep.len(),
        "the scenario lists every policy kept"
    );
    adjust(&mut s);
    let prepared = shoplab_harness::prepared::Prepared::new(s, path).unwrap();
    let results = shoplab_harness::runner::run_all(&prepared, &|_| {});
    assert!(results.iter().all(|r| r.failure.is_none()));
    shoplab_harness::report::build(&prepared, &results)
}

/// The 95% interval of policy `name`'s final return.
pub fn interval(report: &shoplab_harness::report::Report, name: &str) -> (f64, f64) {
    let e = report
        .summaries
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.final_return)
        .unwrap();
    (e.low, e.high)
}

/// Policy `name`'s final value of the summary ratio `ratio`.
pub fn final_ratio(report: &shoplab_harness::report::Report, name: &str, ratio: &str) -> f64 {
    let i = report.ratio_names.iter().position(|&r| r == ratio).unwrap();
    report
        .summaries
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .final_ratios[i]
}

/// Runs the `shoplab` binary with `args`, failing the test if it has not
/// finished within `seconds` (it is killed first): for inputs that could hang.
pub fn shoplab_within(args: &[&str], seconds: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoplab"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the shoplab binary runs");
    let start = std::time::Instant::now();
    while child.try_wait().expect("the child can be polled").is_none() {
        if start.elapsed().as_secs() >= seconds {
            let _ = child.kill();
            panic!("shoplab {args:?} did not finish within {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("the output can be read")
}

/// `scenarios/pricing.toml` with a behaviour policy for off-policy tests
/// added — a shop that posts price 3 but tries a random price of the grid
/// with probability 0.05 (`fixed_price_3_epsilon_0.05`) — written into
/// `dir`; its path.
pub fn pricing_explorer(dir: &Path) -> PathBuf {
    let scenario = dir.join("pricing.toml");
    let text = std::fs::read_to_string("scenarios/pricing.toml").unwrap();
    std::fs::write(
        &scenario,
        format!("{text}\n[[policies]]\nkind = \"fixed\"\nprice = 3.0\nepsilon = 0.05\n"),
    )
    .unwrap();
    scenario
}
