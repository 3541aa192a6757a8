//! Logged data (issue #13): `shoplab log` writes what the env and the policy
//! did, with the policy's own probabilities; `shoplab log-info` and the
//! reader refuse bad logs with one line naming file, row and column.

mod common;

use common::{TempDir, shoplab};
use shoplab_env::{EnvBox, seed::derive_seed};
use shoplab_harness::{logging::log_policy, registry::Registry};
use shoplab_logs::{ReadOptions, read_csv};
use std::path::Path;

fn prepared(file: &str) -> shoplab_harness::prepared::Prepared {
    shoplab_harness::load(Path::new(file), &Registry::default()).unwrap()
}

/// Replaying a pricing log's actions in the env, from the seeds the logger
/// used, gives back every logged observation, reward and ending; a random
/// policy's propensities are 1/n.
#[test]
fn a_pricing_log_replays_in_the_env() {
    let tmp = TempDir::new("log-replay");
    let out = tmp.path().join("random.csv");
    let p = prepared("scenarios/pricing.toml");
    let index = p.names.iter().position(|n| n == "random").unwrap();
    let summary = log_policy(&p, index, 30, 11, &out).unwrap();
    let log = read_csv(&out, &ReadOptions { n_actions: Some(8) }).unwrap();
    assert_eq!(log.len() as u64, summary.rows);
    assert!(log.propensity.iter().all(|&q| q == 1.0 / 8.0));
    assert!(summary.never_possible.is_empty());
    let EnvBox::Single(mut env) = p.make_env() else {
        unreachable!()
    };
    let mut row = 0;
    for episode in 0..30u64 {
        let (mut obs, _) = env.reset(derive_seed(11, "log episode", episode));
        loop {
            assert_eq!(log.episode[row], episode);
            assert_eq!(log.features_of(row), &obs.features[..], "row {row}");
            let s = env.step(log.action[row] as usize);
            assert_eq!(log.reward[row], s.reward, "row {row}");
            assert_eq!(
                (log.terminated[row], log.truncated[row]),
                (s.terminated, s.truncated)
            );
            row += 1;
            if s.done() {
                break;
            }
            obs = s.obs;
        }
    }
    assert_eq!(row, log.len());
}

/// A batched family logs every slot's decisions; sessions are numbered as
/// they start and each reads back in order (the reader checks it).
#[test]
fn a_batched_log_numbers_sessions_and_keeps_their_order() {
    let tmp = TempDir::new("log-batch");
    let out = tmp.path().join("eg.csv");
    let p = prepared("scenarios/recommendation.toml");
    let index = p.names.iter().position(|n| n == "epsilon_greedy").unwrap();
    log_policy(&p, index, 1, 3, &out).unwrap();
    let log = read_csv(
        &out,
        &ReadOptions {
            n_actions: Some(100),
        },
    )
    .unwrap();
    assert_eq!(log.len(), 200 * 100, "200 sessions at once for 100 ticks");
    // Rows go tick by tick, 200 a tick; sessions that end before the last
    // tick are followed by new ones.
    let ended = log.terminated[..log.len() - 200]
        .iter()
        .filter(|&&t| t)
        .count();
    let sessions: std::collections::BTreeSet<u64> = log.session.iter().copied().collect();
    assert_eq!(
        sessions.len(),
        200 + ended,
        "a new session for every one that ended"
    );
    // ε = 0.1 over 100 arms once every arm is tried: 0.001 or 0.901.
    assert!(
        log.propensity
            .iter()
            .all(|&q| q == 1.0 || (q - 0.001).abs() < 1e-12 || (q - 0.901).abs() < 1e-12)
    );
}

