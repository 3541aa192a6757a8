//! NumPy `.npy` arrays of per-round action distributions or estimated
//! rewards, as obp takes them: shape `(rounds, actions)` or `(rounds,
//! actions, positions)`, little-endian `f8` or `f4`, C order. A small strict
//! reader (format versions 1 to 3), so that no input can make it allocate
//! more than the file holds.

use crate::{LogError, format::read_input};
use std::path::Path;

/// The values at each round's position (a 3-D array's `[i, :, position_i]`,
/// a 2-D array's row `i`): `rounds × actions`, and the number of actions.
pub fn read_npy(
    path: &Path,
    positions: &[u16],
    probabilities: bool,
) -> Result<(Vec<f64>, usize), LogError> {
    let (file, bytes) = read_input(path)?;
    let refuse = |rule: String| LogError::File {
        file: file.clone(),
        rule,
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(refuse("is not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => {
            return Err(refuse(format!(
                "has .npy format version {v}; 1 to 3 are read"
            )));
        }
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| refuse("has a truncated or non-UTF-8 .npy header".into()))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| refuse("has no 'descr' in its .npy header".into()))?;
    let size = match descr {
        "<f8" => 8,
        "<f4" => 4,
        other => {
            return Err(refuse(format!(
                "holds `{other}` values; little-endian floats (<f8 or <f4) are read"
            )));
        }
    };
    if field("fortran_order").is_none_or(|r| !r.starts_with("False")) {
        return Err(refuse("is in Fortran order; C order is read".into()));
    }
    let shape: Vec<usize> = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .and_then(|dims| {
            dims.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| d.parse::<usize>().ok())
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| refuse("has no readable 'shape' in its .npy header".into()))?;
    let rounds = positions.len();
    // A 2-D array is already at each round's position.
    let (n_actions, n_positions, positional) = match shape[..] {
        [r, a] if r == rounds => (a, 1, false),
        [r, a, k] if r == rounds => (a, k, true),
        _ => {
            return Err(refuse(format!(
                "has shape {shape:?}; ({rounds}, actions) or ({rounds}, actions, positions) was expected"
            )));
        }
    };
    let data = &bytes[start + header_len..];
    rounds
        .checked_mul(n_actions)
        .and_then(|c| c.checked_mul(n_positions))
        .filter(|c| c.checked_mul(size) == Some(data.len()))
        .ok_or_else(|| {
            refuse(format!(
                "holds {} bytes of data, not what shape {shape:?} needs",
                data.len()
            ))
        })?;
    let value = |index: usize| -> f64 {
        let b = &data[index * size..(index + 1) * size];
        if size == 8 {
            f64::from_le_bytes(b.try_into().expect("8 bytes"))
        } else {
            f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))
        }
    };
    let mut out = Vec::with_capacity(rounds * n_actions);
    for (i, &k) in positions.iter().enumerate() {
        let k = if positional { usize::from(k) } else { 0 };
        if k >= n_positions {
            return Err(refuse(format!(
                "has {n_positions} positions; log row {} is at position {k}",
                i + 1
            )));
        }
        let mut total = 0.0;
        for a in 0..n_actions {
            let v = value((i * n_actions + a) * n_positions + k);
            let ok = v.is_finite() && (!probabilities || (0.0..=1.0).contains(&v));
            if !ok {
                return Err(refuse(format!(
                    "element [{i}, {a}, {k}] is {v}, not {}",
                    if probabilities {
                        "a probability in [0, 1]"
                    } else {
                        "finite"
                    }
                )));
            }
            total += v;
            out.push(v);
        }
        if probabilities && (total - 1.0).abs() > 1e-6 {
            return Err(refuse(format!(
                "round {i} (position {k}): probabilities sum to {total}, not 1"
            )));
        }
    }
    Ok((out, n_actions))
}
