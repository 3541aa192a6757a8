//! `shoplab compare`: policies of several run folders side by side, with
//! rliable's aggregate statistics ([`crate::rliable`]).
//!
//! Each run folder gives one score per policy and seed: the mean score of
//! its last greedy evaluation where the run evaluates, else of its final
//! episodes (the scenario's `final_fraction`), as the run's own summary
//! does. Run folders of one scenario are compared as they are (one task;
//! a policy found in several folders is labelled `name@run-id`). Folders
//! of several scenarios are compared only when normalised: each score is
//! divided by its reference over the same episodes (the oracle's value or
//! the hindsight optimum, `score + regret`), each scenario is a task, and a
//! policy is the same policy in every scenario where its name appears —
//! it must appear in all, and the seeds compared are those all tasks share.
//!
//! For each policy: mean, median and IQM with stratified bootstrap
//! intervals (and the optimality gap when normalised); against the first
//! policy, the probability of improvement with its interval and, where
//! the two share seeds within each task, the mean paired difference with
//! its bootstrap interval.

use crate::rliable::{
    Aggregate, Scores, improvement_interval, performance_profile, stratified_interval,
};
use serde::Deserialize;
use shoplab_env::seed::derive_seed;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// Each seed's score and reference (where known).
pub type SeedScores = BTreeMap<u64, (f64, Option<f64>)>;

/// A policy's performance profile: `(fraction, low, high)` per threshold.
pub type Profile = Vec<(f64, f64, f64)>;

/// One run folder's scores.
#[derive(Debug, Clone)]
pub struct RunScores {
    /// The folder.
    pub dir: PathBuf,
    /// Its scenario's name.
    pub scenario: String,
    /// Its run id.
    pub run_id: String,
    /// Where the scores come from: `evaluation` or `final episodes`.
    pub source: &'static str,
    /// Each policy's score per seed, and reference per seed where known.
    pub policies: Vec<(String, SeedScores)>,
}

#[derive(Deserialize)]
struct Manifest {
    scenario: String,
    run_id: String,
}

#[derive(Deserialize)]
struct RunTable {
    #[serde(default = "default_fraction")]
    final_fraction: f64,
}

fn default_fraction() -> f64 {
    0.1
}

#[derive(Deserialize)]
struct ScenarioFile {
    run: RunTable,
}

/// Sums of score and reference over the rows of one (policy, seed).
#[derive(Default)]
struct Tally {
    rows: Vec<(u64, f64, Option<f64>)>,
}

fn read_csv(path: &Path) -> Result<csv::Reader<std::fs::File>, String> {
    csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn column(headers: &csv::StringRecord, name: &str, path: &Path) -> Result<usize, String> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
}

fn number(record: &csv::StringRecord, i: usize, path: &Path) -> Result<Option<f64>, String> {
    let cell = record.get(i).unwrap_or("");
    if cell.is_empty() {
        return Ok(None);
    }
    cell.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("{}: `{cell}` is not a number", path.display()))
}

/// Reads the scores of run folder `dir`.
pub fn read_run(dir: &Path) -> Result<RunScores, String> {
    let text = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("{}: not a run folder ({name}: {e})", dir.display()))
    };
    let manifest: Manifest = serde_json::from_str(&text("manifest.json")?)
        .map_err(|e| format!("{}: manifest.json: {e}", dir.display()))?;
    let scenario: ScenarioFile = toml::from_str(&text("scenario.toml")?)
        .map_err(|e| format!("{}: scenario.toml: {e}", dir.display()))?;
    let evaluations = dir.join("evaluations.csv");
    let evaluated = evaluations.is_file()
        && std::fs::metadata(&evaluations).is_ok_and(|m| m.len() > 0)
        && read_csv(&evaluations)?.records().next().is_some();
    // (policy, seed) → rows of (episode or evaluation point, score, reference).
    let mut tallies: BTreeMap<(String, u64), Tally> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let (path, point) = if evaluated {
        (evaluations, "after_episodes")
    } else {
        (dir.join("episodes.csv"), "episode")
    };
    let mut reader = read_csv(&path)?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let (p, s, at) = (
        column(&headers, "policy", &path)?,
        column(&headers, "seed", &path)?,
        column(&headers, point, &path)?,
    );
    let score = column(&headers, if evaluated { "score" } else { "return" }, &path)?;
    let regret = column(&headers, "regret", &path)?;
    for record in reader.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let policy = record.get(p).unwrap_or("").to_string();
        let seed: u64 = record
            .get(s)
            .unwrap_or("")
            .parse()
            .map_err(|_| format!("{}: a seed is not a whole number", path.display()))?;
        let at = number(&record, at, &path)?.unwrap_or(0.0) as u64;
        let value = number(&record, score, &path)?
            .ok_or_else(|| format!("{}: a score is missing", path.display()))?;
        let reference = number(&record, regret, &path)?.map(|r| value + r);
        if !order.contains(&policy) {
            order.push(policy.clone());
        }
        tallies
            .entry((policy, seed))
            .or_default()
            .rows
            .push((at, value, reference));
    }
    let mut policies: Vec<(String, SeedScores)> =
        order.iter().map(|p| (p.clone(), BTreeMap::new())).collect();
    for ((policy, seed), tally) in tallies {
        let rows = if evaluated {
            let last = tally.rows.iter().map(|r| r.0).max().unwrap_or(0);
            tally.rows.into_iter().filter(|r| r.0 == last).collect()
        } else {
            let n = tally.rows.len();
            let keep = ((scenario.run.final_fraction * n as f64).ceil() as usize).clamp(1, n);
            let mut rows = tally.rows;
            rows.sort_by_key(|r| r.0);
            rows.split_off(n - keep)
        };
        let k = rows.len() as f64;
        let mean = rows.iter().map(|r| r.1).sum::<f64>() / k;
        let reference = rows
            .iter()
            .map(|r| r.2)
            .sum::<Option<f64>>()
            .map(|sum| sum / k);
        let slot = policies
            .iter_mut()
            .find(|(p, _)| *p == policy)
            .expect("every policy was seen");
        slot.1.insert(seed, (mean, reference));
    }
    Ok(RunScores {
        dir: dir.to_path_buf(),
        scenario: manifest.scenario,
        run_id: manifest.run_id,
        source: if evaluated {
            "evaluation"
        } else {
            "final episodes"
        },
        policies,
    })
}

