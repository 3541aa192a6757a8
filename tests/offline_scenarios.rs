//! Scenario files with an `[offline]` table (issue #14): offline learners
//! train on a log or a dataset of the suite, run folders report their
//! online value against gradient steps and their off-policy estimates, the
//! resolved scenario reproduces them, and bad settings are refused before
//! any work with the file, key, line and rule.

mod common;

use common::{TempDir, assert_names, assert_success, refused, replaced, run_dirs, shoplab};
use std::path::Path;

/// Small offline learners for the small pricing scenario.
const LEARNERS: &str = r#"
[[policies]]
kind = "bc"
gradient_steps = 200
hidden = [16]
batch_size = 64

[[policies]]
kind = "cql"
alpha = 0.5
gradient_steps = 200
hidden = [16]
batch_size = 64
gamma = 1.0
"#;

/// The small pricing scenario with `offline` as its `[offline]` table and
/// the small learners.
fn scenario(name: &str, offline: &str) -> String {
    format!(
        "{}{LEARNERS}\n[offline]\n{offline}\n",
        common::small_pricing(name, 6)
    )
}

/// A dataset of the suite, built from the file: the run folder gets the
/// offline section (estimates of every learner's runs by each estimator,
/// next to their online value) and its charts, the resolved scenario
/// spells out the dataset's settings, and `reproduce` gets the same bytes.
#[test]
fn a_dataset_scenario_runs_reports_and_reproduces() {
    let tmp = TempDir::new("offline-dataset");
    let file = tmp.path().join("off.toml");
    let offline = "dataset = \"medium\"\nmedium = \"q_learning\"\nmedium_episodes = 100\n\
                   episodes = 150\nope = [\"wpdis\", \"fqe\"]";
    std::fs::write(&file, scenario("off", offline)).unwrap();
    let results = tmp.path().join("results");
    let out = common::run_scenario(&file, &results, &[]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_names(
        &stdout,
        &[
            "offline data: dataset `medium`",
            "q_learning after 100 training episodes",
            "gradient steps per run: bc 200, cql 200",
        ],
    );
    let dir = &run_dirs(&results, "off")[0];
    for file in [
        "offline_curve.svg",
        "offline_ope.svg",
        "checkpoints/bc-seed1.safetensors",
        "checkpoints/cql-seed4.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(dir.join("offline_ope.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // 2 learners × 4 seeds × 2 estimators.
    assert_eq!(rows.len(), 16, "{csv}");
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        let (estimate, online, error): (f64, f64, f64) = (
            cells[4].parse().unwrap(),
            cells[5].parse().unwrap(),
            cells[6].parse().unwrap(),
        );
        assert!(estimate.is_finite() && online.is_finite(), "{row}");
        assert!((estimate - online - error).abs() < 1e-9, "{row}");
        assert_eq!(cells[2], "200");
    }
    let resolved = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert_names(
        &resolved,
        &["dataset = \"medium\"", "epsilon = 0.1", "seed = 1"],
    );
    let again = shoplab(&["reproduce", dir.to_str().unwrap()], &[]);
    assert_success(&again);
    // A trained learner's checkpoint is an OPE target, rebuilt from the
    // scenario with its data and loaded.
    let log = tmp.path().join("log.csv");
    let logged = shoplab(
        &[
            "log",
            file.to_str().unwrap(),
            "--policy",
            "random",
            "--episodes",
            "50",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&logged);
    let checkpoint = dir.join("checkpoints/cql-seed1.safetensors");
    let ope = shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target-policy",
            "cql",
            "--scenario",
            file.to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--estimators",
            "wpdis",
            "--truth-episodes",
            "20",
            "--results",
            tmp.path().join("ope").to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&ope);
    assert_names(
        &String::from_utf8_lossy(&ope.stdout),
        &["wpdis", "true value"],
    );
}

/// A log file named by the scenario is read and kept with the run: the
/// run folder holds a copy under `inputs/`, hashed in the manifest, and
/// the resolved scenario points at it with the log's SHA-256, so the run
/// reproduces after the original moves or changes; a changed copy is
/// named when the folder is reproduced, and a scenario pinning a hash its
/// log no longer has is refused.
#[test]
fn a_log_file_is_kept_with_the_run_and_pinned_by_its_hash() {
    let tmp = TempDir::new("offline-log");
    let base = tmp.path().join("base.toml");
    std::fs::write(&base, common::small_pricing("base", 6)).unwrap();
    let log = tmp.path().join("random.csv");
    let write_log = |seed: &str| {
        let out = shoplab(
            &[
                "log",
                base.to_str().unwrap(),
                "--policy",
                "random",
                "--episodes",
                "100",
                "--seed",
                seed,
                "--out",
                log.to_str().unwrap(),
            ],
            &[],
        );
        assert_success(&out);
    };
    write_log("1");
    let file = tmp.path().join("fromlog.toml");
    std::fs::write(
        &file,
        scenario("fromlog", "log = \"random.csv\"\nope = [\"pdis\"]"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    assert_success(&common::run_scenario(&file, &results, &[]));
    let dir = &run_dirs(&results, "fromlog")[0];
    let resolved = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert!(
        resolved.contains("log = \"inputs/random.csv\""),
        "{resolved}"
    );
    assert_eq!(
        std::fs::read(dir.join("inputs/random.csv")).unwrap(),
        std::fs::read(&log).unwrap()
    );
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"inputs/random.csv\""), "{manifest}");
    let sha = resolved
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    // The original replaced by another log: the run still reproduces.
    std::fs::remove_file(&log).unwrap();
    write_log("2");
    assert_success(&shoplab(&["reproduce", dir.to_str().unwrap()], &[]));
    // A scenario pinning the first log's hash refuses the second.
    let pinned = tmp.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        scenario(
            "pinned",
            &format!("log = \"random.csv\"\nsha256 = \"{sha}\""),
        ),
    )
    .unwrap();
    let out = common::run_scenario(&pinned, &results, &[]);
    assert!(!out.status.success());
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["offline.sha256", "not the"],
    );
    // The run folder's own copy changed: reproduce names it.
    std::fs::copy(&log, dir.join("inputs/random.csv")).unwrap();
    let out = shoplab(&["reproduce", dir.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_names(&said, &["changed", "inputs/random.csv"]);
}

/// Must-hold 5: bad offline settings are refused before any work, with
/// the file, the key, its line and the rule.
#[test]
fn bad_offline_settings_are_refused_with_file_key_and_rule() {
    let dataset = "dataset = \"random\"\nepisodes = 20";
    let good = scenario("bad", dataset);
    // α < 0 and τ outside [0, 1), on the policy's own key and line.
    let m = refused(&replaced(&good, "alpha = 0.5", "alpha = -1.0"), &[]);
    assert_names(&m, &["policies[6].alpha", "line", "≥ 0"]);
    let bcq = format!("{good}\n[[policies]]\nkind = \"bcq\"\ntau = 1.0\n");
    let m = refused(&bcq, &[]);
    assert_names(&m, &["policies[7].tau", "line", "[0, 1)"]);
    let m = refused(&replaced(&good, "alpha = 0.5", "tau = 0.5"), &[]);
    assert_names(&m, &["policies[6].tau", "setting of kind `bcq`"]);
    // An offline learner without data.
    let m = refused(
        &format!("{}{LEARNERS}", common::small_pricing("bad", 6)),
        &[],
    );
    assert_names(&m, &["policies[5]", "[offline]"]);
    // The table's own rules.
    let m = refused(&scenario("bad", "dataset = \"expert\""), &[]);
    assert_names(&m, &["offline.expert", "needs the strong policy"]);
    let m = refused(&scenario("bad", "dataset = \"best\""), &[]);
    assert_names(&m, &["offline.dataset", "not a dataset of the suite"]);
    let m = refused(
        &scenario("bad", "dataset = \"random\"\nlog = \"x.csv\""),
        &[],
    );
    assert_names(&m, &["offline.dataset", "not both"]);
    let m = refused(&scenario("bad", "dataset = \"random\"\nwindow = 3"), &[]);
    assert_names(&m, &["offline", "window"]);
    let m = refused(
        &scenario("bad", "dataset = \"random\"\nope = [\"ipw\"]"),
        &[],
    );
    assert_names(&m, &["offline.ope[0]", "pdis, wpdis or fqe"]);
    let m = refused(
        &scenario(
            "bad",
            "dataset = \"expert\"\nexpert = \"nobody\"\nepisodes = 5",
        ),
        &[],
    );
    assert_names(&m, &["offline.expert", "`nobody` is not a policy"]);
}

/// Logs that do not fit the scenario: another family's features, a
/// missing column, a pinned hash that differs.
#[test]
fn logs_that_do_not_fit_are_refused() {
    let header = "episode,session,step,period,stock,last_sales,action,position,reward,propensity,terminated,truncated";
    let row = "0,0,0,0,12,0,1,0,1.5,0.2,0,0";
    let good = format!("{header}\n{row}\n");
    let with_log = scenario("bad", "log = \"data.csv\"");
    // The fixture is itself accepted as far as its shape goes: the same
    // log with the right features only fails for the reasons below.
    let other_family = good.replace("period,stock,last_sales", "segment,topic,last_item");
    let m = refused(&with_log, &[("data.csv", &other_family)]);
    assert_names(&m, &["offline.log", "features", "another family"]);
    let no_reward = format!(
        "{}\n{}\n",
        header.replace(",reward", ""),
        row.replacen(",1.5", "", 1)
    );
    let m = refused(&with_log, &[("data.csv", &no_reward)]);
    assert_names(&m, &["offline.log", "reward"]);
    let out_of_range = good.replace(",1,0,1.5", ",9,0,1.5");
    let m = refused(&with_log, &[("data.csv", &out_of_range)]);
    assert_names(&m, &["offline.log", "action"]);
    let pinned = scenario("bad", "log = \"data.csv\"\nsha256 = \"00ff\"");
    let m = refused(&pinned, &[("data.csv", &good)]);
    assert_names(&m, &["offline.sha256", "not the 00ff"]);
    assert!(Path::new("scenarios/offline-pricing.toml").is_file());
}

/// A policy exported as a table of states and actions plays exactly as the
/// policy it lists: a table of price 2.0 in every state of the small
/// scenario's grid earns, episode by episode, what `fixed` at 2.0 earns
/// (the same shoppers, seed by seed). A table missing a state stops its
/// runs with the state named, while the other policies finish.
#[test]
fn an_action_table_plays_as_the_policy_it_lists() {
    let tmp = TempDir::new("action-table");
    let mut table = String::from("period,stock,last_sales,action\n");
    for t in 0..8 {
        for s in 0..=12 {
            for l in 0..=12 {
                table.push_str(&format!("{t},{s},{l},2\n"));
            }
        }
    }
    std::fs::write(tmp.path().join("two.csv"), &table).unwrap();
    let partial: String = table.lines().take(20).map(|l| format!("{l}\n")).collect();
    std::fs::write(tmp.path().join("partial.csv"), partial).unwrap();
    let text = format!(
        "{}\n[[policies]]\nkind = \"action_table\"\nname = \"exported\"\nfile = \"two.csv\"\n\n\
         [[policies]]\nkind = \"action_table\"\nname = \"holes\"\nfile = \"partial.csv\"\n",
        common::small_pricing("table", 5)
    );
    let file = tmp.path().join("table.toml");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    let out = common::run_scenario(&file, &results, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_names(&stdout, &["FAILED holes seed 1", "no row for the state"]);
    let dir = &run_dirs(&results, "table")[0];
    let episodes = std::fs::read_to_string(dir.join("episodes.csv")).unwrap();
    let returns = |policy: &str| -> Vec<String> {
        episodes
            .lines()
            .filter(|l| l.split(',').nth(1) == Some(policy))
            .map(|l| l.split(',').nth(4).unwrap().to_string())
            .collect()
    };
    let (exported, fixed) = (returns("exported"), returns("fixed_price_2"));
    assert_eq!(exported.len(), 4 * 5);
    assert_eq!(exported, fixed);
    let resolved = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert!(resolved.contains("file = \"inputs/two.csv\""), "{resolved}");
    assert!(
        resolved.contains("file = \"inputs/partial.csv\""),
        "{resolved}"
    );
    let m = refused(
        &replaced(
            &common::small_pricing("bad", 5),
            "kind = \"random\"",
            "kind = \"action_table\"\nfile = \"t.csv\"",
        ),
        &[("t.csv", "period,stock,action\n0,1,1\n")],
    );
    assert_names(&m, &["policies[1].file", "t.csv", "header"]);
}

/// Ad bidding logs carry exact propensities: Q-learned pacing decides its
/// multiplier every 24 periods and holds it between, with a fixed creative
/// rule (UCB1, deterministic given its counts); in the first of two
/// training days ε is 1, so each decision row has probability 1/8 (8
/// multipliers) and every held row 1. Thompson sampling over creatives
/// has no closed form and is refused. The suite builds for the family,
/// its expert trained first when asked.
#[test]
fn ads_logs_carry_exact_propensities() {
    let tmp = TempDir::new("ads-log");
    let text = std::fs::read_to_string("scenarios/ads.toml").unwrap();
    let text = replaced(
        &text,
        "kind = \"q_pacing\"\ndecide_every = 24\ncreative = \"thompson\"",
        "kind = \"q_pacing\"\ndecide_every = 24\ncreative = \"ucb1\"",
    );
    let file = tmp.path().join("ads.toml");
    std::fs::write(&file, text).unwrap();
    let log = tmp.path().join("q.csv");
    let log_of = |policy: &str, out: &Path| {
        shoplab(
            &[
                "log",
                file.to_str().unwrap(),
                "--policy",
                policy,
                "--episodes",
                "2",
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        )
    };
    assert_success(&log_of("q_pacing_ucb1", &log));
    let csv = std::fs::read_to_string(&log).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (episode, period, propensity) = (col("episode"), col("period"), col("propensity"));
    let mut decisions = 0;
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let p: f64 = cells[propensity].parse().unwrap();
        let t: u32 = cells[period].parse().unwrap();
        if !t.is_multiple_of(24) {
            assert_eq!(p, 1.0, "{line}");
        } else if cells[episode] == "0" {
            assert!((p - 0.125).abs() < 1e-12, "{line}");
            decisions += 1;
        }
    }
    assert_eq!(decisions, 4);
    let out = log_of("dual_pacing_thompson", &tmp.path().join("t.csv"));
    assert!(!out.status.success());
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["cannot report the probabilities"],
    );
    let built = shoplab(
        &[
            "dataset",
            "build",
            file.to_str().unwrap(),
            "--medium",
            "q_pacing_ucb1",
            "--medium-episodes",
            "20",
            "--expert",
            "dual_pacing_thompson",
            "--expert-episodes",
            "20",
            "--episodes",
            "10",
            "--out",
            tmp.path().join("datasets").to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&built);
    assert_names(
        &String::from_utf8_lossy(&built.stdout),
        &["dual_pacing_thompson after 20 training episodes, greedy"],
    );
}

/// A small Decision Transformer for the small pricing scenario.
const DECISION_TRANSFORMER: &str = r#"
[[policies]]
kind = "decision_transformer"
gradient_steps = 60
context = 4
dim = 16
heads = 2
layers = 1
batch_size = 16
"#;

/// Decision Transformer in a run: it trains on the dataset, plays online,
/// gets the same bytes on 1 and 2 threads, and is estimated from the log
/// by replaying each logged session through it; `shoplab ope`, which
/// scores a checkpoint row by row, refuses it, saying why. Its settings
/// are refused with the file, key and line.
#[test]
fn a_decision_transformer_trains_plays_and_is_estimated_by_replay() {
    let tmp = TempDir::new("offline-dt");
    let file = tmp.path().join("dt.toml");
    let offline = "dataset = \"medium\"\nmedium = \"q_learning\"\nmedium_episodes = 60\n\
                   episodes = 80\nope = [\"wpdis\"]";
    let text = format!("{}{DECISION_TRANSFORMER}", scenario("dt", offline));
    std::fs::write(&file, &text).unwrap();
    let results = tmp.path().join("results");
    let dirs = common::run_with_threads(&file, &results, "dt", &["1", "2"]);
    let checkpoint = "checkpoints/decision_transformer-seed2.safetensors";
    for name in [
        "episodes.csv",
        "summary.csv",
        "learning.csv",
        "offline_ope.csv",
        checkpoint,
    ] {
        let read = |dir: &Path| {
            std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e} in {dir:?}"))
        };
        assert!(
            read(&dirs[0]) == read(&dirs[1]),
            "{name} differs between thread counts"
        );
    }
    let ope = std::fs::read_to_string(dirs[0].join("offline_ope.csv")).unwrap();
    let rows: Vec<&str> = ope
        .lines()
        .filter(|l| l.starts_with("decision_transformer,"))
        .collect();
    assert_eq!(rows.len(), 4, "{ope}");
    for row in rows {
        let estimate: f64 = row.split(',').nth(4).unwrap().parse().unwrap();
        assert!(estimate.is_finite(), "{row}");
    }
    let learning = std::fs::read_to_string(dirs[0].join("learning.csv")).unwrap();
    assert!(learning.contains("decision_transformer"), "{learning}");
    // `shoplab ope` scores a checkpoint row by row: refused for a policy
    // whose decision reads the episode so far.
    let log = tmp.path().join("log.csv");
    let logged = shoplab(
        &[
            "log",
            file.to_str().unwrap(),
            "--policy",
            "random",
            "--episodes",
            "5",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&logged);
    let out = shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target-policy",
            "decision_transformer",
            "--scenario",
            file.to_str().unwrap(),
            "--checkpoint",
            dirs[0].join(checkpoint).to_str().unwrap(),
            "--results",
            tmp.path().join("ope").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["decision_transformer", "episode so far"],
    );
    // Bad settings, on the policy's own key and line.
    let bad = |from: &str, to: &str| refused(&replaced(&text, from, to), &[]);
    assert_names(
        &bad("dim = 16", "dim = 17"),
        &["policies[7].heads", "line", "must divide dim"],
    );
    assert_names(
        &bad("context = 4", "context = 1"),
        &["policies[7].context", "line"],
    );
    assert_names(
        &bad(
            "batch_size = 16\n",
            "batch_size = 16\ntarget_return = inf\n",
        ),
        &["policies[7].target_return", "finite"],
    );
    // Without data.
    let m = refused(
        &format!("{}{DECISION_TRANSFORMER}", common::small_pricing("bad", 6)),
        &[],
    );
    assert_names(&m, &["policies[5]", "[offline]"]);
}
