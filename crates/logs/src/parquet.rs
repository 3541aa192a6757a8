//! Logs as Apache Parquet files: the same columns as the CSV format, read
//! with the same rules and written atomically.
//!
//! Written files have one required column per log column — `episode`,
//! `session`, `step`, `action`, `position` as INT64, the features, `reward`
//! and `propensity` as DOUBLE, `terminated` and `truncated` as BOOLEAN — in
//! the CSV's order, Snappy-compressed, in row groups of up to 1,048,576
//! rows. The reader takes what pandas and pyarrow write too: any integer
//! type (or whole floating-point numbers) for the integer columns, any
//! number for the others, booleans or 0/1 for the flags, optional columns
//! as long as no value is missing, uncompressed or Snappy pages (the only
//! codec built in, to keep the build lean). It refuses a file with the
//! file, the row (the record's number, from 1) and the column, as the CSV
//! reader does: a missing column, a value missing or of the wrong type, and
//! every rule of [`crate::read_csv`].

use crate::{
    COLUMNS, Log, LogError, LogRow, LogSink, ReadOptions,
    format::{Checker, Values, feature, read_input},
};
use parquet::{
    basic::{Compression, Repetition, Type as Physical},
    column::reader::ColumnReader,
    file::{
        properties::WriterProperties,
        reader::{FileReader, SerializedFileReader},
        writer::SerializedFileWriter,
    },
    schema::types::Type,
};
use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Rows per row group written.
const ROW_GROUP: usize = 1 << 20;

/// True for a path ending in `.parquet`: logs are read and written as
/// Parquet there, as CSV elsewhere.
pub fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "parquet")
}

/// Reads and validates a log, Parquet or CSV by its extension.
pub fn read_log(path: &Path, options: &ReadOptions) -> Result<Log, LogError> {
    if is_parquet(path) {
        read_parquet(path, options)
    } else {
        crate::read_csv(path, options)
    }
}

/// One column's values, whatever the file's type.
enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

