//! `shoplab compare` (issue #16): its aggregates recompute the runs' own
//! summaries, its paired differences the per-seed differences, and runs of
//! different scenarios are compared only normalised.

mod common;

use common::{TempDir, assert_names, assert_success, replaced, run_dirs, shoplab};

/// The `compare.csv` rows as (policy, metric) → (estimate, low, high).
fn rows(dir: &std::path::Path) -> Vec<(String, String, f64, f64, f64)> {
    let folder = &run_dirs(dir, "compare")[0];
    let text = std::fs::read_to_string(folder.join("compare.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].to_string(),
                c[3].to_string(),
                c[4].parse().unwrap(),
                c[5].parse().unwrap(),
                c[6].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn compare_recomputes_the_summaries_and_the_paired_differences() {
    let tmp = TempDir::new("compare");
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, common::small_pricing("small", 30)).unwrap();
    let results = tmp.path().join("results");
    assert_success(&common::run_scenario(&file, &results, &[]));
    let run = &run_dirs(&results, "small")[0];
    let out_dir = tmp.path().join("cmp");
    let out = shoplab(
        &[
            "compare",
            run.to_str().unwrap(),
            "--policy",
            "fixed_price_2",
            "--policy",
            "q_learning",
            "--results",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&out);
    let rows = rows(&out_dir);
    // The mean over seeds of each run's final mean is the summary's.
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    for policy in ["fixed_price_2", "q_learning"] {
        let line = summary
            .lines()
            .find(|l| l.split(',').nth(1) == Some(policy))
            .unwrap();
        let want: f64 = line.split(',').nth(4).unwrap().parse().unwrap();
        let got = rows
            .iter()
            .find(|r| r.0 == policy && r.1 == "mean")
            .unwrap();
        assert!((got.2 - want).abs() < 1e-9, "{policy}: {} vs {want}", got.2);
        assert!(got.3 <= got.2 && got.2 <= got.4);
    }
    // The paired difference is the mean of the per-seed differences of
    // the final 10% of episodes (3 of 30), recomputed from episodes.csv.
    let episodes = std::fs::read_to_string(run.join("episodes.csv")).unwrap();
    let final_mean = |policy: &str, seed: u64| {
        let r: Vec<f64> = episodes
            .lines()
            .filter(|l| {
                let c: Vec<&str> = l.split(',').collect();
                c[1] == policy && c[2] == seed.to_string() && c[3].parse::<u32>().unwrap() >= 27
            })
            .map(|l| l.split(',').nth(4).unwrap().parse::<f64>().unwrap())
            .collect();
        assert_eq!(r.len(), 3);
        r.iter().sum::<f64>() / 3.0
    };
    let diff = (1..=4)
        .map(|s| final_mean("q_learning", s) - final_mean("fixed_price_2", s))
        .sum::<f64>()
        / 4.0;
    let paired = rows.iter().find(|r| r.1 == "paired_difference").unwrap();
    assert_eq!(paired.0, "q_learning − fixed_price_2");
    assert!((paired.2 - diff).abs() < 1e-9, "{} vs {diff}", paired.2);
    let improvement = rows
        .iter()
        .find(|r| r.1 == "probability_of_improvement")
        .unwrap();
    assert!((0.0..=1.0).contains(&improvement.2));
    // Seeded: the same command writes the same table.
    let again_dir = tmp.path().join("again");
    let again = shoplab(
        &[
            "compare",
            run.to_str().unwrap(),
            "--policy",
            "fixed_price_2",
            "--policy",
            "q_learning",
            "--results",
            again_dir.to_str().unwrap(),
        ],
        &[("RAYON_NUM_THREADS", "1")],
    );
    assert_success(&again);
    let read =
        |d: &std::path::Path| std::fs::read(run_dirs(d, "compare")[0].join("compare.csv")).unwrap();
    assert_eq!(read(&out_dir), read(&again_dir));
}

#[test]
fn runs_of_different_scenarios_compare_only_normalised() {
    let tmp = TempDir::new("compare-two");
    let results = tmp.path().join("results");
    let small = common::small_pricing("one", 10);
    let other = replaced(
        &replaced(&small, "name = \"one\"", "name = \"two\""),
        "inventory = 12",
        "inventory = 9",
    );
    for (name, text) in [("one", small), ("two", other)] {
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        assert_success(&common::run_scenario(&file, &results, &[]));
    }
    let runs: Vec<String> = ["one", "two"]
        .iter()
        .map(|s| run_dirs(&results, s)[0].display().to_string())
        .collect();
    let args = |extra: &[&str]| {
        let mut a = vec!["compare", runs[0].as_str(), runs[1].as_str()];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let out_dir = tmp.path().join("cmp");
    let refused = shoplab(
        &args(&["--results", out_dir.to_str().unwrap()])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(!refused.status.success());
    assert_names(
        &String::from_utf8_lossy(&refused.stderr),
        &["different scenarios", "--normalise"],
    );
    let ok = shoplab(
        &args(&[
            "--normalise",
            "--policy",
            "oracle",
            "--policy",
            "random",
            "--results",
            out_dir.to_str().unwrap(),
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        &[],
    );
    assert_success(&ok);
    let rows = rows(&out_dir);
    // The oracle's score over its references: near 1 (it earns V* in
    // expectation), its optimality gap small; random far below.
    let get = |p: &str, m: &str| rows.iter().find(|r| r.0 == p && r.1 == m).unwrap().2;
    assert!(
        (get("oracle", "mean") - 1.0).abs() < 0.1,
        "{}",
        get("oracle", "mean")
    );
    assert!(get("random", "mean") < get("oracle", "mean"));
    assert!(get("random", "optimality_gap") > get("oracle", "optimality_gap"));
    // Two tasks, four seeds each.
    let table =
        std::fs::read_to_string(run_dirs(&out_dir, "compare")[0].join("compare.csv")).unwrap();
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(1) == Some("4") && l.split(',').nth(2) == Some("2")),
        "{table}"
    );
}
