//! Per-arm reward statistics shared by the context-free bandits.

/// Pull counts and running mean rewards of each arm.
#[derive(Debug, Clone, PartialEq)]
pub struct Arms {
    /// Times each arm was pulled.
    pub counts: Vec<u64>,
    /// Mean reward of each arm (0 for unpulled arms).
    pub means: Vec<f64>,
    /// Total pulls.
    pub total: u64,
    /// Smallest and largest reward seen, for scale-free exploration bonuses.
    pub reward_range: (f64, f64),
}

impl Arms {
    /// Statistics for `n` unpulled arms.
    pub fn new(n: usize) -> Self {
        Self {
            counts: vec![0; n],
            means: vec![0.0; n],
            total: 0,
            reward_range: (f64::INFINITY, f64::NEG_INFINITY),
        }
    }

    /// The lowest-index arm never pulled, if any.
    pub fn unpulled(&self) -> Option<usize> {
        self.counts.iter().position(|&c| c == 0)
    }

    /// Records `reward` for `arm`: `mean += (reward − mean) / count`.
    pub fn record(&mut self, arm: usize, reward: f64) {
        self.counts[arm] += 1;
        self.total += 1;
        self.means[arm] += (reward - self.means[arm]) / self.counts[arm] as f64;
        self.reward_range = (
            self.reward_range.0.min(reward),
            self.reward_range.1.max(reward),
        );
    }

    /// Width of the observed reward range (at least 1e-12).
    pub fn spread(&self) -> f64 {
        (self.reward_range.1 - self.reward_range.0).max(1e-12)
    }
}

/// Plays `policy` for `pulls` rounds on a Bernoulli bandit whose arm `a`
/// pays 1 with probability `success[a]` (drawn from `seed`), learning from
/// each; how often each arm was pulled.
#[cfg(test)]
pub(crate) fn play_bernoulli(
    policy: &mut dyn crate::Policy,
    success: &[f64],
    pulls: usize,
    seed: u64,
) -> Vec<usize> {
    use rand::RngExt;
    let mut env = shoplab_env::seed::rng_from_seed(seed);
    let obs = shoplab_env::Observation::default();
    let mut counts = vec![0; success.len()];
    for _ in 0..pulls {
        let a = policy.act(&obs);
        counts[a] += 1;
        let reward = f64::from(u8::from(env.random_bool(success[a])));
        policy.learn(&crate::Transition {
            slot: 0,
            obs: &obs,
            action: a,
            reward,
            next_obs: &obs,
            terminated: false,
            truncated: false,
        });
    }
    counts
}
