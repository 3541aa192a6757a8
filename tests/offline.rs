//! Offline learning from logs (issue #14), judged against the exact
//! solution of the pricing problem.

mod common;

use shoplab_harness::{logging::log_in_memory, registry::Registry};
use shoplab_policy::offline::TabularFqi;
use std::path::Path;

/// Must-hold 2: tabular fitted Q iteration on a pricing log of uniformly
/// random prices (every price tried in every reachable state) converges to
/// the DP's `Q*`. The scenario is the small one of the tests (8 periods,
/// 12 units, 5 prices); 200,000 seasons are logged; FQI runs 8 iterations
/// (the horizon) with γ = 1, the state being (period, stock).
///
/// Tolerance: `Q̂(s, a)` averages `c` logged returns-to-go, each with a
/// standard deviation below the season's largest revenue (12 units at the
/// highest margin, 2.6 each: 31.2), and inherits the errors of the states
/// after it, at most 8 periods of them; over the pairs logged at least
/// 2,000 times, `|Q̂ − Q*| ≤ 5 · 31.2 / √2000 = 3.5` is a loose, safe
/// bound, and the test also requires the mean absolute error over those
/// pairs to stay below 0.1 (measured: 0.018 over 225 pairs, the worst
/// 0.081), and the greedy price to match the DP's wherever the DP's best
/// price beats the next by more than 0.2 (over twice the worst error).
#[test]
fn tabular_fitted_q_iteration_converges_to_the_dp() {
    let tmp = common::TempDir::new("offline-fqi");
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, common::small_pricing("small", 10)).unwrap();
    let p = shoplab_harness::load(Path::new(&file), &Registry::default()).unwrap();
    let random = p.names.iter().position(|n| n == "random").unwrap();
    let (log, _) = log_in_memory(&p, random, 200_000, 3).unwrap();
    assert_eq!(log.features, ["period", "stock", "last_sales"]);
    let data = log.transitions();
    let (horizon, inventory, prices) = (8u32, 12u32, 5usize);
    let state = |o: &[f32]| o[0] as usize * (inventory as usize + 1) + o[1] as usize;
    let n_states = (horizon * (inventory + 1)) as usize;
    let fqi = TabularFqi::fit(&data, state, n_states, prices, 1.0, horizon as usize);
    use shoplab_env::inventory::{PricingProblem, PricingSolution};
    use std::sync::Arc;
    let problem = p
        .family()
        .get::<Arc<PricingProblem>>()
        .expect("the problem");
    let solution = p
        .family()
        .get::<Arc<PricingSolution>>()
        .expect("its solution");
    let (mut compared, mut total, mut worst) = (0, 0.0f64, 0.0f64);
    let mut greedy_checked = 0;
    for t in 0..horizon {
        for stock in 0..=inventory {
            let s = state(&[t as f32, stock as f32]);
            let q_star: Vec<f64> = (0..prices)
                .map(|a| problem.q_value(solution, t, stock, a))
                .collect();
            if (0..prices).all(|a| fqi.count(s, a) >= 2000) {
                let mut sorted = q_star.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                if sorted[0] - sorted[1] > 0.2 {
                    assert_eq!(
                        fqi.greedy(s),
                        solution.best_action(t, stock),
                        "period {t}, stock {stock}: {q_star:?}"
                    );
                    greedy_checked += 1;
                }
            }
            for (a, &q) in q_star.iter().enumerate() {
                if fqi.count(s, a) < 2000 {
                    continue;
                }
                let error = (fqi.q(s, a) - q).abs();
                assert!(
                    error <= 3.5,
                    "period {t}, stock {stock}, price {a}: Q̂ {} vs Q* {q}",
                    fqi.q(s, a)
                );
                worst = worst.max(error);
                total += error;
                compared += 1;
            }
        }
    }
    let mean = total / f64::from(compared);
    assert!(compared >= 150, "only {compared} pairs well covered");
    assert!(
        greedy_checked >= 4,
        "only {greedy_checked} clear greedy choices"
    );
    assert!(
        mean < 0.1,
        "mean |Q̂ − Q*| {mean} (worst {worst}) over {compared} pairs"
    );
    eprintln!(
        "{compared} pairs, mean |Q̂ − Q*| {mean:.4}, worst {worst:.4}; {greedy_checked} greedy choices checked"
    );
}

