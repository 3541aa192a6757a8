//! A family and a policy registered from outside shoplab's crates run
//! through the harness like the shipped ones: a complete run folder,
//! reproducible bytes, the env checker, and the learner beating the
//! baseline it extends.
//!
//! Guards issue #9 (registries), must-hold 2.

use shoplab_example_coupon::{CouponConfig, registry, run};
use shoplab_harness::registry::Registry;
use std::path::{Path, PathBuf};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("coupon.toml")
}

#[test]
fn the_run_folder_is_complete_and_reproducible() {
    let results = tempfile::tempdir().unwrap();
    let dir = run(&scenario(), results.path()).unwrap();
    for file in [
        "scenario.toml",
        "episodes.csv",
        "runs.csv",
        "summary.csv",
        "curves.csv",
        "reward_curve.png",
        "regret_curve.svg",
        "final_comparison.png",
        "manifest.json",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing from {}",
            dir.display()
        );
    }
    // The resolved scenario, read back with the extended registry, reruns
    // to the same bytes.
    let prepared = shoplab_harness::load_run(&dir, &registry()).unwrap();
    let checks = shoplab_harness::reproduce(&prepared, &dir, &|_| {}).unwrap();
    assert_eq!(checks.len(), 4, "{checks:?}");
    assert!(checks.iter().all(|c| c.identical), "{checks:?}");
}

#[test]
fn per_segment_learning_beats_the_bandit_it_extends() {
    let prepared = shoplab_harness::load(&scenario(), &registry()).unwrap();
    let results = shoplab_harness::runner::run_all(&prepared, &|_| {});
    assert!(results.iter().all(|r| r.failure.is_none()));
    let report = shoplab_harness::report::build(&prepared, &results);
    let find = |name: &str| {
        report
            .summaries
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.final_return)
            .unwrap()
    };
    let (plain, segmented) = (find("epsilon_greedy"), find("segment_epsilon_greedy"));
    assert!(
        segmented.low > plain.high,
        "segment ε-greedy {segmented:?} vs ε-greedy {plain:?}"
    );
    // The exact optimum of a day bounds every policy's mean from above
    // (within the interval's width).
    let optimum = prepared.optimal_value().unwrap();
    assert!(segmented.mean < optimum && segmented.mean > 0.9 * optimum);
}

/// The day's optimum: loyal shoppers get no discount (σ(0.5) · 4 = 2.4900),
/// new shoppers 20% off (σ(−0.1) · 2 = 0.9500), 50 shoppers a day.
#[test]
fn the_reference_is_the_exact_optimum() {
    let prepared = shoplab_harness::load(&scenario(), &registry()).unwrap();
    let config: &CouponConfig = prepared.scenario.family.config().unwrap();
    let sigma = |x: f64| 1.0 / (1.0 + (-x).exp());
    let by_hand = 50.0 * (0.6 * sigma(0.5) * 4.0 + 0.4 * sigma(-0.1) * 2.0);
    assert!((config.optimal_value() - by_hand).abs() < 1e-12);
    assert_eq!(prepared.optimal_value(), Some(config.optimal_value()));
}

#[test]
fn the_coupon_env_keeps_the_env_checkers_rules() {
    let prepared = shoplab_harness::load(&scenario(), &registry()).unwrap();
    let summary = shoplab_harness::check_env(&prepared, 10).unwrap();
    assert_eq!(summary.steps, 10 * 50);
}

#[test]
fn the_default_registry_does_not_know_the_coupon_family() {
    let error = shoplab_harness::load(&scenario(), &Registry::default())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("unknown key `coupon`"), "{error}");
    assert!(
        error.contains(
            "`pricing`, `recommendation`, `ads`, `interest_evolution` or `auction_market`"
        ),
        "{error}"
    );
    assert!(
        registry().family_names().contains(&"coupon")
            && registry()
                .policy_kinds()
                .contains(&"segment_epsilon_greedy")
    );
}

#[test]
fn bad_coupon_settings_name_the_key() {
    let text = std::fs::read_to_string(scenario())
        .unwrap()
        .replace("discounts = [0.0, 0.05", "discounts = [1.5, 0.05");
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let error = shoplab_harness::load(&file, &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("coupon.discounts[0]"), "{error}");
    assert!(error.contains("[0, 1)"), "{error}");
}
