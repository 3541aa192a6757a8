//! A finished job's result as bytes, and back, bit for bit.
//!
//! Shards and resumed runs rebuild a run folder from results written by
//! other processes, and the folder must come out byte-identical to an
//! uninterrupted run's: every `f64` is kept as its bit pattern (NaN and
//! infinities included), every list with its length. The format is
//! little-endian and private to this version of shoplab; a file starts
//! with [`MAGIC`] and the job's key (so a result is never used for another
//! scenario, configuration, policy or seed) and ends with the SHA-256 of
//! what precedes it (so a damaged file is refused, not misread).

use crate::runner::{EpisodeRecord, Evaluation, RunResult};
use sha2::{Digest, Sha256};
use shoplab_env::family::GreedyTable;
use shoplab_policy::LearningStats;

/// The first bytes of a job file.
pub const MAGIC: &[u8; 16] = b"shoplab-job-v02\n";

/// Longest list a job file may declare (guards the allocation of a
/// damaged or hostile file).
const MAX_LEN: u64 = 1 << 32;

/// Encodes `result` under `key` (the job's identity, [`super::job_key`]).
pub fn encode(key: &[u8; 32], result: &RunResult) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + result.episodes.len() * 48));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(key);
    w.u64(result.policy as u64);
    w.u64(result.seed);
    w.len(result.episodes.len());
    for e in &result.episodes {
        w.f64(e.ret);
        w.f64(e.score);
        w.f64s(&e.metrics);
        w.opt_f64(e.reference);
        match &e.learning {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.u64(l.updates);
                w.opt_f64(l.loss);
                w.opt_f64(l.mean_q);
                w.f64(l.exploration);
            }
        }
        w.u64(e.decisions);
    }
    w.opt_str(result.failure.as_deref());
    match &result.table {
        None => w.u8(0),
        Some(t) => {
            w.u8(1);
            w.str(&t.row_name);
            w.str(&t.col_name);
            w.str(&t.value_name);
            w.f64s(&t.rows);
            w.f64s(&t.cols);
            w.len(t.values.len());
            for row in &t.values {
                w.f64s(row);
            }
            match &t.visited {
                None => w.u8(0),
                Some(rows) => {
                    w.u8(1);
                    w.len(rows.len());
                    for row in rows {
                        w.bytes(&row.iter().map(|&v| u8::from(v)).collect::<Vec<u8>>());
                    }
                }
            }
        }
    }
    w.len(result.evaluations.len());
    for e in &result.evaluations {
        w.u64(e.after_episodes as u64);
        w.f64s(&e.returns);
        w.f64s(&e.scores);
        w.len(e.references.len());
        for r in &e.references {
            w.opt_f64(*r);
        }
        w.f64s(&e.oracle_scores);
        w.f64s(&e.baseline_scores);
    }
    match &result.checkpoint {
        None => w.u8(0),
        Some(bytes) => {
            w.u8(1);
            w.bytes(bytes);
        }
    }
    w.opt_f64(result.exact_value);
    match &result.on_log {
        None => w.u8(0),
        Some(actions) => {
            w.u8(1);
            w.len(actions.len());
            for &a in actions {
                w.0.extend_from_slice(&a.to_le_bytes());
            }
        }
    }
    let digest = Sha256::digest(&w.0);
    w.0.extend_from_slice(&digest);
    w.0
}