/// Reads and validates a Parquet log.
pub fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Log, LogError> {
    let (file, bytes) = read_input(path)?;
    let file_error = |rule: String| LogError::File {
        file: file.clone(),
        rule,
    };
    if bytes.is_empty() {
        return Err(file_error(
            "is empty: a log needs a header and at least one row".into(),
        ));
    }
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))
        .map_err(|e| file_error(format!("is not a readable Parquet file ({e})")))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
    for (i, c) in schema.columns().iter().enumerate() {
        if c.max_rep_level() > 0 || c.path().parts().len() > 1 {
            return Err(cell(
                &file,
                1,
                &names[i],
                "is nested or repeated; a log's columns are flat".into(),
            ));
        }
    }
    let mut index = [0usize; COLUMNS.len()];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = names.iter().position(|n| n == column).ok_or_else(|| {
            file_error(format!(
                "has no column `{column}`: a log has the columns {} and its features",
                COLUMNS.join(", ")
            ))
        })?;
    }
    let feature_index: Vec<usize> = (0..names.len()).filter(|i| !index.contains(i)).collect();
    // Every column, whole.
    let mut columns: Vec<Column> = Vec::with_capacity(names.len());
    for (i, c) in schema.columns().iter().enumerate() {
        columns.push(match c.physical_type() {
            Physical::BOOLEAN => Column::Bool(Vec::new()),
            Physical::INT32 | Physical::INT64 => Column::Int(Vec::new()),
            Physical::FLOAT | Physical::DOUBLE => Column::Float(Vec::new()),
            other => {
                return Err(cell(
                    &file,
                    1,
                    &names[i],
                    format!("has values of type {other}; a log's columns are numbers"),
                ));
            }
        });
    }
    let read_error =
        |e: parquet::errors::ParquetError| file_error(format!("could not be read ({e})"));
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(read_error)?;
        let rows = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
        for (i, column) in columns.iter_mut().enumerate() {
            let max_def = schema.column(i).max_def_level();
            let reader = group.get_column_reader(i).map_err(read_error)?;
            let mut def = Vec::new();
            let defs = (max_def > 0).then_some(&mut def);
            // Values in file order, None where the definition level says
            // the value is missing.
            macro_rules! read {
                ($r:expr, $out:expr, $map:expr) => {{
                    let mut r = $r;
                    let mut values = Vec::new();
                    r.read_records(rows, defs, None, &mut values)
                        .map_err(read_error)?;
                    let mut next = values.into_iter();
                    if max_def > 0 {
                        $out.extend(def.iter().map(|&d| {
                            if d == max_def {
                                next.next().map($map)
                            } else {
                                None
                            }
                        }));
                    } else {
                        $out.extend(next.map(|v| Some($map(v))));
                    }
                }};
            }
            match (reader, column) {
                (ColumnReader::BoolColumnReader(r), Column::Bool(out)) => {
                    read!(r, out, |v: bool| v)
                }
                (ColumnReader::Int32ColumnReader(r), Column::Int(out)) => {
                    read!(r, out, |v: i32| i64::from(v))
                }
                (ColumnReader::Int64ColumnReader(r), Column::Int(out)) => read!(r, out, |v: i64| v),
                (ColumnReader::FloatColumnReader(r), Column::Float(out)) => {
                    read!(r, out, |v: f32| f64::from(v))
                }
                (ColumnReader::DoubleColumnReader(r), Column::Float(out)) => {
                    read!(r, out, |v: f64| v)
                }
                _ => {
                    return Err(file_error(format!(
                        "column `{}`: unexpected type",
                        names[i]
                    )));
                }
            }
        }
    }
    let n = match &columns[0] {
        Column::Int(v) => v.len(),
        Column::Float(v) => v.len(),
        Column::Bool(v) => v.len(),
    };
    if n == 0 {
        return Err(file_error("has no rows".into()));
    }
    let mut log = Log {
        features: feature_index.iter().map(|&i| names[i].clone()).collect(),
        ..Log::default()
    };
    let column_names: [&str; 9] = std::array::from_fn(|k| names[index[k]].as_str());
    let mut checker = Checker::new(&file, options, column_names);
    for row in 0..n {
        let number = row as u64 + 1;
        let value = |i: usize| -> Result<f64, LogError> {
            match &columns[i] {
                Column::Int(v) => v[row].map(|x| x as f64),
                Column::Float(v) => v[row],
                Column::Bool(v) => v[row].map(|b| f64::from(u8::from(b))),
            }
            .ok_or_else(|| cell(&file, number, &names[i], "is missing a value".into()))
        };
        let integer = |i: usize| -> Result<u64, LogError> {
            let whole = match &columns[i] {
                Column::Int(v) => v[row].and_then(|x| u64::try_from(x).ok()),
                _ => {
                    let x = value(i)?;
                    (x.fract() == 0.0 && (0.0..1.8e19).contains(&x)).then_some(x as u64)
                }
            };
            whole.ok_or_else(|| match value(i) {
                Err(e) => e,
                Ok(x) => cell(
                    &file,
                    number,
                    &names[i],
                    format!("must be a whole number ≥ 0 (found `{x}`)"),
                ),
            })
        };
        let flag = |i: usize| -> Result<bool, LogError> {
            match value(i)? {
                0.0 => Ok(false),
                1.0 => Ok(true),
                x => Err(cell(
                    &file,
                    number,
                    &names[i],
                    format!("must be 0 or 1 (found `{x}`)"),
                )),
            }
        };
        let [e, s, t, a, p, r, pr, te, tr] = index;
        let values = Values {
            episode: integer(e)?,
            session: integer(s)?,
            step: integer(t)?,
            action: integer(a)?,
            position: integer(p)?,
            reward: value(r)?,
            propensity: value(pr)?,
            terminated: flag(te)?,
            truncated: flag(tr)?,
        };
        checker.accept(number, &values, &mut log)?;
        for &i in &feature_index {
            let v = value(i)?;
            log.x
                .push(feature(v).map_err(|rule| cell(&file, number, &names[i], rule))?);
        }
    }
    Ok(log)
}

fn cell(file: &str, row: u64, column: &str, rule: String) -> LogError {
    LogError::Cell {
        file: file.to_string(),
        row,
        column: column.to_string(),
        rule,
    }
}

/// Writes a log as Parquet to `FILE.partial`, a row group at a time, and
/// renames it to `FILE` when [`finish`](ParquetLogWriter::finish)ed; an
/// existing `FILE` is never replaced, and a writer dropped unfinished
/// removes its partial file.
pub struct ParquetLogWriter {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<SerializedFileWriter<File>>,
    buffer: Log,
    rows: u64,
}

