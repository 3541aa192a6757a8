//! The time-left estimate against the time a run really has left.
//!
//!     cargo bench --bench eta [-- SCENARIO]
//!
//! Runs a scenario (default `scenarios/pricing.toml`) into a temporary
//! folder, records the estimate ([`shoplab_harness::eta`]) when 10%, 25%
//! and 50% of the episodes are done, and prints each next to the time the
//! runs then really took (to their last episode: the estimate is the
//! progress bar's, which ends with the runs, before the run folder is
//! written), with their ratio.

use shoplab_harness::eta::{Eta, Progress, format_seconds};
use std::{path::PathBuf, sync::Mutex, time::Instant};

fn main() {
    let file = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".toml"))
        .map_or_else(|| PathBuf::from("scenarios/pricing.toml"), PathBuf::from);
    let prepared = shoplab_harness::load(&file, &shoplab_harness::registry::Registry::default())
        .expect("a valid scenario");
    let run = &prepared.scenario.run;
    let total = (prepared.names.len() * run.seeds.len()) as u64 * u64::from(run.episodes);
    let threads = rayon::current_num_threads();
    let eta = Mutex::new((Eta::new(&prepared, threads), 0u64, Vec::new()));
    let last = Mutex::new(0.0f64);
    let start = Instant::now();
    let marks = [0.10, 0.25, 0.50];
    let progress = |p: Progress| {
        *last.lock().unwrap() = start.elapsed().as_secs_f64();
        let mut guard = eta.lock().unwrap();
        let (eta, done, seen) = &mut *guard;
        eta.record(&p);
        *done += p.episodes;
        for &m in &marks {
            if *done as f64 >= m * total as f64 && !seen.iter().any(|(x, _, _)| *x == m) {
                let left = eta.remaining_seconds().unwrap_or(f64::NAN);
                seen.push((m, start.elapsed().as_secs_f64(), left));
            }
        }
    };
    let dir = std::env::temp_dir().join(format!("shoplab-eta-{}", std::process::id()));
    shoplab_harness::execute(&prepared, &dir, &progress).expect("the run");
    let end = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let runs_end = *last.lock().unwrap();
    println!(
        "{}: {} episodes on {threads} threads: the runs took {:.1} s, the run folder {:.1} s more",
        prepared.scenario.name,
        total,
        runs_end,
        end - runs_end
    );
    for (mark, at, left) in &eta.lock().unwrap().2 {
        let real = runs_end - at;
        println!(
            "  at {:.0}% of the episodes ({}): estimated {} left, really {} (ratio {:.2})",
            mark * 100.0,
            format_seconds(*at),
            format_seconds(*left),
            format_seconds(real),
            left / real
        );
    }
}
