//! Aggregate statistics over runs and tasks, as rliable computes them
//! (Agarwal et al., "Deep Reinforcement Learning at the Edge of the
//! Statistical Precipice", 2021).
//!
//! A [`Scores`] matrix holds one normalised score per run (row) and task
//! (column) — a task being a scenario, its scores divided by its oracle's
//! or reference's, or one scenario's single column. The point estimates
//! follow rliable's definitions exactly:
//! - **mean**: the mean over tasks of each task's mean over runs;
//! - **median**: the median over tasks of each task's mean over runs;
//! - **IQM**: the interquartile mean of all scores pooled, `scipy`'s
//!   `trim_mean(…, 0.25)`: sorted, `⌊n/4⌋` cut from each end;
//! - **optimality gap**: `γ − mean(min(score, γ))` over all scores (γ = 1);
//! - **probability of improvement** `P(X > Y)`: for each task the
//!   Mann–Whitney statistic over all pairs of runs, `Σ [x > y] + ½ [x = y]`
//!   divided by the pairs (½ when the two columns are identical), averaged
//!   over tasks;
//! - **performance profile**: for each threshold τ, the fraction of runs
//!   scoring above τ, averaged over tasks.
//!
//! Intervals come from the **stratified bootstrap**: each replicate draws
//! the runs of every task anew, with replacement and independently across
//! tasks, from a generator seeded by the caller, and the interval is the
//! replicates' percentile interval. The estimates do not depend on thread
//! count: replicates are drawn in order from one seeded generator.

use rand::RngExt;
use shoplab_env::seed::{SimRng, rng_from_seed};

/// Scores of `runs` runs on `tasks` tasks, run by run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    runs: usize,
    tasks: usize,
    values: Vec<f64>,
}

/// Why a score matrix was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScoresError {
    /// No runs or no tasks.
    #[error("a score matrix needs at least one run and one task")]
    Empty,
    /// Rows of different lengths.
    #[error("run {run} has {found} scores, the first run {expected}")]
    Ragged {
        /// The run.
        run: usize,
        /// Its number of scores.
        found: usize,
        /// The first run's.
        expected: usize,
    },
    /// A score that is not a finite number.
    #[error("run {run}, task {task}: the score {value} is not finite")]
    NotFinite {
        /// The run.
        run: usize,
        /// The task.
        task: usize,
        /// The value.
        value: f64,
    },
}

impl Scores {
    /// The matrix of `rows`, one per run, each with one score per task.
    pub fn new(rows: &[Vec<f64>]) -> Result<Self, ScoresError> {
        let tasks = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || tasks == 0 {
            return Err(ScoresError::Empty);
        }
        let mut values = Vec::with_capacity(rows.len() * tasks);
        for (run, row) in rows.iter().enumerate() {
            if row.len() != tasks {
                return Err(ScoresError::Ragged {
                    run,
                    found: row.len(),
                    expected: tasks,
                });
            }
            if let Some((task, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ScoresError::NotFinite { run, task, value });
            }
            values.extend_from_slice(row);
        }
        Ok(Self {
            runs: rows.len(),
            tasks,
            values,
        })
    }

    /// Number of runs.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Number of tasks.
    pub fn tasks(&self) -> usize {
        self.tasks
    }

    /// Task `t`'s scores, run by run.
    pub fn column(&self, t: usize) -> Vec<f64> {
        (0..self.runs)
            .map(|r| self.values[r * self.tasks + t])
            .collect()
    }

    /// Each task's mean over runs.
    fn task_means(&self) -> Vec<f64> {
        (0..self.tasks)
            .map(|t| self.column(t).iter().sum::<f64>() / self.runs as f64)
            .collect()
    }

    /// A stratified bootstrap replicate: each task's runs redrawn.
    fn resample(&self, rng: &mut SimRng) -> Self {
        let mut values = vec![0.0; self.values.len()];
        for t in 0..self.tasks {
            for r in 0..self.runs {
                let from = rng.random_range(0..self.runs);
                values[r * self.tasks + t] = self.values[from * self.tasks + t];
            }
        }
        Self {
            values,
            ..self.clone()
        }
    }
}

/// An aggregate metric over a score matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Mean over tasks of the task means.
    Mean,
    /// Median over tasks of the task means.
    Median,
    /// Interquartile mean of all scores.
    Iqm,
    /// `1 − mean(min(score, 1))`.
    OptimalityGap,
}

