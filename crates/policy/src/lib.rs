//! Policies for shoplab: baselines, bandits, tabular and deep Q-learning, and exact oracles.
//!
//! Every algorithm lives in one file and implements [`Policy`]: it chooses a
//! discrete action from an [`Observation`], may [`learn`](Policy::learn) from
//! each [`Transition`], and reports the action it would take without exploring
//! ([`greedy`](Policy::greedy)). A policy owns its random number generator,
//! seeded when it is built, so a run depends only on its seeds.
//!
//! Policies see only the env API ([`shoplab_env`]): never the simulator. Where a
//! scenario's optimum can be computed, its oracle takes the scenario's exact
//! model as plain numbers (see [`pricing_oracle`]).
#![deny(missing_docs)]

pub mod action_table;
pub mod adam;
pub mod arms;
pub mod dqn;
pub mod epsilon_greedy;
pub mod fixed;
pub mod linucb;
pub mod memory;
pub mod most_popular;
pub mod myopic_oracle;
pub mod noisy;
pub mod offline;
pub mod paced_bidding;
pub mod pricing_oracle;
pub mod random;
pub mod registry;
pub mod resolving;
pub mod schedule;
pub mod seq;
mod slate;
pub mod tabular_q;
pub mod thompson;
pub mod ucb;

pub use shoplab_env::argmax;
use shoplab_env::{Env, Observation, Step};
pub use slate::{
    Score, epsilon_greedy_probabilities, epsilon_slate_probabilities, fill_slate,
    one_hot_probabilities, random_slate, shifted_slate_probabilities, top_k,
};
use thiserror::Error;

/// One step of experience, as a learner sees it.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// The observation the action was chosen from.
    pub obs: &'a Observation,
    /// The action taken.
    pub action: usize,
    /// The reward received.
    pub reward: f64,
    /// The observation after the action.
    pub next_obs: &'a Observation,
    /// The next state is terminal: do not bootstrap from it.
    pub terminated: bool,
    /// The episode was cut by a limit: still bootstrap from `next_obs`.
    pub truncated: bool,
    /// Which concurrent session of a batch env the step belongs to (its
    /// slot, `0..batch_size`); 0 in single-session envs. A slot's
    /// transitions arrive in the order of its steps, `slate_size` per
    /// step, so a learner can follow each session.
    pub slot: usize,
}

