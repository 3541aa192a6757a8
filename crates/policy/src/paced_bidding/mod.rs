//! Budget pacing for ad bidding, with a creative chosen by a bandit.
//!
//! The ads env's action is a pair (bid multiplier λ, creative), numbered
//! `λ_index · n_creatives + creative`; a [`PacedBidding`] policy picks each
//! half with its own rule.
//!
//! **Pacing** chooses λ (bid = estimated value ÷ λ) each period from the
//! observation's `period` and `budget_left`:
//! - [`Pacing::Fixed`]: one multiplier all day (λ = 1 is truthful bidding
//!   until the budget runs out: the greedy baseline);
//! - [`Pacing::Even`]: even pacing by throttling — bid truthfully while
//!   spend is at or behind the even schedule `budget · (t + 1) / periods`,
//!   and with the largest multiplier (the lowest bids) while ahead of it;
//! - [`Pacing::Pid`]: a PID controller on `log λ` driven by the spend error
//!   `e_t = (spent − budget · t / periods) / (budget / periods)`:
//!   `log λ_t = log λ_1 + kp·e_t + ki·Σe + kd·(e_t − e_{t−1})`, snapped to the
//!   nearest grid multiplier (the industrial baseline);
//! - [`Pacing::Dual`]: adaptive pacing by dual subgradient descent
//!   (Balseiro and Gur, "Learning in Repeated Auctions with Budgets", 2019):
//!   bid `v̂ / (1 + μ)`, so `λ = 1 + μ`, and after each period move the
//!   budget's shadow price by the period's overspend,
//!   `μ ← clamp(μ + η (z_t / ρ − 1))` with `z_t` the period's spend and
//!   `ρ = budget / periods` the even per-period target; snapped to the
//!   nearest grid multiplier. The paper keeps `μ ≥ 0`; here μ ranges over
//!   the grid's multipliers minus one, so an underspending bidder may also
//!   bid above its estimate when the grid allows;
//! - [`Pacing::Learned`]: a learner (tabular or deep Q-learning) over the
//!   multipliers from the observation (period and pace by default);
//! - [`Pacing::Stepped`]: a learner over moves of the multiplier —
//!   one grid step down (bid more), stay, or one step up (bid less) — from the
//!   discretised state plus the current multiplier, the form of model-free
//!   budget-constrained bidding (Wu et al., 2018) that keeps λ persistent.
//!
//! **Creative** is fixed or a bandit over creatives that learns click rates
//! from the impressions and clicks of the period just played (the
//! observation's `last_wins` and `last_clicks`): UCB1 on the click rate, or
//! Beta–Bernoulli Thompson sampling with `Beta(1 + clicks, 1 + impressions −
//! clicks)` per creative.

use crate::{CheckpointError, LearningStats, Policy, PolicyError, Transition, argmax};
use rand_distr::{Beta, Distribution};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use shoplab_env::{
    Observation, ObservationSpace,
    seed::{SimRng, derive_seed, rng_from_seed},
};

mod creative;
mod logged;
pub use creative::{CreativeBandit, CreativeRule};

