//! `kind = "decision_transformer"`: [`super::dt`]'s model trained on the
//! scenario's `[offline]` data and played, return-conditioned, online.
//!
//! As the other offline learners do, before training episode `e` of `E` it
//! has taken `⌊G·(e + 1)/E⌋` of its `G` gradient steps, and every episode,
//! training or evaluation, plays its greedy action. Each episode starts
//! from the target return (`target_return`; by default the best session
//! return in the log) and lowers it by every reward received — the runner
//! shows it each step ([`Policy::learn`] in training episodes,
//! [`Policy::see_greedy_step`] in evaluation), and a step that ends the
//! episode starts the next one afresh.

use super::{
    Transitions,
    dt::{DecisionTransformer, DtConfig, StepInput, Trajectories},
    kinds::{MAX_GRADIENT_STEPS, data_of},
    neural::standardisation,
};
use crate::{
    CheckpointError, LearningStats, Policy, PolicyError, Transition,
    registry::{BuildContext, Built, Costed, PolicyKind},
};
use candle_core::Var;
use serde::{Deserialize, Serialize};
use shoplab_env::{Observation, config::in_range, cost::PolicyCost};
use std::{collections::BTreeMap, sync::Arc};

fn default_steps() -> u64 {
    10_000
}
fn default_context() -> usize {
    20
}
fn default_dim() -> usize {
    64
}
fn default_heads() -> usize {
    4
}
fn default_layers() -> usize {
    2
}
fn default_batch() -> usize {
    64
}
fn default_learning_rate() -> f64 {
    3e-4
}
fn default_max_grad_norm() -> f64 {
    1.0
}

/// Settings of `decision_transformer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtSettings {
    /// Gradient steps over the run, in 1 ..= 10,000,000.
    #[serde(default = "default_steps")]
    pub gradient_steps: u64,
    /// Steps a window holds, `K`, in 2 ..= 512.
    #[serde(default = "default_context")]
    pub context: usize,
    /// Token width (a multiple of `heads`).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Attention heads.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Transformer blocks.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Windows per minibatch, 1 ..= 4096.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam's learning rate, in (0, 1].
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Largest global gradient norm, > 0.
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// The return each episode asks for (finite); default the best session
    /// return in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_return: Option<f64>,
    /// Returns-to-go are divided by it (finite, > 0); default the largest
    /// `|session return|` in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_scale: Option<f64>,
}

impl DtSettings {
    /// The model's settings, every rule checked, for `n_actions` actions;
    /// `returns` are the log's session returns (for the defaults).
    pub(crate) fn check(
        &self,
        n_actions: usize,
        returns: &[f64],
        seed: u64,
    ) -> Result<(DtConfig, f64), PolicyError> {
        in_range("gradient_steps", self.gradient_steps, 1, MAX_GRADIENT_STEPS)?;
        in_range("context", self.context as u64, 2, 512)?;
        in_range("batch_size", self.batch_size as u64, 1, 4096)?;
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(PolicyError::invalid(
                "learning_rate",
                format!("must be in (0, 1] (found {})", self.learning_rate),
            ));
        }
        if !(self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite()) {
            return Err(PolicyError::invalid(
                "max_grad_norm",
                format!("must be finite and above 0 (found {})", self.max_grad_norm),
            ));
        }
        let config = DtConfig {
            context: self.context,
            dim: self.dim,
            heads: self.heads,
            layers: self.layers,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            max_grad_norm: self.max_grad_norm,
            return_scale: 1.0,
            seed,
        };
        // The encoder's own rules, named by this kind's keys.
        config
            .encoder()
            .validate("transformer", n_actions)
            .map_err(|e| PolicyError::invalid(e.key.trim_start_matches("transformer."), e.rule))?;
        let best = returns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let largest = returns.iter().fold(0.0f64, |m, r| m.max(r.abs()));
        let target = self.target_return.unwrap_or(best);
        if !target.is_finite() {
            return Err(PolicyError::invalid(
                "target_return",
                format!("must be finite (found {target})"),
            ));
        }
        let scale = self
            .return_scale
            .unwrap_or(if largest > 0.0 { largest } else { 1.0 });
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(PolicyError::invalid(
                "return_scale",
                format!("must be finite and above 0 (found {scale})"),
            ));
        }
        Ok((
            DtConfig {
                return_scale: scale,
                ..config
            },
            target,
        ))
    }
}

