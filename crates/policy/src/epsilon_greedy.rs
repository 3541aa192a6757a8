//! ε-greedy over actions, ignoring the state: a context-free bandit.
//!
//! Each arm is pulled once; after that, with probability ε a uniformly random
//! arm, otherwise the arm with the highest mean reward so far.

use crate::registry::{BuildContext, Built, PolicyKind};
use crate::{Policy, PolicyError, Transition, argmax, arms::Arms};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use shoplab_env::{
    Observation,
    seed::{SimRng, rng_from_seed},
};

/// Settings of [`EpsilonGreedy`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EpsilonGreedyConfig {
    /// Probability of a random arm, in `[0, 1]`.
    pub epsilon: f64,
}

impl Default for EpsilonGreedyConfig {
    fn default() -> Self {
        Self { epsilon: 0.1 }
    }
}

/// The ε-greedy bandit.
#[derive(Debug)]
pub struct EpsilonGreedy {
    config: EpsilonGreedyConfig,
    arms: Arms,
    rng: SimRng,
}

impl EpsilonGreedy {
    /// An ε-greedy bandit over `n_actions` arms, seeded with `seed`.
    pub fn new(
        config: EpsilonGreedyConfig,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        shoplab_env::config::probability("epsilon", config.epsilon)?;
        Ok(Self {
            config,
            arms: Arms::new(n_actions),
            rng: rng_from_seed(seed),
        })
    }
}

impl Policy for EpsilonGreedy {
    fn act(&mut self, _obs: &Observation) -> usize {
        if let Some(arm) = self.arms.unpulled() {
            return arm;
        }
        if self.rng.random_bool(self.config.epsilon) {
            self.rng.random_range(0..self.arms.counts.len())
        } else {
            argmax(&self.arms.means)
        }
    }

    fn action_probabilities(&mut self, _obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let n = self.arms.counts.len();
        match self.arms.unpulled() {
            Some(arm) => crate::one_hot_probabilities(arm, n, probs),
            None => crate::epsilon_greedy_probabilities(
                self.config.epsilon,
                argmax(&self.arms.means),
                n,
                probs,
            ),
        }
        true
    }

    /// With probability ε a random slate, else the `k` best means (each arm
    /// is shown once first).
    fn act_slate(&mut self, _obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        if self.arms.unpulled().is_some() {
            let untried: Vec<usize> = (0..n).filter(|&a| self.arms.counts[a] == 0).collect();
            slate.clear();
            slate.extend(untried.iter().copied().take(k));
            slate.extend(
                (0..n)
                    .filter(|a| !untried.contains(a))
                    .take(k - slate.len()),
            );
        } else if self.rng.random_bool(self.config.epsilon) {
            crate::random_slate(&mut self.rng, n, k, slate);
        } else {
            crate::top_k(&self.arms.means, k, slate);
        }
    }

    fn slate_probabilities(
        &mut self,
        _obs: &Observation,
        k: usize,
        n: usize,
        probs: &mut Vec<f64>,
    ) -> bool {
        let mut slate = Vec::with_capacity(k);
        if self.arms.unpulled().is_some() {
            // The untried arms first: a deterministic slate.
            let untried: Vec<usize> = (0..n).filter(|&a| self.arms.counts[a] == 0).collect();
            slate.extend(untried.iter().copied().take(k));
            slate.extend(
                (0..n)
                    .filter(|a| !untried.contains(a))
                    .take(k - slate.len()),
            );
            crate::epsilon_slate_probabilities(0.0, &slate, n, probs);
        } else {
            crate::top_k(&self.arms.means, k, &mut slate);
            crate::epsilon_slate_probabilities(self.config.epsilon, &slate, n, probs);
        }
        true
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        argmax(&self.arms.means)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        self.arms.record(t.action, t.reward);
    }
}

/// `kind = "epsilon_greedy"`: the ε-greedy bandit over actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpsilonGreedyKind;

impl PolicyKind for EpsilonGreedyKind {
    type Config = EpsilonGreedyConfig;

    fn kind(&self) -> &'static str {
        "epsilon_greedy"
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(EpsilonGreedy::new(
            *config,
            cx.action_space.n(),
            cx.seed,
        )?))
    }
}
