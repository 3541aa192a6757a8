//! A causal transformer encoder of a session's items (SASRec-style, Kang
//! and McAuley 2018; pre-layer-norm blocks as in GPT-2).
//!
//! A session of at most `history` items becomes `history + 1` tokens,
//! right-aligned: padding, a learned start token, then the items oldest
//! first. Each token is its embedding plus its position's; `layers`
//! blocks each apply `x + Attention(LN(x))` and `x + MLP(LN(x))` (ReLU,
//! 4× wide), with causal multi-head self-attention (`heads` heads of
//! `dim / heads` each) that never looks at padding; a final layer norm
//! follows. The state `h(s)` is the last token's output: the start token
//! alone for an empty session. There is no dropout.
//!
//! Parameters are candle [`Var`]s in a `BTreeMap` by name, initialised in
//! sorted name order from shoplab's seeded generator: embeddings
//! `U(−0.02·√3, 0.02·√3)` (standard deviation 0.02), linear layers
//! PyTorch's `U(−1/√fan_in, 1/√fan_in)`, layer norms weight 1 and bias
//! 0. Weights are stored `[out, in]`. The forward pass is candle ops, the
//! heavy ones fused with hand-written gradients (dense layers, layer norm,
//! causal attention: one op each, on the calling thread), so candle's
//! autograd gives the gradients; the tests compare both with a plain `f64`
//! implementation. Checkpoints are safetensors,
//! names sorted, the settings in the metadata.

use crate::CheckpointError;
use crate::dqn::dense::{Activation, dense};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use shoplab_env::{config::ConfigError, seed::SimRng};
use std::collections::BTreeMap;

/// The layer norms' epsilon.
pub const LN_EPS: f64 = 1e-5;

/// A padding token's id.
pub const PAD: u32 = 0;

/// The start token's id; item `i` is token `i + 2`.
pub const START: u32 = 1;

/// The encoder's settings (the `encoder` table of a policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Width of every token's vector.
    pub dim: usize,
    /// Attention heads; `dim` must be a multiple.
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Most recent items the encoder reads.
    pub history: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            dim: 64,
            heads: 4,
            layers: 2,
            history: 20,
        }
    }
}

