//! The log format: columns, the in-memory [`Log`], the rules and the CSV
//! reader.

use crate::{LogRow, LogWriter};
use shoplab_env::input::{InputError, MAX_DATA_BYTES, read_regular_file};
use std::{collections::HashMap, path::Path};
use thiserror::Error;

/// The columns every log has, besides its features.
pub const COLUMNS: [&str; 9] = [
    "episode",
    "session",
    "step",
    "action",
    "position",
    "reward",
    "propensity",
    "terminated",
    "truncated",
];

/// Why a log was refused: one line naming the file, and the row and column
/// where the rule broke.
#[derive(Debug, Error)]
pub enum LogError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Input {
        /// The log file.
        file: String,
        /// What went wrong.
        source: InputError,
    },
    /// Writing failed.
    #[error("{file}: cannot write: {source}")]
    Write {
        /// The log file.
        file: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file as a whole breaks a rule (it is empty, it exists already).
    #[error("{file}: {rule}")]
    File {
        /// The log file.
        file: String,
        /// The rule broken.
        rule: String,
    },
    /// A row breaks a rule.
    #[error("{file}: row {row}: {rule}")]
    Row {
        /// The log file.
        file: String,
        /// The file's line, the header being 1.
        row: u64,
        /// The rule broken.
        rule: String,
    },
    /// A cell breaks a rule.
    #[error("{file}: row {row}, column `{column}`: {rule}")]
    Cell {
        /// The log file.
        file: String,
        /// The file's line, the header being 1.
        row: u64,
        /// The column's name.
        column: String,
        /// The rule broken, with the value found.
        rule: String,
    },
}

/// A validated log, column by column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    /// The feature columns' names, in file order.
    pub features: Vec<String>,
    /// Each row's episode.
    pub episode: Vec<u64>,
    /// Each row's session within its episode.
    pub session: Vec<u64>,
    /// Each row's step within its session.
    pub step: Vec<u32>,
    /// The features, row by row (`rows × features.len()`).
    pub x: Vec<f32>,
    /// Each row's action.
    pub action: Vec<u32>,
    /// Each row's slate position.
    pub position: Vec<u16>,
    /// Each row's reward.
    pub reward: Vec<f64>,
    /// Each row's propensity, in (0, 1].
    pub propensity: Vec<f64>,
    /// The session reached a terminal state after the row's decision.
    pub terminated: Vec<bool>,
    /// The session was cut after the row's decision.
    pub truncated: Vec<bool>,
}

impl Log {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.action.len()
    }

    /// True when the log has no rows.
    pub fn is_empty(&self) -> bool {
        self.action.is_empty()
    }

    /// Row `i`'s features.
    pub fn features_of(&self, i: usize) -> &[f32] {
        let k = self.features.len();
        &self.x[i * k..(i + 1) * k]
    }

    /// Writes the log to `path` in the log format (atomically, never over
    /// an existing file); returns the rows written.
    pub fn write_csv(&self, path: &Path) -> Result<u64, LogError> {
        let names: Vec<&str> = self.features.iter().map(String::as_str).collect();
        let mut writer = LogWriter::create(path, &names)?;
        for i in 0..self.len() {
            writer.write(&self.row(i))?;
        }
        writer.finish()
    }

    /// The log as an offline learner reads it: each row's features (the
    /// observation), action and reward, and the next row of its session
    /// (none after a session's last row, or after a row that terminated
    /// it).
    pub fn transitions(&self) -> shoplab_policy::offline::Transitions {
        let mut next = vec![None; self.len()];
        for rows in self.sessions() {
            for w in rows.windows(2) {
                if !self.terminated[w[0]] {
                    next[w[0]] = Some(w[1]);
                }
            }
        }
        shoplab_policy::offline::Transitions {
            dim: self.features.len(),
            obs: self.x.clone(),
            action: self.action.clone(),
            reward: self.reward.clone(),
            next,
            propensity: self.propensity.clone(),
            position: self.position.clone(),
        }
    }

    /// Row `i`, as a writer takes it.
    pub fn row(&self, i: usize) -> LogRow<'_> {
        LogRow {
            episode: self.episode[i],
            session: self.session[i],
            step: self.step[i],
            features: self.features_of(i),
            action: self.action[i] as usize,
            position: usize::from(self.position[i]),
            reward: self.reward[i],
            propensity: self.propensity[i],
            terminated: self.terminated[i],
            truncated: self.truncated[i],
        }
    }

    /// Each session's rows, in step order, sessions in the order they first
    /// appear (a valid log keeps each session's steps in order).
    pub fn sessions(&self) -> Vec<Vec<usize>> {
        let mut index: HashMap<(u64, u64), usize> = HashMap::new();
        let mut out: Vec<Vec<usize>> = Vec::new();
        for i in 0..self.len() {
            let next = out.len();
            let j = *index
                .entry((self.episode[i], self.session[i]))
                .or_insert(next);
            if j == next {
                out.push(Vec::new());
            }
            out[j].push(i);
        }
        out
    }

    /// One more than the largest action logged.
    pub fn actions_seen(&self) -> usize {
        self.action
            .iter()
            .map(|&a| a as usize + 1)
            .max()
            .unwrap_or(0)
    }
}

