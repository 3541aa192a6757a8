//! The progress bar of a run: episodes done and the time left.

use indicatif::{ProgressBar, ProgressStyle};
use shoplab_harness::plan::{Job, Runs};

/// The progress callback of a run: the bar advances by episodes, and its
/// message is the time left, each policy's remaining episodes at its own
/// measured cost ([`shoplab_harness::eta`]).
pub(crate) fn with_eta<'a>(
    bar: &'a ProgressBar,
    runs: Runs<'_>,
    jobs: &[Job],
) -> impl Fn(shoplab_harness::eta::Progress) + Sync + 'a {
    let eta = std::sync::Mutex::new(shoplab_harness::eta::Eta::for_jobs(
        runs,
        jobs,
        rayon::current_num_threads(),
    ));
    move |p| {
        bar.inc(p.episodes);
        let mut eta = eta.lock().unwrap_or_else(|e| e.into_inner());
        eta.record(&p);
        if let Some(left) = eta.remaining_seconds() {
            bar.set_message(format!(
                "eta {}",
                shoplab_harness::eta::format_seconds(left)
            ));
        }
    }
}

/// The bar of the episodes of `jobs`, hidden with `--quiet`.
pub(crate) fn progress_bar(runs: Runs<'_>, jobs: &[Job], quiet: bool) -> ProgressBar {
    let total = jobs.iter().map(|j| runs.episodes(j.config)).sum();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} episodes ({per_sec}) {msg}",
        )
        .expect("the template is valid"),
    );
    bar
}
