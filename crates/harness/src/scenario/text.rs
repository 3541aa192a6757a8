//! Where a problem in a scenario file is, in words: the line of every
//! key, serde's messages rewritten as rules, and the lists of names an
//! error offers.

use std::collections::BTreeMap;
use toml::{Spanned, de::DeValue};

/// Records the line of `value` under `path`, and of everything inside it.
pub(super) fn record_lines(
    text: &str,
    path: String,
    value: &Spanned<DeValue<'_>>,
    out: &mut BTreeMap<String, usize>,
) {
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, inner) in table {
                let name: &str = key.get_ref();
                let child = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                out.insert(child.clone(), line_of(text, key.span().start));
                record_lines(text, child, inner, out);
            }
        }
        DeValue::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                let child = format!("{path}[{i}]");
                out.entry(child.clone())
                    .or_insert_with(|| line_of(text, inner.span().start));
                record_lines(text, child, inner, out);
            }
        }
        _ => {}
    }
}

/// Rewrites serde's wording for a negative number in an unsigned field as a rule.
pub(super) fn plain_rule(message: &str) -> String {
    let message = &short_numbers(message);
    let negative = message
        .strip_prefix("invalid value: integer `-")
        .and_then(|rest| rest.split_once('`'))
        .filter(|(_, tail)| tail.starts_with(", expected u"));
    match negative {
        Some((digits, _)) => format!("must be a whole number ≥ 0 (found -{digits})"),
        None => message.trim().to_string(),
    }
}

/// `message` with every quoted number of more than 20 characters written
/// in scientific notation (serde quotes `1e300` with all its digits).
fn short_numbers(message: &str) -> String {
    let parts: Vec<&str> = message.split('`').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| match part.parse::<f64>() {
            Ok(v) if i % 2 == 1 && part.len() > 20 => format!("{v:e}"),
            _ => (*part).to_string(),
        })
        .collect::<Vec<_>>()
        .join("`")
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where a problem is: ``key `a.b` (line N): ``, `line N: `, or nothing.
pub(super) fn location(text: &str, key: &str, span: Option<std::ops::Range<usize>>) -> String {
    match (key, span.map(|s| line_of(text, s.start))) {
        ("", Some(l)) => format!("line {l}: "),
        ("", None) => String::new(),
        (k, Some(l)) => format!("key `{k}` (line {l}): "),
        (k, None) => format!("key `{k}`: "),
    }
}

/// `prefix` followed by serde's key path inside it.
pub(super) fn joined(prefix: &str, path: &str) -> String {
    match (prefix, path) {
        (p, "." | "") => p.to_string(),
        ("", q) => q.to_string(),
        (p, q) if q.starts_with('[') => format!("{p}{q}"),
        (p, q) => format!("{p}.{q}"),
    }
}

/// `` `a`, `b` and `c` ``, for lists of allowed values.
pub(super) fn listed(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => "none".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
