//! The Open Bandit Dataset (Saito et al., 2021) as a shoplab log, with
//! obp's documented preprocessing (`OpenBanditDataset.load_raw_data` and
//! `pre_process` in obp 0.5):
//! - rows in timestamp order (the shipped files already are; rows with
//!   equal timestamps keep their file order);
//! - the action is `item_id`, the reward `click`, the propensity
//!   `propensity_score`;
//! - positions 1, 2, 3 become 0, 1, 2 (their dense rank, from 0);
//! - the context is the one-hot encoding of `user_feature_0` to
//!   `user_feature_3`, each feature's levels in sorted order with the first
//!   dropped (pandas' `get_dummies(drop_first=True)`), named
//!   `user_feature_j_LEVEL`.
//!
//! Each impression is a round of its own: session `i` for the `i`-th row,
//! step 0, at its position, terminated.

use crate::{
    Log, LogError,
    format::{csv_error, read_input},
};
use std::{collections::BTreeSet, path::Path};

/// The user features obp one-hot encodes.
const USER_FEATURES: [&str; 4] = [
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
];

/// An Open Bandit Dataset file, preprocessed.
#[derive(Debug, Clone, PartialEq)]
pub struct Obd {
    /// The rounds as a log.
    pub log: Log,
    /// Items (actions): one more than the largest `item_id`.
    pub n_actions: usize,
    /// Distinct positions.
    pub positions: usize,
}

impl Obd {
    /// The on-policy click-through rate: clicks per impression.
    pub fn ctr(&self) -> f64 {
        self.log.reward.iter().sum::<f64>() / self.log.len() as f64
    }
}

/// Reads an OBD `all.csv` (or a campaign's file of the same columns).
pub fn read_obd(path: &Path) -> Result<Obd, LogError> {
    let (file, bytes) = read_input(path)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(&bytes[..]);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&file, &e))?
        .iter()
        .map(str::to_string)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| LogError::Cell {
                file: file.clone(),
                row: 1,
                column: name.to_string(),
                rule: "is missing: an Open Bandit Dataset file has timestamp, item_id, position, \
                   click, propensity_score and user_feature_0 to _3"
                    .into(),
            })
    };
    let [ts, item, pos, click, ps] = [
        "timestamp",
        "item_id",
        "position",
        "click",
        "propensity_score",
    ]
    .map(column);
    let (ts, item, pos, click, ps) = (ts?, item?, pos?, click?, ps?);
    let users: Vec<usize> = USER_FEATURES
        .iter()
        .map(|&n| column(n))
        .collect::<Result<_, _>>()?;
    struct Raw {
        timestamp: String,
        item: u32,
        position: u64,
        click: f64,
        propensity: f64,
        users: [String; 4],
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&file, &e))?;
        let row = record.position().map_or(0, |p| p.line());
        let bad = |i: usize, rule: &str| LogError::Cell {
            file: file.clone(),
            row,
            column: header[i].clone(),
            rule: format!("{rule} (found `{}`)", &record[i]),
        };
        let item_id: u32 = record[item]
            .trim()
            .parse()
            .map_err(|_| bad(item, "must be a whole number"))?;
        let position: u64 = record[pos]
            .trim()
            .parse()
            .map_err(|_| bad(pos, "must be a whole number"))?;
        let clicked = match record[click].trim() {
            "0" => 0.0,
            "1" => 1.0,
            _ => return Err(bad(click, "must be 0 or 1")),
        };
        let propensity: f64 = record[ps]
            .trim()
            .parse()
            .map_err(|_| bad(ps, "must be a number"))?;
        if !(propensity > 0.0 && propensity <= 1.0) {
            return Err(bad(ps, "must be a probability in (0, 1]"));
        }
        rows.push(Raw {
            timestamp: record[ts].to_string(),
            item: item_id,
            position,
            click: clicked,
            propensity,
            users: [0, 1, 2, 3].map(|j| record[users[j]].to_string()),
        });
    }
    if rows.is_empty() {
        return Err(LogError::File {
            file,
            rule: "has no rows".into(),
        });
    }
    // Stable: equal timestamps keep their file order.
    rows.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let positions: Vec<u64> = rows
        .iter()
        .map(|r| r.position)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if positions.len() > usize::from(u16::MAX) {
        return Err(LogError::File {
            file,
            rule: format!("has {} positions, more than a log allows", positions.len()),
        });
    }
    let levels: Vec<Vec<String>> = (0..4)
        .map(|j| {
            rows.iter()
                .map(|r| r.users[j].clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .collect();
    let mut log = Log::default();
    for (j, values) in levels.iter().enumerate() {
        log.features.extend(
            values[1..]
                .iter()
                .map(|v| format!("{}_{v}", USER_FEATURES[j])),
        );
    }
    for (i, r) in rows.iter().enumerate() {
        log.episode.push(0);
        log.session.push(i as u64);
        log.step.push(0);
        for (j, values) in levels.iter().enumerate() {
            let level = values
                .binary_search(&r.users[j])
                .expect("a level of the data");
            log.x
                .extend((1..values.len()).map(|l| f32::from(u8::from(l == level))));
        }
        log.action.push(r.item);
        log.position.push(
            positions
                .binary_search(&r.position)
                .expect("a position of the data") as u16,
        );
        log.reward.push(r.click);
        log.propensity.push(r.propensity);
        log.terminated.push(true);
        log.truncated.push(false);
    }
    Ok(Obd {
        n_actions: log.actions_seen(),
        positions: positions.len(),
        log,
    })
}