/// How the bid multiplier is chosen.
#[derive(Debug)]
pub enum Pacing {
    /// Always the multiplier with this grid index.
    Fixed(usize),
    /// Throttle to the even spend schedule.
    Even {
        /// Grid index of the truthful multiplier (closest to 1).
        truthful: usize,
    },
    /// A PID controller on `log λ`.
    Pid {
        /// Proportional gain.
        kp: f64,
        /// Integral gain.
        ki: f64,
        /// Derivative gain.
        kd: f64,
        /// Grid index of the starting multiplier.
        start: usize,
        /// Sum of errors so far.
        integral: f64,
        /// The previous error.
        previous: f64,
    },
    /// Dual subgradient descent on the budget's shadow price μ (λ = 1 + μ).
    Dual {
        /// Step size η, per unit of relative overspend.
        step: f64,
        /// μ at the start of the day.
        start: f64,
        /// The current μ.
        mu: f64,
        /// Spend at the start of the last period.
        last_spent: f64,
    },
    /// A learner (tabular or deep Q-learning) over the multipliers, deciding every `every`
    /// periods and holding λ in between (a macro-action: the learner sees one
    /// transition per decision, with the rewards of the periods it covered).
    Learned {
        /// The learner.
        q: Box<dyn Policy>,
        /// Periods per decision, ≥ 1.
        every: usize,
        /// The decision in force: its observation, multiplier index, the
        /// reward gathered since and the periods it has covered.
        held: Option<(Observation, usize, f64, usize)>,
    },
    /// A learner over moves of the multiplier (down, stay, up), its
    /// state extended with the current multiplier's index.
    Stepped {
        /// The learner over 3 moves, built over [`PacedBidding::stepped_space`].
        q: Box<dyn Policy>,
        /// Grid index the day starts from.
        start: usize,
        /// The multiplier now in force.
        current: usize,
        /// The multiplier before the last move, and the move.
        last: (usize, usize),
    },
}

/// A pacing rule and a creative rule over the ads action space.
#[derive(Debug)]
pub struct PacedBidding {
    pacing: Pacing,
    creative: CreativeRule,
    multipliers: Vec<f64>,
    n_creatives: usize,
    /// The day's budget: the `budget_left` feature's range until a day's
    /// first observation tells the day's own (days may differ).
    budget: f64,
    periods: f64,
    features: [usize; 4],
    /// Impressions and clicks per creative.
    impressions: Vec<f64>,
    clicks: Vec<f64>,
    rng: SimRng,
}

const NEEDED: [&str; 4] = ["period", "budget_left", "last_wins", "last_clicks"];

impl PacedBidding {
    /// A paced bidder over `multipliers × n_creatives` actions; the budget and
    /// the day's length are read from the `budget_left` and `period` features'
    /// ranges in `space`.
    pub fn new(
        pacing: Pacing,
        creative: CreativeRule,
        multipliers: &[f64],
        n_creatives: usize,
        space: &ObservationSpace,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        let mut features = [0; 4];
        for (slot, name) in features.iter_mut().zip(NEEDED) {
            *slot = space
                .index_of(name)
                .ok_or(PolicyError::MissingFeature(name))?;
        }
        if let CreativeRule::Index(c) = creative
            && c as usize >= n_creatives
        {
            return Err(PolicyError::invalid(
                "creative",
                format!("must be below the {n_creatives} creatives (found {c})"),
            ));
        }
        Ok(Self {
            budget: f64::from(space.features[features[1]].high),
            // The period's range ends with the observation after the day's
            // last period, which reads the number of periods.
            periods: f64::from(space.features[features[0]].high),
            pacing,
            creative,
            multipliers: multipliers.to_vec(),
            n_creatives,
            features,
            impressions: vec![0.0; n_creatives],
            clicks: vec![0.0; n_creatives],
            rng: rng_from_seed(derive_seed(seed, "creative", 0)),
        })
    }

    /// `space` extended with the multiplier index, for [`Pacing::Stepped`].
    pub fn stepped_space(space: &ObservationSpace, n_multipliers: usize) -> ObservationSpace {
        let mut extended = space.clone();
        extended.features.push(shoplab_env::Feature {
            name: "multiplier_index",
            low: 0.0,
            high: (n_multipliers - 1) as f32,
            integer: true,
            suggested_bins: n_multipliers,
        });
        extended
    }

    /// `obs` with the multiplier index appended.
    fn extend(obs: &Observation, index: usize) -> Observation {
        let mut features = obs.features.clone();
        features.push(index as f32);
        Observation { features }
    }

    /// The grid index of the multiplier closest to `target` in log scale.
    pub fn nearest(multipliers: &[f64], target: f64) -> usize {
        let distance = |m: f64| (m.ln() - target.ln()).abs();
        (0..multipliers.len()).fold(0, |best, i| {
            if distance(multipliers[i]) < distance(multipliers[best]) {
                i
            } else {
                best
            }
        })
    }

