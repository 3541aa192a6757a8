//! Tabular Q-learning (Watkins, 1989) over a discretised observation.
//!
//! The observation is mapped to a state index by a [`Discretiser`] (the env's
//! suggested bins, overridden per feature by `bins`). After each transition
//! `(s, a, r, s')`:
//!
//! ```text
//! target  = r                               if s' is terminal
//!         = r + γ · max_b Q(s', b)          otherwise (also when truncated)
//! Q(s, a) ← Q(s, a) + α_n · (target − Q(s, a)),   α_n = alpha / n(s, a)^ω
//! ```
//!
//! where `n(s, a)` counts the updates of that pair. With `ω = 0` the learning
//! rate is the constant `alpha`; with `ω ∈ (0.5, 1]` the rates satisfy the
//! Robbins–Monro conditions and Q converges to Q* when every pair is visited
//! infinitely often (Even-Dar and Mansour, 2003, give the rates).
//!
//! Behaviour is ε-greedy with ε following a [`LinearSchedule`] over training
//! episodes; ties go to the lowest action index.

use crate::registry::{BuildContext, Built, Costed, PolicyKind};
use crate::{Policy, PolicyError, Transition, schedule::LinearSchedule};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use shoplab_env::{
    Discretiser, Observation, ObservationSpace, config,
    cost::PolicyCost,
    seed::{SimRng, rng_from_seed},
};
use std::collections::BTreeMap;

/// Largest Q table, in entries (states × actions).
pub const MAX_TABLE_ENTRIES: usize = 10_000_000;

/// Visit counts whose learning rate is cached.
const RATE_CACHE: u32 = 65_536;

/// Settings of [`TabularQ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TabularQConfig {
    /// Learning rate of a pair's first update, in `(0, 1]`.
    pub alpha: f64,
    /// Decay exponent ω of the learning rate, `α_n = alpha / n^ω`, in `[0, 1]`;
    /// 0 keeps the rate constant.
    pub alpha_exponent: f64,
    /// The discount factor gamma, in `[0, 1]`.
    pub gamma: f64,
    /// Exploration probability ε over training episodes.
    pub epsilon: LinearSchedule,
    /// Initial value of every Q entry (optimism encourages exploration).
    pub initial_q: f64,
    /// Bins per feature, overriding the env's suggestions (1 ignores a feature).
    pub bins: BTreeMap<String, usize>,
    /// Double Q-learning (van Hasselt, 2010): two tables, each updated at
    /// random toward the other's value of its own greedy action, which removes
    /// the upward bias of `max` over noisy estimates; actions use their mean.
    pub double: bool,
    /// Every-visit Monte Carlo control instead of Q-learning: transitions
    /// are kept until the episode ends, then each `Q(s_t, a_t)` moves toward
    /// the observed return `G_t = r_t + γ G_{t+1}` (bootstrapped from
    /// `max_a Q` only where the episode was truncated). On-policy and free of
    /// bootstrapping through coarsely binned states; for envs with one
    /// session at a time, since an episode's transitions must arrive in order.
    pub monte_carlo: bool,
}

impl Default for TabularQConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            alpha_exponent: 0.6,
            gamma: 1.0,
            epsilon: LinearSchedule {
                start: 1.0,
                end: 0.01,
                decay_fraction: 0.7,
            },
            initial_q: 0.0,
            bins: BTreeMap::new(),
            double: false,
            monte_carlo: false,
        }
    }
}

impl TabularQConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), PolicyError> {
        config::fraction("alpha", self.alpha)?;
        config::unit_interval("alpha_exponent", self.alpha_exponent)?;
        config::unit_interval("gamma", self.gamma)?;
        config::bounded("initial_q", self.initial_q)?;
        if self.double && self.monte_carlo {
            return Err(PolicyError::invalid(
                "monte_carlo",
                "Monte Carlo control and double Q-learning cannot be combined",
            ));
        }
        self.epsilon.validate_probability("epsilon")
    }
}

/// A tabular Q-learner.
#[derive(Debug)]
pub struct TabularQ {
    config: TabularQConfig,
    discretiser: Discretiser,
    n_actions: usize,
    /// The values actions are chosen by (the mean of the two tables under
    /// double Q-learning).
    q: Vec<f64>,
    visits: Vec<u32>,
    /// Double Q-learning's two tables and the second table's visit counts.
    double: Option<(Vec<f64>, Vec<f64>, Vec<u32>)>,
    /// Monte Carlo control's transitions of the episode so far: (state, action, reward).
    episode: Vec<(usize, usize, f64)>,
    /// `alpha / n^ω` for small `n`, cached: `powf` would dominate an update.
    rates: Vec<f64>,
    /// The first non-finite Q value produced, if any.
    diverged: Option<String>,
    epsilon: f64,
    rng: SimRng,
}