impl EncoderConfig {
    /// Checks the settings (keys relative to `at`, such as `policies[2].encoder`)
    /// for a catalog of `items` items.
    pub fn validate(&self, at: &str, items: usize) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        shoplab_env::config::in_range(&key("dim"), self.dim as u64, 1, 4096)?;
        shoplab_env::config::in_range(&key("heads"), self.heads as u64, 1, 64)?;
        if !self.dim.is_multiple_of(self.heads) {
            return Err(ConfigError::new(
                key("heads"),
                format!(
                    "must divide dim: {} is not a multiple of {} heads",
                    self.dim, self.heads
                ),
            ));
        }
        shoplab_env::config::in_range(&key("layers"), self.layers as u64, 1, 48)?;
        if self.history == 0 {
            return Err(ConfigError::new(
                key("history"),
                "must be at least 1: the encoder reads the session's last items",
            ));
        }
        shoplab_env::config::in_range(&key("history"), self.history as u64, 1, 1024)?;
        if items == 0 {
            return Err(ConfigError::new(
                key("dim"),
                "the catalog has no items to embed",
            ));
        }
        Ok(())
    }

    /// Tokens per session: the history and the start token.
    pub fn tokens(&self) -> usize {
        self.history + 1
    }

    /// Every parameter's name and shape, for a catalog of `items` items.
    pub fn shapes(&self, items: usize) -> Vec<(String, Vec<usize>)> {
        let d = self.dim;
        let mut shapes = vec![
            ("embed.items".to_string(), vec![items + 2, d]),
            ("embed.positions".to_string(), vec![self.tokens(), d]),
            ("final_norm.weight".to_string(), vec![d]),
            ("final_norm.bias".to_string(), vec![d]),
        ];
        for l in 0..self.layers {
            let p = |n: &str| format!("block{l}.{n}");
            for norm in ["norm1", "norm2"] {
                shapes.push((p(&format!("{norm}.weight")), vec![d]));
                shapes.push((p(&format!("{norm}.bias")), vec![d]));
            }
            for proj in ["query", "key", "value", "output"] {
                shapes.push((p(&format!("attention.{proj}.weight")), vec![d, d]));
                shapes.push((p(&format!("attention.{proj}.bias")), vec![d]));
            }
            shapes.push((p("mlp.up.weight"), vec![4 * d, d]));
            shapes.push((p("mlp.up.bias"), vec![4 * d]));
            shapes.push((p("mlp.down.weight"), vec![d, 4 * d]));
            shapes.push((p("mlp.down.bias"), vec![d]));
        }
        shapes
    }

    /// Trainable parameters for `items` items.
    pub fn parameter_count(&self, items: usize) -> usize {
        self.shapes(items)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// The encoder's parameters.
#[derive(Debug)]
pub struct SessionEncoder {
    config: EncoderConfig,
    items: usize,
    vars: BTreeMap<String, Var>,
    device: Device,
}

/// A candle failure, as text.
fn err(e: candle_core::Error) -> String {
    e.to_string()
}

impl SessionEncoder {
    /// An encoder for `items` items, its parameters of type `dtype` (F32 in
    /// training; F64 for checks) drawn from `rng` in sorted name order.
    pub fn new(
        config: EncoderConfig,
        items: usize,
        dtype: DType,
        rng: &mut SimRng,
    ) -> Result<Self, String> {
        let device = Device::Cpu;
        let shapes: BTreeMap<String, Vec<usize>> = config.shapes(items).into_iter().collect();
        let mut vars = BTreeMap::new();
        for (name, shape) in shapes {
            let count: usize = shape.iter().product();
            let values: Vec<f64> = if name.contains("norm") && name.ends_with(".weight") {
                vec![1.0; count]
            } else if name.contains("norm") {
                vec![0.0; count]
            } else {
                let bound = if name.starts_with("embed.") {
                    0.02 * 3f64.sqrt()
                } else {
                    1.0 / (fan_in(&config, &name) as f64).sqrt()
                };
                (0..count)
                    .map(|_| f64::from(rng.random_range(-bound as f32..bound as f32)))
                    .collect()
            };
            let tensor = Tensor::from_vec(values, shape, &device)
                .and_then(|t| t.to_dtype(dtype))
                .map_err(err)?;
            vars.insert(name, Var::from_tensor(&tensor).map_err(err)?);
        }
        Ok(Self {
            config,
            items,
            vars,
            device,
        })
    }

    /// The settings.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The parameters by name (sorted).
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// An encoder with the same settings and a copy of these parameters
    /// values, stored apart (a target network).
    pub fn duplicate(&self) -> Result<Self, String> {
        let vars = self
            .vars
            .iter()
            .map(|(name, var)| {
                let copy = var.as_tensor().copy().map_err(err)?;
                Ok((name.clone(), Var::from_tensor(&copy).map_err(err)?))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        Ok(Self {
            config: self.config.clone(),
            items: self.items,
            vars,
            device: self.device.clone(),
        })
    }

    /// Sets the item embeddings (padding and start tokens keep theirs) to
    /// the catalog's feature vectors instead of random values — `features`
    /// is `items × width` row-major, `width ≤ dim`, each row written to the
    /// first `width` columns of its item's embedding and zeros after — so
    /// that items that look alike start out alike.
    pub fn init_items_from(&mut self, features: &[f32], width: usize) -> Result<(), String> {
        let (n, d) = (self.items, self.config.dim);
        if width == 0 || width > d || features.len() != n * width {
            return Err(format!(
                "{} feature values of dimension {width} for {n} items, for embeddings of \
                 dimension {d} (the catalog's feature vectors must fit in the encoder's dim)",
                features.len()
            ));
        }
        if let Some(v) = features.iter().find(|v| !v.is_finite()) {
            return Err(format!(
                "a feature value is {v}: item vectors must be finite"
            ));
        }
        let var = &self.vars["embed.items"];
        let mut values: Vec<f32> = var
            .as_tensor()
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        for (row, item) in values[2 * d..]
            .chunks_exact_mut(d)
            .zip(features.chunks_exact(width))
        {
            row[..width].copy_from_slice(item);
            row[width..].fill(0.0);
        }
        let tensor = Tensor::from_vec(values, (n + 2, d), &self.device)
            .and_then(|t| t.to_dtype(var.dtype()))
            .map_err(err)?;
        var.set(&tensor).map_err(err)
    }

    /// The item side of two-tower scoring with the encoder's own item
    /// embeddings (tied weights) and zero biases: `h(s)·e_i`.
    pub fn item_tower(&self) -> Result<super::catalog::ItemTower, String> {
        let d = self.config.dim;
        let values: Vec<f32> = self.vars["embed.items"]
            .as_tensor()
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        super::catalog::ItemTower::new(d, values[2 * d..].to_vec(), vec![0.0; self.items])
    }

    /// The parameters as safetensors bytes, names sorted, with the
    /// settings as JSON under the metadata key `shoplab`.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, CheckpointError> {
        let settings = serde_json::json!({ "encoder": self.config, "items": self.items });
        crate::vars_to_safetensors(&self.vars, settings.to_string())
    }

    /// Loads parameters from safetensors bytes written by
    /// [`Self::to_safetensors`] for the same settings and catalog: every
    /// name there, with this encoder's shape and type, every value finite,
    /// no tensor left over. Nothing changes unless all of it loads.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let loaded = candle_core::safetensors::load_buffer(bytes, &self.device)
            .map_err(|e| CheckpointError::Format(e.to_string()))?;
        if let Some(extra) = loaded.keys().find(|k| !self.vars.contains_key(*k)) {
            return Err(CheckpointError::UnknownTensor(extra.clone()));
        }
        crate::load_vars(&self.vars, &loaded, "")
    }

    fn param(&self, name: &str) -> Result<&Tensor, String> {
        self.vars
            .get(name)
            .map(Var::as_tensor)
            .ok_or_else(|| format!("no parameter {name}"))
    }

    /// The token ids of sessions (each its items, oldest first; the last
    /// `history` count), right-aligned after padding and the start token:
    /// `[sessions, history + 1]`.
    pub fn tokens(&self, sessions: &[&[u32]]) -> Result<Tensor, String> {
        let t = self.config.tokens();
        let mut ids = vec![PAD; sessions.len() * t];
        for (s, items) in sessions.iter().enumerate() {
            let recent = &items[items.len().saturating_sub(self.config.history)..];
            let row = &mut ids[s * t..(s + 1) * t];
            let start = t - recent.len() - 1;
            row[start] = START;
            for (slot, &item) in row[start + 1..].iter_mut().zip(recent) {
                if item as usize >= self.items {
                    return Err(format!(
                        "item {item} is outside the catalog of {} items",
                        self.items
                    ));
                }
                *slot = item + 2;
            }
        }
        Tensor::from_vec(ids, (sessions.len(), t), &self.device).map_err(err)
    }

    /// `h(s)` of each session: `[sessions, dim]`, a tracked tensor
    /// (gradients flow to the parameters).
    pub fn forward(&self, sessions: &[&[u32]]) -> Result<Tensor, String> {
        let ids = self.tokens(sessions)?;
        self.forward_tokens(&ids, None).map_err(err)
    }

    /// [`forward`](Self::forward) with each session's start token moved by
    /// a vector of its own: `start` is `[sessions, dim]` (what a policy
    /// makes of the shopper's context, say a projection of their segment),
    /// added to the start token's embedding, so that attention reads the
    /// context beside the items. Gradients flow into `start` too.
    pub fn forward_with_start(
        &self,
        sessions: &[&[u32]],
        start: &Tensor,
    ) -> Result<Tensor, String> {
        let ids = self.tokens(sessions)?;
        self.forward_tokens(&ids, Some(start)).map_err(err)
    }

    fn forward_tokens(&self, ids: &Tensor, start: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let d = self.config.dim;
        let id_values = ids.to_vec2::<u32>()?;
        let offsets = match start {
            Some(start) => {
                // A [b, t, 1] indicator of each row's start token, times the
                // row's offset [b, 1, d].
                let at: Vec<f64> = id_values
                    .iter()
                    .flat_map(|row| row.iter().map(|&id| f64::from(u8::from(id == START))))
                    .collect();
                let dtype = self
                    .param("embed.items")
                    .map_err(candle_core::Error::msg)?
                    .dtype();
                let at = Tensor::from_vec(at, (b, t, 1), &self.device)?.to_dtype(dtype)?;
                Some(
                    at.broadcast_mul(&start.unsqueeze(1)?)?
                        .reshape((b * t, d))?,
                )
            }
            None => None,
        };
        let x = self.blocks(ids, &id_values, offsets.as_ref())?;
        let p = |n: &str| self.param(n).map_err(candle_core::Error::msg);
        // Each session's last token: rows t − 1, 2t − 1, ….
        let rows: Vec<u32> = (1..=b)
            .map(|s| u32::try_from(s * t - 1).map_err(candle_core::Error::wrap))
            .collect::<candle_core::Result<_>>()?;
        let last = x.index_select(&Tensor::new(rows, &self.device)?, 0)?;
        layer_norm(&last, p("final_norm.weight")?, p("final_norm.bias")?)
    }

    /// Every token's output, after the final layer norm: `[rows, tokens,
    /// dim]` for token ids `ids` (`[rows, tokens]`, ids as
    /// [`tokens`](Self::tokens) lays them out: [`PAD`], [`START`], item
    /// `i` as `i + 2`) with `offsets` (`[rows, tokens, dim]`) added to each
    /// token's embedding — what a model that reads more than items per
    /// step (Decision Transformer: a state and a return per step) feeds in.
    /// Token `i`'s output reads tokens `0 ..= i` only; padding is never
    /// read.
    pub(crate) fn forward_steps(
        &self,
        ids: &Tensor,
        offsets: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let id_values = ids.to_vec2::<u32>()?;
        let offsets = offsets.reshape((b * t, self.config.dim))?;
        let x = self.blocks(ids, &id_values, Some(&offsets))?;
        let p = |n: &str| self.param(n).map_err(candle_core::Error::msg);
        layer_norm(&x, p("final_norm.weight")?, p("final_norm.bias")?)?.reshape((
            b,
            t,
            self.config.dim,
        ))
    }

    /// The embeddings of `ids` plus positions (plus `offsets`, `[rows ·
    /// tokens, dim]`), through every block: `[rows · tokens, dim]`, before
    /// the final norm. Every token's vector is one row of a 2-D tensor
    /// throughout, so no op reshapes between layers (each reshape would be
    /// one more node in the backward pass, with a gradient to allocate and
    /// add).
    fn blocks(
        &self,
        ids: &Tensor,
        id_values: &[Vec<u32>],
        offsets: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let p = |n: &str| self.param(n).map_err(candle_core::Error::msg);
        let (b, t) = ids.dims2()?;
        let (d, heads) = (self.config.dim, self.config.heads);
        let items = p("embed.items")?.embedding(&ids.flatten_all()?)?;
        let mut x = (items + rows_of(p("embed.positions")?, b)?.reshape((b * t, d))?)?;
        if let Some(offsets) = offsets {
            x = (x + offsets)?;
        }
        // Which tokens are real: attention never reads padding.
        let valid: std::sync::Arc<Vec<bool>> =
            std::sync::Arc::new(id_values.iter().flatten().map(|&id| id != PAD).collect());
        for l in 0..self.config.layers {
            let n = |k: &str| format!("block{l}.{k}");
            let h = layer_norm(&x, p(&n("norm1.weight"))?, p(&n("norm1.bias"))?)?;
            let project = |which: &str| -> candle_core::Result<Tensor> {
                linear(
                    &h,
                    p(&n(&format!("attention.{which}.weight")))?,
                    p(&n(&format!("attention.{which}.bias")))?,
                )
            };
            let (q, k, v) = (project("query")?, project("key")?, project("value")?);
            let attended = super::attention::attention(&q, &k, &v, (t, heads), valid.clone())?;
            let out = linear(
                &attended,
                p(&n("attention.output.weight"))?,
                p(&n("attention.output.bias"))?,
            )?;
            x = (x + out)?;
            let h = layer_norm(&x, p(&n("norm2.weight"))?, p(&n("norm2.bias"))?)?;
            let up = dense(
                &h,
                p(&n("mlp.up.weight"))?,
                p(&n("mlp.up.bias"))?,
                Activation::Relu,
            )?;
            let down = linear(&up, p(&n("mlp.down.weight"))?, p(&n("mlp.down.bias"))?)?;
            x = (x + down)?;
        }
        Ok(x)
    }
}

/// The fan-in of a linear layer's weight or bias: the MLP's down
/// projection reads 4·dim values, every other layer dim.
fn fan_in(config: &EncoderConfig, name: &str) -> usize {
    if name.contains("mlp.down.") {
        4 * config.dim
    } else {
        config.dim
    }
}

/// `x · Wᵀ + b` for the rows of `x` (`[rows, in]`: every token of every
/// session, one product; a batched product would broadcast `W` over the
/// batch, and its backward pass would build a gradient of `W` per row
/// before summing them), as one fused dense op.
fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    dense(x, weight, bias, Activation::Identity)
}

/// `v` (any shape, `n` values) repeated as each of `rows` rows, `[rows, n]`,
/// by a product with a column of ones: the backward pass then sums the
/// rows' gradients with one matrix product, where broadcasting would sum
/// them with candle's strided reduction (several times slower; it was most
/// of the encoder's training time).
pub(crate) fn rows_of(v: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let n = v.elem_count();
    let ones = Tensor::ones((rows, 1), v.dtype(), v.device())?;
    ones.matmul(&v.reshape((1, n))?)
}

/// Layer norm over the last dimension (biased variance, as PyTorch's), the
/// fused op.
fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    super::fused::layer_norm(x, weight, bias, LN_EPS)
}
