//! The target of an OPE study or of `shoplab ope`: a frozen policy or a
//! trained checkpoint played greedy, its action distribution on a log's
//! rows, and its true value by simulation.

use super::StudyError;
use crate::{logging::log_frozen, prepared::Prepared};
use shoplab_env::{Observation, seed::derive_seed};
use shoplab_logs::Log;
use shoplab_policy::Policy;

/// A target policy: policy `index` of the scenario, frozen as built, or —
/// with a checkpoint — the trained policy's greedy choice (probability 1
/// on [`Policy::greedy`]'s action: a trained policy deployed without
/// exploration).
#[derive(Debug, Clone)]
pub struct Target {
    /// The policy's index in the scenario.
    pub index: usize,
    /// A checkpoint's bytes to load into it.
    pub checkpoint: Option<Vec<u8>>,
}

impl Target {
    /// The target's name: the policy's, `(greedy, checkpoint)` added.
    pub fn name(&self, prepared: &Prepared) -> String {
        let name = &prepared.names[self.index];
        match self.checkpoint {
            Some(_) => format!("{name} (greedy, from its checkpoint)"),
            None => name.clone(),
        }
    }

    /// Builds it, its generator seeded with `seed`.
    pub fn build(&self, prepared: &Prepared, seed: u64) -> Result<Box<dyn Policy>, StudyError> {
        let failed = |message: String| StudyError::Policy {
            policy: prepared.names[self.index].clone(),
            message,
        };
        let mut policy = prepared
            .make_policy(self.index, seed)
            .map_err(|e| failed(e.to_string()))?;
        match &self.checkpoint {
            None => Ok(policy),
            Some(bytes) => {
                // Played greedy row by row, a policy whose decision reads
                // the episode so far would be scored on decisions it never
                // makes; a run's offline section replays each logged
                // session through it instead.
                if !policy.greedy_is_markov() {
                    return Err(failed(
                        "its greedy decision reads the episode so far (the return still to \
                         come, earlier steps), which a row of a log does not hold: its \
                         off-policy estimates are in the offline section of the run that \
                         trained it, where each logged session is replayed through it"
                            .into(),
                    ));
                }
                policy
                    .load_checkpoint(bytes)
                    .map_err(|e| failed(format!("its checkpoint: {e}")))?;
                let n_actions = prepared.make_env().action_space().n();
                Ok(Box::new(Greedy { policy, n_actions }))
            }
        }
    }
}

/// A policy's greedy choice, deterministic.
#[derive(Debug)]
struct Greedy {
    policy: Box<dyn Policy>,
    n_actions: usize,
}

impl Policy for Greedy {
    fn act(&mut self, obs: &Observation) -> usize {
        self.policy.greedy(obs)
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        shoplab_policy::one_hot_probabilities(self.policy.greedy(obs), self.n_actions, probs);
        true
    }

    fn greedy(&self, obs: &Observation) -> usize {
        self.policy.greedy(obs)
    }
}

/// The target's probability of every action at each row of `log` (`rows ×
/// actions`), the row's features taken as the observation.
pub fn target_distribution(
    prepared: &Prepared,
    target: &Target,
    log: &Log,
    seed: u64,
) -> Result<Vec<f64>, StudyError> {
    let mut policy = target.build(prepared, seed)?;
    let env = prepared.make_env();
    let n_actions = env.action_space().n();
    let slate_size = match &env {
        shoplab_env::EnvBox::Batch(batch) => batch.slate_size(),
        shoplab_env::EnvBox::Single(_) => 1,
    };
    let mut out = Vec::with_capacity(log.len() * n_actions);
    let mut obs = Observation {
        features: Vec::new(),
    };
    let mut probs = Vec::new();
    for i in 0..log.len() {
        obs.features.clear();
        obs.features.extend_from_slice(log.features_of(i));
        // With slates, the distribution at the row's position.
        let j = usize::from(log.position[i]);
        let ok = if slate_size > 1 {
            policy.slate_probabilities(&obs, slate_size, n_actions, &mut probs)
                && probs.len() > j * n_actions
        } else {
            j == 0 && policy.action_probabilities(&obs, &mut probs)
        };
        if !ok {
            return Err(StudyError::NoProbabilities(target.name(prepared)));
        }
        out.extend_from_slice(&probs[j * n_actions..(j + 1) * n_actions]);
    }
    Ok(out)
}

/// A value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Value {
    /// The value.
    pub mean: f64,
    /// Its standard error.
    pub se: f64,
}

/// A frozen policy's true value, by simulation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TrueValue {
    /// Mean reward per decision (standard error clustered by episode).
    pub per_decision: Value,
    /// Mean discounted return per session (clustered by episode).
    pub per_session: Value,
    /// Episodes simulated.
    pub episodes: u32,
    /// Decisions simulated.
    pub decisions: usize,
}

