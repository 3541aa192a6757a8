//! UCB1 over actions, ignoring the state: a context-free bandit.
//!
//! Auer, Cesa-Bianchi and Fischer (2002): pull each arm once, then the arm
//! maximising `mean_a + c · R · sqrt(2 ln n / n_a)`, where `n` is the total
//! number of pulls and `n_a` the pulls of arm `a`. UCB1 assumes rewards in
//! `[0, 1]`; shoplab's rewards are in currency, so the bonus is scaled by `R`,
//! the width of the reward range observed so far, which makes the rule
//! invariant to the reward's units.

use crate::registry::{BuildContext, Built, PolicyKind};
use crate::{Policy, PolicyError, Transition, argmax, arms::Arms};
use serde::{Deserialize, Serialize};
use shoplab_env::Observation;

/// Settings of [`Ucb1`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ucb1Config {
    /// Exploration weight `c` (1 is the textbook UCB1), ≥ 0.
    pub c: f64,
}

impl Default for Ucb1Config {
    fn default() -> Self {
        Self { c: 1.0 }
    }
}

/// The UCB1 bandit.
#[derive(Debug)]
pub struct Ucb1 {
    config: Ucb1Config,
    arms: Arms,
    scores: Vec<f64>,
}

impl Ucb1 {
    /// A UCB1 bandit over `n_actions` arms.
    pub fn new(config: Ucb1Config, n_actions: usize) -> Result<Self, PolicyError> {
        shoplab_env::config::at_least("c", config.c, 0.0)?;
        Ok(Self {
            config,
            arms: Arms::new(n_actions),
            scores: vec![0.0; n_actions],
        })
    }
}

impl Ucb1 {
    /// Fills `scores` with each arm's upper confidence bound (unpulled arms: +∞).
    fn bounds(&mut self) {
        let log_n = (self.arms.total.max(1) as f64).ln();
        let scale = self.config.c * self.arms.spread();
        for (score, (&mean, &count)) in self
            .scores
            .iter_mut()
            .zip(self.arms.means.iter().zip(&self.arms.counts))
        {
            *score = if count == 0 {
                f64::INFINITY
            } else {
                mean + scale * (2.0 * log_n / count as f64).sqrt()
            };
        }
    }
}

impl Policy for Ucb1 {
    fn act(&mut self, _obs: &Observation) -> usize {
        self.bounds();
        argmax(&self.scores)
    }

    fn action_probabilities(&mut self, _obs: &Observation, probs: &mut Vec<f64>) -> bool {
        self.bounds();
        crate::one_hot_probabilities(argmax(&self.scores), self.scores.len(), probs);
        true
    }

    /// The `k` arms with the highest upper confidence bounds.
    fn act_slate(&mut self, _obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        self.bounds();
        crate::top_k(&self.scores, k, slate);
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        argmax(&self.arms.means)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        self.arms.record(t.action, t.reward);
    }
}

/// `kind = "ucb1"`: the UCB1 bandit over actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ucb1Kind;

impl PolicyKind for Ucb1Kind {
    type Config = Ucb1Config;

    fn kind(&self) -> &'static str {
        "ucb1"
    }

    fn build(&self, config: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(Ucb1::new(*config, cx.action_space.n())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a two-armed Bernoulli bandit (0.3 vs 0.7) UCB1 pulls the worse arm
    /// O(log n) times: after 10,000 pulls, well under 10% of them.
    #[test]
    fn ucb1_concentrates_on_the_best_arm() {
        let mut ucb = Ucb1::new(Ucb1Config::default(), 2).unwrap();
        crate::arms::play_bernoulli(&mut ucb, &[0.3, 0.7], 10_000, 9);
        assert!(ucb.arms.counts[0] < 1_000, "{:?}", ucb.arms.counts);
        assert_eq!(ucb.greedy(&Observation::default()), 1);
    }
}
