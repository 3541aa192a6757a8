//! Bad scenario input is refused before any work: a non-zero exit, one clear
//! message naming the file, the key and the rule, and nothing under `results/`.
//!
//! Guards issue #2 (foundation and dynamic pricing, end to end).

mod common;

use common::{assert_names, refused, shoplab, small_pricing};

fn with(from: &str, to: &str) -> String {
    common::replaced(&small_pricing("bad", 10), from, to)
}

#[test]
fn unknown_key() {
    let m = refused(&with("cost = 0.4", "cost = 0.4\ncolour = \"red\""), &[]);
    assert_names(&m, &["pricing", "unknown field `colour`"]);
}

#[test]
fn wrong_type() {
    let m = refused(&with("horizon = 8", "horizon = \"eight\""), &[]);
    assert_names(&m, &["pricing.horizon", "invalid type"]);
}

#[test]
fn negative_inventory() {
    let m = refused(&with("inventory = 12", "inventory = -5"), &[]);
    assert_names(
        &m,
        &["pricing.inventory", "must be a whole number ≥ 0 (found -5)"],
    );
}

#[test]
fn zero_inventory() {
    let m = refused(&with("inventory = 12", "inventory = 0"), &[]);
    assert_names(&m, &["pricing.inventory", "between 1 and"]);
}

#[test]
fn empty_price_grid() {
    let m = refused(
        &with("price_grid = [1.0, 1.5, 2.0, 2.5, 3.0]", "price_grid = []"),
        &[],
    );
    assert_names(&m, &["pricing.price_grid", "at least one price"]);
}

#[test]
fn unsorted_price_grid() {
    let m = refused(
        &with(
            "price_grid = [1.0, 1.5, 2.0, 2.5, 3.0]",
            "price_grid = [1.0, 2.5, 2.0]",
        ),
        &[],
    );
    assert_names(&m, &["pricing.price_grid[2]", "strictly increasing"]);
}

#[test]
fn probability_out_of_range() {
    let m = refused(&with("share = 0.6", "share = 1.6"), &[]);
    assert_names(&m, &["pricing.segments[0].share", "probability in [0, 1]"]);
    let m = refused(
        &with(
            "kind = \"random\"",
            "kind = \"epsilon_greedy\"\nepsilon = 1.5",
        ),
        &[],
    );
    assert_names(&m, &["policies[1].epsilon", "probability in [0, 1]"]);
}

#[test]
fn shares_must_sum_to_one() {
    let m = refused(&with("share = 0.6", "share = 0.5"), &[]);
    assert_names(&m, &["pricing.segments", "sum to 1"]);
}

#[test]
fn empty_seed_list() {
    let m = refused(&with("seeds = [1, 2, 3, 4]", "seeds = []"), &[]);
    assert_names(&m, &["run.seeds", "at least one seed"]);
}

#[test]
fn sizes_that_would_exhaust_memory() {
    let m = refused(&with("inventory = 12", "inventory = 5000000000"), &[]);
    assert_names(&m, &["pricing.inventory"]);
    let m = refused(
        &with("inventory = 12", "inventory = 900000\n").replace("horizon = 8", "horizon = 100"),
        &[],
    );
    assert_names(&m, &["pricing.inventory", "exceed the limit"]);
    let m = refused(&with("episodes = 10", "episodes = 9000000"), &[]);
    assert_names(&m, &["run.episodes", "exceed the limit"]);
    let m = refused(
        &with(
            "arrival_rate = { kind = \"ramp\", start = 2.0, end = 4.0 }",
            "arrival_rate = { kind = \"constant\", rate = 1e12 }",
        ),
        &[],
    );
    assert_names(&m, &["pricing.arrival_rate.rate", "at most"]);
}

#[test]
fn unknown_policy_and_bad_policy_settings() {
    let m = refused(&with("kind = \"random\"", "kind = \"genetic\""), &[]);
    assert_names(&m, &["policies[1]", "unknown variant `genetic`"]);
    let m = refused(&with("price = 2.0", "price = 2.2"), &[]);
    assert_names(&m, &["policies[0].price", "price grid"]);
    let m = refused(
        &with(
            "kind = \"q_learning\"",
            "kind = \"q_learning\"\nbins = { colour = 3 }",
        ),
        &[],
    );
    assert_names(&m, &["policies[3].bins", "unknown feature `colour`"]);
}

#[test]
fn malformed_toml_names_the_line() {
    let m = refused(&with("cost = 0.4", "cost = = 0.4"), &[]);
    assert_names(&m, &["line"]);
}

