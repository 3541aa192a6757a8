//! Speed benchmarks for shoplab: `cargo bench --bench speed`.
//!
//! Measures, on this machine:
//! 1. simulated shopper purchase decisions per second in the pricing world
//!    (arrival, WTP draw, decision, sale, departure; one core);
//! 2. tabular Q-learning updates per second (discretising both observations
//!    and applying the update; one core);
//! 3. the speed-up of a 2-thread sweep of seeded pricing runs over 1 thread,
//!    checking on the way that both give identical results;
//! 4. recommendation shopper-steps per second with a random policy (100
//!    candidate items, `dim` 20, slates of 10, 1,000 concurrent sessions; one
//!    core, the policy's slate draws included);
//! 5. memory per concurrent shopper: the growth of the process's resident
//!    memory when a 200,000-session recommendation world is built and reset;
//! 6. ad auctions simulated per second (arrival, competing bid, auction,
//!    budget check, click and conversion; one core), on `scenarios/ads.toml`
//!    with a budget large enough that every auction is entered;
//! 7. DQN gradient updates per second on one thread for an MLP
//!    32→128→128→50 (sample a minibatch, target-network max, Huber loss,
//!    backward pass, gradient-norm clipping, Adam), at batch 64 and 256;
//! 8. DQN training throughput on `scenarios/pricing.toml`: environment
//!    steps per second with its `dqn` settings (train_freq 4), acting,
//!    storing and learning included, one thread;
//! 9. (`-- scenarios`) every shipped scenario end to end, policy by policy:
//!    decisions per second of one training run through the harness's
//!    runner on one thread;
//! 11. (`-- logs`, also in the full run) logged data: `shoplab log`'s rows
//!     per second for pricing (ε-greedy, simulation and learning included,
//!     about a million rows), and the reader's rows per second on that log;
//! 12. (`-- ope`, also in the full run) IPW and SNIPW over 10 million
//!     logged decisions (two actions), decisions per second, one core;
//! 13. (`-- offline`, also in the full run) offline training: discrete
//!     CQL's gradient steps per second with the pricing network (3 inputs,
//!     64-64, 8 actions) at batch 256 on a pricing log, one thread;
//! 10. (`-- like-for-like`, also in the full run) the peers' own workloads
//!     on one core: RecSim's interest evolution (user-steps per second,
//!     random slates; `scenarios/bench/recsim-interest-evolution*.toml`)
//!     and AuctionGym's `SP_Oracle` market (auctions per second, the
//!     policy's advertiser bidding truthfully as AuctionGym's do;
//!     `scenarios/bench/auctiongym-sp-oracle*.toml`), each one session per
//!     call as the peer steps it, and batched.
//!
//! Each figure is the median of several repetitions, to damp the noise of a
//! shared machine.

use rand::RngExt;
use shoplab_env::{Env, Observation, batch::BatchEnv, seed::rng_from_seed};
use shoplab_harness::{runner, scenario};
use shoplab_policy::{Policy, Transition, random::UniformRandom, tabular_q::TabularQ};
use shoplab_sim::{
    ads::AdsEnv,
    arrivals::ArrivalRate,
    population::{Segment, Wtp},
    pricing::{PricingConfig, PricingEnv},
    recommendation::{RecommendationConfig, RecommendationEnv},
};
use std::{hint::black_box, path::Path, time::Instant};

// As in the `shoplab` binary: candle allocates per tensor op.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prints the DQN figures.
fn dqn_figures() {
    for batch in [64, 256] {
        println!(
            "DQN gradient updates per second, MLP 32→128→128→50, batch {batch} (1 thread): {:.0}",
            dqn_updates(batch)
        );
    }
    let (steps, described) = dqn_env_steps();
    println!(
        "DQN training on scenarios/pricing.toml ({described}): {steps:.0} env steps per second (1 thread)"
    );
}

