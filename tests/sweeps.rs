//! Sweeps from one scenario file: every configuration validated before any
//! work, one tidy table with the configuration's columns, a summary whose
//! every row recomputes from it, the sensitivity chart, and the same bytes
//! at any thread count.
//!
//! Guards issue #16 (experiments as researchers run them).

mod common;

use common::{TempDir, assert_success, run_dirs, shoplab};
use std::collections::BTreeMap;

/// The must-hold sweep: 3 learning rates × 2 inventories × 10 seeds.
fn sweep_scenario(name: &str, episodes: u32) -> String {
    let base = common::small_pricing(name, episodes);
    let base = base.replace(
        "seeds = [1, 2, 3, 4]",
        "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    );
    format!(
        "{base}\n[sweep]\n[sweep.parameters]\n\"policies.q_learning.alpha\" = [0.05, 0.2, 0.5]\n\
         \"pricing.inventory\" = [6, 12]\n"
    )
}

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn a_grid_sweep_writes_its_tidy_table_summary_and_chart() {
    let tmp = TempDir::new("sweep");
    let file = tmp.path().join("sweep.toml");
    std::fs::write(&file, sweep_scenario("sweep", 200)).unwrap();
    let results = tmp.path().join("results");
    let dirs = common::run_with_threads(&file, &results, "sweep", &["1", "3"]);
    let dir = &dirs[0];
    for name in [
        "sensitivity.png",
        "sensitivity.svg",
        "configs/c06/summary.csv",
    ] {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    let (header, rows) = read_csv(&dir.join("sweep_runs.csv"));
    assert_eq!(
        header[..6],
        [
            "scenario",
            "configuration",
            "policies.q_learning.alpha",
            "pricing.inventory",
            "policy",
            "seed"
        ]
    );
    // 6 configurations × 5 policies × 10 seeds, every one finished.
    assert_eq!(rows.len(), 6 * 5 * 10);
    assert!(rows.iter().all(|r| r[6] == "ok"));
    let configs: BTreeMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| (r[1].as_str(), (r[2].as_str(), r[3].as_str())))
        .collect();
    assert_eq!(configs["c01"], ("0.05", "6"));
    assert_eq!(configs["c02"], ("0.05", "12"));
    assert_eq!(configs["c06"], ("0.5", "12"));
    // Every summary mean is the mean of its runs' shares, inside its interval.
    let (sheader, summary) = read_csv(&dir.join("sweep_summary.csv"));
    let col = |name: &str| sheader.iter().position(|h| h == name).unwrap();
    assert_eq!(summary.len(), 6 * 5);
    for row in &summary {
        let shares: Vec<f64> = rows
            .iter()
            .filter(|r| r[1] == row[1] && r[4] == row[col("policy")])
            .map(|r| r[10].parse::<f64>().unwrap())
            .collect();
        assert_eq!(shares.len(), 10);
        let mean = shares.iter().sum::<f64>() / 10.0;
        let reported: f64 = row[col("score_mean")].parse().unwrap();
        assert!(
            (mean - reported).abs() < 1e-9 * mean.abs().max(1.0),
            "{row:?}"
        );
        let (low, high): (f64, f64) = (
            row[col("score_ci_low")].parse().unwrap(),
            row[col("score_ci_high")].parse().unwrap(),
        );
        assert!(low <= reported && reported <= high, "{row:?}");
    }
    // The same configuration's table is the one a plain run of it writes:
    // the sweep's c05 is alpha 0.5 on inventory 6.
    let single = tmp.path().join("single.toml");
    let text = common::small_pricing("sweep", 200)
        .replace(
            "seeds = [1, 2, 3, 4]",
            "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
        )
        .replace("inventory = 12", "inventory = 6")
        .replace(
            "kind = \"q_learning\"",
            "kind = \"q_learning\"\nalpha = 0.5",
        );
    std::fs::write(&single, text).unwrap();
    let plain = tmp.path().join("plain");
    assert_success(&common::run_scenario(&single, &plain, &[]));
    let plain_dir = &run_dirs(&plain, "sweep")[0];
    for name in ["episodes.csv", "summary.csv", "runs.csv"] {
        assert!(
            std::fs::read(plain_dir.join(name)).unwrap()
                == std::fs::read(dir.join("configs/c05").join(name)).unwrap(),
            "{name} of c05 differs from the plain run's"
        );
    }
    // Thread counts change no byte, and the folder verifies and reproduces.
    for name in [
        "sweep_runs.csv",
        "sweep_summary.csv",
        "configs/c03/episodes.csv",
    ] {
        assert!(
            std::fs::read(dirs[0].join(name)).unwrap()
                == std::fs::read(dirs[1].join(name)).unwrap(),
            "{name} differs between thread counts"
        );
    }
    let out = shoplab(&["reproduce", dir.to_str().unwrap(), "--quiet"], &[]);
    assert_success(&out);
}

#[test]
fn random_sweeps_draw_the_same_configurations_every_time() {
    let tmp = TempDir::new("random-sweep");
    let text = common::small_pricing("rs", 20)
        + "\n[sweep]\nmethod = \"random\"\ncount = 4\nseed = 3\n[sweep.parameters]\n\
           \"policies.q_learning.alpha\" = { min = 0.01, max = 1.0, scale = \"log\" }\n\
           \"pricing.inventory\" = { min = 5, max = 15, integer = true }\n";
    let file = tmp.path().join("rs.toml");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    let dirs = common::run_with_threads(&file, &results, "rs", &["1", "2"]);
    let (_, a) = read_csv(&dirs[0].join("sweep_summary.csv"));
    let (_, b) = read_csv(&dirs[1].join("sweep_summary.csv"));
    assert_eq!(a, b);
    let mut seen = std::collections::BTreeSet::new();
    for row in &a {
        let alpha: f64 = row[2].parse().unwrap();
        let inventory: i64 = row[3].parse().unwrap();
        assert!(
            (0.01..=1.0).contains(&alpha) && (5..=15).contains(&inventory),
            "{row:?}"
        );
        seen.insert(row[1].clone());
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn a_bad_configuration_is_refused_before_any_work() {
    let tmp = TempDir::new("bad-sweep");
    let file = tmp.path().join("bad.toml");
    // The second learning rate breaks the Q-learner's rule.
    let text = sweep_scenario("bad", 20).replace("[0.05, 0.2, 0.5]", "[0.05, -2.0, 0.5]");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    let out = common::run_scenario(&file, &results, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    common::assert_names(
        &err,
        &[
            "bad.toml",
            "policies[3].alpha",
            "c03",
            "policies.q_learning.alpha = -2.0",
        ],
    );
    assert!(!results.join("bad").exists() || run_dirs(&results, "bad").is_empty());
    // A key the sweep cannot vary, and one naming no policy.
    for (parameters, words) in [
        (
            "\"run.seeds\" = [[1], [2]]",
            vec!["sweep.parameters.run.seeds", "replicates"],
        ),
        (
            "\"policies.nobody.alpha\" = [1.0]",
            vec!["no policy", "q_learning"],
        ),
        ("\"pricing.inventry\" = [3]", vec!["inventry", "c01"]),
    ] {
        let text = common::small_pricing("bad", 20)
            + &format!("\n[sweep]\n[sweep.parameters]\n{parameters}\n");
        std::fs::write(&file, text).unwrap();
        let out = shoplab(&["validate", file.to_str().unwrap()], &[]);
        assert!(!out.status.success(), "{parameters}");
        common::assert_names(&String::from_utf8_lossy(&out.stderr), &words);
    }
}
