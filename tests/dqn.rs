//! Deep Q-learning in the shipped scenarios, end to end: it reaches the
//! pricing oracle, beats the myopic oracle and PID pacing, gives the same
//! bytes with any thread count, saves checkpoints that `shoplab eval`
//! loads, stops a diverging run alone, and refuses bad settings.
//!
//! Guards issue #5 (deep Q-learning on candle). Statistical checks compare
//! the harness's 95% bootstrap intervals across seeds.

mod common;

use common::{TempDir, assert_names, interval, refused, run_shrunk, shoplab};

/// The shared small pricing scenario with DQN (plus `dqn_settings`) and the
/// oracle, evaluated greedily every 100 of its 300 episodes.
fn small_dqn(name: &str, dqn_settings: &str) -> String {
    let base = common::small_pricing(name, 300);
    let world = &base[..base.find("[[policies]]").unwrap()];
    let world = common::replaced(
        world,
        "curve_points = 10",
        "curve_points = 10\neval_episodes = 5\neval_every = 100",
    );
    format!(
        r#"{world}
[[policies]]
kind = "dqn"
hidden = [32, 32]
learning_starts = 200
batch_size = 32
target_update_interval = 200
reward_scale = 0.1
{dqn_settings}

[[policies]]
kind = "oracle"
"#
    )
}

/// Issue #5, must-hold 1: on the shipped pricing scenario, DQN's greedy
/// evaluation after training (100 held-out episodes per seed, 10 seeds)
/// averages at least 95% of the DP oracle's expected return V*.
#[test]
fn dqn_reaches_95_percent_of_the_pricing_oracle() {
    let report = run_shrunk("scenarios/pricing.toml", 10, &["dqn"], |s| {
        s.run.eval_every = 0;
        s.run.eval_episodes = 100;
    });
    let summary = report.summaries.iter().find(|s| s.name == "dqn").unwrap();
    let pct = summary.eval_pct_of_oracle.unwrap();
    assert_eq!(pct.n, 10);
    assert!(pct.mean >= 95.0, "DQN reached {pct:?} % of V*");
}

/// Issue #5, must-hold 2 (recommendation): in the clickbait scenario DQN's
/// clicks per session clear the myopic oracle's, intervals apart (4 seeds,
/// 100 concurrent sessions instead of 200).
#[test]
fn dqn_beats_the_myopic_oracle_when_clickbait_shortens_sessions() {
    let report = run_shrunk(
        "scenarios/recommendation-longterm.toml",
        4,
        &["dqn", "myopic_oracle"],
        |s| {
            s.family
                .config_mut::<shoplab_sim::recommendation::RecommendationConfig>()
                .unwrap()
                .concurrent_sessions = 100;
            s.run.eval_every = 0;
        },
    );
    let dqn = interval(&report, "dqn");
    let oracle = interval(&report, "myopic_oracle");
    assert!(dqn.0 > oracle.1, "DQN {dqn:?} vs myopic oracle {oracle:?}");
}

/// Issue #5, must-hold 2 (ads): DQN pacing clears the PID controller, intervals
/// apart, on the shipped scenario with 3 seeds.
#[test]
fn dqn_pacing_beats_pid() {
    let report = run_shrunk(
        "scenarios/ads.toml",
        3,
        &["pid_thompson", "dqn_pacing_thompson"],
        |s| s.run.eval_every = 0,
    );
    let dqn = interval(&report, "dqn_pacing_thompson");
    let pid = interval(&report, "pid_thompson");
    assert!(dqn.0 > pid.1, "DQN pacing {dqn:?} vs PID {pid:?}");
}