impl ParquetLogWriter {
    /// Starts a log at `path` with the named feature columns.
    pub fn create(path: &Path, features: &[&str]) -> Result<Self, LogError> {
        let (partial, handle) = crate::writer::claim(path, features, &[])?;
        let write = |e: String| LogError::File {
            file: partial.display().to_string(),
            rule: format!("could not be written ({e})"),
        };
        let primitive = |name: &str, physical: Physical| {
            Type::primitive_type_builder(name, physical)
                .with_repetition(Repetition::REQUIRED)
                .build()
                .map(Arc::new)
                .map_err(|e| write(e.to_string()))
        };
        let mut fields = Vec::new();
        for name in &COLUMNS[..3] {
            fields.push(primitive(name, Physical::INT64)?);
        }
        for name in features {
            fields.push(primitive(name, Physical::DOUBLE)?);
        }
        for name in &COLUMNS[3..5] {
            fields.push(primitive(name, Physical::INT64)?);
        }
        for name in &COLUMNS[5..7] {
            fields.push(primitive(name, Physical::DOUBLE)?);
        }
        for name in &COLUMNS[7..] {
            fields.push(primitive(name, Physical::BOOLEAN)?);
        }
        let schema = Type::group_type_builder("log")
            .with_fields(fields)
            .build()
            .map_err(|e| write(e.to_string()))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = SerializedFileWriter::new(handle, Arc::new(schema), Arc::new(properties))
            .map_err(|e| write(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            writer: Some(writer),
            buffer: Log {
                features: features.iter().map(|s| s.to_string()).collect(),
                ..Log::default()
            },
            rows: 0,
        })
    }

    fn error(&self, e: parquet::errors::ParquetError) -> LogError {
        LogError::File {
            file: self.partial.display().to_string(),
            rule: format!("could not be written ({e})"),
        }
    }

    /// Writes the buffered rows as a row group.
    fn flush(&mut self) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let fresh = Log {
            features: self.buffer.features.clone(),
            ..Log::default()
        };
        let log = std::mem::replace(&mut self.buffer, fresh);
        let d = log.features.len();
        let writer = self.writer.as_mut().expect("open until finished");
        let result = (|| {
            let mut group = writer.next_row_group()?;
            let ints = |v: &mut dyn Iterator<Item = i64>| v.collect::<Vec<i64>>();
            let mut columns: Vec<Vec<i64>> = vec![
                ints(&mut log.episode.iter().map(|&v| v as i64)),
                ints(&mut log.session.iter().map(|&v| v as i64)),
                ints(&mut log.step.iter().map(|&v| i64::from(v))),
            ];
            for c in columns.drain(..) {
                let mut col = group.next_column()?.expect("the schema's column");
                col.typed::<parquet::data_type::Int64Type>()
                    .write_batch(&c, None, None)?;
                col.close()?;
            }
            for j in 0..d {
                let values: Vec<f64> = (0..log.len())
                    .map(|i| f64::from(log.x[i * d + j]))
                    .collect();
                let mut col = group.next_column()?.expect("the schema's column");
                col.typed::<parquet::data_type::DoubleType>()
                    .write_batch(&values, None, None)?;
                col.close()?;
            }
            for c in [
                log.action.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(),
                log.position.iter().map(|&v| i64::from(v)).collect(),
            ] {
                let mut col = group.next_column()?.expect("the schema's column");
                col.typed::<parquet::data_type::Int64Type>()
                    .write_batch(&c, None, None)?;
                col.close()?;
            }
            for c in [&log.reward, &log.propensity] {
                let mut col = group.next_column()?.expect("the schema's column");
                col.typed::<parquet::data_type::DoubleType>()
                    .write_batch(c, None, None)?;
                col.close()?;
            }
            for c in [&log.terminated, &log.truncated] {
                let mut col = group.next_column()?.expect("the schema's column");
                col.typed::<parquet::data_type::BoolType>()
                    .write_batch(c, None, None)?;
                col.close()?;
            }
            group.close()?;
            Ok(())
        })();
        result.map_err(|e| self.error(e))
    }

    /// Closes the file and renames it into place; returns the rows written.
    pub fn finish(mut self) -> Result<u64, LogError> {
        self.flush()?;
        let writer = self.writer.take().expect("open until finished");
        writer.close().map_err(|e| self.error(e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|source| LogError::Write {
            file: self.path.display().to_string(),
            source,
        })?;
        Ok(self.rows)
    }
}

impl LogSink for ParquetLogWriter {
    fn write(&mut self, row: &LogRow<'_>) -> Result<(), LogError> {
        self.buffer.write(row)?;
        self.rows += 1;
        if self.buffer.len() >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }
}

impl Drop for ParquetLogWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

