//! Sizes that would exhaust memory or time are refused before any work, in
//! well under a second, with the estimate and the limit (issue #11, class 1):
//! every size-bearing setting has a cap, and the whole scenario's memory and
//! work are estimated against `--max-memory` and `--max-work`.

mod common;

use common::{TempDir, assert_names, replaced, shoplab, small_pricing};
use std::{path::Path, time::Instant};

/// Validates `text` with `args` added; the refusal, checked to be one line
/// naming the file, and to come at once (a hang or an allocation would not).
fn refused_with(text: &str, args: &[&str]) -> String {
    let tmp = TempDir::new("limits");
    let file = tmp.path().join("big.toml");
    std::fs::write(&file, text).unwrap();
    let mut all = vec!["validate", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let start = Instant::now();
    let out = shoplab(&all, &[]);
    let seconds = start.elapsed().as_secs_f64();
    let message = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "accepted: {text}");
    assert!(message.contains("big.toml"), "file not named: {message}");
    assert!(seconds < 20.0, "took {seconds:.1} s: {message}");
    message
}

/// The small pricing scenario with one DQN entry of `settings`.
fn dqn(settings: &str) -> String {
    format!(
        "{}\n[[policies]]\nkind = \"dqn\"\n{settings}\n",
        small_pricing("big", 50)
    )
}

fn layers(n: usize, width: usize) -> String {
    format!("hidden = [{}]", vec![width.to_string(); n].join(", "))
}

#[test]
fn settings_have_caps() {
    let m = refused_with(&dqn(&layers(200, 4096)), &[]);
    assert_names(&m, &["policies[5].hidden", "at most 64 hidden layers"]);
    let m = refused_with(
        &dqn("hidden = [4096, 4096]\nbatch_size = 1000000\nbuffer_size = 1000000"),
        &[],
    );
    assert_names(&m, &["policies[5].batch_size", "between 1 and 65536"]);
    let m = refused_with(&dqn("gradient_steps = 100000000"), &[]);
    assert_names(&m, &["policies[5].gradient_steps", "between 1 and 1000"]);
    let m = refused_with(&dqn("learning_rate = 4.29e9"), &[]);
    assert_names(&m, &["policies[5].learning_rate", "must be in (0, 1]"]);
}

#[test]
fn one_policy_larger_than_the_memory_limit() {
    // 20 layers of 4,096: 336 M weights, 9.7 GiB with target, Adam state,
    // gradients and temporaries.
    let m = refused_with(&dqn(&layers(20, 4096)), &["--max-memory", "4G"]);
    assert_names(
        &m,
        &[
            "policies[5]",
            "one instance would hold about 9.7 GiB",
            "GiB of memory, more than the limit of 4.0 GiB",
            "--max-memory",
        ],
    );
    // A batch of 65,536 through two 4,096-wide layers: its activations alone.
    let m = refused_with(
        &dqn("hidden = [4096, 4096]\nbatch_size = 65536\nbuffer_size = 100000"),
        &["--max-memory", "8G"],
    );
    assert_names(&m, &["policies[5]", "more than the limit of 8.0 GiB"]);
}

