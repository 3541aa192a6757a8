//! Logging a policy's decisions with their propensities: `shoplab log`.
//!
//! The policy plays training episodes as it does in a run — exploring and
//! learning — on env seeds of their own (`derive_seed(seed, "log episode",
//! e)`, which no run uses), its generator seeded as a run's would be from
//! `seed`. Before each decision it reports the probability of every action
//! ([`shoplab_policy::Policy::act_logged`]); the log records the taken action's, so
//! importance weights are exact (Thompson sampling's estimated by Monte
//! Carlo). Batched families log every slot's decision of every tick, each
//! slot's sessions numbered in the order they start; with slates, one row
//! per position, each with its item's reward and the policy's probability
//! of showing that item at that position (`Policy::act_slate_logged`).

use crate::prepared::Prepared;
use shoplab_env::{EnvBox, Observation, seed::derive_seed};
use shoplab_logs::{Log, LogError, LogRow, LogSink, LogWriter};
use shoplab_policy::{Policy, Transition};
use std::path::Path;
use thiserror::Error;

/// Why a log was not written.
#[derive(Debug, Error)]
pub enum LoggingError {
    /// The log file could not be written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The policy could not be built.
    #[error("policy `{policy}`: {message}")]
    Policy {
        /// The policy's report name.
        policy: String,
        /// What went wrong.
        message: String,
    },
    /// The policy cannot say with what probability it acts.
    #[error(
        "policy `{0}` cannot report the probabilities of its actions, so its log would have \
         no propensities (random, fixed, fixed_action, epsilon_greedy, ucb1, thompson, q_learning and dqn can)"
    )]
    NoProbabilities(String),
    /// The policy cannot say with what probability it shows each action
    /// at each slate position.
    #[error(
        "policy `{0}` cannot report the position-wise probabilities of its slates, so its log \
         would have no propensities (random, fixed_action and epsilon_greedy can)"
    )]
    Slates(String),
}

/// What a log holds.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSummary {
    /// Rows written.
    pub rows: u64,
    /// Episodes logged.
    pub episodes: u32,
    /// Mean reward per decision: the behaviour policy's on-policy value.
    pub mean_reward: f64,
    /// Smallest and largest propensity logged.
    pub propensity_range: (f64, f64),
    /// Actions that had probability 0 in every logged decision: no
    /// estimator can evaluate a target policy that takes them.
    pub never_possible: Vec<usize>,
}

/// Tallies of the decisions logged.
struct Tally {
    rows: u64,
    reward: f64,
    range: (f64, f64),
    possible: Vec<bool>,
    /// Actions not yet seen possible: once none is left, a decision's
    /// probabilities need no scan (at 100,000 items the scan would cost
    /// more than the decision).
    unseen: usize,
}

impl Tally {
    fn new(n_actions: usize) -> Self {
        Self {
            rows: 0,
            reward: 0.0,
            range: (f64::INFINITY, f64::NEG_INFINITY),
            possible: vec![false; n_actions],
            unseen: n_actions,
        }
    }

    fn record(&mut self, probs: &[f64], propensity: f64, reward: f64) {
        self.rows += 1;
        self.reward += reward;
        self.range = (self.range.0.min(propensity), self.range.1.max(propensity));
        self.mark_possible(probs);
    }

    /// Marks the actions of positive probability in `probs` (one or more
    /// distributions over the actions, back to back).
    fn mark_possible(&mut self, probs: &[f64]) {
        if self.unseen == 0 {
            return;
        }
        let n = self.possible.len();
        for (j, &q) in probs.iter().enumerate() {
            let p = &mut self.possible[j % n];
            if q > 0.0 && !*p {
                *p = true;
                self.unseen -= 1;
            }
        }
    }
}

/// Logs `episodes` training episodes of policy `index` of `prepared` to
/// `out` (Parquet when it ends in `.parquet`, CSV otherwise), its generator
/// and the env seeds descending from `seed`.
pub fn log_policy(
    prepared: &Prepared,
    index: usize,
    episodes: u32,
    seed: u64,
    out: &Path,
) -> Result<LogSummary, LoggingError> {
    let names = probe(prepared, index, seed)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let agent = build(prepared, index, seed)?;
    let name = &prepared.names[index];
    // Parquet for a `.parquet` path, CSV otherwise.
    if shoplab_logs::parquet::is_parquet(out) {
        let mut writer = shoplab_logs::parquet::ParquetLogWriter::create(out, &names)?;
        let (summary, _) = play(prepared, name, agent, episodes, seed, &mut writer, true)?;
        writer.finish()?;
        Ok(summary)
    } else {
        let mut writer = LogWriter::create(out, &names)?;
        let (summary, _) = play(prepared, name, agent, episodes, seed, &mut writer, true)?;
        writer.finish()?;
        Ok(summary)
    }
}

