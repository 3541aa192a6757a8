//! The registries: every registered family passes the env checker through
//! its shipped scenarios (all of `scenarios/` and `scenarios/bench/`), unknown names are refused with the registered ones
//! listed, and the harness reaches families only through the registry.
//!
//! Guards issue #9 (registries), must-holds 3 and 4.

mod common;

use common::{assert_names, refused, shoplab, small_pricing};
use shoplab_harness::registry::Registry;
use std::path::Path;

#[test]
fn every_registered_family_passes_the_env_checker() {
    let registry = Registry::default();
    let mut checked = Vec::new();
    let mut files: Vec<_> = ["scenarios", "scenarios/bench"]
        .iter()
        .flat_map(|folder| std::fs::read_dir(folder).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // The benchmarks' batched twins hold a thousand sessions of the
        // same families as their one-session twins, checked here.
        .filter(|p| !p.to_string_lossy().ends_with("-batched.toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let prepared = shoplab_harness::load(file, &registry).unwrap();
        let summary = shoplab_harness::check_env(&prepared, 3)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(summary.episodes, 3);
        checked.push(prepared.family_name());
    }
    for family in registry.family_names() {
        assert!(
            checked.contains(&family),
            "no shipped scenario checks {family}"
        );
    }
}

#[test]
fn check_command_reports_each_file() {
    let out = shoplab(
        &[
            "check",
            "scenarios/pricing.toml",
            "scenarios/ads.toml",
            "--episodes",
            "2",
        ],
        &[],
    );
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_names(
        &text,
        &[
            "ok  scenarios/pricing.toml",
            "ok  scenarios/ads.toml",
            "2 episodes",
        ],
    );
}

#[test]
fn unknown_names_list_the_registered_ones() {
    let base = small_pricing("bad", 10);
    let m = refused(&base.replace("[pricing]", "[pricng]"), &[]);
    assert_names(
        &m,
        &[
            "key `pricng` (line",
            "unknown key",
            "`pricing`, `recommendation`, `ads`, `interest_evolution` or `auction_market`",
        ],
    );
    let m = refused(
        &base.replacen("kind = \"random\"", "kind = \"genetic\"", 1),
        &[],
    );
    assert_names(
        &m,
        &[
            "policies[1].kind",
            "unknown variant `genetic`",
            "`random`",
            "`dqn`",
            "`linucb`",
        ],
    );
    let m = refused(&format!("{base}\n[ads]\nbudget = 1.0\n"), &[]);
    assert_names(&m, &["one family table", "[pricing] and [ads]"]);
}

#[test]
fn policy_errors_name_the_key_and_its_line() {
    let base = small_pricing("bad", 10);
    let text = base.replacen(
        "kind = \"q_learning\"",
        "kind = \"q_learning\"\nepsilon = { start = \"high\" }",
        1,
    );
    let line = text.lines().position(|l| l.contains("\"high\"")).unwrap() + 1;
    let m = refused(&text, &[]);
    assert_names(
        &m,
        &[
            &format!("policies[3].epsilon.start` (line {line})"),
            "invalid type",
        ],
    );
}

#[test]
fn a_policy_that_does_not_apply_says_what_it_needs() {
    let base = small_pricing("bad", 10);
    let m = refused(
        &base.replacen("kind = \"random\"", "kind = \"pid\"", 1),
        &[],
    );
    assert_names(
        &m,
        &[
            "policies[1]",
            "kind `pid` does not apply to the pricing family",
            "budgeted auctions",
        ],
    );
    let m = refused(
        &base.replacen("kind = \"random\"", "kind = \"thompson\"", 1),
        &[],
    );
    assert_names(
        &m,
        &[
            "kind `thompson` does not apply",
            "click or purchase rewards",
        ],
    );
}

/// Must-hold 3: outside the registry's default list, harness code names no
/// family and looks up no family's metric by name.
#[test]
fn the_harness_names_no_family_and_no_metric() {
    let metrics: Vec<&str> = shoplab_sim::pricing::METRICS
        .iter()
        .chain(&shoplab_sim::recommendation::METRICS)
        .chain(&shoplab_sim::ads::METRICS)
        .chain(&shoplab_sim::interest_evolution::METRICS)
        .chain(&shoplab_sim::auction_market::METRICS)
        .copied()
        .collect();
    let mut files = Vec::new();
    let mut folders = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/harness/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 8, "{files:?}");
    for path in files {
        if path.file_name().unwrap() == "registry.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        for family in [
            "pricing",
            "recommendation",
            "ads",
            "interest_evolution",
            "auction_market",
        ] {
            assert!(
                !words.contains(&family),
                "{} names the family `{family}`",
                path.display()
            );
        }
        for metric in &metrics {
            assert!(
                !text.contains(&format!("\"{metric}\"")),
                "{} looks up the metric `{metric}` by name",
                path.display()
            );
        }
    }
}

