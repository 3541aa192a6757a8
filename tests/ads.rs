//! The ad bidding scenario end to end (first part): it runs, reports against
//! the hindsight optimum, never overspends, and refuses bad input.
//!
//! Guards issue #4 (ad placement and bidding).

mod common;

use common::{
    TempDir, assert_names, final_ratio, interval, refused, run_dirs, run_scenario, run_shrunk,
};

/// The shipped ads scenario, shrunk to run in a moment.
fn small_text() -> String {
    let mut text = std::fs::read_to_string("scenarios/ads.toml").unwrap();
    text = common::replaced(
        &text,
        "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
        "seeds = [1, 2, 3]",
    );
    text = common::replaced(&text, "episodes = 2000", "episodes = 20");
    text = common::replaced(&text, "name = \"ads\"", "name = \"small-ads\"");
    text
}

fn with(from: &str, to: &str) -> String {
    common::replaced(&small_text(), from, to)
}

#[test]
fn runs_within_budget_and_below_the_hindsight_optimum() {
    let tmp = TempDir::new("ads");
    let file = tmp.path().join("small-ads.toml");
    std::fs::write(&file, small_text()).unwrap();
    let results = tmp.path().join("results");
    let out = run_scenario(&file, &results, &[]);
    common::assert_success(&out);
    let dir = &run_dirs(&results, "small-ads")[0];
    let mut reader = csv::Reader::from_path(dir.join("episodes.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (spend, left, best_fixed, score, regret) = (
        column("spend"),
        column("budget_left_at_end"),
        column("best_fixed_multiplier_return"),
        column("expected_reward"),
        column("regret"),
    );
    let mut rows = 0;
    for record in reader.records() {
        let r = record.unwrap();
        let number = |i: usize| r[i].parse::<f64>().unwrap();
        assert!(number(spend) <= 200.0 + 1e-9, "overspent: {r:?}");
        assert!((number(spend) + number(left) - 200.0).abs() < 1e-6);
        // The regret is against the policy's score: the expected reward of
        // the impressions it won, which the hindsight LP bounds day by day.
        let hindsight = number(score) + number(regret);
        assert!(
            number(best_fixed) <= hindsight + 1e-9,
            "best fixed λ above the LP: {r:?}"
        );
        assert!(
            number(regret) >= -1e-9,
            "a day above the hindsight LP: {r:?}"
        );
        rows += 1;
    }
    assert_eq!(rows, 15 * 3 * 20);
}

/// Thompson sampling over creatives finds the best one: by the last 10% of
/// 100 days its share of impressions with the segment's best creative (the
/// same creative for both segments here) is at least 90%.
#[test]
fn thompson_finds_the_best_creative() {
    let report = run_shrunk("scenarios/ads.toml", 3, &["greedy_thompson"], |s| {
        s.run.episodes = 100;
    });
    let share = final_ratio(&report, "greedy_thompson", "best_creative_share");
    assert!(share >= 0.9, "best creative share {share}");
}

#[test]
fn bad_ads_input_is_refused() {
    let m = refused(&with("budget = 200.0", "budget = -5.0"), &[]);
    assert_names(&m, &["ads.budget", "> 0"]);
    let m = refused(
        &with(
            "bid_multipliers = [0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0]",
            "bid_multipliers = []",
        ),
        &[],
    );
    assert_names(&m, &["ads.bid_multipliers", "at least one"]);
    let m = refused(&with("reserve_price = 0.05", "reserve_price = 50.0"), &[]);
    assert_names(&m, &["ads.reserve_price", "above every possible bid"]);
    let m = refused(
        &with("auction = \"second_price\"", "auction = \"dutch\""),
        &[],
    );
    assert_names(&m, &["ads.auction", "unknown variant `dutch`"]);
    let m = refused(&with("multiplier = 2.0", "multiplier = 2.2"), &[]);
    assert_names(&m, &["policies[9].multiplier", "bid multipliers"]);
    let m = refused(&with("creative = \"ucb1\"", "creative = \"thompsn\""), &[]);
    assert_names(
        &m,
        &[
            "policies[1].creative` (line",
            "unknown creative rule `thompsn`",
            "\"ucb1\" or \"thompson\"",
        ],
    );
    let m = refused(&with("creative = \"ucb1\"", "creative = -1"), &[]);
    assert_names(&m, &["policies[1].creative", "a creative index"]);
    let m = refused(&with("kind = \"random\"", "kind = \"oracle\""), &[]);
    assert_names(
        &m,
        &[
            "policies[0]",
            "does not apply to the ads family",
            "exact model",
        ],
    );
}

/// Q-learning pacing beats greedy, even pacing and the PID controller with
/// non-overlapping 95% intervals, on the shipped scenario with 3 seeds.
#[test]
fn q_pacing_beats_greedy_even_pacing_and_pid() {
    let keep = [
        "greedy_thompson",
        "even_pacing_thompson",
        "pid_thompson",
        "q_pacing_thompson",
    ];
    let report = run_shrunk("scenarios/ads.toml", 3, &keep, |_| {});
    let q = interval(&report, "q_pacing_thompson");
    for baseline in ["greedy_thompson", "even_pacing_thompson", "pid_thompson"] {
        let b = interval(&report, baseline);
        assert!(
            q.0 > b.1,
            "Q-learning pacing {q:?} does not clear {baseline} {b:?}"
        );
    }
}