#[test]
fn missing_file() {
    let out = shoplab(&["run", "scenarios/no-such-file.toml", "--quiet"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file.toml"));
}

/// Shipped scenarios validate: pricing here (every file goes through the
/// env checker in `tests/registry.rs`, which loads it the same way).
#[test]
fn shipped_scenarios_are_valid() {
    let out = shoplab(&["validate", "scenarios/pricing.toml"], &[]);
    common::assert_success(&out);
}

/// An unwritable results location is refused before any run, naming the
/// path (here a regular file stands where the results folder should be),
/// and nothing is computed: the refusal comes at once.
#[test]
fn unwritable_results_are_refused_before_any_work() {
    let tmp = common::TempDir::new("unwritable");
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, common::small_pricing("small", 50_000)).unwrap();
    let blocker = tmp.path().join("results");
    std::fs::write(&blocker, "not a folder").unwrap();
    let started = std::time::Instant::now();
    let out = common::run_scenario(&file, &blocker, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("results"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("final performance"),
        "it ran before refusing"
    );
    // 50,000 episodes × 4 seeds would take far longer than the refusal.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

/// `list` on a folder that does not exist is an error, not an empty list.
#[test]
fn list_of_a_missing_folder_is_an_error() {
    let out = common::shoplab(&["list", "/nonexistent/scenarios"], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/scenarios: no such folder"),
        "{stderr}"
    );
}

/// A closed stdout (`shoplab list | head -1`) ends the program quietly:
/// exit 0 and no panic message.
#[test]
fn closed_stdout_ends_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shoplab"))
        .args(["list", "scenarios"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the program writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Issue #11, class 7: a value of the wrong shape is refused with what is
/// accepted there — the keys of a table, the values of a choice — never a
/// Rust type's name; long numbers are shortened; a kind that does not apply
/// to the family says so, even when its settings are incomplete too.
#[test]
fn messages_say_what_is_accepted() {
    let shipped = |name: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}")),
        )
        .unwrap()
    };
    let m = refused(
        &with(
            "kind = \"q_learning\"",
            "kind = \"q_learning\"\nepsilon = 0.5",
        ),
        &[],
    );
    assert_names(
        &m,
        &[
            "policies[3].epsilon",
            "expected a table with the keys `start`, `end`, `decay_fraction` (found float)",
        ],
    );
    assert!(!m.contains("struct"), "{m}");
    let recommendation = shipped("recommendation.toml");
    let m = refused(
        &common::replaced(&recommendation, "reward = \"click\"", "reward = 3"),
        &[],
    );
    assert_names(
        &m,
        &[
            "recommendation.reward",
            "expected one of `signed_click`, `click`, `revenue` (found integer)",
        ],
    );
    let m = refused(
        &common::replaced(&recommendation, "kind = \"random\"", "kind = \"fixed\""),
        &[],
    );
    assert_names(
        &m,
        &[
            "policies[0]",
            "kind `fixed` does not apply to the recommendation family",
            "pricing",
        ],
    );
    let m = refused(
        &common::replaced(
            &recommendation,
            "[recommendation.catalog]",
            "[recommendation.catalog]\ncolour = 1",
        ),
        &[],
    );
    assert_names(
        &m,
        &[
            "recommendation.catalog.colour",
            "unknown field `colour`, expected one of `seed`, `path`, `topic_spread`",
        ],
    );
    let m = refused(&with("seeds = [1, 2, 3, 4]", "seeds = [1e300]"), &[]);
    assert_names(&m, &["run.seeds[0]", "`1e300`, expected u64"]);
}

/// Issue #11, class 3: a statistic that is no number — here every
/// per-session ratio of a scenario whose sessions never end within an
/// episode (0/0) — is written as an empty cell with its reason in `notes`,
/// never as NaN or inf, and the run still succeeds.
#[test]
fn degenerate_statistics_are_empty_with_a_reason() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/recommendation.toml"),
    )
    .unwrap();
    let world = &text[..text.find("[[policies]]").unwrap()];
    let world = world
        .replace("seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "seeds = [1, 2]")
        .replace("episodes = 40", "episodes = 2")
        .replace("ticks = 100", "ticks = 2")
        .replace("leave_probability = 0.02", "leave_probability = 0.0")
        .replace("patience = 6.0", "patience = 1000.0");
    let text = format!("{world}\n[[policies]]\nkind = \"random\"\n");
    let tmp = common::TempDir::new("degenerate");
    let file = tmp.path().join("degenerate.toml");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    common::assert_success(&common::run_scenario(&file, &results, &[]));
    let dir = common::run_dirs(&results, "recommendation").remove(0);
    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(summary.as_bytes());
    let header = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    for (column, cell) in header.iter().zip(row.iter()) {
        assert!(
            !cell.parse::<f64>().is_ok_and(|v| !v.is_finite()),
            "{column} = {cell}"
        );
    }
    let cell = |name: &str| &row[header.iter().position(|c| c == name).unwrap()];
    assert_eq!(cell("final_purchases_per_session"), "");
    assert_names(
        cell("notes"),
        &["final_purchases_per_session empty: no sessions_ended in the final episodes"],
    );
}
