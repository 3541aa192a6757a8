//! A policy's greedy choice with ε-uniform noise: how offline datasets'
//! `medium` and `expert` behaviours are played (D4RL's noisy experts), with
//! exact propensities.

use crate::Policy;
use rand::RngExt;
use shoplab_env::{
    Observation,
    seed::{SimRng, rng_from_seed},
};

/// With probability ε a uniformly random action, otherwise `inner`'s
/// greedy action; `inner` never learns through it. The greedy action is
/// asked once a decision, through [`Policy::act_greedy`], so controllers
/// with per-episode state (a pacing controller's integral) follow their
/// own course whatever the noise does.
#[derive(Debug)]
pub struct Noisy {
    inner: Box<dyn Policy>,
    epsilon: f64,
    n_actions: usize,
    rng: SimRng,
    /// The greedy action of the observation whose probabilities were
    /// just reported, which `act` then plays.
    pending: Option<usize>,
}

impl Noisy {
    /// `inner` made noisy with probability `epsilon` (in [0, 1]) over
    /// `n_actions`, its draws from `seed`.
    pub fn new(inner: Box<dyn Policy>, epsilon: f64, n_actions: usize, seed: u64) -> Self {
        Self {
            inner,
            epsilon,
            n_actions,
            rng: rng_from_seed(seed),
            pending: None,
        }
    }
}

impl Policy for Noisy {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        self.pending = None;
        self.inner.begin_episode(episode, total);
    }

    fn act(&mut self, obs: &Observation) -> usize {
        let greedy = match self.pending.take() {
            Some(g) => g,
            None => self.inner.act_greedy(obs),
        };
        if self.epsilon > 0.0 && self.rng.random_bool(self.epsilon) {
            self.rng.random_range(0..self.n_actions)
        } else {
            greedy
        }
    }

    /// Asks the inner policy's greedy action (once: `act` plays it next).
    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        let greedy = self.inner.act_greedy(obs);
        self.pending = Some(greedy);
        crate::epsilon_greedy_probabilities(self.epsilon, greedy, self.n_actions, probs);
        true
    }

    fn greedy(&self, obs: &Observation) -> usize {
        self.inner.greedy(obs)
    }

    /// An oracle inside reads the env's expected rewards through it.
    fn wants_expected_rewards(&self) -> bool {
        self.inner.wants_expected_rewards()
    }

    fn see_expected_rewards(&mut self, rewards: &[f64]) {
        self.inner.see_expected_rewards(rewards);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixed::Fixed, myopic_oracle::MyopicOracle};

    /// An oracle inside sees the expected rewards the env gives it, and
    /// its greedy action follows them.
    #[test]
    fn an_oracle_inside_sees_the_expected_rewards() {
        let mut noisy = Noisy::new(Box::new(MyopicOracle::default()), 0.0, 3, 1);
        assert!(noisy.wants_expected_rewards());
        let obs = Observation { features: vec![] };
        noisy.see_expected_rewards(&[0.1, 0.7, 0.2]);
        assert_eq!(noisy.act(&obs), 1);
        noisy.see_expected_rewards(&[0.9, 0.7, 0.2]);
        assert_eq!(noisy.act(&obs), 0);
    }

    /// The reported probabilities are the ones `act` draws from (4,000
    /// draws; 5 binomial standard deviations).
    #[test]
    fn noisy_propensities_are_exact() {
        let mut noisy = Noisy::new(Box::new(Fixed::new(2, 4)), 0.3, 4, 9);
        let obs = Observation { features: vec![] };
        let mut probs = Vec::new();
        assert!(noisy.action_probabilities(&obs, &mut probs));
        for (p, q) in probs.iter().zip([0.075, 0.075, 0.775, 0.075]) {
            assert!((p - q).abs() < 1e-12, "{probs:?}");
        }
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[noisy.act(&obs)] += 1;
        }
        for (c, p) in counts.iter().zip(&probs) {
            let sd = (4000.0 * p * (1.0 - p)).sqrt();
            assert!((*c as f64 - 4000.0 * p).abs() < 5.0 * sd, "{counts:?}");
        }
    }
}
