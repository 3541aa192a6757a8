//! A whole scenario's memory and work, estimated before any run starts and
//! held against the limits ([`Limits`]).
//!
//! The family says what its episodes cost and each policy what it costs
//! ([`shoplab_env::cost`]); this module multiplies them out over the runs:
//!
//! - **memory**: the process itself ([`BASE_BYTES`]), the family's shared
//!   setup, plus, for every run in flight
//!   at once (one per thread), a training env, an evaluation env and the
//!   largest policy; plus the episode records every run keeps until the
//!   report is written;
//! - **work**: per run, training decisions at the policy's training cost and
//!   greedy evaluation decisions at its acting cost, each plus the env's
//!   own; the reference policies' evaluation episodes; the baseline's
//!   calibration episodes; the report's bootstrap intervals.
//!
//! The default memory limit is half of what the machine offers the process
//! — the smallest of its physical memory, its cgroup's limit and its
//! address-space limit (`ulimit -v`) — leaving room for what the estimate
//! does not count (code, allocator slack, thread stacks). The default work
//! limit, 10¹⁵ operations, is about twelve days of one core: past it a run is
//! a mistake far more often than an intention; both limits can be raised.

use crate::scenario::RunConfig;
use shoplab_env::cost::{EpisodeCost, PolicyCost, format_bytes};

/// Work limit when none is given, in operations (about 10⁹ a second per core).
pub const DEFAULT_MAX_WORK: f64 = 1e15;

/// Bytes each episode record takes until the report is written, beyond its
/// metrics (8 bytes each), and its row of CSV text, beyond its numbers
/// (24 bytes each): every CSV is built in memory before the folder is
/// written.
const RECORD_BYTES: f64 = 96.0 + 24.0 * 8.0;

/// Bytes per metric of an episode's record and its CSV row.
const METRIC_BYTES: f64 = 8.0 + 24.0;

/// Bytes of the process itself — code, fonts, the allocator's own pages,
/// thread stacks — before any scenario is loaded (a tiny run of the shipped scenarios peaks
/// at about 60 MiB).
pub const BASE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

/// How much memory and work a scenario may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest estimated peak memory, in bytes.
    pub max_memory: f64,
    /// Largest estimated work, in operations.
    pub max_work: f64,
    /// Runs in flight at once (rayon's threads).
    pub threads: usize,
}

impl Limits {
    /// Limits derived from this machine: half its usable memory
    /// ([`usable_memory`]), [`DEFAULT_MAX_WORK`], rayon's thread count.
    pub fn from_machine() -> Self {
        Self {
            max_memory: usable_memory() / 2.0,
            max_work: DEFAULT_MAX_WORK,
            threads: rayon::current_num_threads(),
        }
    }
}

/// The memory this process may use: the smallest of physical memory
/// (`MemTotal`), the cgroup's `memory.max` and the address-space limit
/// (`ulimit -v`), where each is known; 8 GiB where none is (not Linux).
pub fn usable_memory() -> f64 {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let physical = read("/proc/meminfo").and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|kib| kib * 1024.0)
    });
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .and_then(|text| text.trim().parse::<f64>().ok())
        .or_else(|| {
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .and_then(|text| text.trim().parse::<f64>().ok())
        });
    let address_space = read("/proc/self/limits").and_then(|text| {
        text.lines()
            .find(|line| line.starts_with("Max address space"))
            .and_then(|line| line.split_whitespace().nth(3))
            .and_then(|soft| soft.parse::<f64>().ok())
    });
    [physical, cgroup, address_space]
        .into_iter()
        .flatten()
        .filter(|&bytes| bytes > 0.0)
        .fold(None, |least: Option<f64>, bytes| {
            Some(least.map_or(bytes, |l| l.min(bytes)))
        })
        .unwrap_or(8.0 * (1u64 << 30) as f64)
}

/// True when an estimate is over its limit, or not a number at all.
pub(crate) fn over(value: f64, limit: f64) -> bool {
    value.is_nan() || value > limit
}

/// One policy's part of the estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEstimate {
    /// The policy's report name.
    pub name: String,
    /// One instance's cost.
    pub cost: PolicyCost,
    /// Work of all its runs, in operations.
    pub work: f64,
}

/// A scenario's estimated peak memory and total work.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Estimated peak memory, in bytes.
    pub bytes: f64,
    /// Estimated work, in operations.
    pub work: f64,
    /// Each policy's part.
    pub policies: Vec<PolicyEstimate>,
}

/// Training decisions of one run: the bound its replay buffers fill to.
pub fn training_decisions(run: &RunConfig, episode: &EpisodeCost) -> f64 {
    f64::from(run.episodes) * episode.decisions
}

/// Greedy evaluation points of one run.
fn evaluation_points(run: &RunConfig) -> u32 {
    match (run.eval_episodes, run.eval_every) {
        (0, _) => 0,
        (_, 0) => 1,
        (_, every) => run.episodes / every + 1,
    }
}

/// Greedy evaluation episodes of one run.
fn evaluation_episodes(run: &RunConfig) -> f64 {
    f64::from(evaluation_points(run)) * f64::from(run.eval_episodes)
}