/// What the reader checks beyond the format.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReadOptions {
    /// The size of the action space, when known: actions must be below it.
    pub n_actions: Option<usize>,
}

/// Where each session stands while the rows are read.
#[derive(Debug, Clone, Copy)]
struct SessionState {
    step: u32,
    position: u16,
    ended: bool,
}

/// One row's values of the format's columns, as read (before the rules).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values {
    pub episode: u64,
    pub session: u64,
    pub step: u64,
    pub action: u64,
    pub position: u64,
    pub reward: f64,
    pub propensity: f64,
    pub terminated: bool,
    pub truncated: bool,
}

/// The format's rules on each row's columns — ranges, propensities, the
/// order of steps and positions within a session — shared by the CSV and
/// Parquet readers, which parse cells their own way.
pub(crate) struct Checker<'a> {
    file: &'a str,
    options: &'a ReadOptions,
    names: [&'a str; 9],
    sessions: HashMap<(u64, u64), SessionState>,
}

impl<'a> Checker<'a> {
    /// A checker of `file`'s rows, `names` the format's columns as the
    /// file names them (in [`COLUMNS`]' order).
    pub(crate) fn new(file: &'a str, options: &'a ReadOptions, names: [&'a str; 9]) -> Self {
        Self {
            file,
            options,
            names,
            sessions: HashMap::new(),
        }
    }

    /// Checks row `row` and appends it to `log` (all but its features).
    pub(crate) fn accept(&mut self, row: u64, v: &Values, log: &mut Log) -> Result<(), LogError> {
        let bad = |column: usize, rule: String| LogError::Cell {
            file: self.file.to_string(),
            row,
            column: self.names[column].to_string(),
            rule,
        };
        let within = |column: usize, value: u64, max: u64| {
            if value <= max {
                Ok(value)
            } else {
                Err(bad(
                    column,
                    format!("must be a whole number in 0 ..= {max} (found `{value}`)"),
                ))
            }
        };
        let (episode, session) = (v.episode, v.session);
        let step = within(2, v.step, u64::from(u32::MAX))? as u32;
        let action = within(3, v.action, u64::from(u32::MAX))? as u32;
        if let Some(n) = self.options.n_actions
            && action as usize >= n
        {
            return Err(bad(
                3,
                format!("is {action}, not one of the {n} actions (0 ..= {})", n - 1),
            ));
        }
        let position = within(4, v.position, u64::from(u16::MAX))? as u16;
        if !v.reward.is_finite() {
            return Err(bad(
                5,
                format!("must be a finite number (found `{}`)", v.reward),
            ));
        }
        let propensity = v.propensity;
        if !(propensity > 0.0 && propensity <= 1.0) {
            return Err(bad(
                6,
                format!("must be a probability in (0, 1] (found {propensity})"),
            ));
        }
        let (terminated, truncated) = (v.terminated, v.truncated);
        let order = |rule: String| LogError::Row {
            file: self.file.to_string(),
            row,
            rule: format!("episode {episode}, session {session}: {rule}"),
        };
        match self.sessions.get_mut(&(episode, session)) {
            None => {
                if step != 0 {
                    return Err(order(format!(
                        "a session starts at step 0 (found step {step})"
                    )));
                }
                self.sessions.insert(
                    (episode, session),
                    SessionState {
                        step,
                        position,
                        ended: terminated || truncated,
                    },
                );
            }
            Some(state) => {
                let same_step = step == state.step && position > state.position;
                let next_step = step == state.step + 1 && !state.ended;
                if !(same_step || next_step) {
                    let expected = if state.ended {
                        format!("the session ended at step {}", state.step)
                    } else {
                        format!(
                            "expected step {} at a position after {}, or step {}",
                            state.step,
                            state.position,
                            state.step + 1
                        )
                    };
                    return Err(order(format!(
                        "steps out of order: found step {step} position {position} after step {} position {} ({expected})",
                        state.step, state.position
                    )));
                }
                *state = SessionState {
                    step,
                    position,
                    ended: state.ended || terminated || truncated,
                };
            }
        }
        log.episode.push(episode);
        log.session.push(session);
        log.step.push(step);
        log.action.push(action);
        log.position.push(position);
        log.reward.push(v.reward);
        log.propensity.push(propensity);
        log.terminated.push(terminated);
        log.truncated.push(truncated);
        Ok(())
    }
}

/// A feature value as stored: finite and within `f32`'s range.
pub(crate) fn feature(v: f64) -> Result<f32, String> {
    if !v.is_finite() {
        Err(format!("must be a finite number (found `{v}`)"))
    } else if v.abs() > f64::from(f32::MAX) {
        Err(format!("is {v}, beyond the range of a feature"))
    } else {
        Ok(v as f32)
    }
}

/// Reads and validates a CSV log: every rule of the format, every row,
/// before the log is returned.
pub fn read_csv(path: &Path, options: &ReadOptions) -> Result<Log, LogError> {
    let (file, bytes) = read_input(path)?;
    parse_csv(&file, &bytes, options)
}

/// An input file's name, for messages, and its bytes: only a regular file,
/// only up to [`MAX_DATA_BYTES`].
pub(crate) fn read_input(path: &Path) -> Result<(String, Vec<u8>), LogError> {
    let file = path.display().to_string();
    match read_regular_file(path, MAX_DATA_BYTES) {
        Ok(bytes) => Ok((file, bytes)),
        Err(source) => Err(LogError::Input { file, source }),
    }
}

/// Validates and parses the CSV text of a log named `file` (for messages).
pub fn parse_csv(file: &str, bytes: &[u8], options: &ReadOptions) -> Result<Log, LogError> {
    let file_error = |rule: &str| LogError::File {
        file: file.to_string(),
        rule: rule.to_string(),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(file_error(
            "is empty: a log needs a header and at least one row",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(file, &e))?
        .clone();
    let mut names = Vec::with_capacity(header.len());
    for field in &header {
        let name = std::str::from_utf8(field).map_err(|_| LogError::Row {
            file: file.to_string(),
            row: 1,
            rule: "the header is not UTF-8".into(),
        })?;
        let name = name.trim();
        if names.contains(&name) {
            return Err(LogError::Cell {
                file: file.to_string(),
                row: 1,
                column: name.to_string(),
                rule: "appears twice in the header".into(),
            });
        }
        names.push(name);
    }
    let mut index = [0usize; COLUMNS.len()];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|&n| n == column)
            .ok_or_else(|| LogError::Cell {
                file: file.to_string(),
                row: 1,
                column: column.to_string(),
                rule: format!(
                    "is missing: a log has the columns {} and its features",
                    COLUMNS.join(", ")
                ),
            })?;
    }
    let feature_index: Vec<usize> = (0..names.len()).filter(|i| !index.contains(i)).collect();
    let mut log = Log {
        features: feature_index
            .iter()
            .map(|&i| names[i].to_string())
            .collect(),
        ..Log::default()
    };
    let mut checker = Checker::new(file, options, COLUMNS);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(file, &e)),
        }
        let row = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| -> Result<&str, LogError> {
            std::str::from_utf8(&record[i])
                .map(str::trim)
                .map_err(|_| LogError::Cell {
                    file: file.to_string(),
                    row,
                    column: names[i].to_string(),
                    rule: "is not UTF-8".into(),
                })
        };
        let bad = |i: usize, rule: String| LogError::Cell {
            file: file.to_string(),
            row,
            column: names[i].to_string(),
            rule,
        };
        let integer = |i: usize, max: u64| -> Result<u64, LogError> {
            let text = cell(i)?;
            match text.parse::<u64>() {
                Ok(v) if v <= max => Ok(v),
                _ => Err(bad(
                    i,
                    format!("must be a whole number in 0 ..= {max} (found `{text}`)"),
                )),
            }
        };
        let number = |i: usize| -> Result<f64, LogError> {
            let text = cell(i)?;
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(bad(i, format!("must be a finite number (found `{text}`)"))),
            }
        };
        let flag = |i: usize| -> Result<bool, LogError> {
            match cell(i)? {
                "0" | "false" => Ok(false),
                "1" | "true" => Ok(true),
                text => Err(bad(i, format!("must be 0 or 1 (found `{text}`)"))),
            }
        };
        let [e, s, t, a, p, r, pr, te, tr] = index;
        let values = Values {
            episode: integer(e, u64::MAX)?,
            session: integer(s, u64::MAX)?,
            step: integer(t, u64::MAX)?,
            action: integer(a, u64::MAX)?,
            position: integer(p, u64::MAX)?,
            reward: number(r)?,
            propensity: number(pr)?,
            terminated: flag(te)?,
            truncated: flag(tr)?,
        };
        checker.accept(row, &values, &mut log)?;
        for &i in &feature_index {
            let v = number(i)?;
            log.x.push(feature(v).map_err(|rule| bad(i, rule))?);
        }
    }
    if log.is_empty() {
        return Err(file_error("has a header but no rows"));
    }
    Ok(log)
}

/// A CSV error as a log error: a row with the wrong number of fields, or
/// what the CSV reader could not parse.
pub(crate) fn csv_error(file: &str, e: &csv::Error) -> LogError {
    let row = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => LogError::Row {
            file: file.to_string(),
            row,
            rule: format!("has {len} fields, the header {expected_len}"),
        },
        _ => LogError::Row {
            file: file.to_string(),
            row,
            rule: e.to_string(),
        },
    }
}
