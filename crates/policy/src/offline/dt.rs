//! Decision Transformer (Chen et al., 2021): offline RL as sequence
//! modelling. A causal transformer reads a trajectory's last `K` steps —
//! at each step the return still to come (the *return-to-go*), the state,
//! and the action before it — and predicts the step's action. Trained by
//! cross-entropy on the log's own actions, it learns which actions
//! trajectories of a given return took; played with a high target return,
//! and that return lowered by each reward received, it asks for the
//! actions of the log's best trajectories, in context.
//!
//! Each step is one token here: the embedding of the previous action (the
//! session encoder's item embedding; its start token at a session's first
//! step), plus linear projections of the standardised state and of the
//! return-to-go divided by `return_scale`, plus the position in the
//! window. The paper interleaves three tokens a step (return, state,
//! action); one merged token reads the same things — the token of step
//! `t` sees the returns, states and earlier actions of steps `≤ t`, exactly
//! what the paper's state token of step `t` sees — at a third of the
//! sequence length. The blocks are the session encoder's (its fused causal
//! attention, [`SessionEncoder::forward_steps`]); a linear head turns each
//! step's output into the logits of its action. Returns-to-go are
//! undiscounted, as in the paper.
//!
//! Training draws, with the learner's seeded generator, minibatches of
//! windows: each ends at a uniformly drawn row of the log and holds up to
//! `K` steps of that row's session before it (left-padded; padding is
//! never attended to), and the loss is the mean cross-entropy over the
//! window's real steps. Everything random descends from the seed, and the
//! arithmetic does not depend on the thread count.

use super::Transitions;
use crate::{
    adam::Adam,
    seq::encoder::{EncoderConfig, PAD, START, SessionEncoder, rows_of},
};
use candle_core::{D, DType, Device, Tensor, Var};
use rand::RngExt;
use shoplab_env::seed::{SimRng, rng_from_seed};
use std::collections::BTreeMap;

/// The model's and the training's settings, checked by the kind.
#[derive(Debug, Clone, PartialEq)]
pub struct DtConfig {
    /// Steps a window holds (`K`), at least 2.
    pub context: usize,
    /// Token width, attention heads, blocks.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Windows per minibatch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Largest global gradient norm.
    pub max_grad_norm: f64,
    /// Returns-to-go are divided by this before the projection.
    pub return_scale: f64,
    /// Seed of the initialisation and the minibatches.
    pub seed: u64,
}

impl DtConfig {
    /// The encoder's settings: `K` tokens, the first read as the start.
    pub fn encoder(&self) -> EncoderConfig {
        EncoderConfig {
            dim: self.dim,
            heads: self.heads,
            layers: self.layers,
            history: self.context - 1,
        }
    }
}

/// The log cut into sessions, with each row's return-to-go.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectories {
    /// Each session's rows, in order.
    pub sessions: Vec<Vec<usize>>,
    /// Each row's session and position in it.
    pub place: Vec<(u32, u32)>,
    /// Each row's return-to-go: its reward and every later one of its
    /// session.
    pub to_go: Vec<f64>,
}

impl Trajectories {
    /// The sessions of `data`, each followed from a row no other row
    /// leads to. Errs on a row reached twice or never (a cycle).
    pub fn new(data: &Transitions) -> Result<Self, String> {
        let n = data.len();
        let mut led_to = vec![false; n];
        for next in data.next.iter().flatten() {
            if *next >= n {
                return Err(format!("row {next} is named as a next row of {n} rows"));
            }
            if std::mem::replace(&mut led_to[*next], true) {
                return Err(format!("row {next} follows two rows"));
            }
        }
        let mut place = vec![(u32::MAX, 0); n];
        let mut sessions = Vec::new();
        for first in (0..n).filter(|&i| !led_to[i]) {
            let id = sessions.len() as u32;
            let mut rows = Vec::new();
            let mut at = Some(first);
            while let Some(i) = at {
                place[i] = (id, rows.len() as u32);
                rows.push(i);
                at = data.next[i];
            }
            sessions.push(rows);
        }
        if let Some(i) = place.iter().position(|p| p.0 == u32::MAX) {
            return Err(format!(
                "row {i} lies on a cycle of next rows (no session starts it)"
            ));
        }
        let mut to_go = vec![0.0; n];
        for rows in &sessions {
            let mut sum = 0.0;
            for &i in rows.iter().rev() {
                sum += data.reward[i];
                to_go[i] = sum;
            }
        }
        Ok(Self {
            sessions,
            place,
            to_go,
        })
    }

