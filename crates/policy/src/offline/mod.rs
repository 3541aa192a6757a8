//! Learning from logged transitions, without acting: the data offline
//! learners read, tabular fitted Q iteration, and the neural learners
//! ([`neural`]).
//!
//! [`Transitions`] is a log's decisions as a learner needs them — each
//! row's observation, action and reward, and the row that follows it in its
//! session (none after a session's last row: its end is treated as
//! terminal, as a finite season's is; a truncated session's next state is
//! not in the log).
//!
//! **Tabular fitted Q iteration** (Ernst et al., 2005) regresses, at each
//! iteration, every visited state-action pair on the mean of its logged
//! targets: `Q_{k+1}(s, a) = mean over rows i with (sᵢ, aᵢ) = (s, a) of
//! rᵢ + γ maxₐ' Q_k(sᵢ₊₁, a')`, starting from 0, for `iterations` rounds —
//! value iteration on the log's empirical model, so with full coverage it
//! converges to the data's estimate of `Q*`, and a finite horizon's in as
//! many iterations as its longest session. Pairs never logged stay at 0
//! (reported by [`TabularFqi::count`]).

pub mod dt;
pub mod dt_kind;
pub mod kinds;
pub mod neural;

#[cfg(test)]
mod dt_tests;

/// Logged transitions, row by row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transitions {
    /// Features per row.
    pub dim: usize,
    /// The observations, row by row (`rows × dim`).
    pub obs: Vec<f32>,
    /// Each row's action.
    pub action: Vec<u32>,
    /// Each row's reward.
    pub reward: Vec<f64>,
    /// The next row of the same session, if any.
    pub next: Vec<Option<usize>>,
    /// Each row's logging probability `β(a | s)`, in (0, 1], for learners
    /// that correct for the logging policy; empty where the data has none.
    pub propensity: Vec<f64>,
    /// Each row's slate position (0 starts a step; the next row of a
    /// slate's step is its next position); empty where every step shows
    /// one action.
    pub position: Vec<u16>,
}

impl Transitions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.action.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.action.is_empty()
    }

    /// Row `i`'s observation.
    pub fn obs_of(&self, i: usize) -> &[f32] {
        &self.obs[i * self.dim..(i + 1) * self.dim]
    }
}

/// A tabular Q-function fitted offline.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularFqi {
    n_actions: usize,
    q: Vec<f64>,
    counts: Vec<u64>,
}

impl TabularFqi {
    /// Fits `Q` over `n_states × n_actions` by `iterations` rounds of
    /// fitted Q iteration with discount `gamma`; `state` maps an
    /// observation to its state index (below `n_states`).
    pub fn fit(
        data: &Transitions,
        state: impl Fn(&[f32]) -> usize,
        n_states: usize,
        n_actions: usize,
        gamma: f64,
        iterations: usize,
    ) -> Self {
        let states: Vec<usize> = (0..data.len()).map(|i| state(data.obs_of(i))).collect();
        let cell = |i: usize| states[i] * n_actions + data.action[i] as usize;
        let mut counts = vec![0u64; n_states * n_actions];
        for i in 0..data.len() {
            counts[cell(i)] += 1;
        }
        let mut q = vec![0.0; n_states * n_actions];
        let mut sums = vec![0.0; n_states * n_actions];
        for _ in 0..iterations {
            sums.iter_mut().for_each(|s| *s = 0.0);
            for i in 0..data.len() {
                let future = data.next[i].map_or(0.0, |j| {
                    let s = states[j] * n_actions;
                    q[s..s + n_actions]
                        .iter()
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max)
                });
                sums[cell(i)] += data.reward[i] + gamma * future;
            }
            for ((v, &s), &c) in q.iter_mut().zip(&sums).zip(&counts) {
                if c > 0 {
                    *v = s / c as f64;
                }
            }
        }
        Self {
            n_actions,
            q,
            counts,
        }
    }

    /// `Q(s, a)`.
    pub fn q(&self, s: usize, a: usize) -> f64 {
        self.q[s * self.n_actions + a]
    }

    /// Rows logged at `(s, a)`.
    pub fn count(&self, s: usize, a: usize) -> u64 {
        self.counts[s * self.n_actions + a]
    }

    /// The greedy action at state `s` (ties to the lower index).
    pub fn greedy(&self, s: usize) -> usize {
        crate::argmax(&self.q[s * self.n_actions..(s + 1) * self.n_actions])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-state chain by hand: from state 0, action 1 pays 1 and moves
    /// to state 1, action 0 pays 0 and stays; state 1 ends the session
    /// after paying 2 for either action. With γ = 0.5 and both actions
    /// logged everywhere, Q(1, ·) = 2, Q(0, 1) = 1 + 0.5·2 = 2 and
    /// Q(0, 0) = 0 + 0.5·max Q(0, ·) = 1.
    #[test]
    fn a_hand_solved_chain() {
        // Sessions: [0 -a0-> 0 -a1-> 1 -a0-> end], [0 -a1-> 1 -a1-> end].
        let data = Transitions {
            dim: 1,
            obs: vec![0.0, 0.0, 1.0, 0.0, 1.0],
            action: vec![0, 1, 0, 1, 1],
            reward: vec![0.0, 1.0, 2.0, 1.0, 2.0],
            next: vec![Some(1), Some(2), None, Some(4), None],
            ..Default::default()
        };
        let fqi = TabularFqi::fit(&data, |o| o[0] as usize, 2, 2, 0.5, 3);
        for (s, a, q) in [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 2.0), (1, 1, 2.0)] {
            assert!(
                (fqi.q(s, a) - q).abs() < 1e-12,
                "Q({s}, {a}) = {}",
                fqi.q(s, a)
            );
        }
        assert_eq!(fqi.count(0, 1), 2);
        assert_eq!(fqi.greedy(0), 1);
    }
}
