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
use shoplab_policy::{Policy, noisy::Noisy, random::UniformRandom};

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
    /// Its training episodes before it is frozen (0: as built, for oracles
    /// and rules).
    pub expert_episodes: u32,
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
    let suite = Suite { prepared, spec };
    let (replay, trained) = suite.medium_replay()?;
    let expert = suite.expert()?;
    let mixed = suite.mixed(&replay, &expert);
    Ok(vec![
        suite.random()?,
        suite.medium(trained)?,
        replay,
        expert,
        mixed,
    ])
}

/// Builds the dataset `name` of the suite alone: the same bytes as
/// [`build`]'s, as every dataset draws from seeds of its own.
pub fn build_one(
    prepared: &Prepared,
    spec: &SuiteSpec,
    name: &str,
) -> Result<Dataset, LoggingError> {
    let suite = Suite { prepared, spec };
    match name {
        "random" => suite.random(),
        "medium" => suite.medium(suite.medium_replay()?.1),
        "medium-replay" => Ok(suite.medium_replay()?.0),
        "expert" => suite.expert(),
        "mixed" => Ok(suite.mixed(&suite.medium_replay()?.0, &suite.expert()?)),
        other => Err(LoggingError::Policy {
            policy: other.to_string(),
            message: "is not a dataset of the suite".into(),
        }),
    }
}

/// The suite's builders, each dataset from seeds of its own.
struct Suite<'a> {
    prepared: &'a Prepared,
    spec: &'a SuiteSpec,
}

impl Suite<'_> {
    fn seed(&self, what: &str) -> u64 {
        derive_seed(self.spec.seed, &format!("dataset/{what}"), 0)
    }

    fn n_actions(&self) -> usize {
        self.prepared.make_env().action_space().n()
    }

    fn noisy(&self, inner: Box<dyn Policy>, what: &str) -> Box<dyn Policy> {
        let n = self.n_actions();
        Box::new(Noisy::new(inner, self.spec.epsilon, n, self.seed(what)))
    }

    fn random(&self) -> Result<Dataset, LoggingError> {
        let policy = Box::new(UniformRandom::new(
            self.n_actions(),
            self.seed("random policy"),
        ));
        let (log, _) = log_frozen(
            self.prepared,
            "random",
            policy,
            self.spec.episodes,
            self.seed("random"),
        )?;
        Ok(dataset("random", "uniformly random".into(), log))
    }

    /// The medium policy's training run, and the policy it ends with.
    fn medium_replay(&self) -> Result<(Dataset, Box<dyn Policy>), LoggingError> {
        let spec = self.spec;
        let (log, _, trained) = train_and_log(
            self.prepared,
            spec.medium,
            spec.medium_episodes,
            self.seed("medium-replay"),
        )?;
        let behaviour = format!(
            "{}'s training run, {} episodes",
            self.prepared.names[spec.medium], spec.medium_episodes
        );
        Ok((dataset("medium-replay", behaviour, log), trained))
    }

    fn medium(&self, trained: Box<dyn Policy>) -> Result<Dataset, LoggingError> {
        let spec = self.spec;
        let behaviour = format!(
            "{} after {} training episodes, greedy, ε = {}",
            self.prepared.names[spec.medium], spec.medium_episodes, spec.epsilon
        );
        let (log, _) = log_frozen(
            self.prepared,
            &behaviour,
            self.noisy(trained, "medium policy"),
            spec.episodes,
            self.seed("medium"),
        )?;
        Ok(dataset("medium", behaviour, log))
    }

    fn expert(&self) -> Result<Dataset, LoggingError> {
        let spec = self.spec;
        let name = self.prepared.names[spec.expert].clone();
        let failed = |message: String| LoggingError::Policy {
            policy: name.clone(),
            message,
        };
        let mut policy = self
            .prepared
            .make_policy(spec.expert, self.seed("expert build"))
            .map_err(|e| failed(e.to_string()))?;
        let trained = if spec.expert_episodes > 0 {
            train(
                self.prepared,
                policy.as_mut(),
                spec.expert_episodes,
                self.seed("expert training"),
            )
            .map_err(failed)?;
            format!(" after {} training episodes", spec.expert_episodes)
        } else {
            String::new()
        };
        let behaviour = format!("{name}{trained}, greedy, ε = {}", spec.epsilon);
        let (log, _) = log_frozen(
            self.prepared,
            &behaviour,
            self.noisy(policy, "expert policy"),
            spec.episodes,
            self.seed("expert"),
        )?;
        Ok(dataset("expert", behaviour, log))
    }

    fn mixed(&self, replay: &Dataset, expert: &Dataset) -> Dataset {
        let behaviour = format!("{}, then {}", replay.behaviour, expert.behaviour);
        dataset("mixed", behaviour, concatenate(&replay.log, &expert.log))
    }
}

fn dataset(name: &'static str, behaviour: String, log: Log) -> Dataset {
    let value = session_value(&log);
    Dataset {
        name,
        behaviour,
        log,
        value,
    }
}

/// Trains `agent` for `episodes` episodes on the env seeds
/// `derive_seed(seed, "train", e)`, as a run trains (exploring and
/// learning), and returns it: how a dataset's expert is fully trained
/// before it is frozen.
pub fn train(
    prepared: &Prepared,
    agent: &mut dyn Policy,
    episodes: u32,
    seed: u64,
) -> Result<(), String> {
    let mut env = prepared.make_env();
    let total = episodes as usize;
    for e in 0..total {
        agent.begin_episode(e, total);
        let record = crate::runner::play(
            prepared,
            &mut env,
            agent,
            derive_seed(seed, "train", e as u64),
            false,
        )?;
        if !record.ret.is_finite() {
            return Err(format!("training episode {e}: the return is not finite"));
        }
        if let Some(reason) = agent.divergence() {
            return Err(format!("training episode {e}: diverged: {reason}"));
        }
    }
    Ok(())
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