/// [`log_policy`] into memory: the same rows, as a [`Log`].
pub fn log_in_memory(
    prepared: &Prepared,
    index: usize,
    episodes: u32,
    seed: u64,
) -> Result<(Log, LogSummary), LoggingError> {
    let (log, summary, _) = train_and_log(prepared, index, episodes, seed)?;
    Ok((log, summary))
}

/// [`log_in_memory`], also returning the policy as its training left it:
/// a training run's log (a `medium-replay` dataset) and the partially
/// trained policy it ends with.
pub fn train_and_log(
    prepared: &Prepared,
    index: usize,
    episodes: u32,
    seed: u64,
) -> Result<(Log, LogSummary, Box<dyn Policy>), LoggingError> {
    let mut log = Log {
        features: probe(prepared, index, seed)?,
        ..Log::default()
    };
    let agent = build(prepared, index, seed)?;
    let (summary, agent) = play(
        prepared,
        &prepared.names[index],
        agent,
        episodes,
        seed,
        &mut log,
        true,
    )?;
    Ok((log, summary, agent))
}

/// [`log_in_memory`] of a frozen policy `agent` (named `name`): it acts
/// as given and never learns (no `begin_episode`, no `learn`) — how a
/// target policy is evaluated off-policy, so its on-policy log is its true
/// value.
pub fn log_frozen(
    prepared: &Prepared,
    name: &str,
    agent: Box<dyn Policy>,
    episodes: u32,
    seed: u64,
) -> Result<(Log, LogSummary), LoggingError> {
    let env = prepared.make_env();
    let mut log = Log {
        features: env
            .observation_space()
            .features
            .iter()
            .map(|f| f.name.to_string())
            .collect(),
        ..Log::default()
    };
    let (summary, _) = play(prepared, name, agent, episodes, seed, &mut log, false)?;
    Ok((log, summary))
}

/// Policy `index` of `prepared`, its generator seeded as a run's would be
/// from `seed`.
fn build(prepared: &Prepared, index: usize, seed: u64) -> Result<Box<dyn Policy>, LoggingError> {
    let name = &prepared.names[index];
    prepared
        .make_policy(index, derive_seed(seed, &format!("policy/{name}"), 0))
        .map_err(|e| LoggingError::Policy {
            policy: name.clone(),
            message: e.to_string(),
        })
}

/// Refuses, before anything is written, a scenario with slates or a policy
/// that cannot report its probabilities (a throwaway instance acts once on
/// a made-up observation); returns the observation's feature names.
fn probe(prepared: &Prepared, index: usize, seed: u64) -> Result<Vec<String>, LoggingError> {
    let env = prepared.make_env();
    let slate_size = match &env {
        EnvBox::Batch(batch) => batch.slate_size(),
        EnvBox::Single(_) => 1,
    };
    let n_actions = env.action_space().n();
    let space = env.observation_space().clone();
    let name = &prepared.names[index];
    let probe = Observation {
        features: space.features.iter().map(|f| f.low).collect(),
    };
    let mut policy = prepared
        .make_policy(index, derive_seed(seed, "log probe", 0))
        .map_err(|e| LoggingError::Policy {
            policy: name.clone(),
            message: e.to_string(),
        })?;
    let reports = if slate_size > 1 {
        policy.act_slate_logged(
            &probe,
            slate_size,
            n_actions,
            &mut Vec::new(),
            &mut Vec::new(),
        )
    } else {
        policy.act_logged(&probe, &mut Vec::new()).is_some()
    };
    if !reports {
        return Err(if slate_size > 1 {
            LoggingError::Slates(name.clone())
        } else {
            LoggingError::NoProbabilities(name.clone())
        });
    }
    Ok(space.features.iter().map(|f| f.name.to_string()).collect())
}