/// The target's true value over `episodes` on-policy episodes (the
/// policy and env seeds from `seed`), returns discounted by `gamma`. Where
/// the env can tell the expected reward of every action (the batched
/// families with a myopic oracle), each decision counts its expected reward
/// under the target's distribution, `Σₐ π(a|s) E[r | s, a]`, rather than
/// the reward drawn — the same expectation without the reward's or the
/// action's noise — and states follow the target's sampled actions. With
/// slates (whose reward is not a sum of single items' expected rewards)
/// the truth is the realised reward per shown item, per decision, as the
/// position-wise estimators estimate it.
pub fn true_value(
    prepared: &Prepared,
    target: &Target,
    episodes: u32,
    seed: u64,
    gamma: f64,
) -> Result<TrueValue, StudyError> {
    let agent = target.build(prepared, derive_seed(seed, "target", 0))?;
    if prepared.family().expected_rewards()
        && let shoplab_env::EnvBox::Batch(batch) = prepared.make_env()
        && batch.slate_size() == 1
    {
        return expected_truth(prepared, target, agent, episodes, seed, gamma);
    }
    let (log, _) = log_frozen(prepared, &target.name(prepared), agent, episodes, seed)?;
    let sessions = log.sessions();
    // Per episode: (reward total, decisions, session-return total, sessions).
    let mut per_episode = std::collections::BTreeMap::<u64, [f64; 4]>::new();
    for rows in &sessions {
        let mut ret = 0.0;
        let mut discount = 1.0;
        for &i in rows {
            ret += discount * log.reward[i];
            discount *= gamma;
        }
        let e = per_episode.entry(log.episode[rows[0]]).or_default();
        e[0] += rows.iter().map(|&i| log.reward[i]).sum::<f64>();
        e[1] += rows.len() as f64;
        e[2] += ret;
        e[3] += 1.0;
    }
    let clusters: Vec<[f64; 4]> = per_episode.into_values().collect();
    Ok(TrueValue {
        per_decision: ratio(&clusters, 0, 1),
        per_session: ratio(&clusters, 2, 3),
        episodes,
        decisions: log.len(),
    })
}

/// [`true_value`] from the env's expected rewards (batched envs).
fn expected_truth(
    prepared: &Prepared,
    target: &Target,
    mut agent: Box<dyn Policy>,
    episodes: u32,
    seed: u64,
    gamma: f64,
) -> Result<TrueValue, StudyError> {
    let shoplab_env::EnvBox::Batch(mut env) = prepared.make_env() else {
        unreachable!("checked by the caller")
    };
    let n = env.batch_size();
    let m = env.action_space().n();
    let (mut q, mut probs) = (Vec::new(), Vec::new());
    let mut clusters = Vec::with_capacity(episodes as usize);
    let mut decisions = 0;
    for episode in 0..episodes {
        let (mut obs, _) = env.reset(derive_seed(seed, "log episode", u64::from(episode)));
        // Per slot: the running session's return and discount.
        let (mut ret, mut discount) = (vec![0.0; n], vec![1.0; n]);
        let mut cluster = [0.0f64; 4];
        let mut actions = vec![0; n];
        loop {
            if !env.expected_rewards(&mut q) {
                return Err(StudyError::NoProbabilities(
                    "the env stopped reporting expected rewards".into(),
                ));
            }
            for (s, o) in obs.iter().enumerate() {
                let Some(action) = agent.act_logged(o, &mut probs) else {
                    return Err(StudyError::NoProbabilities(target.name(prepared)));
                };
                actions[s] = action;
                let value: f64 = (0..m).map(|a| probs[a] * q[s * m + a]).sum();
                cluster[0] += value;
                cluster[1] += 1.0;
                ret[s] += discount[s] * value;
                discount[s] *= gamma;
            }
            decisions += n;
            let t = env.step(&actions);
            for s in 0..n {
                if t.terminated[s] || t.truncated[s] {
                    cluster[2] += ret[s];
                    cluster[3] += 1.0;
                    (ret[s], discount[s]) = (0.0, 1.0);
                }
            }
            if t.episode_over {
                break;
            }
            obs = t.obs;
        }
        clusters.push(cluster);
    }
    Ok(TrueValue {
        per_decision: ratio(&clusters, 0, 1),
        per_session: ratio(&clusters, 2, 3),
        episodes,
        decisions,
    })
}

/// The ratio estimate `Σ yₑ / Σ nₑ` over clusters and its standard error
/// (the delta method, clustered: `√(Σ (yₑ − v nₑ)² / (E (E − 1))) / n̄`).
fn ratio(clusters: &[[f64; 4]], y: usize, n: usize) -> Value {
    let e = clusters.len() as f64;
    let total_n: f64 = clusters.iter().map(|c| c[n]).sum();
    let mean = clusters.iter().map(|c| c[y]).sum::<f64>() / total_n;
    let ss: f64 = clusters.iter().map(|c| (c[y] - mean * c[n]).powi(2)).sum();
    let se = if e > 1.0 {
        (ss / (e * (e - 1.0))).sqrt() / (total_n / e)
    } else {
        f64::NAN
    };
    Value { mean, se }
}
