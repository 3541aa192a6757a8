//! Writing logs: rows, where they go ([`LogSink`]), and the atomic CSV
//! [`LogWriter`].

use crate::{COLUMNS, Log, LogError};
use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

/// Claims `path` for a new log with feature columns `features` (none
/// named as a format column or holding a character of `forbidden`):
/// refuses an existing file, and creates `path.partial` exclusively.
/// Returns the partial file's path and handle.
pub(crate) fn claim(
    path: &Path,
    features: &[&str],
    forbidden: &[char],
) -> Result<(PathBuf, File), LogError> {
    let file = path.display().to_string();
    if path.exists() {
        return Err(LogError::File {
            file,
            rule: "exists already; logs are never written over (choose another --out)".into(),
        });
    }
    for name in features {
        if COLUMNS.contains(name) || name.contains(forbidden) {
            return Err(LogError::File {
                file,
                rule: format!("cannot have a feature column named `{name}`"),
            });
        }
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let handle = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|source| LogError::Write {
            file: partial.display().to_string(),
            source,
        })?;
    Ok((partial, handle))
}

/// One row to write.
#[derive(Debug, Clone, Copy)]
pub struct LogRow<'a> {
    /// The episode.
    pub episode: u64,
    /// The session within the episode.
    pub session: u64,
    /// The step within the session.
    pub step: u32,
    /// The features, in the writer's feature order.
    pub features: &'a [f32],
    /// The action taken.
    pub action: usize,
    /// The slate position.
    pub position: usize,
    /// The reward.
    pub reward: f64,
    /// The behaviour policy's probability of the action.
    pub propensity: f64,
    /// The session reached a terminal state.
    pub terminated: bool,
    /// The session was cut.
    pub truncated: bool,
}

/// Where logged rows go: a file ([`LogWriter`]) or memory ([`Log`]).
pub trait LogSink {
    /// Appends one row.
    fn write(&mut self, row: &LogRow<'_>) -> Result<(), LogError>;
}

impl LogSink for LogWriter {
    fn write(&mut self, row: &LogRow<'_>) -> Result<(), LogError> {
        LogWriter::write(self, row)
    }
}

impl LogSink for Log {
    /// Appends the row in memory (never fails; the row is trusted, as a
    /// logger's own rows are).
    fn write(&mut self, row: &LogRow<'_>) -> Result<(), LogError> {
        self.episode.push(row.episode);
        self.session.push(row.session);
        self.step.push(row.step);
        self.x.extend_from_slice(row.features);
        self.action.push(row.action as u32);
        self.position.push(row.position as u16);
        self.reward.push(row.reward);
        self.propensity.push(row.propensity);
        self.terminated.push(row.terminated);
        self.truncated.push(row.truncated);
        Ok(())
    }
}

/// Writes a log to `FILE.partial` and renames it to `FILE` when
/// [`finish`](LogWriter::finish)ed, so a log is either whole or absent; an
/// existing `FILE` is never replaced. Dropped unfinished, it removes the
/// partial file.
pub struct LogWriter {
    path: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    features: usize,
    rows: u64,
    line: String,
}

impl LogWriter {
    /// Starts a log at `path` with the feature columns `features`.
    pub fn create(path: &Path, features: &[&str]) -> Result<Self, LogError> {
        let (partial, handle) = claim(path, features, &[',', '"', '\n', '\r'])?;
        let write = |source| LogError::Write {
            file: partial.display().to_string(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, handle);
        let mut header: Vec<&str> = COLUMNS[..3].to_vec();
        header.extend_from_slice(features);
        header.extend_from_slice(&COLUMNS[3..]);
        writeln!(out, "{}", header.join(",")).map_err(write)?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            out: Some(out),
            features: features.len(),
            rows: 0,
            line: String::with_capacity(256),
        })
    }

    /// Appends a row. Numbers are written in their shortest form that
    /// reads back to the same value (`ryu`), integers with `itoa`.
    pub fn write(&mut self, row: &LogRow<'_>) -> Result<(), LogError> {
        assert_eq!(
            row.features.len(),
            self.features,
            "one value per feature column"
        );
        let mut ints = itoa::Buffer::new();
        let mut floats = ryu::Buffer::new();
        let line = &mut self.line;
        line.clear();
        for (i, v) in [row.episode, row.session, u64::from(row.step)]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                line.push(',');
            }
            line.push_str(ints.format(v));
        }
        for &v in row.features {
            line.push(',');
            push_f32(line, &mut floats, v);
        }
        line.push(',');
        line.push_str(ints.format(row.action));
        line.push(',');
        line.push_str(ints.format(row.position));
        line.push(',');
        push_f64(line, &mut floats, row.reward);
        line.push(',');
        push_f64(line, &mut floats, row.propensity);
        line.push_str(if row.terminated { ",1" } else { ",0" });
        line.push_str(if row.truncated { ",1\n" } else { ",0\n" });
        let out = self.out.as_mut().expect("a writer is finished once");
        out.write_all(line.as_bytes())
            .map_err(|source| LogError::Write {
                file: self.partial.display().to_string(),
                source,
            })?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes the log and moves it into place; returns the rows written.
    pub fn finish(mut self) -> Result<u64, LogError> {
        let write = |source| LogError::Write {
            file: self.partial.display().to_string(),
            source,
        };
        let out = self.out.take().expect("a writer is finished once");
        let file = out.into_inner().map_err(|e| write(e.into_error()))?;
        file.sync_all().map_err(write)?;
        if self.path.exists() {
            return Err(LogError::File {
                file: self.path.display().to_string(),
                rule: "appeared while the log was written; it was not replaced".into(),
            });
        }
        std::fs::rename(&self.partial, &self.path).map_err(write)?;
        Ok(self.rows)
    }
}

/// Appends `v`: an integer value without a fraction (`3`, not `3.0`),
/// anything else in ryu's shortest round-trip form.
fn push_f64(line: &mut String, floats: &mut ryu::Buffer, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        line.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        line.push_str(floats.format(v));
    }
}

/// [`push_f64`] for a feature.
fn push_f32(line: &mut String, floats: &mut ryu::Buffer, v: f32) {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        line.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        line.push_str(floats.format(v));
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
