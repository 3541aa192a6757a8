//! An offline dataset suite, D4RL-style, built deterministically from a
//! scenario: `shoplab dataset build`.
//!
//! Five logs of the scenario's env, each in the log format with exact
//! propensities:
//! - `random`: a uniformly random policy;
//! - `medium-replay`: the training run of a learning policy of the
//!   scenario (`medium`, for `medium_episodes`), as it explored and learned;
//! - `medium`: that partially trained policy, frozen, greedy with ε-uniform
//!   noise;
//! - `expert`: a strong policy of the scenario (`expert`: an oracle, or a
//!   fully trained one), greedy with the same noise;
//! - `mixed`: `medium-replay` followed by `expert` (D4RL's medium-expert),
//!   the expert's episodes numbered after the replay's.
//!
//! Each but `medium-replay` and `mixed` is its behaviour's own on-policy
//! log, so its mean session return is the behaviour's value, reported with
//! its standard error over sessions; the replay's is the training run's
//! mean. A manifest lists every file with its rows, episodes, behaviour,
//! value and SHA-256. Every draw descends from the suite's seed.

use crate::{
    logging::{LoggingError, log_frozen, train_and_log},
    prepared::Prepared,
};
use shoplab_env::seed::derive_seed;
use shoplab_logs::Log;
use shoplab_policy::{noisy::Noisy, random::UniformRandom};

/// What the suite is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteSpec {
    /// The learning policy whose training run and partial result make
    /// `medium-replay` and `medium`.
    pub medium: usize,
    /// Its training episodes.
    pub medium_episodes: u32,
    /// The strong policy behind `expert`.
    pub expert: usize,
    /// The noise of `medium` and `expert`, in [0, 1].
    pub epsilon: f64,
    /// Episodes of `random`, `medium` and `expert`.
    pub episodes: u32,
    /// The suite's seed.
    pub seed: u64,
}

/// One dataset of the suite.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name (`random`, `medium`, …).
    pub name: &'static str,
    /// What played it.
    pub behaviour: String,
    /// The log.
    pub log: Log,
    /// Mean session return and its standard error over sessions.
    pub value: (f64, f64),
}

/// Builds the five datasets, in the order of the module's list.
pub fn build(prepared: &Prepared, spec: &SuiteSpec) -> Result<Vec<Dataset>, LoggingError> {
    let n_actions = prepared.make_env().action_space().n();
    let seed = |what: &str| derive_seed(spec.seed, &format!("dataset/{what}"), 0);
    let random = Box::new(UniformRandom::new(n_actions, seed("random policy")));
    let (random_log, _) = log_frozen(prepared, "random", random, spec.episodes, seed("random"))?;
    let medium_name = prepared.names[spec.medium].clone();
    let (replay, _, trained) = train_and_log(
        prepared,
        spec.medium,
        spec.medium_episodes,
        seed("medium-replay"),
    )?;
    let noisy =
        |inner, what: &str| Box::new(Noisy::new(inner, spec.epsilon, n_actions, seed(what)));
    let medium_behaviour = format!(
        "{medium_name} after {} training episodes, greedy, ε = {}",
        spec.medium_episodes, spec.epsilon
    );
    let (medium, _) = log_frozen(
        prepared,
        &medium_behaviour,
        noisy(trained, "medium policy"),
        spec.episodes,
        seed("medium"),
    )?;
    let expert_name = prepared.names[spec.expert].clone();
    let expert_policy = prepared
        .make_policy(spec.expert, seed("expert build"))
        .map_err(|e| LoggingError::Policy {
            policy: expert_name.clone(),
            message: e.to_string(),
        })?;
    let expert_behaviour = format!("{expert_name}, greedy, ε = {}", spec.epsilon);
    let (expert, _) = log_frozen(
        prepared,
        &expert_behaviour,
        noisy(expert_policy, "expert policy"),
        spec.episodes,
        seed("expert"),
    )?;
    let mixed = concatenate(&replay, &expert);
    let replay_behaviour = format!(
        "{medium_name}'s training run, {} episodes",
        spec.medium_episodes
    );
    let mixed_behaviour = format!("{replay_behaviour}, then {expert_behaviour}");
    Ok([
        ("random", "uniformly random".to_string(), random_log),
        ("medium", medium_behaviour, medium),
        ("medium-replay", replay_behaviour, replay),
        ("expert", expert_behaviour, expert),
        ("mixed", mixed_behaviour, mixed),
    ]
    .into_iter()
    .map(|(name, behaviour, log)| {
        let value = session_value(&log);
        Dataset {
            name,
            behaviour,
            log,
            value,
        }
    })
    .collect())
}

/// `a` then `b`, `b`'s episodes renumbered after `a`'s.
fn concatenate(a: &Log, b: &Log) -> Log {
    let offset = a.episode.iter().max().map_or(0, |e| e + 1);
    let mut out = a.clone();
    out.episode.extend(b.episode.iter().map(|e| e + offset));
    out.session.extend_from_slice(&b.session);
    out.step.extend_from_slice(&b.step);
    out.x.extend_from_slice(&b.x);
    out.action.extend_from_slice(&b.action);
    out.position.extend_from_slice(&b.position);
    out.reward.extend_from_slice(&b.reward);
    out.propensity.extend_from_slice(&b.propensity);
    out.terminated.extend_from_slice(&b.terminated);
    out.truncated.extend_from_slice(&b.truncated);
    out
}

/// Mean undiscounted session return and its standard error over sessions.
pub fn session_value(log: &Log) -> (f64, f64) {
    let returns: Vec<f64> = log
        .sessions()
        .iter()
        .map(|rows| rows.iter().map(|&i| log.reward[i]).sum())
        .collect();
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n.max(1.0);
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n.max(1.0)).sqrt())
}