/// Offline learners trained on a noisy pricing log beat the behaviour
/// that wrote it, online: a shop that posts price 3 half the time and a
/// random price otherwise (`fixed`, ε = 0.5) logs 5,000 seasons, worth
/// 66.4 a season; BC, CQL (α = 1) and BCQ (τ = 0.3), 5,000 gradient steps
/// each (64-64 network, batch 256, γ = 1), are then played greedily on
/// 300 held-out seasons of the simulator. Each must beat the behaviour's
/// per-season value by more than 10 (measured: all near 86, the value of
/// the fixed price 3, against the DP's optimum of about 87.8) and by more
/// than 5 standard errors of its online mean. One seed; the suite of seeds
/// and datasets is the rest of issue #14.
#[test]
fn offline_learners_beat_a_noisy_behaviour_online() {
    use shoplab_policy::offline::neural::{Algorithm, OfflineConfig, OfflineLearner};
    let tmp = common::TempDir::new("offline-noisy");
    let scenario = tmp.path().join("pricing.toml");
    let text = std::fs::read_to_string("scenarios/pricing.toml").unwrap();
    std::fs::write(
        &scenario,
        format!("{text}\n[[policies]]\nkind = \"fixed\"\nprice = 3.0\nepsilon = 0.5\n"),
    )
    .unwrap();
    let p = shoplab_harness::load(&scenario, &Registry::default()).unwrap();
    let b = p
        .names
        .iter()
        .position(|n| n == "fixed_price_3_epsilon_0.5")
        .unwrap();
    let (log, _) = log_in_memory(&p, b, 5000, 1).unwrap();
    let behaviour = log.reward.iter().sum::<f64>() / log.sessions().len() as f64;
    let data = log.transitions();
    for algorithm in [
        Algorithm::Bc,
        Algorithm::Cql { alpha: 1.0 },
        Algorithm::Bcq { tau: 0.3 },
    ] {
        let config = OfflineConfig {
            algorithm,
            gamma: 1.0,
            seed: 1,
            ..OfflineConfig::default()
        };
        let mut learner = OfflineLearner::new(config, &data, 8).unwrap();
        for _ in 0..5000 {
            learner.train_step(&data).unwrap();
        }
        let mut env = p.make_env();
        let e = shoplab_harness::runner::evaluate(
            &p,
            &mut env,
            &mut learner,
            |k| 10_000 + k,
            300,
            (0, 1),
        )
        .unwrap();
        let n = e.returns.len() as f64;
        let mean = e.returns.iter().sum::<f64>() / n;
        let sd = (e.returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            mean - behaviour > 10.0 && mean - behaviour > 5.0 * sd / n.sqrt(),
            "{algorithm:?}: online {mean:.2} ± {:.2} vs behaviour {behaviour:.2}",
            sd / n.sqrt()
        );
    }
}

/// `shoplab dataset build` writes the five datasets with exact
/// propensities, the behaviours' values ordered as their strength (the
/// noisy DP oracle above the partly trained Q-learner above random, each
/// gap beyond 4 standard errors), a manifest whose hashes match the files,
/// and the same bytes when built again (into a second run folder).
#[test]
fn a_dataset_suite_is_built_deterministically() {
    let tmp = common::TempDir::new("datasets");
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, common::small_pricing("small", 10)).unwrap();
    let out = tmp.path().join("datasets");
    let args = [
        "dataset",
        "build",
        file.to_str().unwrap(),
        "--medium",
        "q_learning",
        "--medium-episodes",
        "1500",
        "--expert",
        "oracle",
        "--episodes",
        "2000",
        "--out",
        out.to_str().unwrap(),
    ];
    common::assert_success(&common::shoplab(&args, &[]));
    common::assert_success(&common::shoplab(&args, &[]));
    let runs = common::run_dirs(&out, "small");
    assert_eq!(runs.len(), 2);
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let (first, second) = (manifest(&runs[0]), manifest(&runs[1]));
    assert_eq!(
        first["csv_files"], second["csv_files"],
        "the same bytes twice"
    );
    let mut values = std::collections::BTreeMap::new();
    for entry in first["datasets"].as_array().unwrap() {
        let name = entry["file"].as_str().unwrap();
        let path = runs[0].join(name);
        let bytes = std::fs::read(&path).unwrap();
        let listed = first["csv_files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap();
        use sha2::Digest;
        assert_eq!(
            listed["sha256"],
            format!("{:x}", sha2::Sha256::digest(&bytes))
        );
        let log = shoplab_logs::parquet::read_log(
            &path,
            &shoplab_logs::ReadOptions { n_actions: Some(5) },
        )
        .unwrap();
        assert_eq!(log.len() as u64, entry["rows"].as_u64().unwrap());
        if name == "expert.parquet" {
            // ε = 0.1 over 5 prices: 0.02, or 0.92 on the oracle's price.
            assert!(
                log.propensity
                    .iter()
                    .all(|&p| (p - 0.02).abs() < 1e-12 || (p - 0.92).abs() < 1e-12)
            );
        }
        values.insert(
            name.trim_end_matches(".parquet").to_string(),
            (
                entry["value_per_session"].as_f64().unwrap(),
                entry["value_se"].as_f64().unwrap(),
            ),
        );
    }
    assert_eq!(values.len(), 5);
    for (better, worse) in [("expert", "medium"), ("medium", "random")] {
        let ((a, sa), (b, sb)) = (values[better], values[worse]);
        assert!(
            a - b > 4.0 * (sa * sa + sb * sb).sqrt(),
            "{better} {a} vs {worse} {b}"
        );
    }
}

