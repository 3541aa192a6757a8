//! Thompson sampling with Beta–Bernoulli arms (Thompson, 1933; Chapelle and
//! Li, 2011).
//!
//! Each action's success probability has a `Beta(1 + s_a, 1 + f_a)`
//! posterior, `s_a` and `f_a` counting positive and non-positive rewards. Each
//! decision draws one sample per action and takes the best (the `k` best for a
//! slate). The reward must be a success signal — a click or a purchase — so
//! the harness offers it only where rewards are clicks or purchases.

use crate::registry::{BuildContext, Built, NoSettings, PolicyKind};
use crate::{Policy, Transition, argmax, top_k};
use rand_distr::{Distribution, Gamma};
use shoplab_env::{
    Observation,
    seed::{SimRng, derive_seed, rng_from_seed},
};

/// Posterior draws behind each logged propensity: obp estimates its
/// Bernoulli TS action distribution by simulation too (100,000 draws by
/// default); 10,000 give a standard error of at most 0.005.
pub const PROPENSITY_DRAWS: usize = 10_000;

/// The Beta–Bernoulli Thompson sampler.
#[derive(Debug)]
pub struct Thompson {
    successes: Vec<f64>,
    failures: Vec<f64>,
    /// `Gamma(1 + s_a)` and `Gamma(1 + f_a)` of each action, rebuilt when its counts change.
    gammas: Vec<(Gamma<f64>, Gamma<f64>)>,
    samples: Vec<f64>,
    rng: SimRng,
    /// Draws for propensity estimates only, so that logging leaves the
    /// decisions' own draws as they are without it.
    propensity_rng: SimRng,
    /// How often each action's draw was the largest in the last
    /// [`PROPENSITY_DRAWS`] posterior draws; kept until the posterior
    /// changes, so the slots of a batch that act on one posterior share them.
    propensity_counts: Option<Vec<f64>>,
}

/// `Gamma(shape, 1)`; shapes here are always ≥ 1, so it always exists.
fn gamma(shape: f64) -> Gamma<f64> {
    Gamma::new(shape, 1.0).expect("shape ≥ 1 and scale 1 are valid")
}

impl Thompson {
    /// A sampler over `n_actions` actions with uniform priors, seeded with `seed`.
    pub fn new(n_actions: usize, seed: u64) -> Self {
        Self {
            successes: vec![0.0; n_actions],
            failures: vec![0.0; n_actions],
            gammas: vec![(gamma(1.0), gamma(1.0)); n_actions],
            samples: vec![0.0; n_actions],
            rng: rng_from_seed(seed),
            propensity_rng: rng_from_seed(derive_seed(seed, "thompson propensities", 0)),
            propensity_counts: None,
        }
    }

    /// One posterior draw per action: `Beta(a, b) = X / (X + Y)` with
    /// `X ~ Gamma(a)` and `Y ~ Gamma(b)` independent.
    fn sample(&mut self) {
        for (sample, (x, y)) in self.samples.iter_mut().zip(&self.gammas) {
            let (x, y) = (x.sample(&mut self.rng), y.sample(&mut self.rng));
            *sample = x / (x + y);
        }
    }

    /// Posterior mean success probability of each action.
    pub fn posterior_means(&self) -> Vec<f64> {
        self.successes
            .iter()
            .zip(&self.failures)
            .map(|(s, f)| (1.0 + s) / (2.0 + s + f))
            .collect()
    }
}

impl Policy for Thompson {
    fn act(&mut self, _obs: &Observation) -> usize {
        self.sample();
        argmax(&self.samples)
    }

    /// The chance that each action's posterior draw is the largest, by
    /// Monte Carlo: [`PROPENSITY_DRAWS`] draws of the posteriors from a
    /// generator of their own (shared by every decision until the posterior
    /// changes), plus the decision's own draw, so the estimate `(count +
    /// [a taken]) / (draws + 1)` is unbiased and the action taken never
    /// gets probability 0.
    fn act_logged(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> Option<usize> {
        if self.propensity_counts.is_none() {
            let mut counts = vec![0.0; self.samples.len()];
            for _ in 0..PROPENSITY_DRAWS {
                let mut best = (0, f64::NEG_INFINITY);
                for (a, (x, y)) in self.gammas.iter().enumerate() {
                    let (x, y) = (
                        x.sample(&mut self.propensity_rng),
                        y.sample(&mut self.propensity_rng),
                    );
                    let draw = x / (x + y);
                    if draw > best.1 {
                        best = (a, draw);
                    }
                }
                counts[best.0] += 1.0;
            }
            self.propensity_counts = Some(counts);
        }
        probs.clone_from(self.propensity_counts.as_ref().expect("just computed"));
        let action = self.act(obs);
        probs[action] += 1.0;
        let total = (PROPENSITY_DRAWS + 1) as f64;
        probs.iter_mut().for_each(|p| *p /= total);
        Some(action)
    }

    fn act_slate(&mut self, _obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        self.sample();
        top_k(&self.samples, k, slate);
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        argmax(&self.posterior_means())
    }

    fn learn(&mut self, t: &Transition<'_>) {
        self.propensity_counts = None;
        let a = t.action;
        if t.reward > 0.0 {
            self.successes[a] += 1.0;
            self.gammas[a].0 = gamma(1.0 + self.successes[a]);
        } else {
            self.failures[a] += 1.0;
            self.gammas[a].1 = gamma(1.0 + self.failures[a]);
        }
    }
}

/// `kind = "thompson"`: Beta–Bernoulli Thompson sampling over actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThompsonKind;

impl PolicyKind for ThompsonKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "thompson"
    }

    fn applies(&self, family: &dyn shoplab_env::Family) -> Result<(), String> {
        if family.binary_feedback() {
            Ok(())
        } else {
            Err("its Beta–Bernoulli model needs click or purchase rewards, \
                 as in the recommendation family"
                .into())
        }
    }

    fn build(&self, _: &Self::Config, cx: &BuildContext<'_>) -> Built {
        Ok(Box::new(Thompson::new(cx.action_space.n(), cx.seed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a three-armed Bernoulli bandit (0.2, 0.5, 0.6), after 5,000 pulls
    /// Thompson sampling has pulled the best arm in most of them.
    #[test]
    fn concentrates_on_the_best_arm() {
        let mut ts = Thompson::new(3, 4);
        let counts = crate::arms::play_bernoulli(&mut ts, &[0.2, 0.5, 0.6], 5_000, 8);
        assert!(counts[2] > 4_000, "best arm pulled {} times", counts[2]);
        assert_eq!(ts.greedy(&Observation::default()), 2);
    }
}
