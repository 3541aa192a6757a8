//! What a value of the wrong shape should have been, in the user's terms.
//!
//! serde describes a value of the wrong shape by the Rust type it wanted
//! (`expected struct LinearSchedule`) or not at all (toml's `wanted string
//! or table` for an enum given a number). [`explain`] reads the table again
//! with the offending value replaced by a probe — a string no enum knows, a
//! table with a key no struct has — whose own refusal lists what is
//! accepted (`unknown variant …, expected one of `value`, `clicks``;
//! `unknown field …, expected one of `start`, `end`, `decay_fraction``),
//! and rewrites the message with that list. It works for every config type
//! that refuses unknown keys, without knowing any of them.

use crate::registry::TableError;
use serde_path_to_error::{Path, Segment};
use std::borrow::Cow;
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

/// The key no config has and the variant no enum has.
const PROBE: &str = "\u{1}probe";

/// The value at `path` inside `value`, if the path leads anywhere.
fn at_mut<'a, 'i>(value: &'a mut DeValue<'i>, path: &Path) -> Option<&'a mut DeValue<'i>> {
    let mut current = value;
    for segment in path.iter() {
        current = match (segment, current) {
            (Segment::Map { key }, DeValue::Table(table)) => table
                .iter_mut()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(_, v)| v.get_mut())?,
            (Segment::Seq { index }, DeValue::Array(array)) => {
                array.as_mut().get_mut(*index).map(Spanned::get_mut)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// What `parse` refuses when the value at `path` in `table` is `probe`.
fn refusal_with(
    table: &Spanned<DeValue<'_>>,
    path: &Path,
    probe: DeValue<'static>,
    parse: &dyn Fn(Spanned<DeValue<'_>>) -> Result<(), TableError>,
) -> Option<String> {
    let mut copy = table.clone();
    *at_mut(copy.get_mut(), path)? = probe;
    // The refusal of the probe itself, or of the probe's unknown key.
    let text = |p: &Path| match p.iter().next() {
        None => String::new(),
        Some(_) => p.to_string(),
    };
    let here = text(path);
    match parse(copy) {
        Err(e) if text(e.path()).starts_with(&here) => Some(e.inner().message().to_string()),
        _ => None,
    }
}

/// `message` (the refusal of the value at `path` in `table`) rewritten
/// with what is accepted there, where serde named a type or nothing;
/// `parse` reads a copy of the table as the refused parse did.
pub(crate) fn explain(
    message: &str,
    table: &Spanned<DeValue<'_>>,
    path: &Path,
    parse: &dyn Fn(Spanned<DeValue<'_>>) -> Result<(), TableError>,
) -> String {
    let vague = message.contains("expected struct")
        || message.contains("wanted string or table")
        || message.contains("did not match any variant")
        || message.contains("expected enum");
    if !vague {
        return message.to_string();
    }
    let found = {
        let mut copy = table.clone();
        at_mut(copy.get_mut(), path).map(|v| v.type_str())
    };
    let found = found.map_or(String::new(), |t| format!(" (found {t})"));
    let variant = refusal_with(table, path, DeValue::String(Cow::Borrowed(PROBE)), parse);
    if let Some(list) = variant
        .as_deref()
        .filter(|m| m.starts_with("unknown variant"))
        .and_then(|m| m.split_once(", expected "))
        .map(|(_, list)| list.to_string())
    {
        return format!("expected {list}{found}");
    }
    let mut probe = DeTable::new();
    probe.insert(
        Spanned::new(0..0, Cow::Borrowed(PROBE)),
        Spanned::new(0..0, DeValue::Boolean(true)),
    );
    let field = refusal_with(table, path, DeValue::Table(probe), parse);
    if let Some(keys) = field
        .as_deref()
        .filter(|m| m.starts_with("unknown field"))
        .and_then(|m| m.split_once(", expected "))
        .map(|(_, keys)| keys.trim_start_matches("one of ").to_string())
    {
        return format!("expected a table with the keys {keys}{found}");
    }
    message.to_string()
}