impl Log {
    /// Writes the log to `path` as Parquet (atomically, never over an
    /// existing file); returns the rows written.
    pub fn write_parquet(&self, path: &Path) -> Result<u64, LogError> {
        let names: Vec<&str> = self.features.iter().map(String::as_str).collect();
        let mut writer = ParquetLogWriter::create(path, &names)?;
        for i in 0..self.len() {
            writer.write(&self.row(i))?;
        }
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV log in text, parsed.
    fn csv(text: &str) -> Log {
        crate::parse_csv("log.csv", text.as_bytes(), &ReadOptions::default()).unwrap()
    }

    fn refused(log: &Log, dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        log.write_parquet(&path).unwrap();
        read_parquet(&path, &ReadOptions { n_actions: Some(3) })
            .expect_err("a bad log")
            .to_string()
    }

    /// A log written as Parquet reads back identical to the CSV it came
    /// from; the file is never written over; an unfinished writer leaves
    /// nothing.
    #[test]
    fn parquet_logs_round_trip_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let log = csv(
            "episode,session,step,period,stock,action,position,reward,propensity,terminated,truncated\n\
             7,0,0,0,40,2,0,0.1,0.3333333333333333,0,0\n\
             7,1,0,0,40,1,0,1e-300,1,0,0\n\
             7,0,1,1,38.5,0,0,2.5,0.5,1,0\n\
             7,1,1,1,39,2,0,-3,0.25,0,1\n",
        );
        let path = dir.path().join("log.parquet");
        assert_eq!(log.write_parquet(&path).unwrap(), 4);
        let back = read_parquet(&path, &ReadOptions::default()).unwrap();
        assert_eq!(back, log);
        let again = log.write_parquet(&path).unwrap_err().to_string();
        assert!(again.contains("exists already"), "{again}");
        drop(ParquetLogWriter::create(&dir.path().join("other.parquet"), &[]).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A log written by pandas 1.5 with pyarrow 14 (`DataFrame.to_parquet`:
    /// optional columns, Snappy) reads; one with a missing propensity is
    /// refused with its row and column.
    #[test]
    fn a_pandas_parquet_file_reads() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let log = read_parquet(&data.join("pandas-log.parquet"), &ReadOptions::default()).unwrap();
        assert_eq!(log.features, ["x"]);
        assert_eq!(log.action, [0, 1, 2, 1, 0]);
        assert_eq!(log.reward, [1.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(log.x, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert!(log.terminated.iter().all(|&t| t) && log.truncated.iter().all(|&t| !t));
        let err = read_parquet(
            &data.join("pandas-log-missing.parquet"),
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("row 3, column `propensity`: is missing a value"),
            "{err}"
        );
    }

    /// Each rule of the format, in a Parquet file: the error names the
    /// file, the row (the record's number) and the column.
    #[test]
    fn bad_parquet_logs_are_refused_with_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let good = csv(
            "episode,session,step,x,action,position,reward,propensity,terminated,truncated\n\
             0,0,0,1,0,0,1,0.5,0,0\n\
             0,0,1,2,1,0,0,0.5,1,0\n",
        );
        let mut bad = good.clone();
        bad.propensity[1] = 0.0;
        let e = refused(&bad, dir.path(), "p.parquet");
        assert!(
            e.ends_with(
                "p.parquet: row 2, column `propensity`: must be a probability in (0, 1] (found 0)"
            ),
            "{e}"
        );
        let mut bad = good.clone();
        bad.action[0] = 3;
        let e = refused(&bad, dir.path(), "a.parquet");
        assert!(
            e.ends_with("row 1, column `action`: is 3, not one of the 3 actions (0 ..= 2)"),
            "{e}"
        );
        let mut bad = good.clone();
        bad.step[1] = 2;
        let e = refused(&bad, dir.path(), "s.parquet");
        assert!(
            e.contains("row 2: episode 0, session 0: steps out of order"),
            "{e}"
        );
        let mut bad = good.clone();
        bad.x[0] = f32::NAN;
        let e = refused(&bad, dir.path(), "x.parquet");
        assert!(
            e.ends_with("row 1, column `x`: must be a finite number (found `NaN`)"),
            "{e}"
        );
        // Not Parquet at all, and empty.
        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, b"episode,session\n").unwrap();
        let e = read_parquet(&junk, &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.parquet: is not a readable Parquet file"),
            "{e}"
        );
        let empty = dir.path().join("empty.parquet");
        std::fs::write(&empty, b"").unwrap();
        let e = read_parquet(&empty, &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty.parquet: is empty"), "{e}");
        // Written by pandas without a propensity column, and with the
        // actions as text.
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let e = read_parquet(
            &data.join("pandas-log-no-propensity.parquet"),
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.ends_with("has no column `propensity`: a log has the columns episode, session, step, action, position, reward, propensity, terminated, truncated and its features"), "{e}");
        let e = read_parquet(
            &data.join("pandas-log-text-action.parquet"),
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("column `action`: has values of type BYTE_ARRAY"),
            "{e}"
        );
    }
}