/// Decodes a job file written by [`encode`] under `key`; refuses a file of
/// another job, another version, or one damaged anywhere.
pub fn decode(key: &[u8; 32], bytes: &[u8]) -> Result<RunResult, String> {
    let body_len = bytes
        .len()
        .checked_sub(32)
        .filter(|&n| n >= MAGIC.len() + 32)
        .ok_or("too short to be a job file")?;
    let (body, digest) = bytes.split_at(body_len);
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a job file of this shoplab version".into());
    }
    if Sha256::digest(body).as_slice() != digest {
        return Err("damaged (its checksum does not match)".into());
    }
    if &body[MAGIC.len()..MAGIC.len() + 32] != key {
        return Err("the result of another job (scenario, configuration, policy or seed)".into());
    }
    let mut r = Reader {
        bytes: body,
        at: MAGIC.len() + 32,
    };
    let policy = r.u64()? as usize;
    let seed = r.u64()?;
    let n = r.len(32)?;
    let mut episodes = Vec::with_capacity(n);
    for _ in 0..n {
        let ret = r.f64()?;
        let score = r.f64()?;
        let metrics = r.f64s()?;
        let reference = r.opt_f64()?;
        let learning = match r.flag()? {
            false => None,
            true => Some(LearningStats {
                updates: r.u64()?,
                loss: r.opt_f64()?,
                mean_q: r.opt_f64()?,
                exploration: r.f64()?,
            }),
        };
        let decisions = r.u64()?;
        episodes.push(EpisodeRecord {
            ret,
            score,
            metrics,
            reference,
            learning,
            decisions,
        });
    }
    let failure = r.opt_str()?;
    let table = match r.flag()? {
        false => None,
        true => {
            let row_name = r.str()?;
            let col_name = r.str()?;
            let value_name = r.str()?;
            let rows = r.f64s()?;
            let cols = r.f64s()?;
            let n = r.len(8)?;
            let values = (0..n).map(|_| r.f64s()).collect::<Result<_, _>>()?;
            let visited = match r.flag()? {
                false => None,
                true => {
                    let n = r.len(8)?;
                    Some(
                        (0..n)
                            .map(|_| r.bytes().map(|b| b.iter().map(|&v| v != 0).collect()))
                            .collect::<Result<_, _>>()?,
                    )
                }
            };
            Some(GreedyTable {
                row_name,
                col_name,
                value_name,
                rows,
                cols,
                values,
                visited,
            })
        }
    };
    let n = r.len(8)?;
    let mut evaluations = Vec::with_capacity(n);
    for _ in 0..n {
        let after_episodes = r.u64()? as usize;
        let returns = r.f64s()?;
        let scores = r.f64s()?;
        let m = r.len(1)?;
        let references = (0..m).map(|_| r.opt_f64()).collect::<Result<_, _>>()?;
        evaluations.push(Evaluation {
            after_episodes,
            returns,
            scores,
            references,
            oracle_scores: r.f64s()?,
            baseline_scores: r.f64s()?,
        });
    }
    let checkpoint = match r.flag()? {
        false => None,
        true => Some(r.bytes()?),
    };
    let exact_value = r.opt_f64()?;
    let on_log = match r.flag()? {
        false => None,
        true => {
            let n = r.len(4)?;
            Some(
                (0..n)
                    .map(|_| {
                        r.take(4)
                            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    if r.at != body.len() {
        return Err(format!("{} bytes follow the result", body.len() - r.at));
    }
    Ok(RunResult {
        policy,
        seed,
        episodes,
        failure,
        table,
        evaluations,
        checkpoint,
        on_log,
        exact_value,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.f64(v);
            }
        }
    }
    fn f64s(&mut self, values: &[f64]) {
        self.len(values.len());
        for &v in values {
            self.f64(v);
        }
    }
    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("ends early")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn flag(&mut self) -> Result<bool, String> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("a flag reads {b}")),
        }
    }
    /// A length whose items take at least `item_bytes` each: refused when
    /// the rest of the file could not hold them.
    fn len(&mut self, item_bytes: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > MAX_LEN || n.saturating_mul(item_bytes.max(1) as u64) > left {
            return Err(format!("a list of {n} items does not fit in the file"));
        }
        Ok(n as usize)
    }
    fn f64(&mut self) -> Result<f64, String> {
        self.u64().map(f64::from_bits)
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, String> {
        Ok(if self.flag()? {
            Some(self.f64()?)
        } else {
            None
        })
    }
    fn f64s(&mut self) -> Result<Vec<f64>, String> {
        let n = self.len(8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.len(1)?;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn str(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?).map_err(|_| "a name is not UTF-8".to_string())
    }
    fn opt_str(&mut self) -> Result<Option<String>, String> {
        Ok(if self.flag()? {
            Some(self.str()?)
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunResult {
        RunResult {
            policy: 3,
            seed: u64::MAX - 1,
            episodes: vec![
                EpisodeRecord {
                    ret: 0.1 + 0.2,
                    score: -0.0,
                    metrics: vec![f64::NAN, f64::INFINITY, 1e-310],
                    reference: Some(std::f64::consts::PI),
                    learning: Some(LearningStats {
                        updates: 7,
                        loss: Some(f64::NEG_INFINITY),
                        mean_q: None,
                        exploration: 0.05,
                    }),
                    decisions: 12,
                },
                EpisodeRecord {
                    ret: 1.0,
                    score: 2.0,
                    metrics: vec![],
                    reference: None,
                    learning: None,
                    decisions: 0,
                },
            ],
            failure: Some("episode 2: diverged ✗".into()),
            table: Some(GreedyTable {
                row_name: "period".into(),
                col_name: "stock".into(),
                value_name: "price".into(),
                rows: vec![1.0, 2.0],
                cols: vec![0.5],
                values: vec![vec![9.0], vec![10.0]],
                visited: Some(vec![vec![true], vec![false]]),
            }),
            evaluations: vec![Evaluation {
                after_episodes: 5,
                returns: vec![1.5],
                scores: vec![1.5],
                references: vec![None, Some(2.0)],
                oracle_scores: vec![],
                baseline_scores: vec![0.25],
            }],
            checkpoint: Some(vec![0, 1, 2, 255]),
            on_log: Some(vec![0, 4, u32::MAX]),
            exact_value: Some(-0.0),
        }
    }

    /// Bit patterns, not values: NaN compares unequal to itself.
    fn bits(r: &RunResult) -> String {
        format!("{r:?}")
    }

    #[test]
    fn results_come_back_bit_for_bit() {
        let key = [7; 32];
        let result = sample();
        let bytes = encode(&key, &result);
        let back = decode(&key, &bytes).unwrap();
        assert_eq!(bits(&back), bits(&result));
        assert_eq!(back.episodes[0].score.to_bits(), (-0.0f64).to_bits());
        assert_eq!(
            back.episodes[0].metrics[0].to_bits(),
            result.episodes[0].metrics[0].to_bits()
        );
        assert_eq!(encode(&key, &back), bytes);
    }

    #[test]
    fn other_jobs_and_damaged_files_are_refused() {
        let key = [7; 32];
        let bytes = encode(&key, &sample());
        assert!(
            decode(&[8; 32], &bytes)
                .unwrap_err()
                .contains("another job")
        );
        for cut in [0, 10, 60, bytes.len() - 1] {
            assert!(decode(&key, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 20, 60, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(decode(&key, &bad).is_err(), "flip at {at}");
        }
    }
}