    /// Spend so far minus the even schedule at the start of `period`, in
    /// periods' worth of budget.
    fn spend_error(&self, obs: &Observation) -> f64 {
        let period = f64::from(obs.features[self.features[0]]);
        let spent = self.budget - f64::from(obs.features[self.features[1]]);
        let per_period = self.budget / self.periods;
        (spent - per_period * period) / per_period
    }

    fn choose_multiplier(&mut self, obs: &Observation, explore: bool) -> usize {
        let error = self.spend_error(obs);
        let last = self.multipliers.len() - 1;
        let grid = self.multipliers.clone();
        match &mut self.pacing {
            Pacing::Fixed(i) => *i,
            Pacing::Even { truthful } => {
                // Ahead of the schedule by more than one period's budget: hold back.
                if error > 1.0 { last } else { *truthful }
            }
            Pacing::Pid {
                kp,
                ki,
                kd,
                start,
                integral,
                previous,
            } => {
                let derivative = error - *previous;
                *integral = (*integral + error).clamp(-1e3, 1e3);
                *previous = error;
                let log_lambda =
                    grid[*start].ln() + *kp * error + *ki * *integral + *kd * derivative;
                Self::nearest(&grid, log_lambda.exp())
            }
            Pacing::Dual {
                step,
                start,
                mu,
                last_spent,
            } => {
                let period = f64::from(obs.features[self.features[0]]);
                let spent = self.budget - f64::from(obs.features[self.features[1]]);
                if period == 0.0 {
                    *mu = *start;
                } else {
                    let target = self.budget / self.periods;
                    let overspend = (spent - *last_spent) / target - 1.0;
                    *mu = (*mu + *step * overspend).clamp(grid[0] - 1.0, grid[last] - 1.0);
                }
                *last_spent = spent;
                Self::nearest(&grid, 1.0 + *mu)
            }
            Pacing::Learned { q, every, held } => {
                if let Some((_, action, _, covered)) = held
                    && *covered < *every
                {
                    return *action;
                }
                let action = if explore { q.act(obs) } else { q.greedy(obs) };
                *held = Some((obs.clone(), action, 0.0, 0));
                action
            }
            Pacing::Stepped {
                q, current, last, ..
            } => {
                let extended = Self::extend(obs, *current);
                let step = if explore {
                    q.act(&extended)
                } else {
                    q.greedy(&extended)
                };
                *last = (*current, step);
                *current = (*current + step).saturating_sub(1).min(last_index(&grid));
                *current
            }
        }
    }

    fn click_rate_scores(&mut self, explore: bool) -> Vec<f64> {
        let total: f64 = self.impressions.iter().sum();
        (0..self.n_creatives)
            .map(|c| {
                let (n, k) = (self.impressions[c], self.clicks[c]);
                match (self.creative, explore) {
                    (CreativeRule::Bandit(CreativeBandit::Thompson), true) => {
                        Beta::new(1.0 + k, 1.0 + (n - k).max(0.0))
                            .map_or(0.5, |b| b.sample(&mut self.rng))
                    }
                    (CreativeRule::Bandit(CreativeBandit::Ucb1), true) if n == 0.0 => f64::INFINITY,
                    (CreativeRule::Bandit(CreativeBandit::Ucb1), true) => {
                        k / n + (2.0 * total.max(1.0).ln() / n).sqrt()
                    }
                    _ => (1.0 + k) / (2.0 + n),
                }
            })
            .collect()
    }

    fn choose_creative(&mut self, explore: bool) -> usize {
        match self.creative {
            CreativeRule::Index(c) => c as usize,
            CreativeRule::Bandit(_) => argmax(&self.click_rate_scores(explore)),
        }
    }

    fn decide(&mut self, obs: &Observation, explore: bool) -> usize {
        if obs.features[self.features[0]] == 0.0 {
            self.budget = f64::from(obs.features[self.features[1]]);
        }
        let multiplier = self.choose_multiplier(obs, explore);
        multiplier * self.n_creatives + self.choose_creative(explore)
    }
}