/// A decision rule over a discrete action space, possibly learning.
pub trait Policy: Send + std::fmt::Debug {
    /// Called before each training episode; `episode` counts from 0 to `total − 1`.
    /// Schedules (such as ε decay) follow it.
    fn begin_episode(&mut self, episode: usize, total: usize) {
        let _ = (episode, total);
    }
    /// The action to take while training, exploring as the algorithm does.
    fn act(&mut self, obs: &Observation) -> usize;
    /// Fills `slate` with `k` distinct actions (of `n_actions`) to show at
    /// once while training, best first. The default, for policies that choose
    /// a single action, shows [`act`](Policy::act)'s choice followed by the
    /// next actions in index order; policies that rank actions override it.
    fn act_slate(&mut self, obs: &Observation, k: usize, n_actions: usize, slate: &mut Vec<usize>) {
        slate.clear();
        let first = self.act(obs);
        slate.push(first);
        slate.extend(
            (1..n_actions)
                .map(|d| (first + d) % n_actions)
                .take(k.saturating_sub(1)),
        );
    }
    /// The probability that [`act`](Policy::act) picks each action now, on
    /// this observation, written into `probs` (one per action, summing to
    /// 1): what a log of the policy's decisions records as propensities.
    /// Called just before `act` on the same observation. Deterministic
    /// policies put 1 on the action they take. Returns false, leaving
    /// `probs` unspecified, for policies that have no closed form (see
    /// [`act_logged`](Policy::act_logged)).
    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let _ = (obs, probs);
        false
    }
    /// Acts as [`act`](Policy::act) does and writes the probability with
    /// which each action could have been taken into `probs`: what a logger
    /// of the policy's decisions calls. `None` for policies that cannot
    /// tell, before anything is drawn. The default asks
    /// [`action_probabilities`](Policy::action_probabilities) first; a
    /// policy without a closed form (Thompson sampling) overrides it with an
    /// estimate that counts the action taken, so the taken action's
    /// probability is never estimated as 0.
    fn act_logged(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> Option<usize> {
        if self.action_probabilities(obs, probs) {
            Some(self.act(obs))
        } else {
            None
        }
    }
    /// The position-wise probabilities of the slate
    /// [`act_slate`](Policy::act_slate) would show now: `probs` gets `k`
    /// rows of `n_actions`, row `j` the probability of each action at
    /// position `j` (the marginal over the policy's randomness, as obp's
    /// position-wise action distributions). Called just before `act_slate`
    /// on the same observation. Returns false — the default, so that no
    /// policy reports a distribution its own `act_slate` does not follow —
    /// for policies that cannot tell.
    fn slate_probabilities(
        &mut self,
        obs: &Observation,
        k: usize,
        n_actions: usize,
        probs: &mut Vec<f64>,
    ) -> bool {
        let _ = (obs, k, n_actions, probs);
        false
    }
    /// [`act_slate`](Policy::act_slate) with the position-wise
    /// probabilities of [`slate_probabilities`](Policy::slate_probabilities)
    /// written into `probs`; false, before anything is drawn, for policies
    /// that cannot tell.
    fn act_slate_logged(
        &mut self,
        obs: &Observation,
        k: usize,
        n_actions: usize,
        slate: &mut Vec<usize>,
        probs: &mut Vec<f64>,
    ) -> bool {
        if self.slate_probabilities(obs, k, n_actions, probs) {
            self.act_slate(obs, k, n_actions, slate);
            true
        } else {
            false
        }
    }
    /// The action the policy considers best, without exploring.
    fn greedy(&self, obs: &Observation) -> usize;
    /// Acts without exploring in an evaluation episode, where nothing is
    /// learned. Policies with per-episode state (a decision held over
    /// several steps, a controller's integral) override it to keep that
    /// state; the default is [`greedy`](Policy::greedy).
    fn act_greedy(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }
    /// Whether evaluation plays [`greedy`](Policy::greedy) itself, a
    /// function of the observation alone, so that a family can evaluate the
    /// greedy policy exactly ([`shoplab_env::Family::exact_value`]). Policies
    /// that override [`act_greedy`](Policy::act_greedy) answer `false`.
    fn greedy_is_markov(&self) -> bool {
        true
    }
    /// Fills `slate` with `k` distinct actions (of `n_actions`) to show
    /// without exploring, best first. The default shows
    /// [`act_greedy`](Policy::act_greedy)'s choice followed by the next
    /// actions in index order; policies that rank actions override it.
    fn greedy_slate(
        &mut self,
        obs: &Observation,
        k: usize,
        n_actions: usize,
        slate: &mut Vec<usize>,
    ) {
        slate.clear();
        let first = self.act_greedy(obs);
        slate.push(first);
        fill_slate(slate, k, n_actions);
    }
    /// Slates for every session of a batch env at one step, slot by slot:
    /// `slates` is cleared and gets `obs.len() × k` actions, each slot's
    /// best first — [`act_slate`](Policy::act_slate)'s in [`Mode::Train`],
    /// [`greedy_slate`](Policy::greedy_slate)'s in [`Mode::Greedy`]. The
    /// default asks for each slot's slate in slot order; policies whose
    /// model scores many states faster together (a sequence encoder)
    /// override it. Errs, naming the sizes, when a slate is not `k` long.
    fn act_slates(
        &mut self,
        obs: &[Observation],
        k: usize,
        n_actions: usize,
        mode: Mode,
        slates: &mut Vec<usize>,
    ) -> Result<(), String> {
        slates.clear();
        let mut slate = Vec::with_capacity(k);
        for o in obs {
            match mode {
                Mode::Train => self.act_slate(o, k, n_actions, &mut slate),
                Mode::Greedy => self.greedy_slate(o, k, n_actions, &mut slate),
            }
            check_slate(&slate, k)?;
            slates.extend_from_slice(&slate);
        }
        Ok(())
    }
    /// True for oracles that read the env's expected immediate rewards, which
    /// the runner then passes to [`see_expected_rewards`](Policy::see_expected_rewards)
    /// before every action.
    fn wants_expected_rewards(&self) -> bool {
        false
    }
    /// The true expected immediate reward of each action in the current state
    /// (privileged knowledge, for oracles only).
    fn see_expected_rewards(&mut self, rewards: &[f64]) {
        let _ = rewards;
    }
    /// Learns from one transition; policies that do not learn ignore it.
    fn learn(&mut self, transition: &Transition<'_>) {
        let _ = transition;
    }
    /// Sees one transition of an evaluation episode ([`Mode::Greedy`]),
    /// where nothing is learned: for policies whose greedy decision reads
    /// the episode so far (Decision Transformer lowers its return still to
    /// come by each reward). The default ignores it.
    fn see_greedy_step(&mut self, transition: &Transition<'_>) {
        let _ = transition;
    }
    /// Whether the policy has learned anything about `obs`'s state — for
    /// learners with a table of states, whether any of its entries was
    /// updated; `None` (the default) where that has no meaning (a policy
    /// that generalises across states, or learns no state values).
    /// Charts of greedy actions mask the states never visited.
    fn visited(&self, obs: &Observation) -> Option<bool> {
        let _ = obs;
        None
    }

    /// Why the policy can no longer be trusted (say its estimates diverged to
    /// NaN or infinity), checked after every episode; the run stops with it.
    fn divergence(&self) -> Option<String> {
        None
    }
    /// Training statistics accumulated since the last call (read after
    /// every episode), for learners that report them.
    fn learning_stats(&mut self) -> Option<LearningStats> {
        None
    }
    /// The learned parameters as a self-describing file (safetensors), for
    /// policies that have them.
    fn checkpoint(&self) -> Option<Result<Vec<u8>, CheckpointError>> {
        None
    }
    /// Restores parameters saved by [`checkpoint`](Policy::checkpoint).
    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let _ = bytes;
        Err(CheckpointError::Unsupported)
    }
}