/// Must-hold 1 of issue #14, on the pricing suite (`q_learning` after
/// 2,000 episodes as `medium`, the DP oracle as `expert`, ε = 0.1, 1,000
/// seasons each): 5 seeds of each learner (5,000 gradient steps, 64-64,
/// batch 256, γ = 1), each played greedily on 200 held-out seasons.
/// - On `medium` (behaviour 79.8 a season, well below V* ≈ 87.8), the 95%
///   intervals over seeds (Student t, 4 degrees of freedom) of CQL (α = 1)
///   and BCQ (τ = 0.3) lie above the behaviour's own 95% interval and above
///   naive offline DQN's, whose mean falls below the behaviour's value:
///   without a constraint, the greedy max over actions the data hardly
///   covers picks overestimated prices (measured: CQL 84.9–86.3, BCQ
///   84.9–85.8, DQN 71.0–81.6).
/// - On `expert` (83.8), behaviour cloning reaches at least 95% of the
///   behaviour's value (measured: 87.4, the noise removed).
#[test]
fn cql_and_bcq_beat_the_behaviour_and_naive_dqn_on_medium_data() {
    use rayon::prelude::*;
    use shoplab_harness::datasets::{SuiteSpec, build};
    use shoplab_policy::offline::neural::{Algorithm, OfflineConfig, OfflineLearner};
    let p =
        shoplab_harness::load(Path::new("scenarios/pricing.toml"), &Registry::default()).unwrap();
    let index = |n: &str| p.names.iter().position(|x| x == n).unwrap();
    let spec = SuiteSpec {
        medium: index("q_learning"),
        medium_episodes: 2000,
        expert: index("oracle"),
        expert_episodes: 0,
        epsilon: 0.1,
        episodes: 1000,
        seed: 0,
    };
    let suite = build(&p, &spec).unwrap();
    let dataset = |name: &str| suite.iter().find(|d| d.name == name).unwrap();
    let (medium, expert) = (dataset("medium"), dataset("expert"));
    let (medium_data, expert_data) = (medium.log.transitions(), expert.log.transitions());
    let jobs: Vec<(&str, Algorithm, u64)> = [
        ("cql", Algorithm::Cql { alpha: 1.0 }),
        ("bcq", Algorithm::Bcq { tau: 0.3 }),
        ("dqn", Algorithm::Dqn),
        ("bc", Algorithm::Bc),
    ]
    .into_iter()
    .flat_map(|(name, a)| (0..5).map(move |seed| (name, a, seed)))
    .collect();
    let values: Vec<(&str, f64)> = jobs
        .par_iter()
        .map(|&(name, algorithm, seed)| {
            let data = if name == "bc" {
                &expert_data
            } else {
                &medium_data
            };
            let config = OfflineConfig {
                algorithm,
                gamma: 1.0,
                seed,
                ..OfflineConfig::default()
            };
            let mut learner = OfflineLearner::new(config, data, 8).unwrap();
            for _ in 0..5000 {
                learner.train_step(data).unwrap();
            }
            let mut env = p.make_env();
            let e = shoplab_harness::runner::evaluate(
                &p,
                &mut env,
                &mut learner,
                |k| 50_000 + k,
                200,
                (0, 1),
            )
            .unwrap();
            (name, e.returns.iter().sum::<f64>() / e.returns.len() as f64)
        })
        .collect();
    // Mean and 95% t-interval half-width over the 5 seeds.
    let interval = |name: &str| {
        let v: Vec<f64> = values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .collect();
        let k = v.len() as f64;
        let mean = v.iter().sum::<f64>() / k;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        (mean, 2.776 * sd / k.sqrt())
    };
    let behaviour_high = medium.value.0 + 1.96 * medium.value.1;
    let (dqn, dqn_half) = interval("dqn");
    assert!(
        dqn < medium.value.0,
        "naive DQN {dqn} vs behaviour {}",
        medium.value.0
    );
    for name in ["cql", "bcq"] {
        let (mean, half) = interval(name);
        assert!(
            mean - half > behaviour_high,
            "{name} {mean} ± {half} vs behaviour {:?}",
            medium.value
        );
        assert!(
            mean - half > dqn + dqn_half,
            "{name} {mean} ± {half} vs DQN {dqn} ± {dqn_half}"
        );
    }
    let (bc, _) = interval("bc");
    assert!(
        bc >= 0.95 * expert.value.0,
        "BC {bc} vs expert behaviour {:?}",
        expert.value
    );
}