/// `kind = "decision_transformer"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionTransformerKind;

impl PolicyKind for DecisionTransformerKind {
    type Config = DtSettings;

    fn kind(&self) -> &'static str {
        "decision_transformer"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn offline_steps(&self, config: &DtSettings, _rows: usize) -> Option<u64> {
        Some(config.gradient_steps)
    }

    /// Four copies of the weights (the model, its gradients, Adam's two
    /// moments) and a minibatch's activations (about 20 values a token per
    /// layer); `6 · batch · K · weights` operations per step spread over
    /// the run's decisions, and `2 · K · weights` per decision.
    fn cost(&self, config: &DtSettings, cx: &BuildContext<'_>, decisions: f64) -> Costed {
        let n = cx.action_space.n();
        let (c, _) = config.check(n, &[1.0], cx.seed)?;
        data_of(self.kind(), cx)?;
        let inputs = cx.observation_space.features.len();
        let d = c.dim as f64;
        let weights =
            c.encoder().parameter_count(n) as f64 + d * (inputs as f64 + 2.0 + n as f64) + n as f64;
        let tokens = (c.batch_size * c.context) as f64;
        Ok(PolicyCost {
            bytes: 16.0 * weights + 4.0 * tokens * d * (20.0 * c.layers as f64 + 4.0) + 65_536.0,
            train_work: 6.0 * tokens * weights * config.gradient_steps as f64 / decisions.max(1.0),
            act_work: 2.0 * c.context as f64 * weights,
        })
    }

    fn build(&self, config: &DtSettings, cx: &BuildContext<'_>) -> Built {
        let data = data_of(self.kind(), cx)?;
        let trajectories = Trajectories::new(&data.transitions)
            .map_err(|e| PolicyError::invalid("", format!("the {}: {e}", data.source)))?;
        let returns: Vec<f64> = trajectories.returns().collect();
        let (c, target) = config.check(cx.action_space.n(), &returns, cx.seed)?;
        let model = DecisionTransformer::new(c, data.transitions.dim, cx.action_space.n())
            .map_err(|e| PolicyError::invalid("", e))?;
        Ok(Box::new(DtPolicy::new(
            model,
            Arc::clone(&data.transitions),
            trajectories,
            target,
            config.gradient_steps,
        )))
    }
}

/// `(x − mean) / scale`, feature by feature.
fn standardised(x: &[f32], mean: &[f32], scale: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(mean.iter().zip(scale))
        .map(|(v, (m, s))| (v - m) / s)
        .collect()
}

/// The model as the runner plays it.
#[derive(Debug)]
pub struct DtPolicy {
    model: DecisionTransformer,
    data: Arc<Transitions>,
    trajectories: Trajectories,
    mean: Vec<f32>,
    scale: Vec<f32>,
    total_steps: u64,
    target: f64,
    /// The episode being played: its last `K` steps, the return still to
    /// come, and the last action.
    window: Vec<StepInput>,
    to_go: f64,
    last: Option<u32>,
    failure: Option<String>,
    /// Steps and summed losses since the last report.
    tally: (u64, f64),
}

impl DtPolicy {
    /// A policy of `model` trained on `data` over `total_steps` steps,
    /// asking each episode for `target`.
    pub fn new(
        model: DecisionTransformer,
        data: Arc<Transitions>,
        trajectories: Trajectories,
        target: f64,
        total_steps: u64,
    ) -> Self {
        let (mean, scale) = standardisation(&data);
        Self {
            model,
            data,
            trajectories,
            mean,
            scale,
            total_steps,
            target,
            window: Vec::new(),
            to_go: target,
            last: None,
            failure: None,
            tally: (0, 0.0),
        }
    }

    /// The model.
    pub fn model(&self) -> &DecisionTransformer {
        &self.model
    }

    /// The return the episodes ask for.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Gradient steps taken.
    pub fn steps(&self) -> u64 {
        self.model.steps()
    }

