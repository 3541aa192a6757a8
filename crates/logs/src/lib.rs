//! Logged data: what a shop's logs hold, in one tidy format.
//!
//! A log has one row per decision — one per shown item where decisions are
//! slates — with the columns
//!
//! | column | meaning |
//! |---|---|
//! | `episode` | the logged episode (a season, a day, a batch episode), an integer |
//! | `session` | the session within the episode (0 where an episode is one session) |
//! | `step` | the decision's index within its session, from 0 |
//! | any other column | a context feature, by name (`period`, `stock`, …) |
//! | `action` | the action taken, an index into the action space |
//! | `position` | the slate position the row is about (0 without slates) |
//! | `reward` | the reward credited to the row's action |
//! | `propensity` | the behaviour policy's probability of the logged action at that position, in (0, 1] |
//! | `terminated`, `truncated` | how the session ended after this decision (0 or 1, or `false`/`true`), as in Gymnasium |
//!
//! The next state of a decision is the next row of the same session. Rows
//! of different sessions may interleave (a batch of shoppers logged tick by
//! tick), but within a session they follow steps in order, and the rows of
//! one step (a slate's positions) go by increasing position. A log of
//! single impressions at several positions (the Open Bandit Dataset's) is a
//! session per impression, at its position.
//!
//! [`read_csv`] validates a file whole before anything uses it and refuses
//! a bad one with the file, the row (the file's line, the header being 1)
//! and the column ([`LogError`]); [`LogWriter`] writes a log atomically,
//! never over an existing file. [`ope`] holds the off-policy estimators
//! for contextual bandits, with obp's definitions; [`obd`] reads the Open
//! Bandit Dataset with obp's preprocessing.
#![deny(missing_docs)]

mod format;
pub mod fqe;
pub mod model;
pub mod npy;
pub mod obd;
pub mod ope;
pub mod parquet;
mod table;
#[cfg(test)]
mod tests;
mod writer;

pub use format::*;
pub use writer::{LogRow, LogSink, LogWriter};
