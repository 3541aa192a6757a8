//! Off-policy evaluation against the simulator's truth (issue #13):
//! `shoplab ope-study` and `shoplab ope --target-policy`.

mod common;

use common::{TempDir, shoplab};
use shoplab_harness::{
    ope_study::{StudySpec, Target, run_study},
    prepared::Prepared,
    registry::Registry,
};
use shoplab_logs::ope::Estimator;
use std::path::Path;

fn prepared(file: &str) -> Prepared {
    shoplab_harness::load(Path::new(file), &Registry::default()).unwrap()
}

fn index(p: &Prepared, name: &str) -> usize {
    p.names.iter().position(|n| n == name).unwrap()
}

/// A study of `logs` logs of one episode (1,000 decisions) of item 3
/// shown half the time, evaluating "always item 3".
fn bandit_study(p: &Prepared, logs: usize) -> StudySpec {
    StudySpec {
        behaviour: index(p, "fixed_action_3_epsilon_0.5"),
        target: Target {
            index: index(p, "fixed_action_3"),
            checkpoint: None,
        },
        sizes: vec![1],
        logs,
        truth_episodes: 2000,
        seed: 5,
        bootstrap: 1000,
        estimators: vec![
            Estimator::Ipw {
                lambda: f64::INFINITY,
            },
            Estimator::Snipw,
            Estimator::Dr {
                lambda: f64::INFINITY,
            },
        ],
        sequential: vec![],
        gamma: 1.0,
        model: (None, 1.0, 1),
    }
}

/// Must-hold 2: on 200 independent logs of a contextual bandit (one
/// recommendation per shopper, Bernoulli clicks), IPW and DR are unbiased
/// and their 95% intervals cover the simulated truth at the nominal rate
/// within binomial error, and the variances are ordered as theory says.
///
/// Tolerances: the coverage's Wilson 95% interval over the 200 logs (about
/// ±0.03 here) must hold 0.95 — coverage within binomial error. (Over
/// seeds 5 to 8, 800 logs, IPW's coverage is 0.935 and DR's 0.934: the
/// percentile bootstrap of a mean undercovers a little at n = 1,000; from
/// 200 resamples instead of 1,000 its intervals are 3% narrower and the
/// coverage 0.92.) The bias must lie
/// within 3 of its standard errors (the estimates' spread over √200 and the
/// truth's own error, 2,000 episodes, in quadrature). With weights near 2
/// and a logistic reward model that captures the click rate of item 3 by
/// segment, SNIPW's and DR's spread over logs is below IPW's (theory: DR's
/// variance is IPW's minus the part the model explains; SNIPW's removes the
/// weights' own fluctuation). Seeds are fixed, so the outcome is too.
#[test]
fn ipw_and_dr_cover_the_truth_over_200_logs() {
    let p = prepared("scenarios/ope-recommendation.toml");
    let spec = bandit_study(&p, 200);
    let (truth, outcomes, rows) = run_study(&p, &spec).unwrap();
    assert_eq!(outcomes.len(), 600);
    assert!(truth.per_decision.se < 0.001, "{truth:?}");
    let row = |name: &str| rows.iter().find(|r| r.estimator == name).unwrap();
    for name in ["ipw", "dr"] {
        let r = row(name);
        assert_eq!(r.logs, 200);
        assert!(
            r.coverage_low <= 0.95 && 0.95 <= r.coverage_high,
            "{name}: coverage {} [{}, {}]",
            r.coverage,
            r.coverage_low,
            r.coverage_high
        );
        assert!(
            r.bias.abs() <= 3.0 * r.bias_se,
            "{name}: bias {} ± {}",
            r.bias,
            r.bias_se
        );
    }
    assert!(row("snipw").sd <= row("ipw").sd, "{rows:#?}");
    assert!(row("dr").sd <= row("ipw").sd, "{rows:#?}");
}

/// The study's outcomes do not depend on the number of threads: each log
/// descends from the study's seed and its index alone.
#[test]
fn an_ope_study_does_not_depend_on_the_thread_count() {
    let p = prepared("scenarios/ope-recommendation.toml");
    let spec = bandit_study(&p, 6);
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run_study(&p, &spec).unwrap())
    };
    let (one, two) = (in_pool(1), in_pool(2));
    assert_eq!(one.1, two.1);
    assert_eq!(one.2, two.2);
}

