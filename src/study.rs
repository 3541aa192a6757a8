//! `shoplab ope-study`: the off-policy estimators judged against the
//! simulator's truth over many independent logs.

use crate::{
    Loader,
    ope::{MAX_DECISIONS, input, json_number, target_of},
    ope_args::EstimatorArgs,
};
use anyhow::{Context, Result, bail};
use serde_json::{Map, json};
use shoplab_harness::ope_study::{StudySpec, run_study};
use std::{path::PathBuf, time::Instant};

/// What `shoplab ope-study` runs.
#[derive(clap::Args)]
pub(crate) struct StudyArgs {
    /// The scenario whose simulator makes the logs and the truth.
    pub scenario: PathBuf,
    /// The behaviour policy (logged as `shoplab log` does).
    #[arg(long)]
    pub behaviour: String,
    /// The target policy (frozen).
    #[arg(long)]
    pub target: String,
    /// A checkpoint of the target: the trained policy, greedy.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Log sizes, in episodes of the scenario, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub sizes: Vec<u32>,
    /// Independent logs of each size.
    #[arg(long, default_value_t = 200)]
    pub logs: usize,
    /// Episodes of the target's on-policy truth.
    #[arg(long, default_value_t = 2000)]
    pub truth_episodes: u32,
    /// Bootstrap resamples of each interval (percentile intervals from
    /// fewer than about 1,000 resamples come out narrow).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub estimators: EstimatorArgs,
    /// Where the run folder goes: `RESULTS/ope-study/<scenario>/<run id>/`.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// `shoplab ope-study SCENARIO --behaviour B --target T`.
pub(crate) fn ope_study(args: &StudyArgs, loader: &Loader<'_>) -> Result<()> {
    let settings = args.estimators.parse()?;
    if settings.fqe || settings.dr_mdp {
        bail!(
            "--estimators: fqe and dr-mdp are not in studies yet (each log would need its own \
             FQE fit and bootstrap refits); run them on a log with shoplab ope"
        );
    }
    if !(1..=10_000).contains(&args.bootstrap) {
        bail!(
            "--bootstrap must be between 1 and 10000 (found {})",
            args.bootstrap
        );
    }
    if !(2..=100_000).contains(&args.logs) {
        bail!("--logs must be between 2 and 100000 (found {})", args.logs);
    }
    if args.sizes.is_empty() || args.sizes.contains(&0) || args.truth_episodes < 2 {
        bail!("--sizes must be episode counts ≥ 1 and --truth-episodes at least 2");
    }
    let prepared = loader.load(&args.scenario)?;
    let find = |name: &str| crate::logs::policy_index(&prepared, name, &args.scenario);
    let behaviour = find(&args.behaviour)?;
    let target = target_of(
        &prepared,
        &args.target,
        args.checkpoint.as_deref(),
        &args.scenario,
    )?;
    let per_episode = prepared.family().episode_cost().decisions;
    let decisions = per_episode
        * (args.sizes.iter().map(|&s| f64::from(s)).sum::<f64>() * args.logs as f64
            + f64::from(args.truth_episodes));
    if decisions > MAX_DECISIONS {
        bail!(
            "the study would simulate about {decisions:.1e} decisions, more than {MAX_DECISIONS:.0e} (fewer --logs or smaller --sizes)"
        );
    }
    let parent = args.results.join("ope-study").join(&prepared.scenario.name);
    shoplab_harness::check_writable(&parent)?;
    let spec = StudySpec {
        behaviour,
        target,
        sizes: args.sizes.clone(),
        logs: args.logs,
        truth_episodes: args.truth_episodes,
        seed: args.estimators.seed,
        bootstrap: args.bootstrap,
        estimators: settings.bandit,
        sequential: settings.sequential,
        gamma: args.estimators.gamma,
        model: settings.model,
    };
    let start = Instant::now();
    let (truth, outcomes, rows) = run_study(&prepared, &spec)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}: behaviour {}, target {}; {} logs of each size; truth by {} on-policy episodes: \
         {:.6} ± {:.6} per decision, {:.6} ± {:.6} per session (±1.96 s.e.)",
        prepared.scenario.name,
        args.behaviour,
        spec.target.name(&prepared),
        args.logs,
        truth.episodes,
        truth.per_decision.mean,
        1.96 * truth.per_decision.se,
        truth.per_session.mean,
        1.96 * truth.per_session.se
    );
    println!(
        "{:>10} {:<10} {:>12} {:>12} {:>12} {:>12} {:>22} {:>12}",
        "decisions",
        "estimator",
        "bias",
        "± 2 s.e.",
        "RMSE",
        "s.d.",
        "coverage (Wilson 95%)",
        "width"
    );
    for r in &rows {
        println!(
            "{:>10.0} {:<10} {:>+12.6} {:>12.6} {:>12.6} {:>12.6} {:>22} {:>12.6}",
            r.decisions,
            r.estimator,
            r.bias,
            2.0 * r.bias_se,
            r.rmse,
            r.sd,
            format!(
                "{:.3} [{:.3}, {:.3}]",
                r.coverage, r.coverage_low, r.coverage_high
            ),
            r.width
        );
    }
    let to_csv = |write: &dyn Fn(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>| -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        write(&mut w)?;
        w.into_inner().context("the CSV table")
    };
    let outcomes_csv = to_csv(&|w| outcomes.iter().try_for_each(|o| w.serialize(o)))?;
    let summary_csv = to_csv(&|w| rows.iter().try_for_each(|r| w.serialize(r)))?;
    let mut fields = Map::new();
    fields.insert("command".into(), "ope-study".into());
    fields.insert("scenario".into(), input(&args.scenario)?);
    fields.insert("behaviour".into(), args.behaviour.clone().into());
    fields.insert("target".into(), spec.target.name(&prepared).into());
    fields.insert(
        "checkpoint".into(),
        args.checkpoint.as_deref().map(input).transpose()?.into(),
    );
    fields.insert(
        "settings".into(),
        json!({
            "sizes_episodes": args.sizes,
            "logs": args.logs,
            "truth_episodes": args.truth_episodes,
            "bootstrap": args.bootstrap,
            "seed": args.estimators.seed,
            "gamma": args.estimators.gamma,
            "clip": json_number(args.estimators.clip),
            "tau": json_number(args.estimators.tau),
            "shrinkage": json_number(args.estimators.shrinkage),
            "reward_model": args.estimators.reward_model,
            "l2": args.estimators.l2,
            "folds": args.estimators.folds,
        }),
    );
    fields.insert(
        "truth".into(),
        serde_json::to_value(truth).expect("the truth serialises"),
    );
    fields.insert("threads".into(), rayon::current_num_threads().into());
    fields.insert("run_seconds".into(), seconds.into());
    let chart = shoplab_harness::charts::StudyChart {
        title: format!(
            "{}: OPE of {} from logs of {} ({} logs a size)",
            prepared.scenario.name,
            spec.target.name(&prepared),
            args.behaviour,
            args.logs
        ),
        rows: &rows,
    };
    let dir = shoplab_harness::publish_folder(
        &parent,
        &[
            ("outcomes.csv".to_string(), outcomes_csv),
            ("summary.csv".to_string(), summary_csv),
        ],
        &|dir| chart.save(dir),
        fields,
    )?;
    println!("wrote {} in {seconds:.1} s", dir.display());
    Ok(())
}
