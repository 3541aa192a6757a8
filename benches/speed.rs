//! Speed benchmarks for shoplab: `cargo bench --bench speed`.
//!
//! Measures, on this machine:
//! 1. simulated shopper purchase decisions per second in the pricing world
//!    (arrival, WTP draw, decision, sale, departure; one core);
//! 2. tabular Q-learning updates per second (discretising both observations
//!    and applying the update; one core);
//! 3. the speed-up of a 2-thread sweep of seeded pricing runs over 1 thread,
//!    checking on the way that both give identical results.
//!
//! Each figure is the median of several repetitions, to damp the noise of a
//! shared machine.

use rand::RngExt;
use shoplab_env::{Env, Observation, seed::rng_from_seed};
use shoplab_harness::{runner, scenario};
use shoplab_policy::{Policy, Transition, tabular_q::TabularQ};
use shoplab_sim::{
    arrivals::ArrivalRate,
    population::{Segment, Wtp},
    pricing::{PricingConfig, PricingEnv},
};
use std::{hint::black_box, path::Path, time::Instant};

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
                wtp: Wtp::Logit {
                    alpha: 2.0,
                    beta: 1.0,
                },
            },
            Segment {
                name: "b".into(),
                share: 0.3,
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

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("shoplab speed benchmark ({cores} cores available; medians of repeated runs)");

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

    let file = Path::new("scenarios/pricing.toml");
    let mut parsed = scenario::read(file).expect("scenarios/pricing.toml parses");
    parsed.run.episodes = 1_000;
    parsed.run.seeds = (1..=16).collect();
    let prepared = shoplab_harness::prepared::Prepared::new(parsed, file)
        .expect("scenarios/pricing.toml is valid");
    let runs = prepared.names.len() * prepared.scenario.run.seeds.len();
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..3 {
        let (t1, r1) = sweep(&prepared, 1);
        let (t2, r2) = sweep(&prepared, 2);
        assert_eq!(r1, r2, "results must not depend on the thread count");
        one.push(t1);
        two.push(t2);
    }
    let (t1, t2) = (median(one), median(two));
    println!(
        "sweep of {runs} pricing runs × 1,000 episodes: 1 thread {t1:.2} s, 2 threads {t2:.2} s, speed-up {:.2}× (identical results)",
        t1 / t2
    );
}