/// `shoplab ope --target-policy` on a pricing log: the table carries the
/// target's true value by simulation, which matches the DP's exact value
/// of price 3 within its interval; PDIS recovers it; the run folder holds
/// the CSV, the chart and a manifest with the inputs' hashes; a second
/// call writes a second folder.
#[test]
fn ope_of_a_scenario_policy_shows_its_true_value() {
    let tmp = TempDir::new("ope-target-policy");
    let scenario = common::pricing_explorer(tmp.path());
    let dp = prepared(scenario.to_str().unwrap())
        .family()
        .baseline()
        .unwrap()
        .value;
    let log = tmp.path().join("log.csv");
    let s = scenario.to_str().unwrap();
    common::assert_success(&shoplab(
        &[
            "log",
            s,
            "--policy",
            "fixed_price_3_epsilon_0.05",
            "--episodes",
            "3000",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let results = tmp.path().join("results");
    let args = [
        "ope",
        log.to_str().unwrap(),
        "--target-policy",
        "fixed_price_3",
        "--scenario",
        s,
        "--estimators",
        "pdis,wpdis",
        "--truth-episodes",
        "4000",
        "--bootstrap",
        "300",
        "--results",
        results.to_str().unwrap(),
    ];
    let out = shoplab(&args, &[]);
    common::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("true value"), "{stdout}");
    let runs = common::run_dirs(&results.join("ope"), "log");
    assert_eq!(runs.len(), 1);
    let csv = std::fs::read_to_string(runs[0].join("estimates.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "estimator,estimate,lower,upper,ess,truth,truth_se,error"
    );
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let v: Vec<f64> = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
        let (estimate, lower, upper, truth, se) = (v[0], v[1], v[2], v[4], v[5]);
        // The simulated truth holds the DP's exact value (4 s.e.), and the
        // estimator's interval holds the DP's value.
        assert!((truth - dp).abs() < 4.0 * se, "{line}: truth vs DP {dp}");
        assert!(lower <= dp && dp <= upper, "{line}: interval vs DP {dp}");
        assert!((estimate - v[6] - truth).abs() < 1e-9, "{line}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["command"], "ope");
    assert_eq!(manifest["target"]["policy"], "fixed_price_3");
    assert_eq!(manifest["log"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["csv_files"][0]["name"], "estimates.csv");
    assert!(runs[0].join("estimates.png").is_file());
    assert!(runs[0].join("estimates.svg").is_file());
    // Never over an earlier run: a second call makes a second folder.
    common::assert_success(&shoplab(&args, &[]));
    assert_eq!(common::run_dirs(&results.join("ope"), "log").len(), 2);
}

/// A target policy is refused, before any work, when the log's features
/// are not the scenario's observation, or when no policy has that name.
#[test]
fn a_target_policy_from_another_scenario_is_refused() {
    let tmp = TempDir::new("ope-target-refused");
    let log = tmp.path().join("rec.csv");
    common::assert_success(&shoplab(
        &[
            "log",
            "scenarios/ope-recommendation.toml",
            "--policy",
            "random",
            "--episodes",
            "1",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let results = tmp.path().join("results");
    let run = |scenario: &str, policy: &str| {
        let out = shoplab(
            &[
                "ope",
                log.to_str().unwrap(),
                "--target-policy",
                policy,
                "--scenario",
                scenario,
                "--results",
                results.to_str().unwrap(),
            ],
            &[],
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("scenarios/pricing.toml", "random");
    assert!(err.contains("rec.csv: its features"), "{err}");
    assert!(
        err.contains("not the observation of scenarios/pricing.toml"),
        "{err}"
    );
    let err = run("scenarios/ope-recommendation.toml", "nobody");
    assert!(err.contains("no policy named `nobody`"), "{err}");
    assert!(!results.join("ope").exists());
}

/// Must-hold 3, model-based: on a pricing log of 1,000 seasons of a shop
/// that posts price 3 and tries a random price 5% of the time, fitted Q
/// evaluation (its interval from 10 bootstrap refits) and the doubly
/// robust estimator for MDPs on its model hold the DP's exact value of
/// price 3 within their 95% intervals, and land within 3% of it (FQE's
/// refits spread by about 0.7, 0.8% of the value; DR's interval is about
/// ±0.85). Seeds are fixed, so the outcome is too.
#[test]
fn fqe_and_dr_for_mdps_recover_the_dp_value_of_a_fixed_price() {
    let tmp = TempDir::new("ope-fqe");
    let scenario = common::pricing_explorer(tmp.path());
    let s = scenario.to_str().unwrap();
    let dp = prepared(s).family().baseline().unwrap().value;
    let log = tmp.path().join("log.csv");
    common::assert_success(&shoplab(
        &[
            "log",
            s,
            "--policy",
            "fixed_price_3_epsilon_0.05",
            "--episodes",
            "1000",
            "--seed",
            "3",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let out = tmp.path().join("estimates.csv");
    let results = tmp.path().join("results");
    common::assert_success(&shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target-policy",
            "fixed_price_3",
            "--scenario",
            s,
            "--estimators",
            "fqe,dr-mdp",
            "--fqe-bootstrap",
            "10",
            "--truth-episodes",
            "0",
            "--bootstrap",
            "1000",
            "--out",
            out.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
        &[],
    ));
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut seen = 0;
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let v: Vec<f64> = cells[1..4].iter().map(|c| c.parse().unwrap()).collect();
        assert!(v[1] <= dp && dp <= v[2], "{line}: DP value {dp}");
        assert!((v[0] - dp).abs() < 0.03 * dp, "{line}: DP value {dp}");
        seen += 1;
    }
    assert_eq!(seen, 2, "{csv}");
}

/// FQE's fits and bootstrap refits run in parallel, each seeded apart:
/// the same bytes with one thread or two.
#[test]
fn fqe_does_not_depend_on_the_thread_count() {
    let tmp = TempDir::new("ope-fqe-threads");
    let log = tmp.path().join("log.csv");
    common::assert_success(&shoplab(
        &[
            "log",
            "scenarios/pricing.toml",
            "--policy",
            "random",
            "--episodes",
            "200",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let run = |threads: &str| {
        let out = tmp.path().join(format!("t{threads}.csv"));
        common::assert_success(&shoplab(
            &[
                "ope",
                log.to_str().unwrap(),
                "--target-policy",
                "fixed_price_3",
                "--scenario",
                "scenarios/pricing.toml",
                "--estimators",
                "fqe,dr-mdp",
                "--fqe-epochs",
                "1",
                "--fqe-bootstrap",
                "3",
                "--truth-episodes",
                "0",
                "--bootstrap",
                "100",
                "--out",
                out.to_str().unwrap(),
                "--results",
                tmp.path().join("results").to_str().unwrap(),
            ],
            &[("RAYON_NUM_THREADS", threads)],
        ));
        std::fs::read(out).unwrap()
    };
    assert_eq!(run("1"), run("2"));
}

/// Slates are logged one row per position, each with the policy's
/// probability of showing that item there: for "item 3 first, then the
/// next ones, half the time; a random first item otherwise", item `3 + j`
/// has 0.5 + 0.5/100 at position `j` and every other item 0.5/100.
/// Position-wise IPW, SNIPW and DR of "always item 3 first" on 20 such
/// episodes (60,000 rows) hold its true value per shown item within their
/// intervals (seeds fixed).
#[test]
fn slates_are_logged_position_by_position_and_evaluated() {
    let tmp = TempDir::new("ope-slates");
    let scenario = tmp.path().join("slates.toml");
    let text = std::fs::read_to_string("scenarios/ope-recommendation.toml").unwrap();
    std::fs::write(&scenario, text.replace("slate_size = 1", "slate_size = 3")).unwrap();
    let s = scenario.to_str().unwrap();
    let log = tmp.path().join("slates.csv");
    common::assert_success(&shoplab(
        &[
            "log",
            s,
            "--policy",
            "fixed_action_3_epsilon_0.5",
            "--episodes",
            "20",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let rows = shoplab_logs::read_csv(&log, &shoplab_logs::ReadOptions::default()).unwrap();
    assert_eq!(rows.len(), 60_000);
    for i in 0..rows.len() {
        let (a, j) = (rows.action[i] as usize, usize::from(rows.position[i]));
        let expected = if a == 3 + j { 0.505 } else { 0.005 };
        assert!((rows.propensity[i] - expected).abs() < 1e-12, "row {i}");
    }
    let out = tmp.path().join("estimates.csv");
    common::assert_success(&shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target-policy",
            "fixed_action_3",
            "--scenario",
            s,
            "--estimators",
            "ipw,snipw,dr",
            "--bootstrap",
            "1000",
            "--out",
            out.to_str().unwrap(),
            "--results",
            tmp.path().join("results").to_str().unwrap(),
        ],
        &[],
    ));
    let csv = std::fs::read_to_string(&out).unwrap();
    for line in csv.lines().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(|c| c.parse().unwrap())
            .collect();
        let (lower, upper, truth) = (v[1], v[2], v[4]);
        assert!(lower <= truth && truth <= upper, "{line}");
    }
    // A policy that cannot tell its slates' probabilities is refused.
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(
        &scenario,
        format!("{text}\n[[policies]]\nkind = \"ucb1\"\n"),
    )
    .unwrap();
    let r = shoplab(
        &[
            "log",
            s,
            "--policy",
            "ucb1",
            "--episodes",
            "1",
            "--out",
            tmp.path().join("u.csv").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("cannot report the position-wise probabilities of its slates"),
        "{err}"
    );
    assert!(!tmp.path().join("u.csv").exists());
}

/// `shoplab ope-study` writes its run folder (both tables, the chart, the
/// manifest) and refuses bad requests before any work.
#[test]
fn ope_study_writes_a_run_folder_and_refuses_bad_requests() {
    let tmp = TempDir::new("ope-study-cli");
    let results = tmp.path().join("results");
    let r = results.to_str().unwrap();
    let base = [
        "ope-study",
        "scenarios/ope-auction.toml",
        "--behaviour",
        "random",
        "--target",
        "fixed_action_5",
        "--results",
        r,
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        shoplab(&args, &[])
    };
    let out = with(&[
        "--sizes",
        "1",
        "--logs",
        "4",
        "--truth-episodes",
        "20",
        "--bootstrap",
        "50",
    ]);
    common::assert_success(&out);
    let runs = common::run_dirs(&results.join("ope-study"), "ope-auction");
    assert_eq!(runs.len(), 1);
    for file in [
        "outcomes.csv",
        "summary.csv",
        "study.png",
        "study.svg",
        "manifest.json",
    ] {
        assert!(runs[0].join(file).is_file(), "{file}");
    }
    let summary = std::fs::read_to_string(runs[0].join("summary.csv")).unwrap();
    assert_eq!(
        summary.lines().count(),
        8,
        "a header and the seven estimators"
    );
    for (extra, message) in [
        (
            &["--estimators", "fqe"][..],
            "fqe and dr-mdp are not in studies yet",
        ),
        (&["--sizes", "0"][..], "--sizes must be episode counts ≥ 1"),
        (&["--logs", "1"][..], "--logs must be between 2 and 100000"),
        (&["--estimators", "ips"][..], "unknown estimator `ips`"),
        (
            &["--sizes", "1000000", "--logs", "1000"][..],
            "more than 2e9",
        ),
    ] {
        let out = with(extra);
        assert!(!out.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{extra:?}: {err}");
    }
    assert_eq!(
        common::run_dirs(&results.join("ope-study"), "ope-auction").len(),
        1
    );
}

/// A trained checkpoint as the target: a small DQN trained on a pricing
/// scenario, loaded from its run folder and evaluated greedy. Its greedy
/// choice puts probability 1 on one price at every row; the table shows
/// its true value by simulation of the same greedy policy, which fitted Q
/// evaluation's interval holds on a log of uniformly random prices (every
/// price tried in every state: FQE needs no overlap of whole seasons,
/// which importance sampling over 8 periods of 5 prices would), and the
/// manifest names the checkpoint with its hash.
#[test]
fn a_trained_checkpoint_is_a_target() {
    let tmp = TempDir::new("ope-checkpoint");
    let name = "ckpt";
    let text = format!(
        "{}\n[[policies]]\nkind = \"dqn\"\nhidden = [8]\nlearning_starts = 20\n",
        common::small_pricing(name, 20)
    );
    let scenario = tmp.path().join(format!("{name}.toml"));
    std::fs::write(&scenario, &text).unwrap();
    let results = tmp.path().join("results");
    common::assert_success(&common::run_scenario(&scenario, &results, &[]));
    let run = common::run_dirs(&results, name).remove(0);
    let checkpoint = run.join("checkpoints/dqn-seed2.safetensors");
    assert!(checkpoint.is_file());
    let s = scenario.to_str().unwrap();
    let log = tmp.path().join("uniform.csv");
    common::assert_success(&shoplab(
        &[
            "log",
            s,
            "--policy",
            "random",
            "--episodes",
            "3000",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let out = tmp.path().join("estimates.csv");
    let ope_results = tmp.path().join("ope");
    common::assert_success(&shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target-policy",
            "dqn",
            "--scenario",
            s,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--estimators",
            "fqe",
            "--fqe-bootstrap",
            "5",
            "--truth-episodes",
            "3000",
            "--bootstrap",
            "1000",
            "--out",
            out.to_str().unwrap(),
            "--results",
            ope_results.to_str().unwrap(),
        ],
        &[],
    ));
    let csv = std::fs::read_to_string(&out).unwrap();
    for line in csv.lines().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(|c| c.parse().unwrap())
            .collect();
        let (lower, upper, truth, se) = (v[1], v[2], v[4], v[5]);
        // The interval widened by the truth's own error (2 s.e.).
        assert!(
            lower - 2.0 * se <= truth && truth <= upper + 2.0 * se,
            "{line}"
        );
    }
    let folder = common::run_dirs(&ope_results.join("ope"), "uniform").remove(0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["target"]["policy"],
        "dqn (greedy, from its checkpoint)"
    );
    assert_eq!(
        manifest["target"]["checkpoint"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}
