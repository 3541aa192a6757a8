//! The greedy evaluations of a report: the evaluation curve, and the last
//! evaluation against the references played on the same episodes.

use super::{Curve, CurvePoint, Evaluated, Summariser, gap_share, mean};
use crate::{runner::RunResult, stats::Estimate};

impl Summariser<'_> {
    /// The last evaluation against the references on the same episodes:
    /// against the oracle played on them (paired % and difference), and
    /// the share of the gap closed between the baseline played on them and
    /// the oracle (or, without an oracle rule, the episodes' own references,
    /// such as a day's hindsight optimum).
    pub(super) fn paired(&self, name: &str, ok: &[&RunResult], evaluated: &mut Evaluated) {
        let lasts: Vec<_> = ok.iter().filter_map(|r| r.evaluations.last()).collect();
        if lasts.is_empty() || lasts.len() != ok.len() {
            return;
        }
        let n = |e: &crate::runner::Evaluation| e.scores.len();
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let oracle = lasts
            .iter()
            .all(|e| e.oracle_scores.len() == n(e) && n(e) > 0);
        if oracle {
            let pairs: Vec<(f64, f64)> = lasts
                .iter()
                .map(|e| (sum(&e.scores), sum(&e.oracle_scores)))
                .collect();
            if pairs.iter().all(|&(_, o)| o != 0.0) {
                let pcts: Vec<f64> = pairs.iter().map(|&(r, o)| 100.0 * r / o).collect();
                evaluated.paired_pct = Some(self.est(&pcts, name, "paired-pct", 0));
            }
            let diffs: Vec<f64> = lasts
                .iter()
                .zip(&pairs)
                .map(|(e, &(r, o))| (r - o) / n(e) as f64)
                .collect();
            evaluated.paired_diff = Some(self.est(&diffs, name, "paired-diff", 0));
        }
        // The upper reference of each run's evaluation episodes, summed.
        let uppers: Option<Vec<f64>> = lasts
            .iter()
            .map(|e| {
                if oracle {
                    Some(sum(&e.oracle_scores))
                } else {
                    e.references.iter().copied().sum::<Option<f64>>()
                }
            })
            .collect();
        let baselines = lasts
            .iter()
            .all(|e| e.baseline_scores.len() == n(e) && n(e) > 0);
        if let Some(uppers) = uppers.filter(|_| baselines) {
            let shares: Option<Vec<f64>> = lasts
                .iter()
                .zip(&uppers)
                .map(|(e, &upper)| gap_share(sum(&e.scores), sum(&e.baseline_scores), upper))
                .collect();
            evaluated.gap_closed = shares.map(|s| self.est(&s, name, "paired-gap", 0));
        }
    }

    /// The greedy-evaluation curve (empty without evaluations, or when runs
    /// evaluated at different points) and the last evaluation's share of its
    /// references.
    pub(super) fn eval_curve(&self, name: &str, ok: &[&RunResult]) -> (Curve, Option<Estimate>) {
        let eval_points = ok.first().map_or(0, |r| r.evaluations.len());
        let eval_ok = eval_points > 0 && ok.iter().all(|r| r.evaluations.len() == eval_points);
        let eval_known = eval_ok
            && ok.iter().all(|r| {
                r.evaluations
                    .iter()
                    .all(|e| e.references.iter().all(|v| v.is_some_and(|v| v != 0.0)))
            });
        let mut points = Vec::new();
        let mut eval_pcts = Vec::new();
        for i in (0..eval_points).filter(|_| eval_ok) {
            let values: Vec<f64> = ok.iter().map(|r| mean(&r.evaluations[i].returns)).collect();
            let scores: Vec<f64> = ok.iter().map(|r| mean(&r.evaluations[i].scores)).collect();
            let refs: Vec<f64> = ok
                .iter()
                .map(|r| {
                    let refs: Vec<f64> = r.evaluations[i]
                        .references
                        .iter()
                        .map(|v| v.unwrap_or(f64::NAN))
                        .collect();
                    mean(&refs)
                })
                .collect();
            let regret = eval_known.then(|| {
                let gaps: Vec<f64> = refs.iter().zip(&scores).map(|(v, r)| v - r).collect();
                self.est(&gaps, name, "eval-regret", i)
            });
            if eval_known && i + 1 == eval_points {
                eval_pcts = scores
                    .iter()
                    .zip(&refs)
                    .map(|(r, v)| 100.0 * r / v)
                    .collect();
            }
            let after = ok[0].evaluations[i].after_episodes as u32;
            points.push(CurvePoint {
                episode_start: after,
                episode_end: after,
                ret: self.est(&values, name, "eval", i),
                regret,
                per_seed: values.clone(),
            });
        }
        let pct = (!eval_pcts.is_empty()).then(|| self.est(&eval_pcts, name, "eval-pct", 0));
        (
            Curve {
                name: name.to_string(),
                points,
            },
            pct,
        )
    }

    /// The trained greedy policies' exact expected returns, where the
    /// family evaluates policies exactly; with V*, their share of it
    /// replaces the share sampled over the evaluation episodes (exact, so
    /// never above 100%: no policy's expected return exceeds V*).
    pub(super) fn exact(
        &self,
        name: &str,
        ok: &[&RunResult],
        optimal: Option<f64>,
        evaluated: &mut Evaluated,
    ) {
        let values: Option<Vec<f64>> = ok.iter().map(|r| r.exact_value).collect();
        let Some(values) = values.filter(|v| !v.is_empty()) else {
            return;
        };
        evaluated.exact = Some(self.est(&values, name, "exact", 0));
        if let Some(v) = optimal.filter(|&v| v != 0.0) {
            let pcts: Vec<f64> = values.iter().map(|x| 100.0 * x / v).collect();
            evaluated.pct = Some(self.est(&pcts, name, "exact-pct", 0));
        }
    }
}