    /// This episode's step for `obs`.
    fn step_input(&self, obs: &Observation) -> StepInput {
        StepInput {
            state: standardised(&obs.features, &self.mean, &self.scale),
            to_go: self.to_go,
            previous: self.last,
        }
    }

    /// Takes the gradient steps due before training episode `episode` of
    /// `total`.
    fn train_until(&mut self, due: u64) {
        let (mean, scale) = (&self.mean, &self.scale);
        let standardise = |x: &[f32]| standardised(x, mean, scale);
        while self.failure.is_none() && self.model.steps() < due.min(self.total_steps) {
            match self
                .model
                .train_step(&self.data, &self.trajectories, &standardise)
            {
                Ok(loss) => {
                    self.tally.0 += 1;
                    self.tally.1 += loss;
                }
                Err(e) => self.failure = Some(format!("training diverged: {e}")),
            }
        }
    }

    fn restart(&mut self) {
        self.window.clear();
        self.to_go = self.target;
        self.last = None;
    }

    /// After a step: the reward lowers the return still to come, and the
    /// action taken becomes the next step's previous action (the logged one
    /// when a log is replayed).
    fn follow(&mut self, t: &Transition<'_>) {
        self.to_go -= t.reward;
        self.last = Some(t.action as u32);
        if t.terminated || t.truncated {
            self.restart();
        }
    }
}

impl Policy for DtPolicy {
    fn begin_episode(&mut self, episode: usize, total: usize) {
        let total = total.max(1) as u128;
        let due = (u128::from(self.total_steps) * (episode as u128 + 1) / total) as u64;
        self.train_until(due);
        self.restart();
    }

    fn act(&mut self, obs: &Observation) -> usize {
        self.act_greedy(obs)
    }

    fn act_greedy(&mut self, obs: &Observation) -> usize {
        let step = self.step_input(obs);
        self.window.push(step);
        let k = self.model.config().context;
        if self.window.len() > k {
            self.window.drain(..self.window.len() - k);
        }
        match self.model.act(&self.window) {
            Ok(a) => a,
            Err(e) => {
                self.failure.get_or_insert(e);
                0
            }
        }
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let mut window = self.window.clone();
        window.push(self.step_input(obs));
        self.model.act(&window).unwrap_or(0)
    }

    fn greedy_is_markov(&self) -> bool {
        false
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        crate::one_hot_probabilities(self.greedy(obs), self.model.n_actions(), probs);
        true
    }

    fn learn(&mut self, t: &Transition<'_>) {
        self.follow(t);
    }

    fn see_greedy_step(&mut self, t: &Transition<'_>) {
        self.follow(t);
    }

    fn divergence(&self) -> Option<String> {
        self.failure.clone()
    }

    fn learning_stats(&mut self) -> Option<LearningStats> {
        let (n, loss) = std::mem::take(&mut self.tally);
        Some(LearningStats {
            updates: n,
            loss: (n > 0).then(|| loss / n as f64),
            mean_q: None,
            exploration: 0.0,
        })
    }

    fn checkpoint(&self) -> Option<Result<Vec<u8>, CheckpointError>> {
        Some(self.to_safetensors())
    }

    /// Restores a trained model; it then takes no further steps.
    fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let format = |e: candle_core::Error| CheckpointError::Format(e.to_string());
        let loaded = candle_core::safetensors::load_buffer(bytes, &candle_core::Device::Cpu)
            .map_err(format)?;
        crate::load_vars(self.model.vars(), &loaded, "")?;
        self.model.reset_optimiser();
        self.total_steps = 0;
        Ok(())
    }
}

impl DtPolicy {
    /// The model's parameters, with the settings, the target return and
    /// the input standardisation in the metadata.
    fn to_safetensors(&self) -> Result<Vec<u8>, CheckpointError> {
        let c = self.model.config();
        let metadata = serde_json::json!({
            "kind": "decision_transformer",
            "context": c.context,
            "dim": c.dim,
            "heads": c.heads,
            "layers": c.layers,
            "return_scale": c.return_scale,
            "target_return": self.target,
            "input_mean": self.mean,
            "input_scale": self.scale,
        })
        .to_string();
        let vars: &BTreeMap<String, Var> = self.model.vars();
        crate::vars_to_safetensors(vars, metadata)
    }
}
