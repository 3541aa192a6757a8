//! Neural offline learners on the DQN's network: behaviour cloning, naive
//! offline DQN, discrete CQL and discrete BCQ, trained by minibatches drawn
//! from logged [`Transitions`] with a seeded generator.
//!
//! Each gradient step samples `batch_size` rows uniformly and minimises:
//! - **BC**: the cross-entropy of the network's logits on the logged
//!   actions; the policy is their argmax.
//! - **DQN** (naive offline): the TD loss `(Q(s, a) − y)²` with `y = r + γ
//!   maxₐ' Q̄(s', a')` (`Q̄` the target network, copied every
//!   `target_update_interval` steps; no bootstrap after a session's last
//!   row). Out-of-data actions' values go unchecked, and are where it fails.
//! - **CQL** (Kumar et al., 2020, CQL(H), as d3rlpy's `DiscreteCQL`): the TD
//!   loss plus `α (log Σₐ exp Q(s, a) − Q(s, a_logged))`, which pushes down
//!   the values of actions the data does not support.
//! - **BCQ** (discrete, Fujimoto et al., 2019): a second network `G` learns
//!   the behaviour policy by cross-entropy; the target and the policy take
//!   the best action among those with `G(a|s) / maxₐ' G(a'|s) ≥ τ`.
//!
//! The inputs are the observations standardised by the data's mean and
//! standard deviation. Everything random — the initialisation and the
//! minibatches — comes from `seed`.

mod checkpoint;

use super::Transitions;
use crate::dqn::network::{
    Architecture, NetResult, Params, QNetwork, forward, matrix, soft_update, to_vec,
};
use candle_core::{D, Tensor};
use rand::RngExt;
use shoplab_env::seed::{SimRng, rng_from_seed};

/// The offline algorithm and its own setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// Behaviour cloning.
    Bc,
    /// Naive offline DQN.
    Dqn,
    /// Discrete CQL(H) with its weight α ≥ 0.
    Cql {
        /// Weight of the conservative term.
        alpha: f64,
    },
    /// Discrete BCQ with its action threshold τ in [0, 1).
    Bcq {
        /// Relative behaviour probability an action needs.
        tau: f64,
    },
    /// The seed article's regression: the mean squared error over the
    /// whole output vector against a copy of the predictions whose logged
    /// entry is replaced by `y` — so only that entry moves, at `1/m` the
    /// weight. As written, `y = 0`; as intended, `y = r + γ maxₐ' Q̄(s', a')`.
    Article {
        /// True for the article's code as written (`y = 0`).
        as_written: bool,
    },
}

/// How minibatches are drawn from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// `batch_size` rows drawn uniformly with replacement (d3rlpy's way).
    Uniform,
    /// Epochs: every row once per pass in a fresh random order, in batches
    /// of `batch_size` (the last one of a pass smaller), as Keras's `fit`.
    Epochs,
}

/// How an offline learner trains.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineConfig {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Discount.
    pub gamma: f64,
    /// Gradient steps between target-network copies.
    pub target_update_interval: u64,
    /// Largest global gradient norm.
    pub max_grad_norm: f64,
    /// How minibatches are drawn.
    pub sampling: Sampling,
    /// Seed of the initialisation and the minibatches.
    pub seed: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Cql { alpha: 1.0 },
            hidden: vec![64, 64],
            batch_size: 256,
            learning_rate: 1e-3,
            gamma: 0.99,
            target_update_interval: 500,
            max_grad_norm: 10.0,
            sampling: Sampling::Uniform,
            seed: 0,
        }
    }
}

