//! Sequence models of the shopper's session, on candle.
//!
//! [`encoder::SessionEncoder`] reads what a shopper did — the items of the
//! session so far, most recent last — and returns one vector `h(s)`, the
//! state a policy scores the catalog against (issue #17: a transformer
//! over the shopper's history, softmax policies, two-tower scoring). Its
//! settings are checked by [`encoder::EncoderConfig::validate`] before any
//! work, and its arithmetic by a plain reference implementation in the
//! tests (forward and gradients, in `f64`). [`softmax::Reinforce`] is the
//! softmax policy built on it (`kind = "reinforce"`), and
//! [`qlearning::SequenceDqn`] the deep Q-learner (`kind = "dqn"` with
//! `encoder = "transformer"`).

pub mod attention;
pub mod catalog;
pub mod config;
pub mod encoder;
pub mod fused;
pub mod kind;
pub mod qlearning;
pub mod reinforce;
mod scan;
mod sessions;
pub mod softmax;
mod state;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