impl TabularQConfig {
    /// The validated settings' discretiser of `space`, its table of
    /// `n_actions` actions per state within [`MAX_TABLE_ENTRIES`].
    fn discretiser(
        &self,
        space: &ObservationSpace,
        n_actions: usize,
    ) -> Result<Discretiser, PolicyError> {
        self.validate()?;
        let overrides: Vec<(String, usize)> =
            self.bins.iter().map(|(k, v)| (k.clone(), *v)).collect();
        Discretiser::new(space, &overrides, MAX_TABLE_ENTRIES / n_actions.max(1))
            .map_err(|e| PolicyError::invalid("bins", e.to_string()))
    }

    /// What a table over `space` with `n_actions` actions costs
    /// ([`shoplab_env::cost`]): a value and a visit count per entry (three
    /// of each with double Q-learning); an update reads one row.
    pub fn cost(
        &self,
        space: &ObservationSpace,
        n_actions: usize,
    ) -> Result<PolicyCost, PolicyError> {
        let entries = (self.discretiser(space, n_actions)?.n_states() * n_actions) as f64;
        let per_entry = if self.double { 48.0 } else { 16.0 };
        let row = 4.0 * n_actions as f64 + 4.0 * space.features.len() as f64;
        Ok(PolicyCost {
            bytes: entries * per_entry + 65_536.0,
            train_work: 2.0 * row,
            act_work: row,
        })
    }
}

impl TabularQ {
    /// A learner over `space` with `n_actions` actions, seeded with `seed`.
    pub fn new(
        config: TabularQConfig,
        space: &ObservationSpace,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        let discretiser = config.discretiser(space, n_actions)?;
        let entries = discretiser.n_states() * n_actions;
        let rates = (0..RATE_CACHE)
            .map(|n| config.alpha / f64::from(n.max(1)).powf(config.alpha_exponent))
            .collect();
        Ok(Self {
            rates,
            diverged: None,
            q: vec![config.initial_q; entries],
            visits: vec![0; entries],
            episode: Vec::new(),
            double: config.double.then(|| {
                (
                    vec![config.initial_q; entries],
                    vec![config.initial_q; entries],
                    vec![0; entries],
                )
            }),
            epsilon: config.epsilon.start,
            config,
            discretiser,
            n_actions,
            rng: rng_from_seed(seed),
        })
    }

    /// The Q values of the state `obs` falls in.
    pub fn q_values(&self, obs: &Observation) -> &[f64] {
        self.row(self.discretiser.state(&obs.features))
    }

    /// The exploration probability now in force.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    fn row(&self, state: usize) -> &[f64] {
        &self.q[state * self.n_actions..(state + 1) * self.n_actions]
    }

    /// The learning rate of an entry's `n`-th update.
    fn rate(&self, n: u32) -> f64 {
        learning_rate(&self.rates, &self.config, n)
    }

    /// The Q-learning update on state indices.
    #[inline]
    pub fn update(&mut self, state: usize, action: usize, reward: f64, next: Option<usize>) {
        let i = state * self.n_actions + action;
        if self.double.is_some() {
            self.double_update(i, reward, next);
        } else {
            let bootstrap = next.map_or(0.0, |s| {
                // A plain comparison is cheaper than `f64::max`; a NaN in the
                // table is reported by the divergence check below.
                self.row(s)
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
            });
            let target = reward + self.config.gamma * bootstrap;
            self.visits[i] = self.visits[i].saturating_add(1);
            let alpha = self.rate(self.visits[i]);
            self.q[i] += alpha * (target - self.q[i]);
        }
        if !self.q[i].is_finite() && self.diverged.is_none() {
            self.diverged = Some(format!(
                "Q(state {state}, action {action}) became {} after a reward of {reward}",
                self.q[i]
            ));
        }
    }

    /// Double Q-learning: update table A (or B, by a fair coin) toward
    /// `r + γ · B(s', argmax_a A(s', a))`, then refresh the mean table.
    fn double_update(&mut self, i: usize, reward: f64, next: Option<usize>) {
        let n = self.n_actions;
        let first = self.rng.random_bool(0.5);
        let Some((a, b, visits_b)) = self.double.as_mut() else {
            return;
        };
        let (own, other, visits) = if first {
            (a, b, &mut self.visits)
        } else {
            (b, a, visits_b)
        };
        let bootstrap = next.map_or(0.0, |s| {
            let row = &own[s * n..(s + 1) * n];
            let best = crate::argmax(row);
            other[s * n + best]
        });
        let target = reward + self.config.gamma * bootstrap;
        visits[i] = visits[i].saturating_add(1);
        let count = visits[i];
        let alpha = learning_rate(&self.rates, &self.config, count);
        own[i] += alpha * (target - own[i]);
        self.q[i] = 0.5 * (own[i] + other[i]);
    }
}