impl OfflineConfig {
    /// Checks every setting, naming the key and the rule: α ≥ 0 and
    /// finite, τ in [0, 1), 1 to 8 hidden layers of 1 ..= 4096, a batch of
    /// 1 ..= 65536, a learning rate in (0, 1], γ in [0, 1], a target
    /// interval ≥ 1 and a positive finite gradient-norm bound.
    pub fn validate(&self) -> Result<(), crate::PolicyError> {
        let bad = |key: &str, rule: String| Err(crate::PolicyError::invalid(key, rule));
        match self.algorithm {
            Algorithm::Cql { alpha } if !(alpha.is_finite() && alpha >= 0.0) => {
                return bad(
                    "alpha",
                    format!("must be a finite number ≥ 0 (found {alpha})"),
                );
            }
            Algorithm::Bcq { tau } if !(0.0..1.0).contains(&tau) => {
                return bad("tau", format!("must be in [0, 1) (found {tau})"));
            }
            _ => {}
        }
        if self.hidden.is_empty()
            || self.hidden.len() > 8
            || self.hidden.iter().any(|&w| !(1..=4096).contains(&w))
        {
            return bad(
                "hidden",
                format!(
                    "must be 1 to 8 widths of 1 ..= 4096 (found {:?})",
                    self.hidden
                ),
            );
        }
        if !(1..=65_536).contains(&self.batch_size) {
            return bad(
                "batch_size",
                format!("must be in 1 ..= 65536 (found {})", self.batch_size),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(
                "learning_rate",
                format!("must be in (0, 1] (found {})", self.learning_rate),
            );
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma", format!("must be in [0, 1] (found {})", self.gamma));
        }
        if self.target_update_interval == 0 {
            return bad(
                "target_update_interval",
                "must be at least 1 (found 0)".into(),
            );
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            return bad(
                "max_grad_norm",
                format!("must be a positive number (found {})", self.max_grad_norm),
            );
        }
        Ok(())
    }
}

/// An offline learner, its networks and its place in training.
#[derive(Debug)]
pub struct OfflineLearner {
    config: OfflineConfig,
    net: QNetwork,
    target: Params,
    /// BCQ's behaviour model.
    imitation: Option<QNetwork>,
    mean: Vec<f32>,
    scale: Vec<f32>,
    rng: SimRng,
    steps: u64,
    n_actions: usize,
    /// The pass's order and the next place in it, for [`Sampling::Epochs`].
    order: Vec<usize>,
    cursor: usize,
    /// Updates, summed losses and summed mean Q since the last report.
    tally: (u64, f64, f64),
}

fn err(e: candle_core::Error) -> crate::dqn::network::NetError {
    crate::dqn::network::NetError(e.to_string())
}

/// `log Σₐ exp x[·, a]`, row by row, stably.
fn logsumexp(x: &Tensor) -> NetResult<Tensor> {
    let max = x.max_keepdim(D::Minus1).map_err(err)?;
    let shifted = x.broadcast_sub(&max).map_err(err)?;
    let sum = shifted
        .exp()
        .and_then(|e| e.sum_keepdim(D::Minus1))
        .map_err(err)?;
    (sum.log().map_err(err)? + max)
        .and_then(|t| t.squeeze(D::Minus1))
        .map_err(err)
}

/// Each feature's mean and standard deviation over `rows` rows of `d`
/// features (`row(i)` the `i`-th), a deviation of 1 where the feature is
/// constant: the input standardisation `(x − mean) / deviation` of the
/// offline learners and of FQE.
pub fn feature_moments<'a>(
    rows: usize,
    d: usize,
    row: impl Fn(usize) -> &'a [f32],
) -> (Vec<f64>, Vec<f64>) {
    let n = rows.max(1) as f64;
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for i in 0..rows {
        for (j, &v) in row(i).iter().enumerate() {
            mean[j] += f64::from(v) / n;
            sq[j] += f64::from(v) * f64::from(v) / n;
        }
    }
    let scale = mean
        .iter()
        .zip(&sq)
        .map(|(m, s)| {
            let var = s - m * m;
            if var > 1e-12 { var.sqrt() } else { 1.0 }
        })
        .collect();
    (mean, scale)
}

/// [`feature_moments`] of the log's observations, in `f32`.
pub(crate) fn standardisation(data: &Transitions) -> (Vec<f32>, Vec<f32>) {
    let (mean, scale) = feature_moments(data.len(), data.dim, |i| data.obs_of(i));
    let narrow = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (narrow(mean), narrow(scale))
}

impl OfflineLearner {
    /// A learner for `data` (its standardisation) with `n_actions` actions.
    /// The settings are trusted here: check them first with
    /// [`OfflineConfig::validate`].
    pub fn new(config: OfflineConfig, data: &Transitions, n_actions: usize) -> NetResult<Self> {
        let d = data.dim;
        let (mean, scale) = standardisation(data);
        let arch = Architecture {
            inputs: d,
            hidden: config.hidden.clone(),
            outputs: n_actions,
            dueling: false,
        };
        let mut rng = rng_from_seed(config.seed);
        let net = QNetwork::new(arch.clone(), &mut rng)?;
        let imitation = match config.algorithm {
            Algorithm::Bcq { .. } => Some(QNetwork::new(arch, &mut rng)?),
            _ => None,
        };
        let target = net.snapshot()?;
        Ok(Self {
            config,
            net,
            target,
            imitation,
            mean,
            scale,
            rng,
            steps: 0,
            n_actions,
            order: Vec::new(),
            cursor: 0,
            tally: (0, 0.0, 0.0),
        })
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// Gradient steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn standardise(&self, x: &[f32], out: &mut Vec<f32>) {
        out.extend(
            x.iter()
                .zip(self.mean.iter().zip(&self.scale))
                .map(|(v, (m, s))| (v - m) / s),
        );
    }