/// A learner's training statistics over a span of training (an episode).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningStats {
    /// Gradient updates made in the span.
    pub updates: u64,
    /// Mean training loss over those updates (none without updates).
    pub loss: Option<f64>,
    /// Mean predicted Q of the sampled (state, action) pairs, in reward units.
    pub mean_q: Option<f64>,
    /// The exploration parameter in force (ε, or the softmax temperature).
    pub exploration: f64,
}

impl LearningStats {
    /// The means of `updates` updates' summed losses and Q-values (none
    /// without updates), with the exploration parameter in force.
    pub fn from_sums(updates: u64, loss: f64, mean_q: f64, exploration: f64) -> Self {
        let n = updates as f64;
        Self {
            updates,
            loss: (updates > 0).then(|| loss / n),
            mean_q: (updates > 0).then(|| mean_q / n),
            exploration,
        }
    }
}

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The policy has no learned parameters to load.
    #[error("this policy has no checkpoint to load")]
    Unsupported,
    /// The bytes are not a safetensors file, or not one this policy wrote.
    #[error("not a checkpoint of this policy: {0}")]
    Format(String),
    /// A tensor the policy needs is missing.
    #[error("the checkpoint has no tensor `{0}`")]
    MissingTensor(String),
    /// A tensor the policy does not have.
    #[error("the checkpoint has an unknown tensor `{0}`")]
    UnknownTensor(String),
    /// A tensor of another type or shape than the policy's.
    #[error("tensor `{tensor}` is {found} in the checkpoint but {expected} here")]
    Shape {
        /// The tensor's name.
        tensor: String,
        /// Type and shape in the checkpoint.
        found: String,
        /// Type and shape in the policy.
        expected: String,
    },
    /// A tensor holds a value no trained policy has (NaN, an infinity, a
    /// negative count): the file was damaged or edited.
    #[error("tensor `{tensor}` holds {found} at index {index}: {rule}")]
    Value {
        /// The tensor's name.
        tensor: String,
        /// The first offending value.
        found: f64,
        /// Its position in the flattened tensor.
        index: usize,
        /// What its values must be.
        rule: &'static str,
    },
    /// The network failed while saving or loading.
    #[error(transparent)]
    Network(#[from] dqn::network::NetError),
}

/// Why a policy could not be built.
#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A parameter breaks a rule.
    #[error("key `{key}`: {rule}")]
    Invalid {
        /// The parameter's name.
        key: String,
        /// The rule broken, with the value found.
        rule: String,
    },
    /// The observation lacks a feature the policy needs.
    #[error("the observation has no feature `{0}`, which this policy needs")]
    MissingFeature(&'static str),
}

impl From<shoplab_env::config::ConfigError> for PolicyError {
    fn from(e: shoplab_env::config::ConfigError) -> Self {
        Self::Invalid {
            key: e.key,
            rule: e.rule,
        }
    }
}

impl PolicyError {
    /// An `Invalid` error.
    pub fn invalid(key: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            rule: rule.into(),
        }
    }
}

/// The parameters `vars` as safetensors bytes, names sorted, with
/// `metadata` stored under the key `shoplab`.
pub(crate) fn vars_to_safetensors(
    vars: &std::collections::BTreeMap<String, candle_core::Var>,
    metadata: String,
) -> Result<Vec<u8>, CheckpointError> {
    let info = std::collections::HashMap::from([("shoplab".to_string(), metadata)]);
    let tensors: Vec<(&str, &candle_core::Tensor)> = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_tensor()))
        .collect();
    safetensors::tensor::serialize(tensors, Some(info))
        .map_err(|e| CheckpointError::Format(e.to_string()))
}