impl Policy for PacedBidding {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        match &mut self.pacing {
            Pacing::Learned { q, held, .. } => {
                q.begin_episode(episode, total);
                *held = None;
            }
            Pacing::Stepped {
                q, start, current, ..
            } => {
                q.begin_episode(episode, total);
                *current = *start;
            }
            Pacing::Pid {
                integral, previous, ..
            } => {
                *integral = 0.0;
                *previous = 0.0;
            }
            Pacing::Dual {
                start,
                mu,
                last_spent,
                ..
            } => {
                *mu = *start;
                *last_spent = 0.0;
            }
            _ => {}
        }
    }

    fn act(&mut self, obs: &Observation) -> usize {
        self.decide(obs, true)
    }

    fn act_logged(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> Option<usize> {
        self.logged(obs, probs)
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let creative = match self.creative {
            CreativeRule::Index(c) => c as usize,
            CreativeRule::Bandit(_) => argmax(
                &(0..self.n_creatives)
                    .map(|c| (1.0 + self.clicks[c]) / (2.0 + self.impressions[c]))
                    .collect::<Vec<_>>(),
            ),
        };
        let multiplier = match &self.pacing {
            Pacing::Fixed(i) => *i,
            Pacing::Even { truthful } => {
                if self.spend_error(obs) > 1.0 {
                    self.multipliers.len() - 1
                } else {
                    *truthful
                }
            }
            Pacing::Pid { start, .. } => *start,
            Pacing::Dual { mu, .. } => Self::nearest(&self.multipliers, 1.0 + mu),
            Pacing::Learned { q, .. } => q.greedy(obs),
            Pacing::Stepped { current, .. } => *current,
        };
        multiplier * self.n_creatives + creative
    }

    /// Holds decisions and controller state over the day.
    fn greedy_is_markov(&self) -> bool {
        false
    }

    /// Decides as in training without exploring. Nothing is learned, so a
    /// held multiplier is released by the period instead: decisions fall at
    /// periods `0, every, 2·every, …`, as they do in training.
    fn act_greedy(&mut self, obs: &Observation) -> usize {
        let period = obs.features[self.features[0]] as usize;
        if let Pacing::Learned { every, held, .. } = &mut self.pacing
            && period.is_multiple_of(*every)
        {
            *held = None;
        }
        self.decide(obs, false)
    }

    fn learn(&mut self, t: &Transition<'_>) {
        let creative = t.action % self.n_creatives;
        self.impressions[creative] += f64::from(t.next_obs.features[self.features[2]]);
        self.clicks[creative] += f64::from(t.next_obs.features[self.features[3]]);
        match &mut self.pacing {
            Pacing::Learned { q, every, held } => {
                let Some((obs, action, reward, covered)) = held.as_mut() else {
                    return;
                };
                *reward += t.reward;
                *covered += 1;
                if *covered >= *every || t.terminated || t.truncated {
                    q.learn(&Transition {
                        slot: 0,
                        obs,
                        action: *action,
                        reward: *reward,
                        ..*t
                    });
                    *held = None;
                }
            }
            Pacing::Stepped {
                q, current, last, ..
            } => {
                let (obs, next_obs) = (
                    Self::extend(t.obs, last.0),
                    Self::extend(t.next_obs, *current),
                );
                q.learn(&Transition {
                    slot: 0,
                    obs: &obs,
                    action: last.1,
                    next_obs: &next_obs,
                    ..*t
                });
            }
            _ => {}
        }
    }

    fn divergence(&self) -> Option<String> {
        match &self.pacing {
            Pacing::Learned { q, .. } | Pacing::Stepped { q, .. } => q.divergence(),
            _ => None,
        }
    }

    fn learning_stats(&mut self) -> Option<LearningStats> {
        match &mut self.pacing {
            Pacing::Learned { q, .. } | Pacing::Stepped { q, .. } => q.learning_stats(),
            _ => None,
        }
    }

    /// The learner's checkpoint with the creative bandit's impression and
    /// click counts added (`creative_bandit.impressions`, `.clicks`), so an
    /// evaluation from it also picks creatives as training ended.
    fn checkpoint(&self) -> Option<Result<Vec<u8>, CheckpointError>> {
        let learner = match &self.pacing {
            Pacing::Learned { q, .. } | Pacing::Stepped { q, .. } => q.checkpoint()?,
            _ => return None,
        };
        Some(learner.and_then(|bytes| {
            let counts = [
                (BANDIT_TENSORS[0], &self.impressions),
                (BANDIT_TENSORS[1], &self.clicks),
            ];
            rewrite_safetensors(&bytes, &counts, |_| true)
        }))
    }

    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
        for (name, counts) in [
            (BANDIT_TENSORS[0], &mut self.impressions),
            (BANDIT_TENSORS[1], &mut self.clicks),
        ] {
            let Ok(view) = file.tensor(name) else {
                continue;
            };
            let values: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect();
            if view.dtype() != Dtype::F64 || values.len() != counts.len() {
                return Err(CheckpointError::Shape {
                    tensor: name.to_string(),
                    found: format!("{:?} {:?}", view.dtype(), view.shape()),
                    expected: format!("{} f64 counts", counts.len()),
                });
            }
            // Counts of impressions and clicks: whole, finite, ≥ 0.
            if let Some((index, &v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0 && v.fract() == 0.0 && **v <= 1e15))
            {
                return Err(CheckpointError::Value {
                    tensor: name.to_string(),
                    found: v,
                    index,
                    rule: "counts must be whole numbers from 0 to 1e15",
                });
            }
            *counts = values;
        }
        if let Some((index, (&c, _))) = self
            .clicks
            .iter()
            .zip(&self.impressions)
            .enumerate()
            .find(|(_, (c, i))| c > i)
        {
            return Err(CheckpointError::Value {
                tensor: BANDIT_TENSORS[1].to_string(),
                found: c,
                index,
                rule: "a creative's clicks cannot exceed its impressions",
            });
        }
        let learner = rewrite_safetensors(bytes, &[], |name| !BANDIT_TENSORS.contains(&name))?;
        match &mut self.pacing {
            Pacing::Learned { q, .. } | Pacing::Stepped { q, .. } => q.load_checkpoint(&learner),
            _ => Err(CheckpointError::Unsupported),
        }
    }
}