/// Rules checked after parsing (a family's validation, a policy's build)
/// still point at the line of the key that broke them.
#[test]
fn rule_refusals_name_the_line_of_their_key() {
    let base = small_pricing("bad", 10);
    let line =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let text = base.replacen("inventory = 12", "inventory = 0", 1);
    let m = refused(&text, &[]);
    let at = line(&text, "inventory = 0");
    assert_names(
        &m,
        &[
            &format!("key `pricing.inventory` (line {at})"),
            "between 1 and",
        ],
    );
    let text = base.replacen("share = 0.6", "share = 1.6", 1);
    let m = refused(&text, &[]);
    let at = line(&text, "share = 1.6");
    assert_names(&m, &[&format!("pricing.segments[0].share` (line {at})")]);
    let text = base.replacen("price = 2.0", "price = 2.2", 1);
    let m = refused(&text, &[]);
    let at = line(&text, "price = 2.2");
    assert_names(
        &m,
        &[&format!("policies[0].price` (line {at})"), "price grid"],
    );
    let text = base.replacen("kind = \"random\"", "kind = \"pid\"", 1);
    let m = refused(&text, &[]);
    let at = line(&text, "kind = \"pid\"");
    assert_names(
        &m,
        &[&format!("policies[1]` (line {at})"), "does not apply"],
    );
}

/// Every policy entry may take its own `name`: two settings of one kind
/// side by side, named as the user wants in every report; the resolved
/// scenario keeps the names; a name used twice, or not a plain word, is
/// refused with its key and line.
#[test]
fn policies_take_their_own_names() {
    let base = common::small_pricing("named", 5);
    let text = common::replaced(
        &base,
        "[[policies]]\nkind = \"q_learning\"",
        "[[policies]]\nkind = \"q_learning\"\nname = \"ql_fast\"\nalpha = 1.0\n\n\
         [[policies]]\nkind = \"q_learning\"\nname = \"ql_slow\"\nalpha = 0.1",
    );
    let registry = Registry::default();
    let scenario =
        shoplab_harness::scenario::parse(&text, Path::new("named.toml"), &registry).unwrap();
    let names = scenario.policy_names();
    assert!(names.contains(&"ql_fast".to_string()) && names.contains(&"ql_slow".to_string()));
    let resolved = scenario.to_toml();
    assert!(resolved.contains("name = \"ql_fast\""), "{resolved}");
    let again =
        shoplab_harness::scenario::parse(&resolved, Path::new("named.toml"), &registry).unwrap();
    assert_eq!(again.policy_names(), names);
    let twice = text.replace("name = \"ql_slow\"", "name = \"ql_fast\"");
    let m = common::refused(&twice, &[]);
    common::assert_names(
        &m,
        &[
            "policies[4].name",
            "line",
            "already the name of policies[3]",
        ],
    );
    let clash = text.replace("name = \"ql_slow\"", "name = \"random\"");
    let m = common::refused(&clash, &[]);
    common::assert_names(&m, &["policies[4].name", "already the name of policies[1]"]);
    let m = common::refused(&text.replace("name = \"ql_slow\"", "name = 3"), &[]);
    common::assert_names(&m, &["policies[4].name", "must be a string"]);
    let m = common::refused(&text.replace("name = \"ql_slow\"", "name = \"a b\""), &[]);
    common::assert_names(&m, &["policies[4].name", "letters, digits"]);
}
