//! Uniformly random actions: the floor every learner must clear.

use crate::Policy;
use crate::registry::{BuildContext, Built, NoSettings, PolicyKind};
use rand::RngExt;
use shoplab_env::{
    Observation,
    seed::{SimRng, rng_from_seed},
};

/// Draws each action uniformly at random.
#[derive(Debug)]
pub struct UniformRandom {
    n_actions: usize,
    rng: SimRng,
}

impl UniformRandom {
    /// A random policy over `n_actions` actions, seeded with `seed`.
    pub fn new(n_actions: usize, seed: u64) -> Self {
        Self {
            n_actions,
            rng: rng_from_seed(seed),
        }
    }
}

impl Policy for UniformRandom {
    fn act(&mut self, _obs: &Observation) -> usize {
        self.rng.random_range(0..self.n_actions)
    }

    fn action_probabilities(&mut self, _obs: &Observation, probs: &mut Vec<f64>) -> bool {
        probs.clear();
        probs.resize(self.n_actions, 1.0 / self.n_actions as f64);
        true
    }

    fn act_slate(&mut self, _obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        crate::random_slate(&mut self.rng, n, k, slate);
    }

    /// A uniformly random slate without repeats puts each action at each
    /// position with probability 1/n.
    fn slate_probabilities(
        &mut self,
        _obs: &Observation,
        k: usize,
        n: usize,
        probs: &mut Vec<f64>,
    ) -> bool {
        probs.clear();
        probs.resize(k.min(n) * n, 1.0 / n as f64);
        true
    }

    /// A random policy has no preferred action; it reports action 0.
    fn greedy(&self, _obs: &Observation) -> usize {
        0
    }

    /// Evaluated as what it is: uniformly random.
    fn act_greedy(&mut self, obs: &Observation) -> usize {
        self.act(obs)
    }

    fn greedy_is_markov(&self) -> bool {
        false
    }

    fn greedy_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        self.act_slate(obs, k, n, slate);
    }
}

/// `kind = "random"`: uniformly random actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomKind;

impl PolicyKind for RandomKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "random"
    }

    fn build(&self, _: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(UniformRandom::new(cx.action_space.n(), cx.seed)))
    }
}