/// Every CSV and every checkpoint is byte-identical with 1, 2 or 3 threads,
/// `reproduce` agrees, and `shoplab eval` loads the checkpoints.
#[test]
fn dqn_runs_are_identical_with_any_thread_count_and_checkpoints_load() {
    let tmp = TempDir::new("dqn-repro");
    let file = tmp.path().join("dqn-repro.toml");
    std::fs::write(
        &file,
        small_dqn("dqn-repro", "double = true\ndueling = true"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let dirs = common::run_with_threads(&file, &results, "dqn-repro", &["1", "2", "3"]);
    let mut names = vec![
        "episodes.csv".to_string(),
        "summary.csv".into(),
        "evaluations.csv".into(),
        "learning.csv".into(),
    ];
    names.extend((1..=4).map(|s| format!("checkpoints/dqn-seed{s}.safetensors")));
    for name in &names {
        let first = std::fs::read(dirs[0].join(name)).unwrap();
        assert!(!first.is_empty(), "{name} is empty");
        for dir in &dirs[1..] {
            assert!(
                first == std::fs::read(dir.join(name)).unwrap(),
                "{name} differs"
            );
        }
    }
    for chart in ["evaluation_curve.png", "convergence.png"] {
        assert!(dirs[0].join(chart).is_file(), "{chart} missing");
    }
    let learning = std::fs::read_to_string(dirs[0].join("learning.csv")).unwrap();
    assert!(learning.lines().count() > 100 && !learning.contains("NaN"));

    let dir = dirs[0].to_str().unwrap();
    let out = shoplab(&["reproduce", dir, "--quiet"], &[]);
    common::assert_success(&out);
    let out = shoplab(&["eval", dir, "--episodes", "20"], &[]);
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dqn: ") && text.contains("over 4 of 4 seeds"),
        "{text}"
    );

    let out = shoplab(&["eval", dir, "--policy", "nope"], &[]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_names(&error, &["no policy `nope`", "dqn, oracle"]);
    let checkpoint = dirs[0].join("checkpoints/dqn-seed2.safetensors");
    std::fs::write(&checkpoint, b"not a safetensors file").unwrap();
    let out = shoplab(&["eval", dir], &[]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_names(&error, &["dqn-seed2.safetensors"]);
}

/// Settings that once made DQN diverge (a learning rate of 1e30, a norm
/// and scale to match) are refused before any run, naming the key and its
/// range: within the ranges, Adam's bounded steps and clipped gradients
/// keep losses finite. A run that diverges anyway (rewards beyond f32, a
/// user's policy) stops alone with its reason: `tests/failing_runs.rs`
/// and `divergence_is_reported` in the policy crate.
#[test]
fn settings_that_diverge_are_refused() {
    for (setting, rule) in [
        ("learning_rate = 1e30", "must be in (0, 1]"),
        ("max_grad_norm = 1e30", "must be in (0, 1000000]"),
        ("huber_delta = 1e30", "must be in (0, 1000000]"),
        (
            "temperature = { start = 1e300, end = 1.0, decay_fraction = 0.5 }",
            "temperature.start",
        ),
    ] {
        let m = refused(&small_dqn("bad", setting), &[]);
        assert_names(&m, &["policies[0].", rule]);
    }
    let text = small_dqn("bad", "").replace("reward_scale = 0.1", "reward_scale = 1e30");
    let m = refused(&text, &[]);
    assert_names(&m, &["policies[0].reward_scale", "must be in (0, 1000000]"]);
}

#[test]
fn bad_dqn_settings_are_refused() {
    let m = refused(
        &small_dqn("bad", "").replace("hidden = [32, 32]", "hidden = []"),
        &[],
    );
    assert_names(&m, &["policies[0].hidden", "at least one"]);
    let m = refused(&small_dqn("bad", "tau = 2.0"), &[]);
    assert_names(&m, &["policies[0].tau", "(0, 1]"]);
    let m = refused(&small_dqn("bad", "exploration = \"greedy\""), &[]);
    assert_names(
        &m,
        &["policies[0]", "unknown variant `greedy`", "boltzmann"],
    );
    let m = refused(
        &small_dqn("bad", "").replace("eval_episodes = 5", "eval_episodes = -5"),
        &[],
    );
    assert_names(&m, &["run.eval_episodes", "≥ 0"]);
    let ads = std::fs::read_to_string("scenarios/ads.toml")
        .unwrap()
        .replace("target_update_interval = 100", "target_update_interval = 0");
    let m = refused(&ads, &[]);
    assert_names(
        &m,
        &[
            "policies[15].dqn.target_update_interval",
            "between 1 and 100000000",
        ],
    );
}
