//! Small tabular MDPs with exact solutions, for testing learners against Q*.
//!
//! [`TabularMdp`] holds an explicit transition model and solves it by value
//! iteration; [`NChain`] is the classic five-state chain (Strens, 2000) as both
//! a model and an [`Env`].

use crate::{
    ActionSpace, Env, Feature, Info, Observation, ObservationSpace, Step,
    seed::{SimRng, rng_from_seed},
};
use rand::RngExt;

/// One possible outcome of taking an action: next state, probability, reward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The next state.
    pub next: usize,
    /// Its probability.
    pub prob: f64,
    /// The reward received.
    pub reward: f64,
}

/// A finite MDP given by its full transition model:
/// `outcomes[s][a]` lists the outcomes of action `a` in state `s`.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularMdp {
    /// Outcomes per state and action.
    pub outcomes: Vec<Vec<Vec<Outcome>>>,
}

impl TabularMdp {
    /// Solves the discounted infinite-horizon problem by value iteration:
    /// `Q(s,a) = Σ p (r + γ max_b Q(s',b))`, iterated until the largest change
    /// is below `tolerance`. Returns `Q[s][a]`.
    ///
    /// Value iteration is a γ-contraction, so the error after stopping is at
    /// most `tolerance · γ / (1 − γ)`.
    pub fn q_values(&self, gamma: f64, tolerance: f64) -> Vec<Vec<f64>> {
        let mut q: Vec<Vec<f64>> = self.outcomes.iter().map(|a| vec![0.0; a.len()]).collect();
        loop {
            let v: Vec<f64> = q
                .iter()
                .map(|row| row.iter().copied().fold(f64::NEG_INFINITY, f64::max))
                .collect();
            let mut delta: f64 = 0.0;
            for (s, actions) in self.outcomes.iter().enumerate() {
                for (a, outcomes) in actions.iter().enumerate() {
                    let new: f64 = outcomes
                        .iter()
                        .map(|o| o.prob * (o.reward + gamma * v[o.next]))
                        .sum();
                    delta = delta.max((new - q[s][a]).abs());
                    q[s][a] = new;
                }
            }
            if delta < tolerance {
                return q;
            }
        }
    }
}

/// The NChain MDP: `n` states in a row; action 0 ("forward") moves one state
/// right with reward 0, or stays in the last state with reward `big`; action 1
/// ("back") returns to state 0 with reward `small`. With probability `slip`
/// the other action happens instead.
#[derive(Debug)]
pub struct NChain {
    n: usize,
    slip: f64,
    small: f64,
    big: f64,
    max_steps: usize,
    space: ObservationSpace,
    actions: ActionSpace,
    state: usize,
    t: usize,
    rng: SimRng,
}

impl NChain {
    /// The classic chain: 5 states, slip 0.2, rewards 2 and 10, episodes
    /// truncated (not terminated) after `max_steps` steps.
    pub fn classic(max_steps: usize) -> Self {
        Self::new(5, 0.2, 2.0, 10.0, max_steps)
    }

    /// A chain of `n` states with the given slip probability and rewards.
    pub fn new(n: usize, slip: f64, small: f64, big: f64, max_steps: usize) -> Self {
        Self {
            n,
            slip,
            small,
            big,
            max_steps,
            space: ObservationSpace {
                features: vec![Feature {
                    name: "state",
                    low: 0.0,
                    high: (n - 1) as f32,
                    integer: true,
                    suggested_bins: n,
                }],
            },
            actions: ActionSpace::labelled(vec!["forward".into(), "back".into()]),
            state: 0,
            t: 0,
            rng: rng_from_seed(0),
        }
    }

    /// Next state and reward when `effective` (0 forward, 1 back) happens in `s`.
    fn outcome(&self, s: usize, effective: usize) -> (usize, f64) {
        match effective {
            0 if s + 1 < self.n => (s + 1, 0.0),
            0 => (s, self.big),
            _ => (0, self.small),
        }
    }

    /// The chain's exact transition model.
    pub fn model(&self) -> TabularMdp {
        let outcomes = (0..self.n)
            .map(|s| {
                (0..2)
                    .map(|a| {
                        let (n1, r1) = self.outcome(s, a);
                        let (n2, r2) = self.outcome(s, 1 - a);
                        vec![
                            Outcome {
                                next: n1,
                                prob: 1.0 - self.slip,
                                reward: r1,
                            },
                            Outcome {
                                next: n2,
                                prob: self.slip,
                                reward: r2,
                            },
                        ]
                    })
                    .collect()
            })
            .collect();
        TabularMdp { outcomes }
    }
}

impl Env for NChain {
    fn observation_space(&self) -> &ObservationSpace {
        &self.space
    }

    fn action_space(&self) -> &ActionSpace {
        &self.actions
    }

    fn metric_names(&self) -> &[&'static str] {
        &[]
    }

    fn reset(&mut self, seed: u64) -> (Observation, Info) {
        self.rng = rng_from_seed(seed);
        self.state = 0;
        self.t = 0;
        (
            Observation {
                features: vec![0.0],
            },
            Vec::new(),
        )
    }

    fn step(&mut self, action: usize) -> Step {
        assert!(action < 2, "NChain has 2 actions, got {action}");
        let effective = if self.rng.random_bool(self.slip) {
            1 - action
        } else {
            action
        };
        let (next, reward) = self.outcome(self.state, effective);
        self.state = next;
        self.t += 1;
        Step {
            obs: Observation {
                features: vec![next as f32],
            },
            reward,
            terminated: false,
            truncated: self.t >= self.max_steps,
            info: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_determinism;

    #[test]
    fn nchain_q_star_matches_published_values() {
        // Q*(s0) ≈ (25.50, 25.09) and Q*(s4) ≈ (46.39, 30.31) for γ = 0.9.
        let q = NChain::classic(100).model().q_values(0.9, 1e-12);
        let close = |x: f64, y: f64| (x - y).abs() < 0.01;
        assert!(close(q[0][0], 25.50) && close(q[0][1], 25.09), "{:?}", q[0]);
        assert!(close(q[4][0], 46.39) && close(q[4][1], 30.31), "{:?}", q[4]);
    }

    #[test]
    fn nchain_is_deterministic() {
        check_determinism(&mut NChain::classic(50), &mut NChain::classic(50), 1, 2, 50).unwrap();
    }
}
