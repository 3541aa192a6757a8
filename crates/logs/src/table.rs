//! Per-round tables of numbers (target distributions, estimated rewards)
//! read from CSV.

/// Reads a per-round table of `n_actions` numbers a row (`p0 … p{n−1}`:
/// a target policy's action distribution at each round's position, or
/// estimated rewards `q0 …`), one row per log row; `probabilities` checks
/// each row is a distribution (entries in [0, 1], summing to 1 within
/// 10⁻⁶). `n_actions` 0 takes the number of columns from the header.
/// Errors name the file, row and column.
pub fn read_table(
    path: &std::path::Path,
    rows: usize,
    n_actions: usize,
    probabilities: bool,
) -> Result<Vec<f64>, crate::LogError> {
    use crate::{
        LogError,
        format::{csv_error, read_input},
    };
    let (file, bytes) = read_input(path)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(&bytes[..]);
    let header = reader.headers().map_err(|e| csv_error(&file, &e))?;
    let n_actions = if n_actions == 0 {
        header.len()
    } else {
        n_actions
    };
    if header.len() != n_actions {
        return Err(LogError::Row {
            file,
            row: 1,
            rule: format!(
                "has {} columns; one per action ({n_actions}) was expected",
                header.len()
            ),
        });
    }
    let names: Vec<String> = header.iter().map(str::to_string).collect();
    let mut out = Vec::with_capacity(rows * n_actions);
    let mut count = 0;
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&file, &e))?;
        let row = record.position().map_or(0, |p| p.line());
        count += 1;
        if count > rows {
            return Err(LogError::Row {
                file,
                row,
                rule: format!("is beyond the log's {rows} rows"),
            });
        }
        let mut total = 0.0;
        for (j, cell) in record.iter().enumerate() {
            let v: f64 = cell
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| LogError::Cell {
                    file: file.clone(),
                    row,
                    column: names[j].clone(),
                    rule: format!("must be a finite number (found `{cell}`)"),
                })?;
            if probabilities && !(0.0..=1.0).contains(&v) {
                return Err(LogError::Cell {
                    file: file.clone(),
                    row,
                    column: names[j].clone(),
                    rule: format!("must be a probability in [0, 1] (found {v})"),
                });
            }
            total += v;
            out.push(v);
        }
        if probabilities && (total - 1.0).abs() > 1e-6 {
            return Err(LogError::Row {
                file,
                row,
                rule: format!("probabilities sum to {total}, not 1"),
            });
        }
    }
    if count != rows {
        return Err(LogError::File {
            file,
            rule: format!("has {count} rows; the log has {rows}"),
        });
    }
    Ok(out)
}