/// `alpha / n^ω`, from the cache where `n` is small.
fn learning_rate(cache: &[f64], config: &TabularQConfig, n: u32) -> f64 {
    match cache.get(n as usize) {
        Some(&rate) => rate,
        None => config.alpha / f64::from(n).powf(config.alpha_exponent),
    }
}

impl Policy for TabularQ {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        self.epsilon = self.config.epsilon.value(episode, total);
    }

    fn act(&mut self, obs: &Observation) -> usize {
        if self.rng.random_bool(self.epsilon) {
            self.rng.random_range(0..self.n_actions)
        } else {
            self.greedy(obs)
        }
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        crate::epsilon_greedy_probabilities(self.epsilon, self.greedy(obs), self.n_actions, probs);
        true
    }

    /// With probability ε a random slate, else the `k` actions of highest Q.
    fn act_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if self.rng.random_bool(self.epsilon) {
            crate::random_slate(&mut self.rng, n, k, slate);
        } else {
            let state = self.discretiser.state(&obs.features);
            crate::top_k(self.row(state), k, slate);
        }
    }

    fn greedy(&self, obs: &Observation) -> usize {
        crate::argmax(self.q_values(obs))
    }

    fn greedy_slate(&mut self, obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        crate::top_k(self.q_values(obs), k, slate);
    }

    fn divergence(&self) -> Option<String> {
        self.diverged.clone()
    }

    fn visited(&self, obs: &Observation) -> Option<bool> {
        let state = self.discretiser.state(&obs.features);
        let row = state * self.n_actions..(state + 1) * self.n_actions;
        let second = self.double.as_ref().map(|(_, _, v)| &v[row.clone()]);
        Some(
            self.visits[row].iter().any(|&n| n > 0)
                || second.is_some_and(|v| v.iter().any(|&n| n > 0)),
        )
    }

    fn learn(&mut self, t: &Transition<'_>) {
        let state = self.discretiser.state(&t.obs.features);
        // Only true termination cuts the bootstrap; truncation still bootstraps.
        let next = (!t.terminated).then(|| self.discretiser.state(&t.next_obs.features));
        if !self.config.monte_carlo {
            self.update(state, t.action, t.reward, next);
            return;
        }
        self.episode.push((state, t.action, t.reward));
        if t.terminated || t.truncated {
            let mut ret = next.map_or(0.0, |s| {
                self.row(s)
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
            });
            let episode = std::mem::take(&mut self.episode);
            for &(s, a, r) in episode.iter().rev() {
                ret = r + self.config.gamma * ret;
                let i = s * self.n_actions + a;
                self.visits[i] = self.visits[i].saturating_add(1);
                let alpha = self.rate(self.visits[i]);
                self.q[i] += alpha * (ret - self.q[i]);
                if !self.q[i].is_finite() && self.diverged.is_none() {
                    self.diverged = Some(format!(
                        "Q(state {s}, action {a}) became {} after a return of {ret}",
                        self.q[i]
                    ));
                }
            }
            self.episode = episode;
            self.episode.clear();
        }
    }
}

/// `kind = "q_learning"`: tabular Q-learning over the discretised observation.
#[derive(Debug, Clone, Copy, Default)]
pub struct TabularQKind;

impl PolicyKind for TabularQKind {
    type Config = TabularQConfig;

