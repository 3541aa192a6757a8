//! Scheduling runs over threads: every job of a plan, in parallel, its
//! results in job order whatever the thread count.

use super::{PolicyFactory, RunResult, run_one};
use crate::{
    plan::{Job, Runs},
    prepared::Prepared,
};

/// Runs every policy on every seed, in parallel; results come in
/// policy-major, seed-minor order whatever the thread count.
pub fn run_all(
    prepared: &Prepared,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> Vec<RunResult> {
    run_all_with(
        prepared,
        &|index, seed| prepared.make_policy(index, seed),
        progress,
    )
}

/// [`run_all`] with policies built by `make_policy`.
pub fn run_all_with(
    prepared: &Prepared,
    make_policy: &PolicyFactory<'_>,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> Vec<RunResult> {
    let runs = Runs::single(prepared);
    let jobs = runs.jobs();
    schedule(runs, &jobs, &|job| {
        run_one(prepared, make_policy, job.policy, job.seed, progress)
    })
}

/// Runs `jobs` of the configurations `runs`, in parallel; results come in
/// the order of `jobs` whatever the thread count. Each episode is reported
/// to `progress` with the policy index counted across configurations
/// ([`crate::eta::Eta::for_jobs`]), and each finished job to `on_done`.
pub fn run_jobs(
    runs: Runs<'_>,
    jobs: &[Job],
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
    on_done: &(dyn Fn(&Job, &RunResult) + Sync),
) -> Vec<RunResult> {
    let offsets = crate::eta::policy_offsets(runs);
    schedule(runs, jobs, &|job| {
        let prepared = runs.prepared(job.config);
        let offset = offsets[job.config];
        let report = |p: crate::eta::Progress| {
            progress(crate::eta::Progress {
                policy: offset + p.policy,
                ..p
            })
        };
        let result = run_one(
            prepared,
            &|index, seed| prepared.make_policy(index, seed),
            job.policy,
            job.seed,
            &report,
        );
        on_done(&job, &result);
        result
    })
}

/// Runs every job with `run`, in parallel, and returns the results in the
/// order of `jobs`.
///
/// Each (configuration, policy)'s first job is scheduled first, so that
/// each policy's pace is measured early ([`crate::eta`]); then the others,
/// longest first — by each policy's estimated work
/// ([`Prepared::estimate`]), a deep Q-learner's runs before a bandit's —
/// and each thread takes the next job as it finishes one, so the threads
/// finish together instead of one waiting on the last long run. Every job
/// is seeded on its own, so the order changes no result.
fn schedule(
    runs: Runs<'_>,
    jobs: &[Job],
    run: &(dyn Fn(Job) -> RunResult + Sync),
) -> Vec<RunResult> {
    let work = |job: &Job| {
        runs.prepared(job.config)
            .estimate()
            .policies
            .get(job.policy)
            .map_or(0.0, |p| p.work)
    };
    let mut firsts = std::collections::BTreeSet::new();
    let round: Vec<usize> = jobs
        .iter()
        .map(|job| usize::from(!firsts.insert((job.config, job.policy))))
        .collect();
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Stable: equal estimates keep the job order.
    order.sort_by(|&a, &b| {
        round[a]
            .cmp(&round[b])
            .then(work(&jobs[b]).total_cmp(&work(&jobs[a])))
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<Option<RunResult>>> =
        std::sync::Mutex::new((0..jobs.len()).map(|_| None).collect());
    let workers = rayon::current_num_threads().min(jobs.len()).max(1);
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = order.get(k) else { break };
                    let result = run(jobs[index]);
                    done.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
