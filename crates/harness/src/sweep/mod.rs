//! Sweeps: one scenario file, many configurations.
//!
//! A `[sweep]` table lists values for any key of the scenario — a family
//! setting (`shop.inventory`), a policy's (`policies.q_learning.learning_rate`,
//! by report name, or `policies[2].learning_rate`, by position), a `[run]`
//! setting other than the seeds, or an `[offline]` one:
//!
//! ```toml
//! [sweep]
//! method = "grid"                     # every combination (the default)
//! [sweep.parameters]
//! "shop.inventory" = [20, 40]
//! "policies.q_learning.learning_rate" = [0.05, 0.1, 0.2]
//! ```
//!
//! `method = "random"` draws `count` configurations instead (seeded by
//! `seed`, by default the scenario's first seed), each key from its list
//! or from a range `{ min = 1e-3, max = 0.3, scale = "log" }` (`integer =
//! true` for whole numbers). The draws descend from the seed alone, so a
//! random sweep is as reproducible as a grid.
//!
//! Each configuration is the scenario file with its values written in
//! ([`apply`]; lines elsewhere keep their numbers), read and validated
//! whole like any scenario before any work starts; a configuration that
//! breaks a rule is refused with the rule, the key's line and the
//! configuration's values. Every configuration runs every policy on every
//! seed (the seeds are the replication axis and cannot be swept).

use serde::{Deserialize, Serialize};
use shoplab_env::{config::ConfigError, seed::derive_seed};

/// Most configurations one sweep may have.
pub const MAX_CONFIGURATIONS: usize = 1_000;

/// Most keys one sweep may vary.
pub const MAX_KEYS: usize = 16;

/// The `[sweep]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// How configurations are chosen.
    #[serde(default)]
    pub method: SweepMethod,
    /// Configurations a random sweep draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Seed of a random sweep's draws [default: the scenario's first seed].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Each swept key (a dotted path into the scenario) and its values: a
    /// list, or for a random sweep a range table.
    pub parameters: toml::Table,
}

/// How a sweep chooses its configurations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepMethod {
    /// Every combination of the listed values, the first key slowest.
    #[default]
    Grid,
    /// `count` configurations, each key drawn independently.
    Random,
}

/// A range a random sweep draws from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    min: f64,
    max: f64,
    #[serde(default)]
    scale: Scale,
    #[serde(default)]
    integer: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scale {
    #[default]
    Linear,
    Log,
}

/// Where a swept key's values come from.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    List(Vec<toml::Value>),
    Range(Range),
}

/// One configuration of a sweep: its id and its value of every swept key.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// `c01`, `c02`, … (zero-padded to the count's width).
    pub id: String,
    /// Each swept key and its value here, in the sweep's key order.
    pub values: Vec<(String, toml::Value)>,
}

