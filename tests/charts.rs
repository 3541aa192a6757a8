//! Charts a reviewer would accept: small multiples past eight policies,
//! per-seed traces on request, policy tables that mask the states a
//! tabular learner never visited, regret named after its reference, and
//! the legend outside the plotting area.
//!
//! Guards issue #16 (paper-ready charts).

mod common;

use common::{TempDir, assert_success, run_dirs};
use std::path::Path;

/// The `<text>` contents of an SVG chart, joined.
fn svg_text(path: &Path) -> String {
    let svg = std::fs::read_to_string(path).unwrap();
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</text>"))
        })
        .map(|(inner, _)| inner.trim().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path).unwrap().matches(what).count()
}

fn svg_size(path: &Path) -> (u32, u32) {
    let svg = std::fs::read_to_string(path).unwrap();
    let number = |key: &str| -> u32 {
        let at = svg.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
    };
    (number("width"), number("height"))
}

fn run(tmp: &TempDir, name: &str, text: String) -> std::path::PathBuf {
    let file = tmp.path().join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    assert_success(&common::run_scenario(&file, &results, &[]));
    run_dirs(&results, name).pop().unwrap()
}

#[test]
fn more_than_eight_policies_come_as_small_multiples() {
    let tmp = TempDir::new("facets");
    let mut text = common::small_pricing("facets", 40);
    for (k, price) in ["1.0", "1.5", "2.5", "3.0"].iter().enumerate() {
        text.push_str(&format!(
            "\n[[policies]]\nkind = \"fixed\"\nname = \"p{k}\"\nprice = {price}\n"
        ));
    }
    let dir = run(&tmp, "facets", text);
    let chart = dir.join("reward_curve.svg");
    // Nine policies: three rows of four panels, each captioned with its
    // policy, on a taller canvas than one overlaid chart.
    let (_, height) = svg_size(&chart);
    assert!(height > 750, "{height}");
    let text = svg_text(&chart);
    for name in [
        "fixed_price_2",
        "q_learning",
        "p0",
        "p3",
        "one panel per policy",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // Five policies overlay in one chart, the legend outside it: the
    // canvas is wider than the plot by the legend's strip.
    let few = run(&tmp, "few", common::small_pricing("few", 40));
    let (width, height) = svg_size(&few.join("reward_curve.svg"));
    assert_eq!((width, height), (1520, 750));
    let legend_x: Vec<f64> = std::fs::read_to_string(few.join("reward_curve.svg"))
        .unwrap()
        .split("<text x=\"")
        .skip(1)
        .filter(|t| t.contains(">\nq_learning\n</text>") || t.contains(">q_learning</text>"))
        .filter_map(|t| t.split('"').next()?.parse().ok())
        .collect();
    assert!(
        legend_x.iter().any(|&x| x > 1200.0),
        "the legend sits right of the plot: {legend_x:?}"
    );
}

#[test]
fn seed_traces_are_drawn_on_request() {
    let tmp = TempDir::new("traces");
    let plain = run(&tmp, "plain", common::small_pricing("plain", 40));
    let traced = run(
        &tmp,
        "traced",
        common::small_pricing("traced", 40)
            .replace("curve_points = 10", "curve_points = 10\nseed_traces = true"),
    );
    // Four seeds: four more lines per policy (five policies).
    let lines = |dir: &Path| count(&dir.join("reward_curve.svg"), "<polyline");
    assert_eq!(lines(&traced), lines(&plain) + 4 * 5);
    let resolved = std::fs::read_to_string(traced.join("scenario.toml")).unwrap();
    assert!(resolved.contains("seed_traces = true"));
    let resolved = std::fs::read_to_string(plain.join("scenario.toml")).unwrap();
    assert!(
        !resolved.contains("seed_traces"),
        "off by default, and not written"
    );
}

#[test]
fn unvisited_states_are_masked_and_regret_names_its_reference() {
    // Q-learning for a few episodes visits few states: its table knows
    // which; the oracle's and DQN's tables have no such notion.
    let report = common::run_shrunk(
        "scenarios/pricing.toml",
        2,
        &["q_learning", "oracle"],
        |s| {
            s.run.episodes = 30;
            s.run.eval_episodes = 0;
        },
    );
    let q = report
        .tables
        .iter()
        .find(|t| t.name == "q_learning")
        .unwrap();
    let visited = q
        .table
        .visited
        .as_ref()
        .expect("a tabular learner says what it visited");
    let cells: Vec<bool> = visited.iter().flatten().copied().collect();
    assert!(
        cells.iter().any(|v| *v) && cells.iter().any(|v| !v),
        "{cells:?}"
    );
    // Period 1 with a full stock is where every season starts.
    let full = q.table.cols.len() - 1;
    let first = q.table.rows.iter().position(|&r| r == 1.0).unwrap();
    assert!(visited[first][full]);
    let oracle = report.tables.iter().find(|t| t.name == "oracle").unwrap();
    assert!(oracle.table.visited.is_none());

    // Ads' reference is each day's hindsight optimum, and the regret
    // chart says so; pricing's is the oracle's V*.
    let tmp = TempDir::new("wording");
    let ads = std::fs::read_to_string("scenarios/ads.toml")
        .unwrap()
        .replace("seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "seeds = [1, 2]")
        .replace("episodes = 2000", "episodes = 20");
    let dir = run(&tmp, "ads", ads);
    let regret = svg_text(&dir.join("regret_curve.svg"));
    assert!(regret.contains("hindsight optimum"), "{regret}");
    assert!(!regret.to_lowercase().contains("oracle"), "{regret}");
    let reward = svg_text(&dir.join("reward_curve.svg"));
    assert!(reward.contains("conversion value won per day"), "{reward}");
    let pricing = run(&tmp, "pricing", common::small_pricing("pricing", 40));
    let regret = svg_text(&pricing.join("regret_curve.svg"));
    assert!(
        regret.contains("V*") && regret.contains("season profit"),
        "{regret}"
    );
}