/// Names of the creative bandit's counts in a checkpoint.
const BANDIT_TENSORS: [&str; 2] = ["creative_bandit.impressions", "creative_bandit.clicks"];

/// Safetensors `bytes` with only the tensors `keep` accepts, plus `extra`
/// f64 vectors, and the same metadata.
fn rewrite_safetensors(
    bytes: &[u8],
    extra: &[(&str, &Vec<f64>)],
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<u8>, CheckpointError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(format_error)?;
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let encoded: Vec<(&str, Vec<u8>, usize)> = extra
        .iter()
        .map(|(name, values)| {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (*name, data, values.len())
        })
        .collect();
    let mut views: Vec<(String, TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| keep(n))
        .collect();
    for (name, data, len) in &encoded {
        views.push((
            name.to_string(),
            TensorView::new(Dtype::F64, vec![*len], data).map_err(format_error)?,
        ));
    }
    safetensors::serialize(views, metadata.metadata().clone()).map_err(format_error)
}

/// A safetensors error as a checkpoint's format error.
fn format_error(e: safetensors::SafeTensorError) -> CheckpointError {
    CheckpointError::Format(e.to_string())
}

/// The last index of a non-empty grid.
fn last_index(grid: &[f64]) -> usize {
    grid.len() - 1
}

mod kinds;
pub use kinds::{
    CreativeOnly, DqnPacingConfig, DqnPacingKind, DualPacingConfig, DualPacingKind, EvenPacingKind,
    FixedMultiplierConfig, FixedMultiplierKind, GreedyBidKind, PidConfig, PidKind, QPacingConfig,
    QPacingKind,
};

#[cfg(test)]
mod tests;