    /// Each session's return (its first row's return-to-go).
    pub fn returns(&self) -> impl Iterator<Item = f64> + '_ {
        self.sessions.iter().map(|rows| self.to_go[rows[0]])
    }
}

/// One step of a window: the standardised state, the return-to-go, and
/// the action before it (`None` at a session's first step).
#[derive(Debug, Clone, PartialEq)]
pub struct StepInput {
    /// The standardised observation.
    pub state: Vec<f32>,
    /// The return still to come, unscaled.
    pub to_go: f64,
    /// The previous step's action.
    pub previous: Option<u32>,
}

/// The model and its optimiser.
#[derive(Debug)]
pub struct DecisionTransformer {
    config: DtConfig,
    n_actions: usize,
    inputs: usize,
    encoder: SessionEncoder,
    /// The projections and the action head.
    own: BTreeMap<String, Var>,
    /// Every parameter: the encoder's under `encoder.`, then `own`.
    all: BTreeMap<String, Var>,
    adam: Adam,
    rng: SimRng,
    device: Device,
}

fn err(e: candle_core::Error) -> String {
    e.to_string()
}

impl DecisionTransformer {
    /// A model for states of `inputs` features and `n_actions` actions,
    /// initialised from the configuration's seed (the encoder first, then
    /// the projections and the head in name order, uniform in
    /// `±1/√fan_in`). Settings are trusted: the kind checks them.
    pub fn new(config: DtConfig, inputs: usize, n_actions: usize) -> Result<Self, String> {
        let mut rng = rng_from_seed(config.seed);
        let encoder = SessionEncoder::new(config.encoder(), n_actions, DType::F32, &mut rng)?;
        let d = config.dim;
        let shapes: [(&str, Vec<usize>, usize); 5] = [
            ("head.bias", vec![n_actions], d),
            ("head.weight", vec![n_actions, d], d),
            ("input.return.weight", vec![1, d], 1),
            ("input.state.bias", vec![d], inputs.max(1)),
            ("input.state.weight", vec![inputs, d], inputs.max(1)),
        ];
        let device = Device::Cpu;
        let mut own = BTreeMap::new();
        for (name, shape, fan_in) in shapes {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let t = Tensor::from_vec(values, shape, &device).map_err(err)?;
            own.insert(name.to_string(), Var::from_tensor(&t).map_err(err)?);
        }
        let mut all: BTreeMap<String, Var> = encoder
            .vars()
            .iter()
            .map(|(n, v)| (format!("encoder.{n}"), v.clone()))
            .collect();
        all.extend(own.iter().map(|(n, v)| (n.clone(), v.clone())));
        let adam = Adam::new(&all);
        // The minibatches draw from their own stream, apart from the
        // initialisation's.
        let rng = rng_from_seed(config.seed ^ 0x6474_5f62_6174_6368);
        Ok(Self {
            config,
            n_actions,
            inputs,
            encoder,
            own,
            all,
            adam,
            rng,
            device,
        })
    }

    /// The settings.
    pub fn config(&self) -> &DtConfig {
        &self.config
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// Every parameter by name (the encoder's under `encoder.`).
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.all
    }

    /// Gradient steps taken.
    pub fn steps(&self) -> u64 {
        self.adam.steps()
    }

    fn param(&self, name: &str) -> &Tensor {
        self.own[name].as_tensor()
    }

    /// The action logits of every step of each window (windows of at most
    /// `K` steps, oldest first): `[windows × K, n_actions]`, the window's
    /// steps right-aligned after padding.
    fn logits(&self, windows: &[&[StepInput]]) -> Result<Tensor, String> {
        let (k, d, b) = (self.config.context, self.config.dim, windows.len());
        let mut ids = vec![PAD; b * k];
        let mut states = vec![0.0f32; b * k * self.inputs];
        let mut to_go = vec![0.0f32; b * k];
        for (w, steps) in windows.iter().enumerate() {
            let steps = &steps[steps.len().saturating_sub(k)..];
            let first = w * k + k - steps.len();
            for (j, step) in steps.iter().enumerate() {
                let at = first + j;
                ids[at] = step.previous.map_or(START, |a| a + 2);
                states[at * self.inputs..(at + 1) * self.inputs].copy_from_slice(&step.state);
                to_go[at] = (step.to_go / self.config.return_scale) as f32;
            }
        }
        let run = || -> candle_core::Result<Tensor> {
            let ids = Tensor::from_vec(ids, (b, k), &self.device)?;
            let states = Tensor::from_vec(states, (b * k, self.inputs), &self.device)?;
            let to_go = Tensor::from_vec(to_go, (b * k, 1), &self.device)?;
            let offsets = (states.matmul(self.param("input.state.weight"))?
                + rows_of(self.param("input.state.bias"), b * k)?)?;
            let offsets = (offsets + to_go.matmul(self.param("input.return.weight"))?)?;
            let h = self
                .encoder
                .forward_steps(&ids, &offsets.reshape((b, k, d))?)?
                .reshape((b * k, d))?;
            h.matmul(&self.param("head.weight").t()?)? + rows_of(self.param("head.bias"), b * k)?
        };
        run().map_err(err)
    }