/// Plays `agent` (named `name`) and logs the episodes into `sink`, the
/// policy learning as in training when `learning`.
fn play(
    prepared: &Prepared,
    name: &str,
    mut agent: Box<dyn Policy>,
    episodes: u32,
    seed: u64,
    sink: &mut dyn LogSink,
    learning: bool,
) -> Result<(LogSummary, Box<dyn Policy>), LoggingError> {
    let name = name.to_string();
    let mut env = prepared.make_env();
    let n_actions = env.action_space().n();
    let mut probs = Vec::new();
    let writer = sink;
    let mut tally = Tally::new(n_actions);
    for episode in 0..episodes {
        // Frozen policies too: controllers reset their per-episode state.
        agent.begin_episode(episode as usize, episodes as usize);
        let env_seed = derive_seed(seed, "log episode", u64::from(episode));
        let ok = match &mut env {
            EnvBox::Single(env) => {
                let (mut obs, _) = env.reset(env_seed);
                let mut step = 0u32;
                loop {
                    let Some(action) = agent.act_logged(&obs, &mut probs) else {
                        break false;
                    };
                    let s = env.step(action);
                    let propensity = probs[action];
                    tally.record(&probs, propensity, s.reward);
                    writer.write(&LogRow {
                        episode: u64::from(episode),
                        session: 0,
                        step,
                        features: &obs.features,
                        action,
                        position: 0,
                        reward: s.reward,
                        propensity,
                        terminated: s.terminated,
                        truncated: s.truncated,
                    })?;
                    if learning {
                        agent.learn(&Transition {
                            slot: 0,
                            obs: &obs,
                            action,
                            reward: s.reward,
                            next_obs: &s.obs,
                            terminated: s.terminated,
                            truncated: s.truncated,
                        });
                    }
                    step += 1;
                    if s.done() {
                        break true;
                    }
                    obs = s.obs;
                }
            }
            EnvBox::Batch(env) => {
                let (n, k) = (env.batch_size(), env.slate_size());
                let (mut obs, _) = env.reset(env_seed);
                let mut session: Vec<u64> = (0..n as u64).collect();
                let mut next_session = n as u64;
                let mut step = vec![0u32; n];
                // Each slot's slate and the shown actions' position-wise
                // propensities (a slate of one: the action's probability).
                let mut slates = vec![0; n * k];
                let mut propensities = vec![0.0; n * k];
                let mut slate = Vec::with_capacity(k);
                // Oracles read the expected rewards, as in the runner.
                let oracle = agent.wants_expected_rewards();
                let mut expected = Vec::new();
                'ticks: loop {
                    if oracle && !env.expected_rewards(&mut expected) {
                        return Err(LoggingError::Policy {
                            policy: name.clone(),
                            message: "this env cannot tell an oracle its expected rewards".into(),
                        });
                    }
                    for (s, o) in obs.iter().enumerate() {
                        if oracle {
                            agent.see_expected_rewards(
                                &expected[s * n_actions..(s + 1) * n_actions],
                            );
                        }
                        if k == 1 {
                            let Some(action) = agent.act_logged(o, &mut probs) else {
                                break 'ticks false;
                            };
                            slates[s] = action;
                            propensities[s] = probs[action];
                        } else {
                            if !agent.act_slate_logged(o, k, n_actions, &mut slate, &mut probs)
                                || slate.len() != k
                                || probs.len() != k * n_actions
                            {
                                break 'ticks false;
                            }
                            for (j, &a) in slate.iter().enumerate() {
                                slates[s * k + j] = a;
                                propensities[s * k + j] = probs[j * n_actions + a];
                            }
                        }
                        tally.mark_possible(&probs);
                    }
                    let t = env.step(&slates);
                    for s in 0..n {
                        for j in 0..k {
                            let i = s * k + j;
                            // One row per position, each with the reward
                            // credited to its item.
                            let reward = if k == 1 {
                                t.rewards[s]
                            } else {
                                t.item_rewards[i]
                            };
                            tally.record(&[], propensities[i], reward);
                            writer.write(&LogRow {
                                episode: u64::from(episode),
                                session: session[s],
                                step: step[s],
                                features: &obs[s].features,
                                action: slates[i],
                                position: j,
                                reward,
                                propensity: propensities[i],
                                terminated: t.terminated[s],
                                truncated: t.truncated[s],
                            })?;
                            if learning {
                                agent.learn(&Transition {
                                    slot: s,
                                    obs: &obs[s],
                                    action: slates[i],
                                    reward: t.item_rewards[i],
                                    next_obs: &t.obs[s],
                                    terminated: t.terminated[s],
                                    truncated: t.truncated[s],
                                });
                            }
                        }
                        if t.terminated[s] || t.truncated[s] {
                            session[s] = next_session;
                            next_session += 1;
                            step[s] = 0;
                        } else {
                            step[s] += 1;
                        }
                    }
                    if t.episode_over {
                        break true;
                    }
                    obs = t.obs;
                }
            }
        };
        if !ok {
            return Err(LoggingError::NoProbabilities(name));
        }
    }
    let rows = tally.rows;
    let summary = LogSummary {
        rows,
        episodes,
        mean_reward: tally.reward / rows.max(1) as f64,
        propensity_range: tally.range,
        never_possible: (0..n_actions).filter(|&a| !tally.possible[a]).collect(),
    };
    Ok((summary, agent))
}