/// Must-hold 3: the seed article's two readings differ as the analysis
/// predicts. On the log of `scenarios/seed-article.toml` (its `medium`
/// dataset), with the article's network and optimiser, for 3 seeds each
/// trained 20 epochs (12,500 steps):
/// - as written, every target's logged entry is 0, so the fitted values of
///   the logged pairs shrink toward 0: their mean absolute value over the
///   log ends below 0.05 (a twentieth of a click; measured 0.0008–0.0009);
/// - the untrained network of the same seed (the same initialisation) is
///   its reference: the trained policy is no better online than that
///   network's argmax. Each is played on the same 4 evaluation episodes
///   (400 sessions); a mean session return near 1 with a per-session s.d.
///   near 1.5 gives a standard error of about 0.08 per policy, and the
///   test allows the as-written mean over the 3 seeds to exceed the
///   untrained one's by at most 0.15 (about 3 standard errors of the
///   difference of 3-seed means; measured 0.78 against 0.84);
/// - as intended, rewards enter the targets: the mean value of the logged
///   pairs moves away from 0 (above 0.5; measured 7.5–9.3, already above
///   what a session's clicks are worth, about 2: bootstrapping from the max
///   over 100 items the log hardly covers overestimates, and the full
///   scenario's 100 epochs take it to hundreds).
#[test]
fn the_seed_article_as_written_learns_nothing() {
    use shoplab_policy::offline::neural::{Algorithm, OfflineConfig, OfflineLearner, Sampling};
    let p = shoplab_harness::load(
        Path::new("scenarios/seed-article.toml"),
        &Registry::default(),
    )
    .unwrap();
    let offline = p.offline().expect("the scenario's log");
    let data = &offline.data.transitions;
    assert_eq!(data.dim, 10, "10 state features");
    let mean_abs_q = |l: &OfflineLearner| {
        (0..data.len())
            .map(|i| f64::from(l.values(data.obs_of(i)).unwrap()[data.action[i] as usize]).abs())
            .sum::<f64>()
            / data.len() as f64
    };
    let value = |l: &mut OfflineLearner| {
        let mut env = p.make_env();
        let e =
            shoplab_harness::runner::evaluate(&p, &mut env, l, |k| 90_000 + k, 4, (0, 1)).unwrap();
        e.returns.iter().sum::<f64>() / e.returns.len() as f64
    };
    let per_epoch = data.len().div_ceil(32) as u64;
    let (mut written, mut untrained) = (0.0, 0.0);
    for seed in 0..3u64 {
        let config = |as_written| OfflineConfig {
            algorithm: Algorithm::Article { as_written },
            hidden: vec![128],
            batch_size: 32,
            learning_rate: 1e-3,
            gamma: 0.9,
            target_update_interval: per_epoch,
            max_grad_norm: f64::MAX,
            sampling: Sampling::Epochs,
            seed,
        };
        let mut learner = OfflineLearner::new(config(true), data, 100).unwrap();
        untrained += value(&mut learner) / 3.0;
        for _ in 0..20 * per_epoch {
            learner.train_step(data).unwrap();
        }
        let shrunk = mean_abs_q(&learner);
        assert!(
            shrunk < 0.05,
            "seed {seed}: mean |Q| of logged pairs {shrunk}"
        );
        written += value(&mut learner) / 3.0;
        let mut intended = OfflineLearner::new(config(false), data, 100).unwrap();
        for _ in 0..20 * per_epoch {
            intended.train_step(data).unwrap();
        }
        let grown = (0..data.len())
            .map(|i| f64::from(intended.values(data.obs_of(i)).unwrap()[data.action[i] as usize]))
            .sum::<f64>()
            / data.len() as f64;
        assert!(grown > 0.5, "seed {seed}: mean Q of logged pairs {grown}");
    }
    assert!(
        written <= untrained + 0.15,
        "as written {written} vs its initialisation's argmax {untrained}"
    );
}