#[test]
fn logging_is_reproducible_to_the_byte() {
    let tmp = TempDir::new("log-bytes");
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    for out in [&a, &b] {
        let out = out.to_str().unwrap();
        let o = shoplab(
            &[
                "log",
                "scenarios/pricing.toml",
                "--policy",
                "q_learning",
                "--episodes",
                "200",
                "--out",
                out,
            ],
            &[],
        );
        common::assert_success(&o);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// Refusals: one line, non-zero exit, nothing written.
#[test]
fn bad_requests_and_bad_logs_are_refused_in_one_line() {
    let tmp = TempDir::new("log-bad");
    let out = tmp.path().join("x.csv");
    let o = out.to_str().unwrap();
    let refused = |args: &[&str], expected: &str| {
        let r = shoplab(args, &[]);
        assert!(!r.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    };
    refused(
        &[
            "log",
            "scenarios/recommendation.toml",
            "--policy",
            "linucb",
            "--episodes",
            "1",
            "--out",
            o,
        ],
        "cannot report the probabilities",
    );
    refused(
        &[
            "log",
            "scenarios/pricing.toml",
            "--policy",
            "nope",
            "--episodes",
            "1",
            "--out",
            o,
        ],
        "no policy named `nope`",
    );
    refused(
        &[
            "log",
            "scenarios/pricing.toml",
            "--policy",
            "random",
            "--episodes",
            "0",
            "--out",
            o,
        ],
        "--episodes",
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written"
    );
    std::fs::write(&out, "taken").unwrap();
    refused(
        &[
            "log",
            "scenarios/pricing.toml",
            "--policy",
            "random",
            "--episodes",
            "1",
            "--out",
            o,
        ],
        "exists already",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "taken");

    let header = "episode,session,step,x,action,position,reward,propensity,terminated,truncated";
    let cases = [
        (
            format!("{header}\n0,0,0,1,2,0,1,0,0,0\n"),
            "row 2, column `propensity`",
        ),
        (
            format!("{header}\n0,0,0,1,9,0,1,0.5,0,0\n"),
            "row 2, column `action`",
        ),
        (
            format!("{header}\n0,0,0,1,2,0,1,0.5,0,0\n0,0,3,1,2,0,1,0.5,0,0\n"),
            "row 3: episode 0, session 0: steps out of order",
        ),
        (
            "episode,session,step,action\n0,0,0,1\n".to_string(),
            "row 1, column `position`: is missing",
        ),
        (String::new(), "is empty"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = tmp.path().join(format!("bad{i}.csv"));
        std::fs::write(&file, text).unwrap();
        let f = file.to_str().unwrap();
        refused(&["log-info", f, "--actions", "4"], expected);
        let r = shoplab(&["log-info", f, "--actions", "4"], &[]);
        assert!(
            String::from_utf8_lossy(&r.stderr).contains(f),
            "names the file"
        );
    }
    let mut bytes = format!("{header}\n0,0,0,").into_bytes();
    bytes.extend_from_slice(&[0xc3, 0x28]);
    bytes.extend_from_slice(b",2,0,1,0.5,0,0\n");
    let file = tmp.path().join("utf8.csv");
    std::fs::write(&file, bytes).unwrap();
    refused(
        &["log-info", file.to_str().unwrap()],
        "row 2, column `x`: is not UTF-8",
    );
}

/// `shoplab ope` on the shipped OBD sample (Bernoulli TS's log), a uniform
/// target over the 80 items and constant estimated rewards, against IPW,
/// SNIPW, DM and DR computed here straight from the raw file:
/// `w = 0.0125 / propensity_score`, `IPW = mean(w·click)`, `SNIPW =
/// IPW / mean(w)`, `DR = q + mean(w·(click − q))`.
#[test]
fn ope_on_the_open_bandit_dataset_matches_a_direct_computation() {
    let tmp = TempDir::new("ope-obd");
    let log = tmp.path().join("bts.csv");
    common::assert_success(&shoplab(
        &[
            "obd",
            "data/obd/bts/all/all.csv",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let raw = std::fs::read_to_string("data/obd/bts/all/all.csv").unwrap();
    let (click, pscore): (Vec<f64>, Vec<f64>) = raw
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[4].parse::<f64>().unwrap(), f[5].parse::<f64>().unwrap())
        })
        .unzip();
    let n = click.len() as f64;
    let w: Vec<f64> = pscore.iter().map(|p| 0.0125 / p).collect();
    let ipw = w.iter().zip(&click).map(|(w, r)| w * r).sum::<f64>() / n;
    let mean_w = w.iter().sum::<f64>() / n;
    let q = 0.003;
    let dr = q + w.iter().zip(&click).map(|(w, r)| w * (r - q)).sum::<f64>() / n;
    let header = |p: &str| {
        (0..80)
            .map(|j| format!("{p}{j}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let table = |p: &str, v: &str| {
        format!(
            "{}\n{}",
            header(p),
            format!("{}\n", vec![v; 80].join(",")).repeat(10_000)
        )
    };
    let (target, rewards) = (tmp.path().join("target.csv"), tmp.path().join("q.csv"));
    std::fs::write(&target, table("p", "0.0125")).unwrap();
    std::fs::write(&rewards, table("q", "0.003")).unwrap();
    let estimates = ope(
        &tmp.path().join("estimates.csv"),
        &[&log, &target, &rewards],
        &["--bootstrap", "200"],
    );
    for (name, expected) in [("ipw", ipw), ("snipw", ipw / mean_w), ("dm", q), ("dr", dr)] {
        let got = estimates[name][0];
        assert!(
            (got - expected).abs() < 1e-12,
            "{name}: {got} vs {expected}"
        );
    }
    // The same as NumPy arrays, as obp takes them: the target (rounds,
    // actions, positions) in f8, the rewards (rounds, actions) in f4 (a
    // value exact in f4).
    let q4 = 0.00390625;
    let (target_npy, rewards_npy) = (tmp.path().join("target.npy"), tmp.path().join("q.npy"));
    std::fs::write(
        &target_npy,
        npy("<f8", &[10_000, 80, 3], &vec![0.0125; 2_400_000]),
    )
    .unwrap();
    std::fs::write(&rewards_npy, npy("<f4", &[10_000, 80], &vec![q4; 800_000])).unwrap();
    let estimates = ope(
        &tmp.path().join("estimates-npy.csv"),
        &[&log, &target_npy, &rewards_npy],
        &["--bootstrap", "200"],
    );
    let dr4 = q4 + w.iter().zip(&click).map(|(w, r)| w * (r - q4)).sum::<f64>() / n;
    for (name, expected) in [("ipw", ipw), ("dm", q4), ("dr", dr4)] {
        let got = estimates[name][0];
        assert!(
            (got - expected).abs() < 1e-12,
            "{name} (npy): {got} vs {expected}"
        );
    }
    // A bad target table is refused with its file, row and column.
    std::fs::write(
        &target,
        format!("{}\n{}\n", header("p"), vec!["0.5"; 80].join(",")),
    )
    .unwrap();
    let r = shoplab(
        &[
            "ope",
            log.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("target.csv: row 2: probabilities sum to 40"),
        "{stderr}"
    );
}

/// shoplab's estimates on the shipped OBD sample equal obp 0.5.7's on
/// identical inputs (issue #13, must-hold 1). The inputs are a closed form
/// of the context, item and position, computed here from the log's
/// features and written as obp's `.npy` arrays of shape (rounds, 80, 3):
/// with `s = Σ_j 0.11·(j+1)·x_j` over the log's one-hot context columns,
/// `score(a, k) = sin(1 + 0.37·a + 1.3·k + s)`, the target is the softmax
/// over items of `2·score` and the estimated reward `0.001 + 0.002·(1 +
/// score)`. The expected values are obp's, printed by
/// `benches/peers/obp_ope.py` (obp 0.5.7 with numpy 1.23.5 on Python
/// 3.11.7; its `OffPolicyEvaluation` with `SwitchDoublyRobust(lambda_=5)`
/// and `DoublyRobustWithShrinkage(lambda_=20)`). They are not shoplab's:
/// that script prints both, and they differ by at most 3·10⁻¹⁶ there, the
/// rounding of a different summation order and libm. The bound is 10⁻⁹.
#[test]
fn ope_on_the_open_bandit_dataset_equals_obp() {
    let tmp = TempDir::new("ope-obp");
    let expected: [(&str, [(&str, f64); 7]); 2] = [
        (
            "random",
            [
                ("ipw", 0.004865390959007195),
                ("snipw", 0.0049328921075334296),
                ("dm", 0.0044084986639875605),
                ("dr", 0.00493545815545565),
                ("sndr", 0.0049427690521956225),
                ("switch-dr", 0.00493545815545565),
                ("dr-os", 0.004614094438315166),
            ],
        ),
        (
            "bts",
            [
                ("ipw", 0.0012529306723151272),
                ("snipw", 0.0012949732752250958),
                ("dm", 0.004409431645544012),
                ("dr", 0.0014538139726543455),
                ("sndr", 0.001354637008660497),
                ("switch-dr", 0.004282979781930674),
                ("dr-os", 0.004237619019847083),
            ],
        ),
    ];
    for (behaviour, values) in expected {
        let log = tmp.path().join(format!("{behaviour}.csv"));
        common::assert_success(&shoplab(
            &[
                "obd",
                &format!("data/obd/{behaviour}/all/all.csv"),
                "--out",
                log.to_str().unwrap(),
            ],
            &[],
        ));
        let rows = read_csv(&log, &ReadOptions::default()).unwrap();
        let d = rows.features.len();
        let (mut target, mut q) = (Vec::new(), Vec::new());
        for i in 0..rows.len() {
            let s: f64 = (0..d)
                .map(|j| f64::from(rows.features_of(i)[j]) * 0.11 * (j as f64 + 1.0))
                .sum();
            let score = |a: usize, k: usize| (1.0 + 0.37 * a as f64 + 1.3 * k as f64 + s).sin();
            let totals: Vec<f64> = (0..3)
                .map(|k| (0..80).map(|a| (2.0 * score(a, k)).exp()).sum())
                .collect();
            for a in 0..80 {
                for (k, total) in totals.iter().enumerate() {
                    target.push((2.0 * score(a, k)).exp() / total);
                    q.push(0.001 + 0.002 * (1.0 + score(a, k)));
                }
            }
        }
        let (t, r) = (
            tmp.path().join(format!("{behaviour}-target.npy")),
            tmp.path().join(format!("{behaviour}-q.npy")),
        );
        std::fs::write(&t, npy("<f8", &[rows.len(), 80, 3], &target)).unwrap();
        std::fs::write(&r, npy("<f8", &[rows.len(), 80, 3], &q)).unwrap();
        let estimates = ope(
            &tmp.path().join(format!("{behaviour}-estimates.csv")),
            &[&log, &t, &r],
            &["--tau", "5", "--shrinkage", "20", "--bootstrap", "10"],
        );
        for (name, obp) in values {
            let got = estimates[name][0];
            assert!(
                (got - obp).abs() < 1e-9,
                "{behaviour} {name}: shoplab {got}, obp {obp}"
            );
        }
    }
}

/// A NumPy `.npy` file (format 1.0, C order) of `values` in `descr`
/// (`<f8` or `<f4`).
fn npy(descr: &str, shape: &[usize], values: &[f64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}{}), }}",
        dims.join(", "),
        if shape.len() == 1 { "," } else { "" }
    );
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        if descr == "<f4" {
            out.extend_from_slice(&(v as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Sequential OPE on pricing logs (issue #13, must-hold 3): a shop that
/// posts price 3 but tries a random price of the grid with probability
/// 0.05 is logged for 10,000 seasons; the 95% intervals of PDIS and WPDIS
/// for the fixed price 3 on that log hold its exact value, the DP's
/// evaluation of price 3 (the family's baseline), and the estimates are
/// within 5% of it. (PDIS's standard error here is about 0.56 on 86, so
/// 5% is 15 standard errors; with ε = 0.2 the weights grow to 1.21 a step
/// and the error to several units.) Seeds are fixed, so the outcome is too.
#[test]
fn pdis_on_a_pricing_log_recovers_the_dp_value_of_a_fixed_price() {
    let tmp = TempDir::new("ope-pdis");
    let scenario = common::pricing_explorer(tmp.path());
    let p = shoplab_harness::load(&scenario, &Registry::default()).unwrap();
    let baseline = p.family().baseline().unwrap();
    assert_eq!(baseline.name, "best fixed price 3");
    let truth = baseline.value;
    let log = tmp.path().join("log.csv");
    let s = scenario.to_str().unwrap();
    common::assert_success(&shoplab(
        &[
            "log",
            s,
            "--policy",
            "fixed_price_3_epsilon_0.05",
            "--episodes",
            "10000",
            "--out",
            log.to_str().unwrap(),
        ],
        &[],
    ));
    let rows = read_csv(&log, &ReadOptions { n_actions: Some(8) }).unwrap();
    // ε/8 on every price, 1 − ε + ε/8 on price 3 (index 5 of the grid).
    assert!(
        rows.propensity
            .iter()
            .all(|&q| q == 0.00625 || (q - 0.95625).abs() < 1e-12)
    );
    let header = (0..8)
        .map(|j| format!("p{j}"))
        .collect::<Vec<_>>()
        .join(",");
    let one_hot = "0,0,0,0,0,1,0,0\n".repeat(rows.len());
    let target = tmp.path().join("price3.csv");
    std::fs::write(&target, format!("{header}\n{one_hot}")).unwrap();
    let estimates = ope(
        &tmp.path().join("est.csv"),
        &[&log, &target],
        &["--estimators", "pdis,wpdis", "--bootstrap", "400"],
    );
    for name in ["pdis", "wpdis"] {
        let [estimate, lo, hi] = estimates[name];
        assert!(
            lo <= truth && truth <= hi,
            "{name}: {estimate} [{lo}, {hi}] misses {truth}"
        );
        assert!(
            (estimate - truth).abs() < 0.05 * truth,
            "{name}: {estimate} vs {truth}"
        );
    }
}

/// Runs `shoplab ope LOG --target T [--rewards Q] EXTRA --out OUT` (the
/// paths in that order) and reads back each estimator's estimate, lower
/// and upper bound.
fn ope(
    out: &Path,
    paths: &[&Path],
    extra: &[&str],
) -> std::collections::BTreeMap<String, [f64; 3]> {
    let paths: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["ope", paths[0], "--target", paths[1]];
    if let Some(rewards) = paths.get(2) {
        args.extend(["--rewards", rewards]);
    }
    args.extend_from_slice(extra);
    let results = out.with_extension("results");
    args.extend([
        "--out",
        out.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    common::assert_success(&shoplab(&args, &[]));
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let mut cells = line.split(',');
            let name = cells.next().unwrap().to_string();
            let v: Vec<f64> = cells.take(3).map(|x| x.parse().unwrap()).collect();
            (name, [v[0], v[1], v[2]])
        })
        .collect()
}