    /// The action the model predicts for the last step of `window`: the
    /// highest logit, ties to the lower action.
    pub fn act(&self, window: &[StepInput]) -> Result<usize, String> {
        let logits = self.logits(&[window])?;
        let last = logits
            .narrow(0, self.config.context - 1, 1)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(err)?;
        if last.iter().any(|x| !x.is_finite()) {
            return Err("the model's logits are not finite".into());
        }
        let last: Vec<f64> = last.into_iter().map(f64::from).collect();
        Ok(crate::argmax(&last))
    }

    /// Mean cross-entropy of each window's logged actions (`actions[w]`,
    /// one per step of window `w`), a tracked scalar.
    fn loss(&self, windows: &[&[StepInput]], actions: &[&[u32]]) -> Result<Tensor, String> {
        let (k, n) = (self.config.context, self.n_actions);
        let logits = self.logits(windows)?;
        let mut picked = vec![0.0f32; windows.len() * k * n];
        let mut count = 0usize;
        for (w, acts) in actions.iter().enumerate() {
            let acts = &acts[acts.len().saturating_sub(k)..];
            let first = w * k + k - acts.len();
            for (j, &a) in acts.iter().enumerate() {
                picked[(first + j) * n + a as usize] = 1.0;
                count += 1;
            }
        }
        let run = || -> candle_core::Result<Tensor> {
            let picked = Tensor::from_vec(picked, (windows.len() * k, n), &self.device)?;
            let top = logits.max_keepdim(D::Minus1)?.detach();
            let shifted = logits.broadcast_sub(&top)?;
            let log_z = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
            let log_p = shifted.broadcast_sub(&log_z)?;
            (picked * log_p)?.sum_all()? / -(count.max(1) as f64)
        };
        run().map_err(err)
    }

    /// One Adam step on a minibatch of windows drawn from the log; returns
    /// the loss before the step.
    pub fn train_step(
        &mut self,
        data: &Transitions,
        trajectories: &Trajectories,
        standardise: &dyn Fn(&[f32]) -> Vec<f32>,
    ) -> Result<f64, String> {
        let k = self.config.context;
        let mut windows = Vec::with_capacity(self.config.batch_size);
        let mut actions = Vec::with_capacity(self.config.batch_size);
        for _ in 0..self.config.batch_size {
            let end = self.rng.random_range(0..data.len());
            let (session, at) = trajectories.place[end];
            let rows = &trajectories.sessions[session as usize];
            let at = at as usize;
            let span = &rows[(at + 1).saturating_sub(k)..=at];
            let steps: Vec<StepInput> = span
                .iter()
                .map(|&i| {
                    let (_, p) = trajectories.place[i];
                    StepInput {
                        state: standardise(data.obs_of(i)),
                        to_go: trajectories.to_go[i],
                        previous: (p > 0).then(|| data.action[rows[p as usize - 1]]),
                    }
                })
                .collect();
            windows.push(steps);
            actions.push(span.iter().map(|&i| data.action[i]).collect::<Vec<u32>>());
        }
        let windows: Vec<&[StepInput]> = windows.iter().map(Vec::as_slice).collect();
        let actions: Vec<&[u32]> = actions.iter().map(Vec::as_slice).collect();
        let loss = self.loss(&windows, &actions)?;
        let value = loss.to_scalar::<f32>().map_err(err)?;
        if !value.is_finite() {
            return Err(format!("the loss is {value}"));
        }
        let grads = loss.backward().map_err(err)?;
        self.adam
            .step(
                &self.all,
                &grads,
                self.config.learning_rate,
                self.config.max_grad_norm,
            )
            .map_err(|e| e.0)?;
        Ok(f64::from(value))
    }

    /// Forgets Adam's moments (after loading weights).
    pub fn reset_optimiser(&mut self) {
        self.adam.reset();
    }
}
