//! What a run will cost, estimated before it starts.
//!
//! Every size in a scenario file is checked against its own cap, but sizes
//! multiply: two hundred layers each under the width cap, a batch of a
//! million rows through two wide layers, a million gradient steps per
//! transition. So before any run starts, the harness adds up what the whole
//! scenario will hold in memory and how much work it will do, from what the
//! family says of its episodes ([`EpisodeCost`]) and what each policy says of
//! itself ([`PolicyCost`]), and refuses a scenario over the limits with the
//! estimate and the limit.
//!
//! Estimates are upper bounds of the right order, not measurements: bytes
//! of the largest buffers and tables a run allocates, and *work* counted in
//! elementary operations (a multiply-add, an auction, a draw), of which a
//! core does very roughly 10⁹ a second. Figures are `f64` so that no
//! adversarial product of sizes can overflow.

/// What a family's episodes cost, for estimating a run before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpisodeCost {
    /// Most policy decisions in an episode: steps, times the sessions
    /// stepped together in batched families.
    pub decisions: f64,
    /// Operations the env spends per decision (drawing shoppers, running
    /// auctions, scoring a slate).
    pub env_work: f64,
    /// Bytes one env holds (shopper state, the day's auction log).
    pub env_bytes: f64,
    /// Bytes of the family's shared setup (catalog, solved oracle tables),
    /// held once however many runs there are.
    pub setup_bytes: f64,
}

/// What one policy instance costs, for estimating a run before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyCost {
    /// Bytes the policy holds at its largest (weights, optimiser state,
    /// replay buffer, tables), counting buffers only up to what the run can
    /// fill.
    pub bytes: f64,
    /// Operations per decision while training (acting and learning).
    pub train_work: f64,
    /// Operations per greedy decision (evaluation).
    pub act_work: f64,
}

impl PolicyCost {
    /// The cost of a policy that keeps a few numbers per action and looks at
    /// each action once per decision (bandits, fixed rules).
    pub fn per_action(n_actions: usize) -> Self {
        let n = n_actions as f64;
        Self {
            bytes: 64.0 * n + 4096.0,
            train_work: 4.0 * n,
            act_work: 4.0 * n,
        }
    }
}

/// Bytes with a binary unit, for messages (`2.5 GiB`).
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a size such as `8G`, `512MiB`, `1.5 GB` or `1000000` (bytes);
/// the units are binary (`G` = GiB).
pub fn parse_bytes(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a size such as 8G or 512M (found {text:?})"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use K, M, G or T, binary units)"
            ));
        }
    };
    let bytes = value * scale;
    if bytes.is_finite() && bytes >= 1.0 {
        Ok(bytes)
    } else {
        Err(format!("expected a positive size (found {text:?})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_print_back() {
        assert_eq!(parse_bytes("8G").unwrap(), 8.0 * (1u64 << 30) as f64);
        assert_eq!(parse_bytes("512 MiB").unwrap(), 512.0 * (1u64 << 20) as f64);
        assert_eq!(parse_bytes("1.5gb").unwrap(), 1.5 * (1u64 << 30) as f64);
        assert_eq!(parse_bytes("1000").unwrap(), 1000.0);
        assert!(parse_bytes("8X").unwrap_err().contains("unit"));
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("").is_err());
        assert_eq!(format_bytes(2.5 * (1u64 << 30) as f64), "2.5 GiB");
        assert_eq!(format_bytes(100.0), "100 bytes");
    }
}
