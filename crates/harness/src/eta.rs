//! How long a run has left: each finished episode is reported with the
//! seconds it took ([`Progress`]), and [`Eta`] extrapolates each policy's
//! remaining episodes at its own measured cost.
//!
//! Policies differ by orders of magnitude (a DQN episode against a
//! tabular one), and runs are scheduled longest first, so counting
//! episodes alike would extrapolate the slowest policy's pace to all. A
//! policy with a twentieth of its episodes finished is extrapolated at
//! its own mean seconds per episode; one not yet that far at its estimated
//! work
//! ([`crate::budget`]) converted to seconds at the rate measured on the
//! work done so far. The sum is divided among the threads.

use crate::{
    plan::{Job, Runs},
    prepared::Prepared,
};

/// One or more finished episodes of a policy and the seconds they took
/// (training and the evaluations that followed them), as the runner
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The policy's index in the scenario.
    pub policy: usize,
    /// Episodes finished.
    pub episodes: u64,
    /// Seconds they took on their thread.
    pub seconds: f64,
}

#[derive(Debug, Clone)]
struct Tally {
    /// Estimated work of one episode.
    estimate: f64,
    /// Episodes of all the policy's runs.
    total: u64,
    done: u64,
    seconds: f64,
}

/// The time left of a run, from its progress so far.
#[derive(Debug, Clone)]
pub struct Eta {
    policies: Vec<Tally>,
    threads: f64,
}

impl Eta {
    /// For `prepared` run on `threads` threads.
    pub fn new(prepared: &Prepared, threads: usize) -> Self {
        let run = &prepared.scenario.run;
        let per_policy = run.seeds.len() as u64 * u64::from(run.episodes);
        let estimates = (0..prepared.names.len())
            .map(|p| {
                prepared
                    .estimate()
                    .policies
                    .get(p)
                    .map_or(1.0, |e| e.work / per_policy.max(1) as f64)
            })
            .collect();
        Self::from_parts(estimates, vec![per_policy; prepared.names.len()], threads)
    }

    /// For `jobs` of the configurations `runs` (a sweep, a shard, what a
    /// resumed run has left), run on `threads` threads; policies are
    /// counted across configurations ([`policy_offsets`]).
    pub fn for_jobs(runs: Runs<'_>, jobs: &[Job], threads: usize) -> Self {
        let offsets = policy_offsets(runs);
        let all = runs.all();
        let n = offsets.last().copied().unwrap_or(0);
        let mut estimates = vec![1.0; n];
        let mut totals = vec![0; n];
        for (config, prepared) in all.iter().enumerate() {
            let run = &prepared.scenario.run;
            let per_policy = run.seeds.len() as u64 * u64::from(run.episodes);
            for p in 0..prepared.names.len() {
                estimates[offsets[config] + p] = prepared
                    .estimate()
                    .policies
                    .get(p)
                    .map_or(1.0, |e| e.work / per_policy.max(1) as f64);
            }
        }
        for job in jobs {
            totals[offsets[job.config] + job.policy] += runs.episodes(job.config);
        }
        Self::from_parts(estimates, totals, threads)
    }

    /// From each policy's estimated work per episode and its episodes in
    /// all.
    pub fn from_parts(estimates: Vec<f64>, totals: Vec<u64>, threads: usize) -> Self {
        Self {
            policies: estimates
                .into_iter()
                .zip(totals)
                .map(|(estimate, total)| Tally {
                    estimate: estimate.max(f64::MIN_POSITIVE),
                    total,
                    done: 0,
                    seconds: 0.0,
                })
                .collect(),
            threads: threads.max(1) as f64,
        }
    }

    /// Counts finished episodes.
    pub fn record(&mut self, p: &Progress) {
        if let Some(t) = self.policies.get_mut(p.policy) {
            t.done += p.episodes;
            t.seconds += p.seconds;
        }
    }

    /// Seconds left, once an episode has finished.
    pub fn remaining_seconds(&self) -> Option<f64> {
        let started = self.policies.iter().filter(|t| t.done > 0);
        // A policy's own pace counts once it has run a twentieth of its
        // episodes: its first ones carry each run's set-up (building the
        // policy, playing the references for the evaluations).
        let settled = |t: &Tally| t.done * 20 >= t.total;
        let (seconds, work) = started.fold((0.0, 0.0), |(s, w), t| {
            (s + t.seconds, w + t.estimate * t.done as f64)
        });
        if work <= 0.0 {
            return None;
        }
        let per_work = seconds / work;
        let left: f64 = self
            .policies
            .iter()
            .map(|t| {
                let remaining = t.total.saturating_sub(t.done) as f64;
                let per_episode = if settled(t) {
                    t.seconds / t.done as f64
                } else {
                    t.estimate * per_work
                };
                remaining * per_episode
            })
            .sum();
        Some(left / self.threads)
    }
}

/// Where each configuration's policies start in the policy count across
/// configurations, with the total last: `[0, P₀, P₀ + P₁, …]`.
pub fn policy_offsets(runs: Runs<'_>) -> Vec<usize> {
    let mut offsets = vec![0];
    for prepared in runs.all() {
        offsets.push(offsets.last().copied().unwrap_or(0) + prepared.names.len());
    }
    offsets
}

/// `3 min 20 s`, `45 s`, `2 h 05 min`.
pub fn format_seconds(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two policies, the first estimated 100× as costly per episode and
    /// measured at 1 s an episode; after its first 10 episodes of 100
    /// (under 10% of the run's time), the second, not started, is
    /// extrapolated at the measured rate per unit of work: 90 × 1 s +
    /// 100 × 0.01 s = 91 s on one thread, 45.5 s on two. Counting
    /// episodes alike would say (190 / 10) × 10 s = 190 s. The second's
    /// own pace counts once it has run 5 of its 100 episodes.
    #[test]
    fn unstarted_policies_are_extrapolated_at_the_measured_rate() {
        let mut eta = Eta::from_parts(vec![100.0, 1.0], vec![100, 100], 1);
        assert_eq!(eta.remaining_seconds(), None);
        for _ in 0..10 {
            eta.record(&Progress {
                policy: 0,
                episodes: 1,
                seconds: 1.0,
            });
        }
        assert!((eta.remaining_seconds().unwrap() - 91.0).abs() < 1e-9);
        let mut two = Eta::from_parts(vec![100.0, 1.0], vec![100, 100], 2);
        two.record(&Progress {
            policy: 0,
            episodes: 10,
            seconds: 10.0,
        });
        assert!((two.remaining_seconds().unwrap() - 45.5).abs() < 1e-9);
        // Once the second policy runs, its own pace replaces the estimate:
        // measured at 0.05 s, 5× the extrapolation.
        eta.record(&Progress {
            policy: 1,
            episodes: 10,
            seconds: 0.5,
        });
        assert!((eta.remaining_seconds().unwrap() - (90.0 + 90.0 * 0.05)).abs() < 1e-9);
        assert_eq!(format_seconds(45.4), "45 s");
        assert_eq!(format_seconds(200.0), "3 min 20 s");
        assert_eq!(format_seconds(7500.0), "2 h 05 min");
    }
}
