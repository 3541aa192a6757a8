//! Finished jobs on disk, so that a killed run resumes and a sweep splits
//! across machines.
//!
//! Each job's result is written the moment the job finishes, to a file of
//! its own ([`codec`]), atomically: written under a temporary name, synced,
//! then renamed, so a job file is whole or absent whatever kills the
//! process. A file is keyed by its job ([`crate::plan::job_key`]): a result
//! is only ever read back for the same configuration, policy and seed of
//! the same scenario. Shards ([`Shard`]) take a fixed, deterministic share
//! of the jobs, round-robin over the job order so each shard gets a like
//! mix of slow and fast policies.

pub mod codec;

use crate::{
    plan::{Job, job_key},
    runner::RunResult,
};
use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

/// The folder of job files inside a partial run folder or a shard folder.
pub const JOBS_DIR: &str = ".jobs";

/// One of `count` shards of a plan's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    /// How many shards there are.
    pub count: u32,
}

impl Shard {
    /// Reads `K/N` (1 ≤ K ≤ N ≤ 100000).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("a shard is K/N, such as 2/8 (found {text:?})"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("a shard is K/N with whole numbers K and N (found {text:?})"))
        };
        let (index, count) = (number(k)?, number(n)?);
        if !(1..=100_000).contains(&count) || !(1..=count).contains(&index) {
            return Err(format!(
                "a shard K/N needs 1 ≤ K ≤ N ≤ 100000 (found {index}/{count})"
            ));
        }
        Ok(Self { index, count })
    }

    /// The jobs of this shard: every `count`-th job of `jobs`, from the
    /// `index`-th.
    pub fn select(&self, jobs: &[Job]) -> Vec<Job> {
        jobs.iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 % u64::from(self.count) == u64::from(self.index - 1))
            .map(|(_, job)| *job)
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Job files in a folder, for one plan.
#[derive(Debug, Clone)]
pub struct JobStore {
    dir: PathBuf,
    /// Each configuration's identity ([`crate::plan::identity`]).
    identities: Vec<[u8; 32]>,
}

impl JobStore {
    /// The job files in `dir` of a plan whose configurations have `identities`.
    pub fn new(dir: PathBuf, identities: Vec<[u8; 32]>) -> Self {
        Self { dir, identities }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `job`.
    pub fn file(&self, job: &Job) -> PathBuf {
        self.dir
            .join(format!("c{}-p{}-s{}.job", job.config, job.policy, job.seed))
    }

    fn key(&self, job: &Job) -> [u8; 32] {
        job_key(&self.identities[job.config], job)
    }

    /// Writes `result` as `job`'s file, atomically and durably.
    pub fn save(&self, job: &Job, result: &RunResult) -> std::io::Result<()> {
        let bytes = codec::encode(&self.key(job), result);
        let path = self.file(job);
        let temp = self.dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .expect("a job file has a name")
                .to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    /// The finished results among `jobs`, and a note for each job file
    /// that could not be used (it is run again).
    pub fn finished(&self, jobs: &[Job]) -> (BTreeMap<Job, RunResult>, Vec<String>) {
        let mut done = BTreeMap::new();
        let mut notes = Vec::new();
        for job in jobs {
            let path = self.file(job);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    notes.push(format!(
                        "{}: unreadable ({e}); the job runs again",
                        path.display()
                    ));
                    continue;
                }
            };
            match codec::decode(&self.key(job), &bytes) {
                Ok(result) if result.policy == job.policy && result.seed == job.seed => {
                    done.insert(*job, result);
                }
                Ok(_) => notes.push(format!(
                    "{}: holds another job's result; the job runs again",
                    path.display()
                )),
                Err(why) => notes.push(format!("{}: {why}; the job runs again", path.display())),
            }
        }
        (done, notes)
    }

    /// Like [`Self::finished`], but every job must be there: the name of
    /// the first missing or unusable one otherwise.
    pub fn all(&self, jobs: &[Job]) -> Result<Vec<RunResult>, String> {
        jobs.iter()
            .map(|job| {
                let path = self.file(job);
                let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                codec::decode(&self.key(job), &bytes)
                    .map_err(|why| format!("{}: {why}", path.display()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_jobs_exactly() {
        let jobs: Vec<Job> = (0..2)
            .flat_map(|config| {
                (0..3).flat_map(move |policy| {
                    (1..=5).map(move |seed| Job {
                        config,
                        policy,
                        seed,
                    })
                })
            })
            .collect();
        let mut seen = Vec::new();
        for k in 1..=4 {
            let shard = Shard::parse(&format!("{k}/4")).unwrap();
            let mine = shard.select(&jobs);
            assert!(mine.len() == 7 || mine.len() == 8, "{}", mine.len());
            seen.extend(mine);
        }
        seen.sort();
        let mut all = jobs.clone();
        all.sort();
        assert_eq!(seen, all);
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "1/200000"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn saved_jobs_come_back_and_others_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = JobStore::new(tmp.path().to_path_buf(), vec![[1; 32], [2; 32]]);
        let job = Job {
            config: 1,
            policy: 0,
            seed: 5,
        };
        let result = RunResult {
            policy: 0,
            seed: 5,
            episodes: Vec::new(),
            failure: None,
            table: None,
            evaluations: Vec::new(),
            checkpoint: None,
            on_log: None,
            exact_value: None,
        };
        store.save(&job, &result).unwrap();
        let other = Job { seed: 6, ..job };
        let (done, notes) = store.finished(&[job, other]);
        assert_eq!(done.get(&job), Some(&result));
        assert!(notes.is_empty() && !done.contains_key(&other));
        assert!(store.all(&[job, other]).unwrap_err().contains("s6"));
        // A store of another scenario does not take it.
        let changed = JobStore::new(tmp.path().to_path_buf(), vec![[1; 32], [3; 32]]);
        let (done, notes) = changed.finished(&[job]);
        assert!(
            done.is_empty() && notes[0].contains("another job"),
            "{notes:?}"
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