    /// Actions BCQ allows from the behaviour model's logits of one row.
    fn allowed(tau: f64, logits: &[f32]) -> Vec<bool> {
        // G(a)/max G = exp(logit_a − max logit).
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        logits
            .iter()
            .map(|&l| f64::from(l - max).exp() >= tau)
            .collect()
    }

    /// Gradient steps in one pass over `rows` rows under epoch sampling.
    pub fn steps_per_epoch(&self, rows: usize) -> u64 {
        rows.div_ceil(self.config.batch_size.max(1)).max(1) as u64
    }

    /// The rows of the next minibatch.
    fn next_batch(&mut self, rows: usize) -> Vec<usize> {
        let b = self.config.batch_size;
        match self.config.sampling {
            Sampling::Uniform => (0..b).map(|_| self.rng.random_range(0..rows)).collect(),
            Sampling::Epochs => {
                if self.cursor >= self.order.len() {
                    self.order = (0..rows).collect();
                    // Fisher–Yates, from the learner's own generator.
                    for i in (1..rows).rev() {
                        let j = self.rng.random_range(0..=i);
                        self.order.swap(i, j);
                    }
                    self.cursor = 0;
                }
                let end = (self.cursor + b).min(self.order.len());
                let batch = self.order[self.cursor..end].to_vec();
                self.cursor = end;
                batch
            }
        }
    }

    /// One gradient step on a minibatch of `data`; returns the loss.
    pub fn train_step(&mut self, data: &Transitions) -> NetResult<f64> {
        let batch = self.next_batch(data.len());
        let (b, d, m) = (batch.len(), data.dim, self.n_actions);
        let device = self.net.device().clone();
        let arch = self.net.architecture().clone();
        let (mut obs, mut next) = (Vec::with_capacity(b * d), Vec::with_capacity(b * d));
        let (mut actions, mut rewards, mut live) = (
            Vec::with_capacity(b),
            Vec::with_capacity(b),
            Vec::with_capacity(b),
        );
        for &i in &batch {
            self.standardise(data.obs_of(i), &mut obs);
            match data.next[i] {
                Some(j) => {
                    self.standardise(data.obs_of(j), &mut next);
                    live.push(1.0f32);
                }
                None => {
                    next.extend(std::iter::repeat_n(0.0, d));
                    live.push(0.0);
                }
            }
            actions.push(data.action[i]);
            rewards.push(data.reward[i] as f32);
        }
        let x = matrix(&obs, b, d, &device)?;
        let a = Tensor::from_slice(&actions, (b, 1), &device).map_err(err)?;
        let out = forward(&arch, self.net.tracked(), &x)?;
        let chosen = out.gather(&a, 1).and_then(|t| t.squeeze(1)).map_err(err)?;
        let bc_loss = |logits: &Tensor, chosen: &Tensor| -> NetResult<Tensor> {
            (logsumexp(logits)? - chosen)
                .and_then(|t| t.mean_all())
                .map_err(err)
        };
        let loss = if self.config.algorithm == Algorithm::Bc {
            bc_loss(&out, &chosen)?
        } else {
            // TD targets from the target network at the next states.
            let xn = matrix(&next, b, d, &device)?;
            let q_next = to_vec(&forward(&arch, &self.target, &xn)?)?;
            let allowed_next = match (&self.config.algorithm, &self.imitation) {
                (Algorithm::Bcq { tau }, Some(g)) => {
                    let logits = to_vec(&forward(&arch, g.detached(), &xn)?)?;
                    (0..b)
                        .map(|r| Self::allowed(*tau, &logits[r * m..(r + 1) * m]))
                        .collect()
                }
                _ => vec![vec![true; m]; b],
            };
            let as_written = self.config.algorithm == Algorithm::Article { as_written: true };
            let targets: Vec<f32> = (0..b)
                .map(|r| {
                    if as_written {
                        return 0.0;
                    }
                    let best = (0..m)
                        .filter(|&k| allowed_next[r][k])
                        .map(|k| q_next[r * m + k])
                        .fold(f32::NEG_INFINITY, f32::max);
                    rewards[r] + self.config.gamma as f32 * live[r] * best
                })
                .collect();
            let y = Tensor::from_slice(&targets, b, &device).map_err(err)?;
            let td = (&chosen - &y)
                .and_then(|t| t.sqr())
                .and_then(|t| t.mean_all())
                .map_err(err)?;
            match self.config.algorithm {
                // Only the logged entry differs from its target: the mean
                // over all `m` outputs is the TD error's over `m`.
                Algorithm::Article { .. } => (td / m as f64).map_err(err)?,
                Algorithm::Cql { alpha } => {
                    let gap = (logsumexp(&out)? - &chosen)
                        .and_then(|t| t.mean_all())
                        .map_err(err)?;
                    (td + (gap * alpha).map_err(err)?).map_err(err)?
                }
                _ => td,
            }
        };
        let value = f64::from(loss.to_scalar::<f32>().map_err(err)?);
        let mean_q = f64::from(
            chosen
                .mean_all()
                .and_then(|t| t.to_scalar::<f32>())
                .map_err(err)?,
        );
        if !value.is_finite() {
            return Err(crate::dqn::network::NetError(format!(
                "after {} steps the loss is {value}",
                self.steps
            )));
        }
        self.net
            .adam_step(&loss, self.config.learning_rate, self.config.max_grad_norm)?;
        if let Some(g) = &mut self.imitation {
            let logits = forward(&arch, g.tracked(), &x)?;
            let chosen = logits
                .gather(&a, 1)
                .and_then(|t| t.squeeze(1))
                .map_err(err)?;
            let loss = bc_loss(&logits, &chosen)?;
            g.adam_step(&loss, self.config.learning_rate, self.config.max_grad_norm)?;
        }
        self.steps += 1;
        self.tally.0 += 1;
        self.tally.1 += value;
        self.tally.2 += mean_q;
        if self
            .steps
            .is_multiple_of(self.config.target_update_interval)
        {
            soft_update(&mut self.target, self.net.detached(), 1.0)?;
        }
        Ok(value)
    }

