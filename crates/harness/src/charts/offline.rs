//! Charts of offline learning: the learners' online value against their
//! gradient steps, and their off-policy estimates next to that value.

use super::*;
use crate::offline::report::OfflineSection;

/// The curves of the offline learners with gradient steps for episodes:
/// the evaluation curves where the run evaluates, else the training
/// curves (each training episode plays the greedy policy).
fn step_curves(report: &Report, section: &OfflineSection) -> Vec<Curve> {
    let episodes = u64::from(section.episodes.max(1));
    let steps_after = |total: u64, done: u32| (total * u64::from(done) / episodes) as u32;
    let evaluated = report.eval_curves.iter().any(|c| !c.points.is_empty());
    let source = if evaluated {
        &report.eval_curves
    } else {
        &report.curves
    };
    source
        .iter()
        .filter_map(|c| {
            let total = section.steps.iter().find(|(n, _)| n == &c.name)?.1;
            Some(Curve {
                name: c.name.clone(),
                points: c
                    .points
                    .iter()
                    .map(|p| {
                        // A training window's episodes follow ⌊G(e+1)/E⌋ steps.
                        let shift = u32::from(!evaluated);
                        CurvePoint {
                            episode_start: steps_after(total, p.episode_start + shift),
                            episode_end: steps_after(total, p.episode_end),
                            ..p.clone()
                        }
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Online value against gradient steps, with the oracle, the baseline and
/// the data's own value as levels.
pub(super) fn curve<DB: DrawingBackend>(report: &Report, area: DrawingArea<DB, Shift>) -> Drawn {
    let Some(section) = &report.offline else {
        return Ok(());
    };
    let level = format!("{:.0}%", report.confidence * 100.0);
    let evaluated = report.eval_curves.iter().any(|c| !c.points.is_empty());
    let what = if evaluated {
        "greedy evaluation"
    } else {
        "greedy play"
    };
    let lines = [(
        format!("data ({}), mean session return", section.source),
        section.value.0,
    )];
    curves(
        area,
        &step_curves(report, section),
        (
            &format!(
                "{}: offline learners' {what} (mean over seeds, {level} band)",
                report.scenario
            ),
            "gradient steps",
            report.return_label,
        ),
        References {
            lines: &lines,
            ..super::references(report)
        },
        CurveStyle::default(),
    )
}

/// Each learner's online value and its estimates from the log, with their
/// intervals over seeds.
pub(super) fn estimates(report: &Report, section: &OfflineSection) -> Option<OpeChart> {
    if section.summaries.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for (policy, _) in &section.steps {
        let mine: Vec<_> = section
            .summaries
            .iter()
            .filter(|s| &s.policy == policy)
            .collect();
        if let Some(first) = mine.first() {
            let t = first.truth;
            rows.push((format!("{policy}: online"), t.mean, t.low, t.high));
        }
        for s in mine {
            let e = s.estimate;
            rows.push((format!("{policy}: {}", s.estimator), e.mean, e.low, e.high));
        }
    }
    Some(OpeChart {
        title: format!(
            "{}: off-policy estimates from the log vs online value ({:.0}% intervals over seeds)",
            report.scenario,
            report.confidence * 100.0
        ),
        x_label: report.return_label.to_string(),
        estimates: rows,
        truth: None,
    })
}