impl Configuration {
    /// `key = value, key = value`, for people.
    pub fn describe(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k} = {}", display_value(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A value as a table cell or a label: strings bare, numbers as TOML
/// writes them.
pub fn display_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rule(key: impl Into<String>, rule: impl Into<String>) -> ConfigError {
    ConfigError::new(key, rule)
}

/// The scenario key of a sweep parameter, as errors name it.
fn parameter_key(key: &str) -> String {
    format!("sweep.parameters.{key}")
}

impl SweepSpec {
    /// The configurations of the sweep, checked: keys the sweep may vary,
    /// values it can write, at most [`MAX_CONFIGURATIONS`]. `first_seed`
    /// seeds a random sweep without its own `seed`.
    pub fn configurations(&self, first_seed: u64) -> Result<Vec<Configuration>, ConfigError> {
        if self.parameters.is_empty() {
            return Err(rule(
                "sweep.parameters",
                "must list at least one key and its values",
            ));
        }
        if self.parameters.len() > MAX_KEYS {
            return Err(rule(
                "sweep.parameters",
                format!(
                    "may vary at most {MAX_KEYS} keys (found {})",
                    self.parameters.len()
                ),
            ));
        }
        let mut keys = Vec::new();
        for (key, value) in &self.parameters {
            if !key.contains(['.', '[']) && value.is_table() {
                return Err(rule(
                    parameter_key(key),
                    format!(
                        "write a swept key in quotes, such as \"{key}.setting\" = [1, 2]: \
                         unquoted, TOML reads its dots as nested tables"
                    ),
                ));
            }
            check_key(key)?;
            keys.push((key.clone(), self.values_of(key, value)?));
        }
        let rows: Vec<Vec<toml::Value>> = match self.method {
            SweepMethod::Grid => {
                for field in ["count", "seed"] {
                    let set = if field == "count" {
                        self.count.is_some()
                    } else {
                        self.seed.is_some()
                    };
                    if set {
                        return Err(rule(
                            format!("sweep.{field}"),
                            "is for method = \"random\"; a grid takes every combination",
                        ));
                    }
                }
                let mut total: usize = 1;
                for (key, values) in &keys {
                    let Values::List(list) = values else {
                        return Err(rule(
                            parameter_key(key),
                            "a grid needs a list of values (ranges are for method = \"random\")",
                        ));
                    };
                    total = total.saturating_mul(list.len());
                }
                if total > MAX_CONFIGURATIONS {
                    return Err(rule(
                        "sweep.parameters",
                        format!(
                            "the grid has {total} configurations, more than the limit of {MAX_CONFIGURATIONS}"
                        ),
                    ));
                }
                let mut rows = vec![Vec::new()];
                for (_, values) in &keys {
                    let Values::List(list) = values else {
                        unreachable!("checked above")
                    };
                    rows = rows
                        .into_iter()
                        .flat_map(|row| {
                            list.iter().map(move |v| {
                                let mut row = row.clone();
                                row.push(v.clone());
                                row
                            })
                        })
                        .collect();
                }
                rows
            }
            SweepMethod::Random => {
                let count = self.count.ok_or_else(|| {
                    rule(
                        "sweep.count",
                        "a random sweep needs a count of configurations",
                    )
                })? as usize;
                if !(1..=MAX_CONFIGURATIONS).contains(&count) {
                    return Err(rule(
                        "sweep.count",
                        format!("must be between 1 and {MAX_CONFIGURATIONS} (found {count})"),
                    ));
                }
                let seed = self.seed.unwrap_or(first_seed);
                (0..count)
                    .map(|i| {
                        keys.iter()
                            .map(|(key, values)| draw(values, seed, key, i as u64))
                            .collect()
                    })
                    .collect()
            }
        };
        let width = rows.len().to_string().len().max(2);
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| Configuration {
                id: format!("c{:0width$}", i + 1),
                values: keys.iter().map(|(k, _)| k.clone()).zip(row).collect(),
            })
            .collect())
    }

    /// The values of one key, checked.
    fn values_of(&self, key: &str, value: &toml::Value) -> Result<Values, ConfigError> {
        let at = parameter_key(key);
        match value {
            toml::Value::Array(list) => {
                if list.is_empty() || list.len() > MAX_CONFIGURATIONS {
                    return Err(rule(
                        at,
                        format!(
                            "must list 1 to {MAX_CONFIGURATIONS} values (found {})",
                            list.len()
                        ),
                    ));
                }
                for (i, v) in list.iter().enumerate() {
                    if let toml::Value::Float(x) = v
                        && !x.is_finite()
                    {
                        return Err(rule(
                            format!("{at}[{i}]"),
                            format!("must be finite (found {x})"),
                        ));
                    }
                    if let Some(j) = list[..i].iter().position(|w| w == v) {
                        return Err(rule(
                            format!("{at}[{i}]"),
                            format!("repeats value {} (listed at [{j}])", display_value(v)),
                        ));
                    }
                }
                Ok(Values::List(list.clone()))
            }
            toml::Value::Table(table) => {
                let range: Range = toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        rule(
                            at.clone(),
                            format!(
                                "a range is {{ min, max, scale = \"linear\" | \"log\", integer = true | false }}: {}",
                                e.message()
                            ),
                        )
                    })?;
                if !(range.min.is_finite() && range.max.is_finite() && range.min < range.max) {
                    return Err(rule(
                        at,
                        format!(
                            "needs finite min < max (found min {}, max {})",
                            range.min, range.max
                        ),
                    ));
                }
                if range.scale == Scale::Log && range.min <= 0.0 {
                    return Err(rule(
                        format!("{at}.min"),
                        format!("must be > 0 on a log scale (found {})", range.min),
                    ));
                }
                if range.integer && range.min.ceil() > range.max.floor() {
                    return Err(rule(
                        at,
                        format!(
                            "holds no whole number between {} and {}",
                            range.min, range.max
                        ),
                    ));
                }
                if self.method == SweepMethod::Grid {
                    return Err(rule(
                        at,
                        "a grid needs a list of values (ranges are for method = \"random\")",
                    ));
                }
                Ok(Values::Range(range))
            }
            other => Err(rule(
                at,
                format!(
                    "must be a list of values, or a range table for a random sweep (found a {})",
                    other.type_str()
                ),
            )),
        }
    }
}

/// Refuses keys a sweep cannot vary.
fn check_key(key: &str) -> Result<(), ConfigError> {
    let at = parameter_key(key);
    let first = key.split(['.', '[']).next().unwrap_or("");
    let refuse = |why: &str| Err(rule(at.clone(), format!("cannot sweep `{key}`: {why}")));
    if key.is_empty() || key.starts_with('.') || key.ends_with('.') || key.contains("..") {
        return refuse("a key is a dotted path such as `shop.inventory`");
    }
    match first {
        "name" | "description" => refuse("a sweep's configurations share the scenario's name"),
        "sweep" => refuse("a sweep does not sweep itself"),
        "run" if key == "run.seeds" => {
            refuse("the seeds are the replicates of every configuration (list them in [run])")
        }
        "policies" if key.ends_with(".kind") || key.ends_with(".name") => refuse(
            "a policy's kind and report name are what the sweep's tables compare across \
             configurations; list another policy instead",
        ),
        "run" | "policies" | "offline" => {
            if key.contains('.') {
                Ok(())
            } else {
                refuse("name a key inside the table")
            }
        }
        _ if key.contains('.') => Ok(()),
        _ => refuse("name a key inside the family table, such as `shop.inventory`"),
    }
}

