//! Every policy that reports its action probabilities reports the ones its
//! `act` draws from: on a fixed state, `N` calls of `act` count each action
//! `c_a ~ Binomial(N, p_a)`, so `|c_a − N·p_a|` stays within 5 standard
//! deviations `√(N·p_a·(1 − p_a))` (a false alarm rate under 6·10⁻⁷ per
//! action) plus 1 for rounding; Thompson sampling's estimated `p̂_a` adds its
//! own Monte Carlo variance `N²·p(1 − p)/(draws + 1)`.

use rand::RngExt;
use shoplab_env::{Feature, Observation, ObservationSpace, seed::rng_from_seed};
use shoplab_policy::{
    Policy, Transition,
    dqn::{Dqn, DqnConfig, Exploration},
    epsilon_greedy::{EpsilonGreedy, EpsilonGreedyConfig},
    random::UniformRandom,
    schedule::LinearSchedule,
    tabular_q::{TabularQ, TabularQConfig},
    thompson::{PROPENSITY_DRAWS, Thompson},
    ucb::{Ucb1, Ucb1Config},
};

const N: usize = 20_000;
const ACTIONS: usize = 5;

fn space() -> ObservationSpace {
    ObservationSpace {
        features: vec![Feature {
            name: "x",
            low: 0.0,
            high: 3.0,
            integer: true,
            suggested_bins: 4,
        }],
    }
}

fn obs(x: f32) -> Observation {
    Observation { features: vec![x] }
}

/// Feeds `policy` transitions with action-dependent rewards, so its
/// estimates differ by action.
fn teach(policy: &mut dyn Policy, steps: usize) {
    let mut rng = rng_from_seed(5);
    for i in 0..steps {
        let (o, next) = (obs((i % 4) as f32), obs(((i + 1) % 4) as f32));
        let action = i % ACTIONS;
        let reward = if rng.random_bool(0.1 + 0.15 * action as f64) {
            1.0
        } else {
            0.0
        };
        policy.learn(&Transition {
            slot: 0,
            obs: &o,
            action,
            reward,
            next_obs: &next,
            terminated: i % 20 == 19,
            truncated: false,
        });
    }
}

