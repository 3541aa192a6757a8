//! The tidy CSV files of a run folder.

use super::{Report, opt};
use crate::{prepared::Prepared, runner::RunResult};

/// Empties every cell of `row` that holds NaN or an infinity, so a summary
/// never reports one as a number; the reasons, by column (`why`), joined
/// for the row's `notes` cell.
fn finite_cells(header: &[&str], row: &mut [String], why: impl Fn(&str) -> String) -> String {
    let mut notes = Vec::new();
    for (cell, column) in row.iter_mut().zip(header) {
        if cell.parse::<f64>().is_ok_and(|v| !v.is_finite()) {
            notes.push(format!("{column} empty: {}", why(column)));
            cell.clear();
        }
    }
    notes.join("; ")
}

/// Renders the tidy CSV files of a run folder, as (file name, bytes), in a fixed order.
pub fn csv_files(
    prepared: &Prepared,
    results: &[RunResult],
    report: &Report,
) -> Result<Vec<(String, Vec<u8>)>, csv::Error> {
    let mut files = Vec::new();
    let scenario = &report.scenario;

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["scenario", "policy", "seed", "episode", "return", "regret"];
    header.extend(report.metric_names.iter().copied());
    w.write_record(&header)?;
    for r in results {
        let name = &prepared.names[r.policy];
        for (e, rec) in r.episodes.iter().enumerate() {
            let mut row = vec![
                scenario.clone(),
                name.clone(),
                r.seed.to_string(),
                e.to_string(),
                rec.ret.to_string(),
                opt(rec.reference.map(|v| v - rec.score)),
            ];
            row.extend(rec.metrics.iter().map(|m| m.to_string()));
            w.write_record(&row)?;
        }
    }
    files.push(("episodes.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "scenario",
        "policy",
        "seed",
        "status",
        "episodes_completed",
        "reason",
    ])?;
    for r in results {
        w.write_record([
            scenario.as_str(),
            &prepared.names[r.policy],
            &r.seed.to_string(),
            if r.failure.is_some() { "failed" } else { "ok" },
            &r.episodes.len().to_string(),
            r.failure.as_deref().unwrap_or(""),
        ])?;
    }
    files.push(("runs.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "scenario",
        "policy",
        "seeds_ok",
        "seeds_failed",
        "final_return_mean",
        "final_return_std",
        "final_return_ci_low",
        "final_return_ci_high",
        "reference_value",
        "pct_of_oracle",
        "pct_of_oracle_ci_low",
        "pct_of_oracle_ci_high",
        "final_regret_mean",
        "eval_return_mean",
        "eval_return_ci_low",
        "eval_return_ci_high",
        "eval_pct_of_oracle",
        "eval_pct_of_oracle_ci_low",
        "eval_pct_of_oracle_ci_high",
        "baseline",
        "baseline_value",
        "gap_closed_pct",
        "gap_closed_ci_low",
        "gap_closed_ci_high",
        "eval_paired_pct_of_oracle",
        "eval_paired_pct_ci_low",
        "eval_paired_pct_ci_high",
        "eval_paired_diff_mean",
        "eval_paired_diff_ci_low",
        "eval_paired_diff_ci_high",
        "eval_gap_closed_pct",
        "eval_gap_closed_ci_low",
        "eval_gap_closed_ci_high",
        "eval_exact_return_mean",
        "eval_exact_return_ci_low",
        "eval_exact_return_ci_high",
    ];
    let metric_columns: Vec<String> = report
        .metric_names
        .iter()
        .map(|m| format!("final_{m}_per_episode"))
        .collect();
    header.extend(metric_columns.iter().map(String::as_str));
    let ratio_columns: Vec<String> = report
        .ratio_names
        .iter()
        .map(|r| format!("final_{r}"))
        .collect();
    header.extend(ratio_columns.iter().map(String::as_str));
    header.push("notes");
    w.write_record(&header)?;
    let ratios = prepared.ratios();
    for s in &report.summaries {
        let f = s.final_return;
        let mut row = vec![
            scenario.clone(),
            s.name.clone(),
            s.seeds_ok.to_string(),
            s.seeds_failed.to_string(),
            opt(f.map(|e| e.mean)),
            opt(f.map(|e| e.std)),
            opt(f.map(|e| e.low)),
            opt(f.map(|e| e.high)),
            opt(s.final_reference),
            opt(s.pct_of_oracle.map(|e| e.mean)),
            opt(s.pct_of_oracle.map(|e| e.low)),
            opt(s.pct_of_oracle.map(|e| e.high)),
            opt(s.final_reference.zip(f).map(|(v, e)| v - e.mean)),
            opt(s.eval_return.map(|e| e.mean)),
            opt(s.eval_return.map(|e| e.low)),
            opt(s.eval_return.map(|e| e.high)),
            opt(s.eval_pct_of_oracle.map(|e| e.mean)),
            opt(s.eval_pct_of_oracle.map(|e| e.low)),
            opt(s.eval_pct_of_oracle.map(|e| e.high)),
            report
                .baseline
                .as_ref()
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            opt(report.baseline.as_ref().map(|b| b.value)),
        ];
        for e in [
            s.gap_closed,
            s.eval_paired_pct,
            s.eval_paired_diff,
            s.eval_gap_closed,
            s.eval_exact_return,
        ] {
            row.extend([
                opt(e.map(|e| e.mean)),
                opt(e.map(|e| e.low)),
                opt(e.map(|e| e.high)),
            ]);
        }
        row.extend(s.final_metrics.iter().map(|m| m.to_string()));
        row.extend(s.final_ratios.iter().map(|m| m.to_string()));
        let why = |column: &str| {
            let ratio = ratios
                .iter()
                .find(|r| format!("final_{}", r.name) == column);
            if let Some(r) = ratio {
                format!(
                    "no {} in the final episodes",
                    report.metric_names[r.denominator]
                )
            } else if s.seeds_ok < 2 && (column.ends_with("_std") || column.contains("_ci_")) {
                format!("{} seed(s) ran: no spread", s.seeds_ok)
            } else {
                "not a finite number (a reference or baseline of 0, or a failed run)".into()
            }
        };
        let notes = finite_cells(&header, &mut row, why);
        row.push(notes);
        w.write_record(&row)?;
    }
    files.push(("summary.csv".to_string(), finish(w)?));

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "scenario",
        "policy",
        "window",
        "episode_start",
        "episode_end",
        "seeds",
        "return_mean",
        "return_ci_low",
        "return_ci_high",
        "regret_mean",
        "regret_ci_low",
        "regret_ci_high",
    ])?;
    for c in &report.curves {
        for (i, p) in c.points.iter().enumerate() {
            w.write_record([
                scenario.clone(),
                c.name.clone(),
                i.to_string(),
                p.episode_start.to_string(),
                p.episode_end.to_string(),
                p.ret.n.to_string(),
                p.ret.mean.to_string(),
                p.ret.low.to_string(),
                p.ret.high.to_string(),
                opt(p.regret.map(|e| e.mean)),
                opt(p.regret.map(|e| e.low)),
                opt(p.regret.map(|e| e.high)),
            ])?;
        }
    }
    files.push(("curves.csv".to_string(), finish(w)?));

    if results.iter().any(|r| !r.evaluations.is_empty()) {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "scenario",
            "policy",
            "seed",
            "after_episodes",
            "eval_episode",
            "return",
            "score",
            "regret",
            "oracle_score",
            "baseline_score",
        ])?;
        for r in results {
            for e in &r.evaluations {
                for (k, (ret, reference)) in e.returns.iter().zip(&e.references).enumerate() {
                    let score = e.scores[k];
                    w.write_record([
                        scenario.clone(),
                        prepared.names[r.policy].clone(),
                        r.seed.to_string(),
                        e.after_episodes.to_string(),
                        k.to_string(),
                        ret.to_string(),
                        score.to_string(),
                        opt(reference.map(|v| v - score)),
                        opt(e.oracle_scores.get(k).copied()),
                        opt(e.baseline_scores.get(k).copied()),
                    ])?;
                }
            }
        }
        files.push(("evaluations.csv".to_string(), finish(w)?));
    }

    if results
        .iter()
        .any(|r| r.episodes.iter().any(|e| e.learning.is_some()))
    {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "scenario",
            "policy",
            "seed",
            "episode",
            "updates",
            "loss",
            "mean_q",
            "exploration",
        ])?;
        for r in results {
            for (e, rec) in r.episodes.iter().enumerate() {
                if let Some(l) = &rec.learning {
                    w.write_record([
                        scenario.clone(),
                        prepared.names[r.policy].clone(),
                        r.seed.to_string(),
                        e.to_string(),
                        l.updates.to_string(),
                        opt(l.loss),
                        opt(l.mean_q),
                        l.exploration.to_string(),
                    ])?;
                }
            }
        }
        files.push(("learning.csv".to_string(), finish(w)?));
    }

    if !report.tables.is_empty() {
        let mut w = csv::Writer::from_writer(Vec::new());
        let first = &report.tables[0].table;
        let value_column = format!("mean_greedy_{}", first.value_name);
        w.write_record([
            "scenario",
            "policy",
            "seeds",
            &first.row_name,
            &first.col_name,
            value_column.as_str(),
        ])?;
        for t in &report.tables {
            for (i, row) in t.table.values.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    w.write_record([
                        scenario.clone(),
                        t.name.clone(),
                        t.seeds.to_string(),
                        t.table.rows[i].to_string(),
                        t.table.cols[j].to_string(),
                        v.to_string(),
                    ])?;
                }
            }
        }
        files.push(("policy_tables.csv".to_string(), finish(w)?));
    }
    if let Some(section) = &report.offline {
        files.push((
            "offline_ope.csv".to_string(),
            crate::offline::report::csv(section)?,
        ));
    }
    Ok(files)
}

pub(super) fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    w.into_inner().map_err(|e| e.into_error().into())
}
