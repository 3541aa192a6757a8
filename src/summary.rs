//! What `shoplab run` prints when the runs are done: the summary of every
//! policy (final performance, gap closed, greedy evaluation with paired
//! scores) and the files written.

use shoplab_harness::{
    Finished,
    report::{Report, sweep::SweepReport},
    stats::Estimate,
};

/// The run's summary table and its greedy evaluation, as the terminal shows them.
pub(crate) fn print_summary(report: &Report) {
    let level = format!("{:.0}% CI", report.confidence * 100.0);
    println!(
        "final performance: {} over the last episodes of each run, mean over seeds",
        report.return_label
    );
    if let Some(v) = report.optimal_value {
        println!("oracle expected return per episode V* = {v:.4}");
    }
    if let Some(b) = &report.baseline {
        let share = report
            .optimal_value
            .map(|v| format!(", {:.1}% of V*", 100.0 * b.value / v))
            .unwrap_or_default();
        let gaps = report
            .summaries
            .iter()
            .any(|s| s.gap_closed.is_some() || s.eval_gap_closed.is_some());
        let explained = if gaps {
            "; \"gap closed\" is the share of the gap from it to the oracle that a policy closes"
        } else {
            ""
        };
        println!(
            "baseline: {}, {:.4} per episode ({}{share}){explained}",
            b.name, b.value, b.basis
        );
    }
    let gaps = report.summaries.iter().any(|s| s.gap_closed.is_some());
    let width = report
        .summaries
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut header = format!(
        "{:<width$} {:>6} {:>11} {:>23} {:>11}",
        "policy", "seeds", "mean", level, "% of oracle"
    );
    if gaps {
        header.push_str(&format!(" {:>22}", "gap closed"));
    }
    for name in &report.ratio_names {
        header.push_str(&format!(" {name:>21}"));
    }
    println!("{header}");
    for s in &report.summaries {
        let (mean, ci) = match s.final_return {
            Some(e) => (
                format!("{:.4}", e.mean),
                format!("[{:.4}, {:.4}]", e.low, e.high),
            ),
            None => ("—".into(), "—".into()),
        };
        let pct = s
            .pct_of_oracle
            .map(|e| format!("{:.1}%", e.mean))
            .unwrap_or_else(|| "—".into());
        let seeds = if s.seeds_failed > 0 {
            format!("{}/{}", s.seeds_ok, s.seeds_ok + s.seeds_failed)
        } else {
            s.seeds_ok.to_string()
        };
        let mut line = format!(
            "{:<width$} {:>6} {:>11} {:>23} {:>11}",
            s.name, seeds, mean, ci, pct
        );
        if gaps {
            let gap = s
                .gap_closed
                .map(|g| format!("{:.1}% [{:.1}, {:.1}]", g.mean, g.low, g.high))
                .unwrap_or_else(|| "—".into());
            line.push_str(&format!(" {gap:>22}"));
        }
        for r in &s.final_ratios {
            // 0/0 (no steps, no sessions ended) is no number to print.
            let cell = if r.is_finite() {
                format!("{r:.4}")
            } else {
                "—".into()
            };
            line.push_str(&format!(" {cell:>21}"));
        }
        println!("{line}");
    }
    if report.summaries.iter().any(|s| s.eval_return.is_some()) {
        println!("greedy evaluation after training (no exploration), mean over seeds:");
        let paired = report.summaries.iter().any(|s| s.eval_paired_pct.is_some());
        if paired {
            println!(
                "  (\"paired\": against the oracle played on the same episodes; \"vs oracle\": \
                 the mean paired difference per episode; \"exact\": the greedy policy's expected \
                 return by policy evaluation, where the family computes it)"
            );
        }
        let interval = |e: Estimate, digits: usize, unit: &str| {
            format!(
                "{:.digits$}{unit} [{:.digits$}, {:.digits$}]",
                e.mean, e.low, e.high
            )
        };
        for s in &report.summaries {
            if let Some(e) = s.eval_return {
                let mut line = format!("{:<width$} {}", s.name, interval(e, 4, ""));
                match (s.eval_paired_pct, s.eval_pct_of_oracle) {
                    (Some(p), _) => line.push_str(&format!("  paired {}", interval(p, 1, "%"))),
                    (None, Some(p)) => {
                        line.push_str(&format!("  {} of oracle", interval(p, 1, "%")))
                    }
                    (None, None) => {}
                }
                if let Some(d) = s.eval_paired_diff {
                    line.push_str(&format!("  vs oracle {}", interval(d, 3, "")));
                }
                if let Some(g) = s.eval_gap_closed {
                    line.push_str(&format!("  gap closed {}", interval(g, 1, "%")));
                }
                if let (Some(x), Some(p)) = (s.eval_exact_return, s.eval_pct_of_oracle) {
                    line.push_str(&format!(
                        "  exact {} = {} of V*",
                        interval(x, 4, ""),
                        interval(p, 2, "%")
                    ));
                }
                println!("{line}");
            }
        }
    }
    if let Some(offline) = &report.offline {
        print_offline(offline);
    }
    for (policy, seed, reason) in &report.failures {
        println!("FAILED {policy} seed {seed}: {reason}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
}

/// The offline data, and each learner's estimates from it next to its
/// online value.
fn print_offline(offline: &shoplab_harness::offline::report::OfflineSection) {
    println!(
        "offline data: {}, {} rows in {} sessions, played by {}; mean session return {:.4} ± {:.4} (s.e.)",
        offline.source,
        offline.rows,
        offline.sessions,
        offline.behaviour,
        offline.value.0,
        offline.value.1
    );
    let steps: Vec<String> = offline
        .steps
        .iter()
        .map(|(p, s)| format!("{p} {s}"))
        .collect();
    println!("gradient steps per run: {}", steps.join(", "));
    if !offline.summaries.is_empty() {
        println!(
            "off-policy estimates of each trained policy from the log vs its online value, mean over seeds:"
        );
        for s in &offline.summaries {
            println!(
                "  {:<24} {:<6} {:>10.4} [{:.4}, {:.4}]  online {:>10.4}  RMSE {:.4}",
                s.policy,
                s.estimator,
                s.estimate.mean,
                s.estimate.low,
                s.estimate.high,
                s.truth.mean,
                s.rmse
            );
        }
    }
    for note in &offline.notes {
        println!("  note: {note}");
    }
}

/// A sweep's final score per configuration and policy.
pub(crate) fn print_sweep(sweep: &SweepReport) {
    println!(
        "sweep: {} configurations; score: {}, mean over seeds [{:.0}% CI]",
        sweep.configurations.len(),
        sweep.score_label,
        100.0 * sweep.confidence
    );
    let width = sweep
        .policies
        .iter()
        .map(|p| p.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    for (c, conf) in sweep.configurations.iter().enumerate() {
        println!("{}  {}", conf.id, conf.describe());
        for (p, name) in sweep.policies.iter().enumerate() {
            let cell = match &sweep.scores[c][p] {
                Some(e) => format!("{:>11.4} [{:.4}, {:.4}]", e.mean, e.low, e.high),
                None => "every run failed".into(),
            };
            println!("    {name:<width$} {cell}");
        }
    }
}

/// How long the runs took and what was written where.
pub(crate) fn print_footer(finished: &Finished) {
    println!("runs took {:.1} s", finished.run_seconds);
    println!("wrote {}/", finished.dir.display());
    let checkpoint = |f: &&String| f.starts_with(shoplab_harness::CHECKPOINT_DIR);
    let config = |f: &&String| f.starts_with("configs/");
    let mut files: Vec<String> = finished
        .files
        .iter()
        .filter(|f| !checkpoint(f) && !config(f))
        .cloned()
        .collect();
    if let Some(sweep) = &finished.sweep {
        files.push(format!(
            "configs/ ({} configurations, {} files)",
            sweep.configurations.len(),
            finished.files.iter().filter(config).count()
        ));
    }
    let checkpoints = finished.files.iter().filter(checkpoint).count();
    if checkpoints > 0 {
        files.push(format!(
            "{}/ ({checkpoints} safetensors files)",
            shoplab_harness::CHECKPOINT_DIR
        ));
    }
    println!("  {}", files.join(" "));
}