/// The value of `key` in configuration `index` of a random sweep.
fn draw(values: &Values, seed: u64, key: &str, index: u64) -> toml::Value {
    let bits = derive_seed(seed, &format!("sweep/{key}"), index);
    // 53 random bits as a uniform number in [0, 1).
    let u = (bits >> 11) as f64 / (1_u64 << 53) as f64;
    match values {
        Values::List(list) => list[((u * list.len() as f64) as usize).min(list.len() - 1)].clone(),
        Values::Range(range) => {
            if range.integer {
                let (lo, hi) = (range.min.ceil(), range.max.floor());
                let x = match range.scale {
                    Scale::Linear => (lo + (u * (hi - lo + 1.0)).floor()).min(hi),
                    Scale::Log => (lo.max(1.0).ln() + u * ((hi + 1.0).ln() - lo.max(1.0).ln()))
                        .exp()
                        .floor()
                        .clamp(lo, hi),
                };
                toml::Value::Integer(x as i64)
            } else {
                let x = match range.scale {
                    Scale::Linear => range.min + u * (range.max - range.min),
                    Scale::Log => (range.min.ln() + u * (range.max.ln() - range.min.ln())).exp(),
                };
                toml::Value::Float(x.clamp(range.min, range.max))
            }
        }
    }
}

/// Writes `value` at `key` of the scenario document `doc` (see the module
/// docs for the key forms); `names` are the scenario's policy report
/// names, in order. A key that is not in the file is added (the scenario's
/// own rules then judge it); the key's line and comment are kept.
pub fn apply(
    doc: &mut toml_edit::DocumentMut,
    key: &str,
    value: &toml::Value,
    names: &[String],
) -> Result<(), String> {
    let mut path: Vec<String> = Vec::new();
    let rest = if let Some(after) = key.strip_prefix("policies[") {
        let (index, rest) = after
            .split_once(']')
            .ok_or_else(|| format!("`{key}`: `policies[` needs its closing `]`"))?;
        let index: usize = index.parse().map_err(|_| {
            format!("`{key}`: `policies[{index}]` needs a position, such as policies[0]")
        })?;
        if index >= names.len() {
            return Err(format!(
                "`{key}`: the scenario has {} policies (positions 0 to {})",
                names.len(),
                names.len().saturating_sub(1)
            ));
        }
        path.push(format!("#{index}"));
        rest.strip_prefix('.')
            .ok_or_else(|| format!("`{key}`: name a setting after `policies[{index}]`"))?
    } else if let Some(after) = key.strip_prefix("policies.") {
        // The longest report name the key starts with (names may hold dots).
        let (index, name) = names
            .iter()
            .enumerate()
            .filter(|(_, n)| after.starts_with(&format!("{n}.")))
            .max_by_key(|(_, n)| n.len())
            .ok_or_else(|| {
                format!(
                    "`{key}`: no policy of the scenario is named so (its policies: {})",
                    names.join(", ")
                )
            })?;
        path.push(format!("#{index}"));
        &after[name.len() + 1..]
    } else {
        key
    };
    path.extend(rest.split('.').map(str::to_string));
    let new: toml_edit::Value = value
        .to_string()
        .parse()
        .map_err(|e| format!("`{key}`: the value cannot be written: {e}"))?;
    let (last, parents) = path.split_last().expect("a path has a key");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    let mut at = String::new();
    for part in parents {
        if let Some(index) = part.strip_prefix('#') {
            let index: usize = index.parse().expect("written above");
            let list = table
                .get_mut("policies")
                .and_then(|i| i.as_array_of_tables_mut())
                .ok_or_else(|| format!("`{key}`: the policies are not [[policies]] tables"))?;
            table = list
                .get_mut(index)
                .ok_or_else(|| format!("`{key}`: no policies[{index}]"))?;
            at = format!("policies[{index}]");
            continue;
        }
        at = if at.is_empty() {
            part.clone()
        } else {
            format!("{at}.{part}")
        };
        if table.get(part).is_none() {
            table.insert(part, toml_edit::Item::Table(toml_edit::Table::new()));
        }
        table = table
            .get_mut(part)
            .and_then(|i| i.as_table_like_mut())
            .ok_or_else(|| format!("`{key}`: `{at}` is a value, not a table"))?;
    }
    let mut new = new;
    if let Some(old) = table.get(last).and_then(|i| i.as_value()) {
        *new.decor_mut() = old.decor().clone();
    }
    table.insert(last, toml_edit::Item::Value(new));
    Ok(())
}

/// The scenario text of `configuration`: `text` with its values written in.
pub(crate) fn configuration_text(
    text: &str,
    configuration: &Configuration,
    names: &[String],
) -> Result<String, ConfigError> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
        rule(
            "sweep",
            format!("the scenario does not parse for editing: {e}"),
        )
    })?;
    for (key, value) in &configuration.values {
        apply(&mut doc, key, value, names).map_err(|why| rule(parameter_key(key), why))?;
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests;
