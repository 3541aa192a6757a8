//! Most popular: recommend the actions that earned a positive reward (a click)
//! most often so far. No exploration beyond what the counts bring.

use crate::registry::{BuildContext, Built, NoSettings, PolicyKind};
use crate::{Policy, Transition, argmax, top_k};
use shoplab_env::Observation;

/// Ranks actions by their count of positive rewards.
#[derive(Debug, Clone)]
pub struct MostPopular {
    positives: Vec<f64>,
}

impl MostPopular {
    /// A most-popular ranking over `n_actions` actions.
    pub fn new(n_actions: usize) -> Self {
        Self {
            positives: vec![0.0; n_actions],
        }
    }
}

impl Policy for MostPopular {
    fn act(&mut self, _obs: &Observation) -> usize {
        argmax(&self.positives)
    }

    fn act_slate(&mut self, _obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        top_k(&self.positives, k, slate);
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        argmax(&self.positives)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        if t.reward > 0.0 {
            self.positives[t.action] += 1.0;
        }
    }
}

/// `kind = "most_popular"`: the actions with the most positive rewards so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct MostPopularKind;

impl PolicyKind for MostPopularKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "most_popular"
    }

    fn build(&self, _: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(MostPopular::new(cx.action_space.n())))
    }
}