/// Loads the parameters `vars` from the checkpoint tensors `loaded`, each
/// under `prefix` + its name (other tensors are the caller's): every one
/// must be there with its parameter's shape and type, every value finite;
/// nothing is set unless all of them load.
pub(crate) fn load_vars(
    vars: &std::collections::BTreeMap<String, candle_core::Var>,
    loaded: &std::collections::HashMap<String, candle_core::Tensor>,
    prefix: &str,
) -> Result<(), CheckpointError> {
    let format = |e: candle_core::Error| CheckpointError::Format(e.to_string());
    let mut found = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let named = format!("{prefix}{name}");
        let tensor = loaded
            .get(&named)
            .ok_or_else(|| CheckpointError::MissingTensor(named.clone()))?;
        if tensor.dims() != var.dims() || tensor.dtype() != var.dtype() {
            return Err(CheckpointError::Shape {
                tensor: named,
                found: format!("{:?} {:?}", tensor.dtype(), tensor.dims()),
                expected: format!("{:?} {:?}", var.dtype(), var.dims()),
            });
        }
        // A NaN weight makes every output NaN: refuse it rather than score
        // a broken network.
        let values: Vec<f64> = tensor
            .to_dtype(candle_core::DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(format)?;
        if let Some((index, &v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CheckpointError::Value {
                tensor: named,
                found: v,
                index,
                rule: "weights must be finite",
            });
        }
        found.push(tensor);
    }
    for (var, tensor) in vars.values().zip(found) {
        var.set(tensor).map_err(format)?;
    }
    Ok(())
}

/// Refuses a slate that is not `k` long (a policy's bug, reported as such).
pub fn check_slate(slate: &[usize], k: usize) -> Result<(), String> {
    if slate.len() == k {
        Ok(())
    } else {
        Err(format!(
            "the policy gave a slate of {} for {k} places",
            slate.len()
        ))
    }
}

/// Whether an episode trains a policy or evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The policy acts as in training ([`Policy::act`], exploring) and
    /// learns from every transition.
    Train,
    /// The policy acts without exploring ([`Policy::act_greedy`]) and learns
    /// nothing.
    Greedy,
}

/// Plays one episode of `env` from `seed`: act, step, learn (in
/// [`Mode::Train`]; in [`Mode::Greedy`] the policy only sees the step,
/// [`Policy::see_greedy_step`]), passing every step to `on_step`. After `max_steps`
/// steps an episode that has not ended is truncated, and learners are told
/// so (they still bootstrap from the last observation). Returns the steps
/// taken. The one rollout loop of single-session envs: the harness's runner
/// and [`train`] both play through it.
pub fn rollout(
    env: &mut dyn Env,
    agent: &mut dyn Policy,
    seed: u64,
    mode: Mode,
    max_steps: usize,
    mut on_step: impl FnMut(&Step),
) -> usize {
    let (mut obs, _) = env.reset(seed);
    let mut steps = 0;
    loop {
        let action = match mode {
            Mode::Train => agent.act(&obs),
            Mode::Greedy => agent.act_greedy(&obs),
        };
        let step = env.step(action);
        steps += 1;
        let truncated = step.truncated || steps >= max_steps;
        let transition = Transition {
            slot: 0,
            obs: &obs,
            action,
            reward: step.reward,
            next_obs: &step.obs,
            terminated: step.terminated,
            truncated,
        };
        match mode {
            Mode::Train => agent.learn(&transition),
            Mode::Greedy => agent.see_greedy_step(&transition),
        }
        on_step(&step);
        if step.terminated || truncated {
            return steps;
        }
        obs = step.obs;
    }
}

/// Trains `agent` for `episodes` episodes on `env`, episode `e` reset with
/// seed `e`, through [`rollout`] (without the harness's metrics, references
/// or failure handling). Returns the steps taken. For tests and benchmarks;
/// real runs go through the harness's runner.
pub fn train(env: &mut dyn Env, agent: &mut dyn Policy, episodes: usize) -> u64 {
    let mut steps = 0;
    for episode in 0..episodes {
        agent.begin_episode(episode, episodes);
        steps += rollout(env, agent, episode as u64, Mode::Train, usize::MAX, |_| {}) as u64;
    }
    steps
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_takes_lowest_tie() {
        assert_eq!(super::argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(super::argmax(&[5.0]), 0);
    }
}
