//! A failing run is reported with its reason and the other runs finish.
//!
//! Guards issue #2 (foundation and dynamic pricing, end to end).

use shoplab_env::Observation;
use shoplab_harness::{prepared::Prepared, report, runner, scenario};
use shoplab_policy::{Policy, fixed::Fixed};
use std::path::Path;

/// Diverges after its third episode.
#[derive(Debug)]
struct Diverging {
    episodes: usize,
}

impl Policy for Diverging {
    fn begin_episode(&mut self, episode: usize, _total: usize) {
        self.episodes = episode;
    }
    fn act(&mut self, _obs: &Observation) -> usize {
        0
    }
    fn greedy(&self, _obs: &Observation) -> usize {
        0
    }
    fn divergence(&self) -> Option<String> {
        (self.episodes >= 3).then(|| "loss became NaN".to_string())
    }
}

/// Panics in its first episode.
#[derive(Debug)]
struct Panicking;

impl Policy for Panicking {
    fn act(&mut self, _obs: &Observation) -> usize {
        panic!("a bug in the policy")
    }
    fn greedy(&self, _obs: &Observation) -> usize {
        0
    }
}

#[test]
fn failures_are_reported_and_other_runs_finish() {
    let file = Path::new("scenarios/pricing.toml");
    let mut s = scenario::read(file, &shoplab_harness::registry::Registry::default()).unwrap();
    s.run.seeds = vec![1, 2, 3];
    s.run.episodes = 20;
    let prepared = Prepared::new(s, file).unwrap();
    let n_actions = prepared.make_env().action_space().n();
    // Policy 0 diverges on seed 2 and panics on seed 3; every other run is real.
    let results = runner::run_all_with(
        &prepared,
        &|index, seed| {
            let seed_of = |s: u64| {
                shoplab_env::seed::derive_seed(s, &format!("policy/{}", prepared.names[0]), 0)
            };
            if index == 0 && seed == seed_of(2) {
                Ok(Box::new(Diverging { episodes: 0 }))
            } else if index == 0 && seed == seed_of(3) {
                Ok(Box::new(Panicking))
            } else if index == 0 {
                Ok(Box::new(Fixed::new(3, n_actions)))
            } else {
                prepared.make_policy(index, seed)
            }
        },
        &|_| {},
    );
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert_eq!(failed.len(), 2);
    assert!(
        failed[0]
            .failure
            .as_ref()
            .unwrap()
            .contains("diverged: loss became NaN")
    );
    assert_eq!(
        failed[0].episodes.len(),
        3,
        "stopped in the episode that diverged, which is not recorded"
    );
    assert!(
        failed[1]
            .failure
            .as_ref()
            .unwrap()
            .contains("panicked: a bug in the policy")
    );
    for r in results.iter().filter(|r| r.failure.is_none()) {
        assert_eq!(r.episodes.len(), 20);
    }
    let report = report::build(&prepared, &results);
    assert_eq!(report.summaries[0].seeds_ok, 1);
    assert_eq!(report.summaries[0].seeds_failed, 2);
    assert_eq!(report.failures.len(), 2);
    let files = report::csv_files(&prepared, &results, &report).unwrap();
    let runs = String::from_utf8(
        files
            .iter()
            .find(|(n, _)| n == "runs.csv")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert!(runs.contains(",failed,3,episode 3: diverged: loss became NaN; run stopped"));
}