/// DQN gradient updates per second, one thread, MLP 32→128→128→50.
fn dqn_updates(batch_size: usize) -> f64 {
    use shoplab_env::{Feature, ObservationSpace};
    use shoplab_policy::dqn::{Dqn, DqnConfig};
    let space = ObservationSpace {
        features: (0..32)
            .map(|_| Feature {
                name: "x",
                low: -1.0,
                high: 1.0,
                integer: false,
                suggested_bins: 1,
            })
            .collect(),
    };
    let config = DqnConfig {
        hidden: vec![128, 128],
        batch_size,
        buffer_size: 10_000,
        // Fill the buffer without training, then time the updates alone.
        learning_starts: 10_000,
        ..DqnConfig::default()
    };
    let mut dqn = Dqn::new(config, &space, 50, 1).expect("valid benchmark config");
    let mut rng = rng_from_seed(3);
    let mut random_obs = || Observation {
        features: (0..32).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
    };
    for i in 0..9_999 {
        let (obs, next_obs) = (random_obs(), random_obs());
        dqn.learn(&Transition {
            slot: 0,
            obs: &obs,
            action: i % 50,
            reward: (i % 7) as f64 / 7.0,
            next_obs: &next_obs,
            terminated: i % 100 == 99,
            truncated: false,
        });
    }
    let updates = if batch_size <= 64 { 1_000 } else { 400 };
    for _ in 0..50 {
        dqn.train_step().expect("update");
    }
    let rates: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..updates {
                dqn.train_step().expect("update");
            }
            updates as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// DQN training steps per second on the pricing scenario, one thread.
fn dqn_env_steps() -> (f64, String) {
    let file = Path::new("scenarios/pricing.toml");
    let prepared = shoplab_harness::load(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/pricing.toml is valid");
    let index = prepared
        .names
        .iter()
        .position(|n| n == "dqn")
        .expect("scenarios/pricing.toml has a dqn policy");
    let config = prepared.scenario.policies[index]
        .config::<shoplab_policy::dqn::DqnConfig>()
        .expect("the policy named dqn is a dqn");
    let described = format!(
        "hidden {:?}, batch {}, train_freq {}",
        config.hidden, config.batch_size, config.train_freq
    );
    let shoplab_env::EnvBox::Single(mut env) = prepared.make_env() else {
        unreachable!("pricing is a single-session env")
    };
    let episodes = 2_000;
    let rates: Vec<f64> = (0..5)
        .map(|rep| {
            let mut agent = prepared.make_policy(index, rep).expect("dqn builds");
            let start = Instant::now();
            let steps = shoplab_policy::train(env.as_mut(), agent.as_mut(), episodes);
            steps as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    (median(rates), described)
}

/// End-to-end throughput of every shipped scenario, policy by policy: one
/// training run (its first seed, all its episodes, no greedy evaluations)
/// through the harness's own runner on one thread, as a user's
/// run does it — env, policy acting and learning, records — and its
/// decisions per second (steps, times the sessions stepped together).
fn scenario_throughput() {
    let registry = shoplab_harness::registry::Registry::default();
    let mut files: Vec<_> = std::fs::read_dir("scenarios")
        .expect("run from the repository root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    println!(
        "shipped scenarios, one training run per policy (first seed, every episode, 1 thread):"
    );
    println!(
        "{:<40} {:<30} {:>9} {:>9} {:>14}",
        "scenario", "policy", "episodes", "seconds", "decisions/s"
    );
    for file in files {
        let parsed = scenario::read(&file, &registry).expect("shipped scenarios parse");
        for index in 0..parsed.policies.len() {
            let mut one = parsed.clone();
            let name = one.policy_names()[index].clone();
            one.policies = vec![one.policies[index].clone()];
            one.run.seeds = vec![one.run.seeds[0]];
            one.run.eval_episodes = 0;
            let prepared = shoplab_harness::prepared::Prepared::new(one, &file)
                .expect("shipped scenarios are valid");
            let start = Instant::now();
            let results = pool.install(|| runner::run_all(&prepared, &|_| {}));
            let seconds = start.elapsed().as_secs_f64();
            let decisions: u64 = results[0].episodes.iter().map(|e| e.decisions).sum();
            println!(
                "{:<40} {:<30} {:>9} {:>9.2} {:>14.0}",
                file.display(),
                name,
                results[0].episodes.len(),
                seconds,
                decisions as f64 / seconds
            );
        }
    }
}

/// The family table of type `T` in the scenario file `path`.
fn bench_config<T: Clone + 'static>(path: &str) -> T {
    let parsed = scenario::read(
        Path::new(path),
        &shoplab_harness::registry::Registry::default(),
    )
    .unwrap_or_else(|e| panic!("{path} parses: {e}"));
    parsed
        .family
        .config::<T>()
        .cloned()
        .unwrap_or_else(|| panic!("{path} has the expected family table"))
}

/// Plays `env` with `act` (one slate per slot, written into the slice)
/// for at least `work` units of metric `unit`, resetting at each episode's
/// end; the median over 7 repetitions of units per second.
fn batch_rate(
    env: &mut dyn BatchEnv,
    unit: usize,
    work: f64,
    act: &mut dyn FnMut(&Observation, &mut [usize]),
) -> f64 {
    let (n, k) = (env.batch_size(), env.slate_size());
    let mut slates = vec![0; n * k];
    let rates: Vec<f64> = (0..7)
        .map(|rep| {
            let (mut obs, _) = env.reset(rep);
            let start = Instant::now();
            let mut done = 0.0;
            while done < work {
                for (s, o) in obs.iter().enumerate() {
                    act(o, &mut slates[s * k..(s + 1) * k]);
                }
                let step = env.step(&slates);
                done += step.info[unit];
                obs = if step.episode_over {
                    env.reset(rep + 100).0
                } else {
                    step.obs
                };
            }
            done / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// Logged data: writing a pricing log of about a million rows with
/// `shoplab log`'s own function, then reading it back whole; one core, the
/// median of 3.
fn logs() {
    let file = Path::new("scenarios/pricing.toml");
    let prepared = shoplab_harness::load(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/pricing.toml is valid");
    let index = prepared
        .names
        .iter()
        .position(|n| n == "epsilon_greedy")
        .expect("scenarios/pricing.toml has an epsilon_greedy policy");
    let dir = std::env::temp_dir().join(format!("shoplab-bench-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    for format in ["csv", "parquet"] {
        let (mut writes, mut reads, mut rows) = (Vec::new(), Vec::new(), 0);
        for rep in 0..3 {
            let out = dir.join(format!("log{rep}.{format}"));
            let start = Instant::now();
            let summary = shoplab_harness::logging::log_policy(&prepared, index, 60_000, rep, &out)
                .expect("logging works");
            writes.push(summary.rows as f64 / start.elapsed().as_secs_f64());
            let start = Instant::now();
            let log = shoplab_logs::parquet::read_log(&out, &shoplab_logs::ReadOptions::default())
                .expect("the log reads back");
            reads.push(log.len() as f64 / start.elapsed().as_secs_f64());
            rows = log.len();
        }
        println!(
            "logged data ({format}): `shoplab log` of pricing (epsilon_greedy, {rows} rows): {:.2} million rows/s; reading it back: {:.2} million rows/s (1 core)",
            median(writes) / 1e6,
            median(reads) / 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// IPW and SNIPW over 10 million logged decisions of two actions, one
/// core: each estimate's decisions per second (median of 5), the round
/// rewards included.
fn ope() {
    use shoplab_logs::ope::{Estimator, Rounds};
    let n = 10_000_000;
    let mut rng = rng_from_seed(9);
    let action: Vec<u32> = (0..n).map(|_| rng.random_range(0..2)).collect();
    let reward: Vec<f64> = (0..n)
        .map(|_| f64::from(u8::from(rng.random_bool(0.3))))
        .collect();
    let propensity = vec![0.5; n];
    let target: Vec<f64> = (0..n).flat_map(|_| [0.2, 0.8]).collect();
    let rounds = Rounds {
        reward: &reward,
        action: &action,
        propensity: &propensity,
        target: &target,
        estimated: None,
        n_actions: 2,
    };
    for estimator in [
        Estimator::Ipw {
            lambda: f64::INFINITY,
        },
        Estimator::Snipw,
    ] {
        let rates: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                black_box(estimator.estimate(&rounds));
                n as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        println!(
            "off-policy evaluation: {} over 10 million logged decisions: {:.0} million decisions/s (1 core)",
            estimator.name(),
            median(rates) / 1e6
        );
    }
}

/// Discrete CQL's gradient steps per second on a pricing log of random
/// prices (about 150,000 rows), the pricing network at batch 256, one
/// thread (median of 5 runs of 500 steps).
fn offline() {
    use shoplab_policy::offline::neural::{Algorithm, OfflineConfig, OfflineLearner};
    let file = Path::new("scenarios/pricing.toml");
    let prepared = shoplab_harness::load(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/pricing.toml is valid");
    let random = prepared
        .names
        .iter()
        .position(|n| n == "random")
        .expect("a random policy");
    let (log, _) = shoplab_harness::logging::log_in_memory(&prepared, random, 10_000, 1)
        .expect("logging works");
    let data = log.transitions();
    let config = OfflineConfig {
        algorithm: Algorithm::Cql { alpha: 1.0 },
        hidden: vec![64, 64],
        batch_size: 256,
        ..OfflineConfig::default()
    };
    let rates: Vec<f64> = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool")
        .install(|| {
            (0..5)
                .map(|_| {
                    let mut learner =
                        OfflineLearner::new(config.clone(), &data, 8).expect("a learner");
                    let start = Instant::now();
                    for _ in 0..500 {
                        black_box(learner.train_step(&data).expect("a step"));
                    }
                    500.0 / start.elapsed().as_secs_f64()
                })
                .collect()
        });
    println!(
        "offline training: discrete CQL, pricing network 3→64→64→8, batch 256, {} rows: {:.0} gradient steps/s (1 thread)",
        data.len(),
        median(rates)
    );
}

/// The like-for-like rows: the peers' workloads, one session per call and
/// batched, one core.
fn like_for_like() {
    use shoplab_sim::{
        auction_market::{AuctionMarketConfig, AuctionMarketEnv},
        interest_evolution::{InterestEvolutionConfig, InterestEvolutionEnv},
    };
    println!("like-for-like workloads (1 core):");
    for (file, label) in [
        (
            "scenarios/bench/recsim-interest-evolution.toml",
            "1 user per call",
        ),
        (
            "scenarios/bench/recsim-interest-evolution-batched.toml",
            "batched",
        ),
    ] {
        let config: InterestEvolutionConfig = bench_config(file);
        let n = config.candidates as usize;
        let sessions = config.concurrent_sessions;
        let mut env = InterestEvolutionEnv::new(config.validate().expect("valid"));
        let mut policy = UniformRandom::new(n, 3);
        let mut slate = Vec::new();
        let rate = batch_rate(&mut env, 0, 300_000.0, &mut |o, out| {
            policy.act_slate(o, out.len(), n, &mut slate);
            out.copy_from_slice(&slate);
        });
        println!(
            "  RecSim interest evolution ({file}), {label} ({sessions}), random slates: {:.3} million user-steps per second",
            rate / 1e6
        );
    }
    for (file, label) in [
        (
            "scenarios/bench/auctiongym-sp-oracle.toml",
            "1 market per call",
        ),
        (
            "scenarios/bench/auctiongym-sp-oracle-batched.toml",
            "batched",
        ),
    ] {
        let config: AuctionMarketConfig = bench_config(file);
        let truthful = config
            .bid_multipliers
            .iter()
            .position(|&m| m == 1.0)
            .expect("the benchmark's multipliers include 1");
        let markets = config.concurrent_markets;
        let mut env = AuctionMarketEnv::new(config.validate().expect("valid"));
        let rate = batch_rate(&mut env, 1, 1_000_000.0, &mut |_, out| {
            out[0] = truthful;
        });
        println!(
            "  AuctionGym SP_Oracle ({file}), {label} ({markets}), truthful bids: {:.3} million auctions per second",
            rate / 1e6
        );
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Shopper purchase decisions per second, one core.
fn purchase_decisions() -> f64 {
    let config = PricingConfig {
        horizon: 10,
        inventory: 1_000_000,
        cost: 0.5,
        salvage_value: 0.0,
        price_grid: vec![1.0, 2.0, 3.0],
        arrival_rate: ArrivalRate::Constant { rate: 20_000.0 },
        segments: vec![
            Segment {
                name: "a".into(),
                share: 0.7,
                share_end: None,
                wtp: Wtp::Logit {
                    alpha: 2.0,
                    beta: 1.0,
                },
            },
            Segment {
                name: "b".into(),
                share: 0.3,
                share_end: None,
                wtp: Wtp::Lognormal {
                    mu: 1.1,
                    sigma: 0.35,
                },
            },
        ],
    };
    let mut env = PricingEnv::new(config.validate().expect("valid benchmark config"));
    let rates: Vec<f64> = (0..9)
        .map(|rep| {
            let start = Instant::now();
            let mut shoppers = 0.0;
            for episode in 0..20 {
                env.reset(rep * 100 + episode);
                loop {
                    let step = env.step(1);
                    shoppers += step.info[0];
                    if step.done() {
                        break;
                    }
                }
            }
            shoppers / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// Tabular Q-learning updates per second, one core.
fn q_updates() -> f64 {
    let config = PricingConfig {
        horizon: 20,
        inventory: 40,
        cost: 0.5,
        salvage_value: 0.25,
        price_grid: (1..=8).map(|i| 0.5 * f64::from(i)).collect(),
        arrival_rate: ArrivalRate::Constant { rate: 5.0 },
        segments: vec![Segment {
            name: String::new(),
            share: 1.0,
            share_end: None,
            wtp: Wtp::Logit {
                alpha: 2.0,
                beta: 1.0,
            },
        }],
    };
    let env = PricingEnv::new(config.validate().expect("valid benchmark config"));
    let mut q = TabularQ::new(Default::default(), env.observation_space(), 8, 1)
        .expect("valid Q-learning config");
    let mut rng = rng_from_seed(5);
    let observations: Vec<Observation> = (0..4096)
        .map(|_| Observation {
            features: vec![
                rng.random_range(0..20) as f32,
                rng.random_range(0..=40) as f32,
                rng.random_range(0..10) as f32,
            ],
        })
        .collect();
    let n = 4_000_000;
    let rates: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                let obs = &observations[i % 4096];
                let next = &observations[(i * 7 + 1) % 4096];
                q.learn(&Transition {
                    slot: 0,
                    obs,
                    action: i % 8,
                    reward: (i % 13) as f64,
                    next_obs: next,
                    terminated: i % 20 == 19,
                    truncated: false,
                });
            }
            black_box(q.greedy(&observations[0]));
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// Seconds for a sweep of pricing runs with `threads` threads, and its results.
fn sweep(
    prepared: &shoplab_harness::prepared::Prepared,
    threads: usize,
) -> (f64, Vec<runner::RunResult>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let start = Instant::now();
    let results = pool.install(|| runner::run_all(prepared, &|_| {}));
    (start.elapsed().as_secs_f64(), results)
}

/// A recommendation scenario of the benchmark's size.
fn recommendation_config(sessions: u32) -> RecommendationConfig {
    let file = Path::new("scenarios/recommendation.toml");
    let parsed = scenario::read(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/recommendation.toml parses");
    let mut config = parsed
        .family
        .config::<shoplab_sim::recommendation::RecommendationConfig>()
        .cloned()
        .expect("a [recommendation] table");
    config.n_items = 100;
    config.dim = 20;
    config.slate_size = 10;
    config.concurrent_sessions = sessions;
    config.ticks = 50;
    config
}

/// Recommendation shopper-steps per second with a random policy, one core.
fn recommendation_steps() -> f64 {
    let config = recommendation_config(1_000);
    let model = config
        .validate(Path::new("."))
        .expect("valid benchmark config");
    let mut env = RecommendationEnv::new(model);
    let mut policy = UniformRandom::new(100, 3);
    let (n, k) = (env.batch_size(), env.slate_size());
    let mut slates = vec![0; n * k];
    let mut slate = Vec::new();
    let rates: Vec<f64> = (0..7)
        .map(|rep| {
            let (mut obs, _) = env.reset(rep);
            let start = Instant::now();
            let mut steps = 0.0;
            loop {
                for (s, o) in obs.iter().enumerate() {
                    policy.act_slate(o, k, 100, &mut slate);
                    slates[s * k..(s + 1) * k].copy_from_slice(&slate);
                }
                let step = env.step(&slates);
                steps += step.info[0];
                obs = step.obs;
                if step.episode_over {
                    break;
                }
            }
            steps / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// Ad auctions simulated per second, one core.
fn auctions() -> f64 {
    let file = Path::new("scenarios/ads.toml");
    let parsed = scenario::read(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/ads.toml parses");
    let mut config = parsed
        .family
        .config::<shoplab_sim::ads::AdsConfig>()
        .cloned()
        .expect("an [ads] table");
    config.budget = 1e9;
    config.opportunities = ArrivalRate::Constant { rate: 20_000.0 };
    let mut env = AdsEnv::new(config.validate().expect("valid benchmark config"));
    let rates: Vec<f64> = (0..7)
        .map(|rep| {
            env.reset(rep);
            let start = Instant::now();
            let mut count = 0.0;
            loop {
                let step = env.step(4);
                count += step.info[0];
                if step.done() {
                    break;
                }
            }
            count / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

/// Resident memory of this process, in bytes (Linux; None elsewhere).
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0)
}

/// Bytes of resident memory per concurrent shopper: world, components,
/// per-shopper buffers and the observations handed to the policy.
fn memory_per_shopper() -> Option<f64> {
    let sessions = 200_000;
    let model = recommendation_config(sessions)
        .validate(Path::new("."))
        .expect("valid benchmark config");
    let before = resident_bytes()?;
    let mut env = RecommendationEnv::new(model);
    let (obs, _) = env.reset(1);
    let after = resident_bytes()?;
    black_box(&obs);
    Some((after - before) / f64::from(sessions))
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("shoplab speed benchmark ({cores} cores available; medians of repeated runs)");
    // `cargo bench --bench speed -- dqn` runs only the DQN figures;
    // `-- scenarios` only the shipped scenarios' throughput; `-- memory`
    // only the memory per concurrent shopper.
    if std::env::args().skip(1).any(|a| a == "dqn") {
        return dqn_figures();
    }
    if std::env::args().skip(1).any(|a| a == "scenarios") {
        return scenario_throughput();
    }
    if std::env::args().skip(1).any(|a| a == "like-for-like") {
        return like_for_like();
    }
    if std::env::args().skip(1).any(|a| a == "logs") {
        return logs();
    }
    if std::env::args().skip(1).any(|a| a == "ope") {
        return ope();
    }
    if std::env::args().skip(1).any(|a| a == "offline") {
        return offline();
    }
    if std::env::args().skip(1).any(|a| a == "memory") {
        let bytes = memory_per_shopper().unwrap_or(f64::NAN);
        return println!("recommendation: resident bytes per concurrent shopper: {bytes:.0}");
    }

    let decisions = purchase_decisions();
    println!(
        "pricing: shopper purchase decisions per second (1 core): {:.2} million",
        decisions / 1e6
    );

    let updates = q_updates();
    println!(
        "tabular Q-learning updates per second (1 core):          {:.1} million",
        updates / 1e6
    );

    let memory = memory_per_shopper();

    let file = Path::new("scenarios/pricing.toml");
    let mut parsed = scenario::read(file, &shoplab_harness::registry::Registry::default())
        .expect("scenarios/pricing.toml parses");
    parsed.run.episodes = 3_000;
    parsed.run.seeds = (1..=16).collect();
    // The sweep measures the tabular and baseline runs; DQN has its own figures.
    parsed.run.eval_episodes = 0;
    parsed.policies.retain(|p| p.kind() != "dqn");
    let prepared = shoplab_harness::prepared::Prepared::new(parsed, file)
        .expect("scenarios/pricing.toml is valid");
    let runs = prepared.names.len() * prepared.scenario.run.seeds.len();
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..5 {
        let (t1, r1) = sweep(&prepared, 1);
        let (t2, r2) = sweep(&prepared, 2);
        assert_eq!(r1, r2, "results must not depend on the thread count");
        one.push(t1);
        two.push(t2);
    }
    let (t1, t2) = (median(one), median(two));
    println!(
        "sweep of {runs} pricing runs × 3,000 episodes: 1 thread {t1:.2} s, 2 threads {t2:.2} s, speed-up {:.2}× (identical results)",
        t1 / t2
    );

    let rec = recommendation_steps();
    println!(
        "recommendation: shopper-steps per second, random policy, 100 items, dim 20, slate 10 (1 core): {:.2} million",
        rec / 1e6
    );
    println!(
        "ads: auctions simulated per second (1 core): {:.2} million",
        auctions() / 1e6
    );
    like_for_like();
    logs();
    ope();
    offline();
    dqn_figures();
    match memory {
        Some(bytes) => println!(
            "recommendation: memory per concurrent shopper (200,000 sessions, dim 20, 10 topics): {bytes:.0} bytes"
        ),
        None => println!("recommendation: memory per shopper not measured (no /proc/self/statm)"),
    }
}