impl Aggregate {
    /// Every metric, in rliable's order.
    pub const ALL: [Aggregate; 4] = [Self::Median, Self::Iqm, Self::Mean, Self::OptimalityGap];

    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Median => "median",
            Self::Iqm => "iqm",
            Self::OptimalityGap => "optimality_gap",
        }
    }

    /// Its value on `scores`.
    pub fn of(self, scores: &Scores) -> f64 {
        match self {
            Self::Mean => mean(&scores.task_means()),
            Self::Median => median(scores.task_means()),
            Self::Iqm => trim_mean(scores.values.clone(), 0.25),
            Self::OptimalityGap => {
                1.0 - mean(
                    &scores
                        .values
                        .iter()
                        .map(|&v| v.min(1.0))
                        .collect::<Vec<_>>(),
                )
            }
        }
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The median, NumPy's way (the mean of the middle two for an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// SciPy's `trim_mean`: sorted, `⌊cut · n⌋` values dropped from each end.
fn trim_mean(mut xs: Vec<f64>, cut: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let low = (cut * n as f64) as usize;
    mean(&xs[low..n - low])
}

/// `P(X > Y)` of runs of `x` over runs of `y`, task by task, averaged.
/// The two matrices have the same tasks (their runs may differ in number).
pub fn probability_of_improvement(x: &Scores, y: &Scores) -> f64 {
    assert_eq!(x.tasks, y.tasks, "the same tasks");
    let per_task: Vec<f64> = (0..x.tasks)
        .map(|t| {
            let (a, b) = (x.column(t), y.column(t));
            if a == b {
                return 0.5;
            }
            let wins: f64 = a
                .iter()
                .map(|&u| {
                    b.iter()
                        .map(|&v| {
                            if u > v {
                                1.0
                            } else if u == v {
                                0.5
                            } else {
                                0.0
                            }
                        })
                        .sum::<f64>()
                })
                .sum();
            wins / (a.len() * b.len()) as f64
        })
        .collect();
    mean(&per_task)
}

/// The fraction of runs scoring above each of `taus`, averaged over tasks.
pub fn performance_profile(scores: &Scores, taus: &[f64]) -> Vec<f64> {
    taus.iter()
        .map(|&tau| {
            let per_task: Vec<f64> = (0..scores.tasks)
                .map(|t| {
                    let column = scores.column(t);
                    column.iter().filter(|&&v| v > tau).count() as f64 / column.len() as f64
                })
                .collect();
            mean(&per_task)
        })
        .collect()
}

/// The percentile interval at `confidence` of `statistic` over `reps`
/// stratified bootstrap replicates of `scores`, drawn from `seed`.
pub fn stratified_interval(
    scores: &Scores,
    statistic: impl Fn(&Scores) -> f64,
    reps: usize,
    confidence: f64,
    seed: u64,
) -> (f64, f64) {
    bootstrap_interval((reps, confidence, seed), |rng| {
        statistic(&scores.resample(rng))
    })
}

/// The percentile interval at `confidence` of `reps` bootstrap replicates
/// (at least one), each drawn by `replicate` from one generator seeded
/// with `seed`.
fn bootstrap_interval(
    (reps, confidence, seed): (usize, f64, u64),
    mut replicate: impl FnMut(&mut SimRng) -> f64,
) -> (f64, f64) {
    let mut rng = rng_from_seed(seed);
    let mut values: Vec<f64> = (0..reps.max(1)).map(|_| replicate(&mut rng)).collect();
    values.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (
        crate::stats::quantile(&values, alpha / 2.0),
        crate::stats::quantile(&values, 1.0 - alpha / 2.0),
    )
}

/// The interval of the probability of improvement of `x` over `y`, each
/// matrix's runs redrawn within each task.
pub fn improvement_interval(
    x: &Scores,
    y: &Scores,
    reps: usize,
    confidence: f64,
    seed: u64,
) -> (f64, f64) {
    bootstrap_interval((reps, confidence, seed), |rng| {
        let (a, b) = (x.resample(rng), y.resample(rng));
        probability_of_improvement(&a, &b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed cases: 2 runs × 2 tasks.
    #[test]
    fn small_matrices_by_hand() {
        let s = Scores::new(&[vec![0.0, 1.0], vec![0.5, 2.0]]).unwrap();
        assert_eq!(Aggregate::Mean.of(&s), (0.25 + 1.5) / 2.0);
        assert_eq!(Aggregate::Median.of(&s), (0.25 + 1.5) / 2.0);
        // Pooled sorted [0, 0.5, 1, 2]: ⌊4/4⌋ = 1 cut each end → mean(0.5, 1).
        assert_eq!(Aggregate::Iqm.of(&s), 0.75);
        // min(·, 1): [0, 1, 0.5, 1] → mean 0.625.
        assert_eq!(Aggregate::OptimalityGap.of(&s), 0.375);
        let better = Scores::new(&[vec![1.0, 1.0], vec![1.0, 3.0]]).unwrap();
        // Task 0: 1 > 0 and 1 > 0.5, twice: 4/4; task 1: 1 vs (1, 2) → 0.5 + 0,
        // 3 vs (1, 2) → 2: 2.5/4. Mean (1 + 0.625)/2.
        assert_eq!(probability_of_improvement(&better, &s), 0.8125);
        assert_eq!(probability_of_improvement(&s, &s), 0.5);
        assert_eq!(performance_profile(&s, &[0.25, 1.0]), vec![0.75, 0.25]);
        assert_eq!(
            Scores::new(&[vec![1.0], vec![]]),
            Err(ScoresError::Ragged {
                run: 1,
                found: 0,
                expected: 1
            })
        );
    }

    /// The bootstrap is a function of its seed, and its interval holds
    /// the point estimate for a well-spread matrix.
    #[test]
    fn intervals_are_seeded() {
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|r| vec![r as f64 / 10.0, (r * 7 % 10) as f64 / 5.0])
            .collect();
        let s = Scores::new(&rows).unwrap();
        let a = stratified_interval(&s, |m| Aggregate::Iqm.of(m), 2000, 0.95, 3);
        let b = stratified_interval(&s, |m| Aggregate::Iqm.of(m), 2000, 0.95, 3);
        assert_eq!(a, b);
        let point = Aggregate::Iqm.of(&s);
        assert!(a.0 <= point && point <= a.1, "{a:?} {point}");
    }

    /// The matrices of `benches/peers/rliable_check.py`, by name.
    fn matrix(name: char, runs: usize, tasks: usize) -> Scores {
        let f = |r: usize, t: usize| match name {
            'a' => ((r * 7 + t * 13) % 17) as f64 / 10.0 + t as f64 * 0.1,
            'b' => ((r * 5 + t * 11) % 19) as f64 / 12.0,
            _ => ((r + t) % 3) as f64 / 2.0,
        };
        let rows: Vec<Vec<f64>> = (0..runs)
            .map(|r| (0..tasks).map(|t| f(r, t)).collect())
            .collect();
        Scores::new(&rows).unwrap()
    }

    /// rliable 1.2.0's values on the same matrices (printed by
    /// `benches/peers/rliable_check.py` with numpy 2.4.6, scipy 1.17.1):
    /// every point estimate agrees to 1e-12, ties included (matrix `c`),
    /// pooled counts not divisible by 4 included (`b`: 21 scores, 5 cut
    /// from each end).
    #[test]
    fn point_estimates_equal_rliable_s() {
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 1e-12,
                "{what}: {got} vs rliable's {want}"
            );
        };
        let expected: [(char, usize, [f64; 4], [f64; 9]); 3] = [
            (
                'a',
                10,
                [
                    0.8666666666666667,
                    0.8100000000000002,
                    0.86875,
                    0.28666666666666674,
                ],
                [
                    0.9666666666666667,
                    0.8333333333333334,
                    0.6666666666666666,
                    0.6,
                    0.43333333333333335,
                    0.23333333333333334,
                    0.06666666666666667,
                    0.03333333333333333,
                    0.0,
                ],
            ),
            (
                'b',
                7,
                [
                    0.7341269841269842,
                    0.8095238095238095,
                    0.7272727272727273,
                    0.3492063492063492,
                ],
                [
                    0.9523809523809523,
                    0.7619047619047619,
                    0.6190476190476191,
                    0.47619047619047616,
                    0.2857142857142857,
                    0.14285714285714285,
                    0.0,
                    0.0,
                    0.0,
                ],
            ),
            (
                'c',
                9,
                [0.5, 0.5, 0.5, 0.5],
                [
                    0.6666666666666666,
                    0.6666666666666666,
                    0.3333333333333333,
                    0.3333333333333333,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
            ),
        ];
        let taus: Vec<f64> = (0..9).map(|i| 2.0 * i as f64 / 8.0).collect();
        for (name, runs, [mean, median, iqm, gap], profile) in expected {
            let m = matrix(name, runs, 3);
            close(Aggregate::Mean.of(&m), mean, &format!("{name} mean"));
            close(Aggregate::Median.of(&m), median, &format!("{name} median"));
            close(Aggregate::Iqm.of(&m), iqm, &format!("{name} iqm"));
            close(Aggregate::OptimalityGap.of(&m), gap, &format!("{name} gap"));
            for (got, want) in performance_profile(&m, &taus).into_iter().zip(profile) {
                close(got, want, &format!("{name} profile"));
            }
        }
        let (a, b, c) = (matrix('a', 10, 3), matrix('b', 7, 3), matrix('c', 9, 3));
        close(
            probability_of_improvement(&a, &b),
            0.569047619047619,
            "P(a > b)",
        );
        close(
            probability_of_improvement(&b, &a),
            0.4309523809523809,
            "P(b > a)",
        );
        close(
            probability_of_improvement(&c, &a),
            0.28888888888888886,
            "P(c > a)",
        );
    }
}
