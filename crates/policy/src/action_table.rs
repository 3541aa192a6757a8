//! A policy read from a table of states and actions: how a policy trained
//! elsewhere (d3rlpy, a notebook) is played in a shoplab env.
//!
//! The table is a CSV file whose header is the env's observation features,
//! in order, then `action`; each row maps one observation to the action
//! taken there. Observations are matched exactly, so tables suit envs whose
//! observations are whole numbers (pricing's period, stock and last sales):
//! the exporter enumerates the reachable grid. A state missing from the
//! table takes the `fallback` action when one is set; otherwise the run
//! stops there, reported with the state, while the other runs finish.

use crate::{
    Policy, PolicyError,
    registry::{BuildContext, Built, PolicyKind},
};
use serde::{Deserialize, Serialize};
use shoplab_env::Observation;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Largest table file read (bytes).
const MAX_TABLE_BYTES: u64 = 256 << 20;

/// Settings of `action_table`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTableSettings {
    /// The CSV table, relative to the scenario file (absolute once resolved).
    pub file: PathBuf,
    /// The action of states the table lacks (default: none; such a state
    /// stops the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<usize>,
}

/// The `action_table` kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActionTableKind;

/// The table, keyed by each feature's bits.
#[derive(Debug)]
pub struct ActionTable {
    actions: Arc<HashMap<Vec<u32>, u32>>,
    fallback: Option<usize>,
    n_actions: usize,
}

fn key(features: &[f32]) -> Vec<u32> {
    // +0.0 and −0.0 are one state.
    features.iter().map(|&v| (v + 0.0).to_bits()).collect()
}

/// Reads and checks a table for an env with `features` and `n_actions`.
pub fn read_table(
    path: &Path,
    features: &[&str],
    n_actions: usize,
) -> Result<HashMap<Vec<u32>, u32>, String> {
    let text = shoplab_env::input::read_text_file(path, MAX_TABLE_BYTES)
        .map_err(|e| format!("{}: the table {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let at = |line: usize| format!("{}, line {}", path.display(), line + 1);
    let (_, header) = lines
        .next()
        .ok_or_else(|| format!("{}: the table is empty", path.display()))?;
    let expected: Vec<&str> = features.iter().copied().chain(["action"]).collect();
    let found: Vec<&str> = header.split(',').map(str::trim).collect();
    if found != expected {
        return Err(format!(
            "{}: the header is `{}`, the env's features then `action` are `{}`",
            at(0),
            found.join(","),
            expected.join(",")
        ));
    }
    let mut table = HashMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != expected.len() {
            return Err(format!(
                "{}: {} cells, the header has {}",
                at(i),
                cells.len(),
                expected.len()
            ));
        }
        let values: Vec<f32> = cells[..features.len()]
            .iter()
            .zip(features)
            .map(|(c, name)| match c.parse::<f32>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(format!("{}: `{name}` is `{c}`, not a finite number", at(i))),
            })
            .collect::<Result<_, _>>()?;
        let action = cells[features.len()];
        let action = match action.parse::<u32>() {
            Ok(a) if (a as usize) < n_actions => a,
            _ => {
                return Err(format!(
                    "{}: action `{action}` is not one of the env's 0 ..= {}",
                    at(i),
                    n_actions - 1
                ));
            }
        };
        if table.insert(key(&values), action).is_some() {
            return Err(format!("{}: the state {values:?} is listed twice", at(i)));
        }
    }
    if table.is_empty() {
        return Err(format!("{}: the table has no rows", path.display()));
    }
    Ok(table)
}

impl PolicyKind for ActionTableKind {
    type Config = ActionTableSettings;

    fn kind(&self) -> &'static str {
        "action_table"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn map_paths(
        &self,
        config: &mut ActionTableSettings,
        f: &mut dyn FnMut(&str, &Path) -> PathBuf,
    ) {
        config.file = f("file", &config.file);
    }

    fn build(&self, config: &ActionTableSettings, cx: &BuildContext<'_>) -> Built {
        let n_actions = cx.action_space.n();
        if let Some(f) = config.fallback.filter(|&f| f >= n_actions) {
            return Err(PolicyError::invalid(
                "fallback",
                format!(
                    "must be one of the env's 0 ..= {} (found {f})",
                    n_actions - 1
                ),
            ));
        }
        let features: Vec<&str> = cx
            .observation_space
            .features
            .iter()
            .map(|f| f.name)
            .collect();
        let table = read_table(&config.file, &features, n_actions)
            .map_err(|e| PolicyError::invalid("file", e))?;
        Ok(Box::new(ActionTable {
            actions: Arc::new(table),
            fallback: config.fallback,
            n_actions,
        }))
    }
}

impl Policy for ActionTable {
    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn action_probabilities(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> bool {
        crate::one_hot_probabilities(self.greedy(obs), self.n_actions, probs);
        true
    }

    /// The table's action; a state it lacks takes the fallback, or stops
    /// the run (the runner reports the panic as the run's failure).
    fn greedy(&self, obs: &Observation) -> usize {
        match self.actions.get(&key(&obs.features)) {
            Some(&a) => a as usize,
            None => self.fallback.unwrap_or_else(|| {
                panic!(
                    "the action table has no row for the state {:?} (set `fallback` to play one)",
                    obs.features
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shoplab-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A table is read exactly; bad tables are refused with file, line
    /// and rule.
    #[test]
    fn tables_are_read_and_checked() {
        let f = ["period", "stock"];
        let good = write("good.csv", "period,stock,action\n0,3,1\n1,3,2\n");
        let t = read_table(&good, &f, 3).unwrap();
        assert_eq!(t[&key(&[1.0, 3.0])], 2);
        for (text, needle) in [
            ("stock,period,action\n0,3,1\n", "header"),
            ("period,stock,action\n0,3,5\n", "line 2: action `5`"),
            ("period,stock,action\n0,x,1\n", "`stock` is `x`"),
            ("period,stock,action\n0,3,1\n0,3,2\n", "line 3: the state"),
            ("period,stock,action\n0,3\n", "2 cells"),
            ("period,stock,action\n", "no rows"),
        ] {
            let e = read_table(&write("bad.csv", text), &f, 3).unwrap_err();
            assert!(e.contains(needle) && e.contains("bad.csv"), "{e}");
        }
    }
}