    fn kind(&self) -> &'static str {
        "q_learning"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn cost(&self, config: &Self::Config, cx: &BuildContext<'_>, _: f64) -> Costed {
        config.cost(cx.observation_space, cx.action_space.n())
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        if config.monte_carlo && cx.family.interleaved_sessions() {
            return Err(PolicyError::invalid(
                "monte_carlo",
                format!(
                    "Monte Carlo control needs one session at a time; {} steps many \
                     sessions together, interleaving their transitions",
                    cx.family.name()
                ),
            ));
        }
        Ok(Box::new(TabularQ::new(
            config.clone(),
            cx.observation_space,
            cx.action_space.n(),
            cx.seed,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::{Env, mdp::NChain};

    /// Off-policy Q-learning with a uniformly random behaviour policy (ε = 1)
    /// and rates `1/n^0.8` converges to value iteration's Q* on NChain (γ = 0.9).
    /// Q* spans 25–46 here; after 1,000 episodes of 1,000 steps every pair has
    /// ~10^5 updates, and the tolerance of 1.0 (about 2–4% of Q*) leaves room
    /// for the slow 1/n^0.8 decay of the initial bias while still failing on a
    /// wrong bootstrap (truncation treated as termination costs ~γ·Q* at every
    /// episode boundary) or a wrong target.
    #[test]
    fn converges_to_value_iteration_on_nchain() {
        converges_on_nchain(false);
    }

    /// Double Q-learning converges to the same Q* (each table gets half the
    /// updates, so the same tolerance holds with twice the episodes).
    #[test]
    fn double_q_learning_converges_to_value_iteration_on_nchain() {
        converges_on_nchain(true);
    }

    fn converges_on_nchain(double: bool) {
        let episodes = if double { 2_000 } else { 1_000 };
        let mut env = NChain::classic(1_000);
        let q_star = env.model().q_values(0.9, 1e-12);
        let config = TabularQConfig {
            alpha: 1.0,
            alpha_exponent: 0.8,
            gamma: 0.9,
            epsilon: LinearSchedule {
                start: 1.0,
                end: 1.0,
                decay_fraction: 1.0,
            },
            double,
            ..TabularQConfig::default()
        };
        let mut q = TabularQ::new(config, env.observation_space(), 2, 1).unwrap();
        crate::train(&mut env, &mut q, episodes);
        for (s, row) in q_star.iter().enumerate() {
            let obs = Observation {
                features: vec![s as f32],
            };
            let learned = q.q_values(&obs);
            for a in 0..2 {
                assert!(
                    (learned[a] - row[a]).abs() < 1.0,
                    "state {s} action {a}: learned {} vs Q* {}",
                    learned[a],
                    row[a]
                );
            }
            assert_eq!(
                q.greedy(&obs),
                crate::argmax(row),
                "greedy action in state {s}"
            );
        }
    }

    /// Monte Carlo control moves each visited pair to the episode's observed
    /// return: with α = 1, `Q(s0, a) = 1 + γ·2` after one episode of rewards
    /// 1 then 2, and a truncated episode bootstraps from `max_a Q` at its end.
    #[test]
    fn monte_carlo_uses_observed_returns() {
        let space = NChain::classic(10).observation_space().clone();
        let config = TabularQConfig {
            alpha: 1.0,
            alpha_exponent: 0.0,
            gamma: 0.5,
            monte_carlo: true,
            ..TabularQConfig::default()
        };
        let mut q = TabularQ::new(config.clone(), &space, 2, 0).unwrap();
        let obs = |s: f32| Observation { features: vec![s] };
        let (s0, s1, s2) = (obs(0.0), obs(1.0), obs(2.0));
        let step = |o: &Observation, reward: f64, next: &Observation, done: (bool, bool)| {
            (o.clone(), reward, next.clone(), done)
        };
        for (o, reward, next, (terminated, truncated)) in [
            step(&s0, 1.0, &s1, (false, false)),
            step(&s1, 2.0, &s2, (true, false)),
        ] {
            q.learn(&Transition {
                slot: 0,
                obs: &o,
                action: 0,
                reward,
                next_obs: &next,
                terminated,
                truncated,
            });
        }
        assert_eq!(q.q_values(&s1)[0], 2.0);
        assert_eq!(q.q_values(&s0)[0], 1.0 + 0.5 * 2.0);
        // Truncated at s1: bootstrap from max Q(s1) = 2.
        q.learn(&Transition {
            slot: 0,
            obs: &s0,
            action: 1,
            reward: 0.0,
            next_obs: &s1,
            terminated: false,
            truncated: true,
        });
        assert_eq!(q.q_values(&s0)[1], 0.5 * 2.0);
        let both = TabularQConfig {
            double: true,
            ..config
        };
        assert!(TabularQ::new(both, &space, 2, 0).is_err());
    }

    #[test]
    fn terminal_transitions_do_not_bootstrap() {
        let space = NChain::classic(10).observation_space().clone();
        let config = TabularQConfig {
            alpha: 1.0,
            gamma: 1.0,
            initial_q: 100.0,
            ..TabularQConfig::default()
        };
        let mut q = TabularQ::new(config, &space, 2, 0).unwrap();
        q.update(0, 0, 1.0, None);
        q.update(1, 0, 1.0, Some(2));
        let row = |s: f32| q.q_values(&Observation { features: vec![s] }).to_vec();
        assert_eq!(row(0.0)[0], 1.0);
        assert_eq!(row(1.0)[0], 101.0);
        assert_eq!(q.divergence(), None);
        q.update(2, 1, f64::INFINITY, None);
        assert!(q.divergence().unwrap().contains("state 2, action 1"));
    }
}