/// `act`'s frequencies against the reported probabilities; `mc_draws` for
/// estimated ones.
fn check(name: &str, policy: &mut dyn Policy, mc_draws: Option<usize>) {
    let o = obs(2.0);
    let mut probs = Vec::new();
    let first = policy
        .act_logged(&o, &mut probs)
        .unwrap_or_else(|| panic!("{name}: no probabilities"));
    assert_eq!(probs.len(), ACTIONS, "{name}");
    assert!(
        (probs.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        "{name}: {probs:?}"
    );
    assert!(
        probs[first] > 0.0,
        "{name}: the action taken has probability 0"
    );
    let mut counts = [0usize; ACTIONS];
    for _ in 0..N {
        counts[policy.act(&o)] += 1;
    }
    let n = N as f64;
    for (a, (&c, &p)) in counts.iter().zip(&probs).enumerate() {
        let mut variance = n * p * (1.0 - p);
        if let Some(draws) = mc_draws {
            variance += n * n * (p * (1.0 - p)).max(1.0 / draws as f64) / (draws + 1) as f64;
        }
        let bound = 5.0 * variance.sqrt() + 1.0;
        assert!(
            (c as f64 - n * p).abs() <= bound,
            "{name}: action {a} taken {c} times in {N}, expected {:.1} ± {bound:.1} ({probs:?})",
            n * p
        );
    }
}

#[test]
fn reported_probabilities_are_the_ones_act_draws_from() {
    check("random", &mut UniformRandom::new(ACTIONS, 1), None);

    let mut eg = EpsilonGreedy::new(EpsilonGreedyConfig { epsilon: 0.3 }, ACTIONS, 2).unwrap();
    // Untried arms are pulled first, deterministically.
    check("epsilon_greedy (untried arms)", &mut eg, None);
    teach(&mut eg, 500);
    check("epsilon_greedy", &mut eg, None);

    let mut ucb = Ucb1::new(Ucb1Config { c: 1.0 }, ACTIONS).unwrap();
    teach(&mut ucb, 500);
    check("ucb1", &mut ucb, None);

    let config = TabularQConfig {
        epsilon: LinearSchedule {
            start: 0.4,
            end: 0.4,
            decay_fraction: 1.0,
        },
        ..TabularQConfig::default()
    };
    let mut q = TabularQ::new(config, &space(), ACTIONS, 3).unwrap();
    q.begin_episode(0, 10);
    teach(&mut q, 2_000);
    check("q_learning", &mut q, None);

    for exploration in [Exploration::EpsilonGreedy, Exploration::Boltzmann] {
        let config = DqnConfig {
            hidden: vec![16],
            batch_size: 16,
            learning_starts: 100,
            exploration,
            epsilon: LinearSchedule {
                start: 0.25,
                end: 0.25,
                decay_fraction: 1.0,
            },
            temperature: LinearSchedule {
                start: 0.5,
                end: 0.5,
                decay_fraction: 1.0,
            },
            ..DqnConfig::default()
        };
        let mut dqn = Dqn::new(config.clone(), &space(), ACTIONS, 4).unwrap();
        dqn.begin_episode(0, 10);
        check("dqn before learning starts (uniform)", &mut dqn, None);
        teach(&mut dqn, 600);
        check(&format!("dqn ({exploration:?})"), &mut dqn, None);
    }

    let mut ts = Thompson::new(ACTIONS, 6);
    teach(&mut ts, 60);
    check("thompson", &mut ts, Some(PROPENSITY_DRAWS));
}

/// `act_slate`'s position-wise frequencies against the reported slate
/// probabilities (the same 5-standard-deviation bound, position by
/// position), for slates of 3 of the 5 actions.
fn check_slates(name: &str, policy: &mut dyn Policy) {
    let (o, k) = (obs(2.0), 3);
    let mut probs = Vec::new();
    let mut slate = Vec::new();
    assert!(
        policy.act_slate_logged(&o, k, ACTIONS, &mut slate, &mut probs),
        "{name}: no slate probabilities"
    );
    assert_eq!(probs.len(), k * ACTIONS, "{name}");
    for j in 0..k {
        let row = &probs[j * ACTIONS..(j + 1) * ACTIONS];
        assert!(
            (row.iter().sum::<f64>() - 1.0).abs() < 1e-12,
            "{name}: {row:?}"
        );
        assert!(
            row[slate[j]] > 0.0,
            "{name}: a shown action has probability 0"
        );
    }
    let mut counts = vec![0usize; k * ACTIONS];
    for _ in 0..N {
        policy.act_slate(&o, k, ACTIONS, &mut slate);
        for (j, &a) in slate.iter().enumerate() {
            counts[j * ACTIONS + a] += 1;
        }
    }
    let n = N as f64;
    for (i, (&c, &p)) in counts.iter().zip(&probs).enumerate() {
        let bound = 5.0 * (n * p * (1.0 - p)).sqrt() + 1.0;
        assert!(
            (c as f64 - n * p).abs() <= bound,
            "{name}: action {} at position {} shown {c} times in {N}, expected {:.1} ± {bound:.1}",
            i % ACTIONS,
            i / ACTIONS,
            n * p
        );
    }
}

#[test]
fn reported_slate_probabilities_are_the_ones_act_slate_draws_from() {
    use shoplab_policy::fixed::Fixed;
    check_slates("random", &mut UniformRandom::new(ACTIONS, 1));
    let mut eg = EpsilonGreedy::new(EpsilonGreedyConfig { epsilon: 0.3 }, ACTIONS, 2).unwrap();
    check_slates("epsilon_greedy (untried arms)", &mut eg);
    teach(&mut eg, 500);
    check_slates("epsilon_greedy", &mut eg);
    check_slates(
        "fixed_action 3, ε = 0.4",
        &mut Fixed::exploring(3, ACTIONS, 0.4, 7),
    );
    // A policy that does not report slate probabilities says so.
    let mut ucb = Ucb1::new(Ucb1Config { c: 1.0 }, ACTIONS).unwrap();
    let (mut slate, mut probs) = (Vec::new(), Vec::new());
    assert!(!ucb.act_slate_logged(&obs(0.0), 3, ACTIONS, &mut slate, &mut probs));
    assert!(slate.is_empty(), "nothing is drawn when it cannot tell");
}