/// One policy's line of a comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareRow {
    /// The policy's label.
    pub policy: String,
    /// Runs (seeds) per task.
    pub runs: usize,
    /// Tasks (scenarios).
    pub tasks: usize,
    /// The metric.
    pub metric: &'static str,
    /// Its value.
    pub estimate: f64,
    /// Interval low.
    pub ci_low: f64,
    /// Interval high.
    pub ci_high: f64,
}

/// A comparison's results.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Scores normalised by their references.
    pub normalised: bool,
    /// The tasks (scenarios), in order.
    pub tasks: Vec<String>,
    /// Aggregates, probability of improvement and paired differences.
    pub rows: Vec<CompareRow>,
    /// Performance profiles: the thresholds, then per policy the fraction
    /// of runs above each with its interval `(fraction, low, high)`.
    pub profile: (Vec<f64>, Vec<(String, Profile)>),
}

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// Policies to keep, by name or label (all when empty); the first is
    /// the one the others are compared with.
    pub policies: Vec<String>,
    /// Divide by the references.
    pub normalise: bool,
    /// Confidence level.
    pub confidence: f64,
    /// Bootstrap replicates.
    pub reps: usize,
    /// The bootstrap's seed.
    pub seed: u64,
}

/// Compares the policies of `runs` ([`read_run`]).
pub fn compare(runs: &[RunScores], spec: &CompareSpec) -> Result<Comparison, String> {
    let mut tasks: Vec<String> = Vec::new();
    for r in runs {
        if !tasks.contains(&r.scenario) {
            tasks.push(r.scenario.clone());
        }
    }
    if tasks.len() > 1 && !spec.normalise {
        return Err(format!(
            "the runs are of different scenarios ({}): compare them with --normalise, each score \
             divided by its reference",
            tasks.join(", ")
        ));
    }
    // Label → per task, seed → score.
    let mut labelled: Vec<(String, Vec<BTreeMap<u64, f64>>)> = Vec::new();
    for run in runs {
        let t = tasks
            .iter()
            .position(|x| *x == run.scenario)
            .expect("listed");
        for (policy, seeds) in &run.policies {
            let repeated = runs
                .iter()
                .filter(|o| o.scenario == run.scenario)
                .filter(|o| o.policies.iter().any(|(p, _)| p == policy))
                .count()
                > 1;
            let label = if repeated {
                format!("{policy}@{}", run.run_id)
            } else {
                policy.clone()
            };
            let mut scores = BTreeMap::new();
            for (&seed, &(value, reference)) in seeds {
                let value = if spec.normalise {
                    match reference {
                        Some(r) if r.abs() > 0.0 => value / r,
                        _ => {
                            return Err(format!(
                                "{}: policy `{policy}` has no reference to normalise by (its \
                                 scenario has no oracle or hindsight optimum)",
                                run.dir.display()
                            ));
                        }
                    }
                } else {
                    value
                };
                scores.insert(seed, value);
            }
            match labelled.iter_mut().find(|(l, _)| *l == label) {
                Some((_, per_task)) => {
                    if !per_task[t].is_empty() {
                        return Err(format!(
                            "policy `{label}` appears twice for scenario `{}`",
                            run.scenario
                        ));
                    }
                    per_task[t] = scores;
                }
                None => {
                    let mut per_task = vec![BTreeMap::new(); tasks.len()];
                    per_task[t] = scores;
                    labelled.push((label, per_task));
                }
            }
        }
    }
    if !spec.policies.is_empty() {
        let mut kept = Vec::new();
        for wanted in &spec.policies {
            let found = labelled
                .iter()
                .find(|(l, _)| l == wanted || l.split('@').next() == Some(wanted.as_str()))
                .ok_or_else(|| {
                    format!(
                        "no policy `{wanted}` in the runs (they have: {})",
                        labelled
                            .iter()
                            .map(|(l, _)| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            kept.push(found.clone());
        }
        labelled = kept;
    }
    // Each label's matrix over the seeds all its tasks share.
    let mut matrices: Vec<(String, Scores, Vec<u64>)> = Vec::new();
    for (label, per_task) in &labelled {
        if let Some(t) = per_task.iter().position(BTreeMap::is_empty) {
            return Err(format!(
                "policy `{label}` has no runs in scenario `{}`: a normalised comparison needs \
                 every policy in every scenario",
                tasks[t]
            ));
        }
        let shared: Vec<u64> = per_task[0]
            .keys()
            .copied()
            .filter(|s| per_task.iter().all(|m| m.contains_key(s)))
            .collect();
        if shared.is_empty() {
            return Err(format!("policy `{label}`: its scenarios share no seed"));
        }
        let rows: Vec<Vec<f64>> = shared
            .iter()
            .map(|s| per_task.iter().map(|m| m[s]).collect())
            .collect();
        let scores = Scores::new(&rows).map_err(|e| format!("policy `{label}`: {e}"))?;
        matrices.push((label.clone(), scores, shared));
    }
    let seed_for =
        |label: &str, what: &str| derive_seed(spec.seed, &format!("compare/{label}/{what}"), 0);
    let mut rows = Vec::new();
    let metrics: Vec<Aggregate> = if spec.normalise {
        Aggregate::ALL.to_vec()
    } else {
        vec![Aggregate::Mean, Aggregate::Median, Aggregate::Iqm]
    };
    for (label, scores, _) in &matrices {
        for &metric in &metrics {
            let (low, high) = stratified_interval(
                scores,
                |m| metric.of(m),
                spec.reps,
                spec.confidence,
                seed_for(label, metric.name()),
            );
            rows.push(CompareRow {
                policy: label.clone(),
                runs: scores.runs(),
                tasks: scores.tasks(),
                metric: metric.name(),
                estimate: metric.of(scores),
                ci_low: low,
                ci_high: high,
            });
        }
    }
    if let Some((first, first_scores, first_seeds)) = matrices.first() {
        for (label, scores, seeds) in &matrices[1..] {
            let p = crate::rliable::probability_of_improvement(scores, first_scores);
            let (low, high) = improvement_interval(
                scores,
                first_scores,
                spec.reps,
                spec.confidence,
                seed_for(label, "improvement"),
            );
            rows.push(CompareRow {
                policy: format!("{label} vs {first}"),
                runs: scores.runs(),
                tasks: scores.tasks(),
                metric: "probability_of_improvement",
                estimate: p,
                ci_low: low,
                ci_high: high,
            });
            // Paired differences over the seeds both have.
            let common: Vec<usize> = seeds
                .iter()
                .enumerate()
                .filter(|(_, s)| first_seeds.contains(s))
                .map(|(i, _)| i)
                .collect();
            if common.len() >= 2 {
                let diffs: Vec<Vec<f64>> = common
                    .iter()
                    .map(|&i| {
                        let j = first_seeds
                            .iter()
                            .position(|s| *s == seeds[i])
                            .expect("common");
                        (0..scores.tasks())
                            .map(|t| scores.column(t)[i] - first_scores.column(t)[j])
                            .collect()
                    })
                    .collect();
                let d = Scores::new(&diffs).map_err(|e| e.to_string())?;
                let (low, high) = stratified_interval(
                    &d,
                    |m| Aggregate::Mean.of(m),
                    spec.reps,
                    spec.confidence,
                    seed_for(label, "paired"),
                );
                rows.push(CompareRow {
                    policy: format!("{label} − {first}"),
                    runs: d.runs(),
                    tasks: d.tasks(),
                    metric: "paired_difference",
                    estimate: Aggregate::Mean.of(&d),
                    ci_low: low,
                    ci_high: high,
                });
            }
        }
    }
    let (lo, hi) = matrices
        .iter()
        .flat_map(|(_, s, _)| (0..s.tasks()).flat_map(move |t| s.column(t)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    let taus: Vec<f64> = (0..=50)
        .map(|i| lo + (hi - lo) * f64::from(i) / 50.0)
        .collect();
    let profile = matrices
        .iter()
        .map(|(label, s, _)| {
            let points = performance_profile(s, &taus)
                .into_iter()
                .zip(&taus)
                .enumerate()
                .map(|(i, (fraction, &tau))| {
                    let (low, high) = stratified_interval(
                        s,
                        |m| performance_profile(m, &[tau])[0],
                        spec.reps.min(1000),
                        spec.confidence,
                        derive_seed(spec.seed, &format!("compare/{label}/profile"), i as u64),
                    );
                    (fraction, low, high)
                })
                .collect();
            (label.clone(), points)
        })
        .collect();
    Ok(Comparison {
        normalised: spec.normalise,
        tasks,
        rows,
        profile: (taus, profile),
    })
}