    /// Updates since the last call, their mean loss and mean output of the
    /// logged actions (Q, or BC's logit); the tally restarts.
    pub fn take_stats(&mut self) -> crate::LearningStats {
        let (n, loss, q) = std::mem::take(&mut self.tally);
        let mean = |sum: f64| (n > 0).then(|| sum / n as f64);
        crate::LearningStats {
            updates: n,
            loss: mean(loss),
            mean_q: mean(q),
            exploration: 0.0,
        }
    }

    /// The network's outputs for one observation (Q-values, or BC's logits).
    pub fn values(&self, obs: &[f32]) -> NetResult<Vec<f32>> {
        let mut x = Vec::with_capacity(obs.len());
        self.standardise(obs, &mut x);
        let mut out = Vec::new();
        self.net.forward_one(&x, &mut out)?;
        Ok(out)
    }

    /// The learned policy's action: the argmax of the outputs, among the
    /// actions BCQ's behaviour model allows.
    pub fn act(&self, obs: &[f32]) -> NetResult<usize> {
        let q = self.values(obs)?;
        let allowed = match (&self.config.algorithm, &self.imitation) {
            (Algorithm::Bcq { tau }, Some(g)) => {
                let mut x = Vec::with_capacity(obs.len());
                self.standardise(obs, &mut x);
                let mut logits = Vec::new();
                g.forward_one(&x, &mut logits)?;
                Self::allowed(*tau, &logits)
            }
            _ => vec![true; q.len()],
        };
        Ok((0..q.len())
            .filter(|&a| allowed[a])
            .fold(None, |best: Option<usize>, a| match best {
                Some(k) if q[k] >= q[a] => Some(k),
                _ => Some(a),
            })
            .unwrap_or(0))
    }
}

/// The learned policy, as the runner plays it: greedy, never learning.
impl crate::Policy for OfflineLearner {
    fn act(&mut self, obs: &shoplab_env::Observation) -> usize {
        crate::Policy::greedy(self, obs)
    }

    fn action_probabilities(
        &mut self,
        obs: &shoplab_env::Observation,
        probs: &mut Vec<f64>,
    ) -> bool {
        crate::one_hot_probabilities(crate::Policy::greedy(self, obs), self.n_actions, probs);
        true
    }

    /// The greedy action; the observation has the width the learner was
    /// built for (the harness checks a log's features against its env).
    fn greedy(&self, obs: &shoplab_env::Observation) -> usize {
        OfflineLearner::act(self, &obs.features)
            .expect("an observation of the width the learner was built for")
    }
}

#[cfg(test)]
mod tests;