/// Multiplies the costs out over a scenario's runs. `references` counts
/// the reference policies (oracle, baseline) played on each run's
/// evaluation episodes, `calibration` the baseline candidates' episodes.
pub fn estimate(
    run: &RunConfig,
    episode: &EpisodeCost,
    policies: Vec<(String, PolicyCost)>,
    (references, calibration): (usize, f64),
    metrics: usize,
    threads: usize,
) -> Estimate {
    let seeds = run.seeds.len() as f64;
    let training = training_decisions(run, episode);
    let evaluation = evaluation_episodes(run) * episode.decisions;
    let env = episode.env_work;
    let policies: Vec<PolicyEstimate> = policies
        .into_iter()
        .map(|(name, cost)| {
            let work = seeds
                * (training * (env + cost.train_work)
                    + evaluation * (env + cost.act_work)
                    + references as f64 * evaluation * (env + 10.0));
            PolicyEstimate { name, cost, work }
        })
        .collect();
    let runs = policies.len() as f64 * seeds;
    let in_flight = (threads.max(1) as f64).min(runs);
    let largest = policies.iter().map(|p| p.cost.bytes).fold(0.0, f64::max);
    // Every training and greedy evaluation episode is kept, with its CSV
    // row, until the folder is written.
    let rows = f64::from(run.episodes) + evaluation_episodes(run);
    let records = runs * rows * (RECORD_BYTES + METRIC_BYTES * metrics as f64);
    let bytes = BASE_BYTES
        + episode.setup_bytes
        + in_flight * (2.0 * episode.env_bytes + largest)
        + records;
    // The report's intervals: per policy, two per curve point and a few per
    // evaluation point and summary column, each `resamples` studentised
    // resamples of the seeds (a mean and a standard error each).
    let intervals =
        2.0 * f64::from(run.curve_points) + 4.0 * f64::from(evaluation_points(run)) + 20.0;
    let statistics =
        policies.len() as f64 * intervals * f64::from(run.bootstrap_resamples) * 4.0 * seeds;
    let work = policies.iter().map(|p| p.work).sum::<f64>()
        + calibration * episode.decisions * (env + 10.0)
        + statistics;
    Estimate {
        bytes,
        work,
        policies,
    }
}

impl Estimate {
    /// The refusal, if the estimate is over `limits`: what it would take,
    /// the limit, the largest part and how to go on.
    pub fn check(&self, limits: &Limits) -> Result<(), String> {
        if over(self.bytes, limits.max_memory) {
            let largest = self
                .policies
                .iter()
                .max_by(|a, b| a.cost.bytes.total_cmp(&b.cost.bytes));
            let part = largest.map_or(String::new(), |p| {
                format!(
                    "; the largest policy, `{}`, holds about {} per run",
                    p.name,
                    format_bytes(p.cost.bytes)
                )
            });
            return Err(format!(
                "the scenario would need about {} of memory with {} runs at once, \
                 more than the limit of {}{part} (shrink it, or raise the limit with \
                 --max-memory)",
                format_bytes(self.bytes),
                limits.threads,
                format_bytes(limits.max_memory),
            ));
        }
        if over(self.work, limits.max_work) {
            let largest = self
                .policies
                .iter()
                .max_by(|a, b| a.work.total_cmp(&b.work));
            let part = largest.map_or(String::new(), |p| {
                format!(", {:.1e} of them for `{}`", p.work, p.name)
            });
            return Err(format!(
                "the scenario would take about {:.1e} operations{part} (a core does \
                 roughly 1e9 a second), more than the limit of {:.1e} (shrink it, or \
                 raise the limit with --max-work)",
                self.work, limits.max_work,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(episodes: u32, seeds: usize) -> RunConfig {
        RunConfig {
            seeds: (0..seeds as u64).collect(),
            episodes,
            confidence: 0.95,
            bootstrap_resamples: 1000,
            final_fraction: 0.1,
            curve_points: 10,
            eval_episodes: 10,
            eval_every: 50,
            seed_traces: false,
        }
    }

    /// Work is linear in episodes and seeds, and memory counts one policy
    /// per thread in flight, never more than there are runs.
    #[test]
    fn estimates_multiply_out_over_runs() {
        let episode = EpisodeCost {
            decisions: 100.0,
            env_work: 10.0,
            env_bytes: 1000.0,
            setup_bytes: 5000.0,
        };
        let cost = PolicyCost {
            bytes: 1e6,
            train_work: 90.0,
            act_work: 40.0,
        };
        let one = estimate(
            &run(100, 2),
            &episode,
            vec![("a".into(), cost)],
            (0, 0.0),
            0,
            8,
        );
        // 2 seeds × (100 episodes × 100 decisions × 100 + 3 evaluations ×
        // 10 episodes × 100 decisions × 50), and the intervals: (2 × 10
        // curve points + 4 × 3 evaluation points + 20) × 1,000 resamples ×
        // 4 × 2 seeds.
        let statistics = (2.0 * 10.0 + 4.0 * 3.0 + 20.0) * 1000.0 * 4.0 * 2.0;
        assert_eq!(one.work, 2.0 * (1e4 * 100.0 + 3e3 * 50.0) + statistics);
        let two = estimate(
            &run(200, 4),
            &episode,
            vec![("a".into(), cost)],
            (0, 0.0),
            0,
            8,
        );
        assert!(two.work > 3.5 * one.work);
        // Two runs in flight with 8 threads: the process, setup, 2 × (2
        // envs + policy), records.
        assert_eq!(
            one.bytes,
            BASE_BYTES + 5000.0 + 2.0 * (2000.0 + 1e6) + 2.0 * (100.0 + 30.0) * RECORD_BYTES
        );
        let limits = Limits {
            max_memory: BASE_BYTES + 1e6,
            max_work: 1e12,
            threads: 8,
        };
        let refusal = one.check(&limits).unwrap_err();
        assert!(
            refusal.contains("memory") && refusal.contains("`a`"),
            "{refusal}"
        );
        let limits = Limits {
            max_memory: 1e9,
            max_work: 1e5,
            threads: 8,
        };
        assert!(one.check(&limits).unwrap_err().contains("operations"));
    }

    #[test]
    fn the_machine_offers_some_memory() {
        let bytes = usable_memory();
        assert!(bytes >= 64.0 * (1u64 << 20) as f64, "{bytes}");
    }
}
