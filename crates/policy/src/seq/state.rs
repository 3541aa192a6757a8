//! What a policy over the session encoder reads of an observation, shared
//! by the softmax policy ([`super::softmax`]) and the sequence Q-learner
//! ([`super::qlearning`]).
//!
//! The observation's `history_1, history_2, …` features are the items the
//! shopper clicked, most recent first (a value outside the catalog, or not
//! a whole number, is an empty place); the encoder reads them oldest
//! first. The other features — the context: segment, step, price
//! sensitivity — are encoded as the deep Q-learner encodes features
//! (scaled to `[−1, 1]`, or one-hot), and a learned `[context, dim]`
//! matrix projects them onto the start token's vector
//! ([`SessionEncoder::forward_with_start`]).

use super::{encoder::SessionEncoder, sessions::State};
use crate::{
    PolicyError,
    dqn::input::{Input, encode, inputs},
};
use candle_core::{Device, Tensor};
use shoplab_env::ObservationSpace;

/// The prefix of the observation's history features, numbered from 1
/// (most recent).
pub const HISTORY_PREFIX: &str = "history_";

/// Reads [`State`]s from observations of one observation space.
#[derive(Debug, Clone)]
pub(crate) struct StateReader {
    /// Feature indices of `history_1, history_2, …`.
    history: Vec<usize>,
    /// Feature indices of the context and how each is encoded.
    context: Vec<(usize, Input)>,
    context_dim: usize,
    items: usize,
}

impl StateReader {
    /// A reader of `space` for a catalog of `items` items; `one_hot` names
    /// the context features encoded one-hot; without `with_context` the
    /// state is the items alone. Errs when `space` has no `history_1`.
    pub(crate) fn new(
        space: &ObservationSpace,
        one_hot: &[String],
        with_context: bool,
        items: usize,
    ) -> Result<Self, PolicyError> {
        let history: Vec<usize> = (1..)
            .map_while(|j| space.index_of(&format!("{HISTORY_PREFIX}{j}")))
            .collect();
        if history.is_empty() {
            return Err(PolicyError::MissingFeature("history_1"));
        }
        let encoding = inputs(space, one_hot)?;
        let context: Vec<(usize, Input)> = if with_context {
            encoding
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !history.contains(i))
                .collect()
        } else {
            Vec::new()
        };
        let context_dim = context
            .iter()
            .map(|(_, input)| match input {
                Input::Scaled { .. } => 1,
                Input::OneHot { values, .. } => *values,
            })
            .sum();
        Ok(Self {
            history,
            context,
            context_dim,
            items,
        })
    }

    /// Encoded context values per state (0: the items alone).
    pub(crate) fn context_dim(&self) -> usize {
        self.context_dim
    }

    /// The state of an observation's `features`.
    pub(crate) fn state(&self, features: &[f32]) -> State {
        let items = self
            .history
            .iter()
            .rev()
            .filter_map(|&i| {
                let v = features[i];
                (v >= 0.0 && v < self.items as f32 && v.fract() == 0.0).then_some(v as u32)
            })
            .collect();
        let mut context = Vec::with_capacity(self.context_dim);
        let mut one = Vec::new();
        for &(i, input) in &self.context {
            encode(&[input], &features[i..=i], &mut one);
            context.extend_from_slice(&one);
        }
        State { items, context }
    }

    /// `h(s)` of each state, `[states, dim]`, through `encoder`, the
    /// context projected by `context_weight` (`[context_dim, dim]`; needed
    /// when the context is not empty). Tracked: gradients reach both.
    pub(crate) fn encode(
        &self,
        encoder: &SessionEncoder,
        context_weight: Option<&Tensor>,
        states: &[&State],
    ) -> Result<Tensor, String> {
        let sessions: Vec<&[u32]> = states.iter().map(|s| s.items.as_slice()).collect();
        if self.context_dim == 0 {
            return encoder.forward(&sessions);
        }
        let weight = context_weight.ok_or("the context's projection is missing")?;
        let values: Vec<f32> = states
            .iter()
            .flat_map(|s| s.context.iter().copied())
            .collect();
        let start = Tensor::from_vec(values, (states.len(), self.context_dim), &Device::Cpu)
            .and_then(|c| c.matmul(weight))
            .map_err(|e| e.to_string())?;
        encoder.forward_with_start(&sessions, &start)
    }
}