#[test]
fn the_whole_scenario_against_the_limits() {
    // Each run fits, but not one per thread at once.
    let text = dqn(&layers(3, 4096)).replace("episodes = 50", "episodes = 1");
    let m = refused_with(&text, &["--max-memory", "1536M"]);
    assert_names(&m, &["key `run`", "would need about", "runs at once"]);
    // A thousand gradient steps on 4,096-row batches after every transition.
    let m = refused_with(
        &dqn("gradient_steps = 1000\ntrain_freq = 1\nbatch_size = 4096\nhidden = [1024, 1024]"),
        &[],
    );
    assert_names(
        &m,
        &[
            "would take about",
            "operations",
            "for `dqn`",
            "more than the limit of 1.0e15",
            "--max-work",
        ],
    );
    // The same scenario passes when the limits are raised, without
    // allocating the network to validate it.
    let tmp = TempDir::new("limits");
    let file = tmp.path().join("big.toml");
    std::fs::write(&file, dqn(&layers(20, 4096))).unwrap();
    let out = shoplab(
        &["validate", file.to_str().unwrap(), "--max-memory", "1T"],
        &[],
    );
    common::assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("estimated at most"));
    let out = shoplab(
        &["validate", file.to_str().unwrap(), "--max-memory", "lots"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a size such as 8G"));
}

#[test]
fn catalogs_have_caps() {
    let tmp = TempDir::new("catalog-caps");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/recommendation.toml"),
    )
    .unwrap();
    let with_catalog = |csv: &str| {
        let path = tmp.path().join("items.csv");
        std::fs::write(&path, csv).unwrap();
        replaced(
            &text,
            "[recommendation.catalog]",
            &format!("[recommendation.catalog]\npath = \"{}\"", path.display()),
        )
    };
    let dim: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("dim = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the scenario sets dim");
    let header = format!(
        "topic,price,quality,clickbait,{}\n",
        (0..dim)
            .map(|j| format!("f{j}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let row = |topic: &str| format!("{topic},1.5,0,0,{}\n", vec!["1"; dim].join(","));
    // A topic number that would size per-topic tables at 4 billion.
    let m = refused_with(&with_catalog(&(header.clone() + &row("4294967295"))), &[]);
    assert_names(&m, &["catalog.path", "column `topic`", "from 0 to 99999"]);
    // More rows than a generated catalog may have.
    let mut csv = header;
    let line = row("0");
    for _ in 0..100_001 {
        csv.push_str(&line);
    }
    let m = refused_with(&with_catalog(&csv), &[]);
    assert_names(&m, &["catalog.path", "more than 100000 items"]);
}

/// Under `ulimit -v 8G` the default memory limit is half of it, so a
/// network that would need 10 GiB is refused instead of aborting.
#[cfg(target_os = "linux")]
#[test]
fn the_address_space_limit_sets_the_default() {
    let tmp = TempDir::new("ulimit");
    let file = tmp.path().join("big.toml");
    std::fs::write(&file, dqn(&layers(20, 4096))).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 8388608 && exec '{}' validate '{}'",
            env!("CARGO_BIN_EXE_shoplab"),
            file.display()
        ))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert_names(&message, &["more than the limit of 4.0 GiB"]);
}

/// The episodes `check` and `eval` play are capped like a run's.
#[test]
fn command_episodes_have_caps() {
    for args in [
        vec![
            "check",
            "scenarios/pricing.toml",
            "--episodes",
            "100000000000",
        ],
        vec!["eval", "results/none", "--episodes", "4294967295"],
        vec!["eval", "results/none", "--episodes", "0"],
    ] {
        let start = Instant::now();
        let out = shoplab(&args, &[]);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(start.elapsed().as_secs_f64() < 20.0);
        assert_names(
            &String::from_utf8_lossy(&out.stderr),
            &["--episodes must be between 1 and 100000"],
        );
    }
}

/// The report's bootstrap intervals count as work too: ten thousand seeds,
/// ten thousand curve points and a hundred thousand resamples each are
/// refused under a limit that the same scenario with 100 resamples meets.
#[test]
fn the_report_statistics_count_as_work() {
    let seeds: Vec<String> = (1..=10_000).map(|s| s.to_string()).collect();
    let base = common::small_pricing("big", 1)
        .replace(
            "seeds = [1, 2, 3, 4]",
            &format!("seeds = [{}]", seeds.join(", ")),
        )
        .replace("curve_points = 10", "curve_points = 10000");
    let heavy = base.replace("bootstrap_resamples = 200", "bootstrap_resamples = 100000");
    let m = refused_with(&heavy, &["--max-work", "1e13"]);
    assert_names(&m, &["would take about", "more than the limit of 1.0e13"]);
    let light = base.replace("bootstrap_resamples = 200", "bootstrap_resamples = 100");
    let tmp = TempDir::new("limits");
    let file = tmp.path().join("light.toml");
    std::fs::write(&file, light).unwrap();
    let out = shoplab(
        &["validate", file.to_str().unwrap(), "--max-work", "1e13"],
        &[],
    );
    common::assert_success(&out);
}
