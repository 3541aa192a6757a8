//! `shoplab dataset build`: the offline dataset suite of a scenario.

use crate::Loader;
use anyhow::{Context, Result, bail};
use serde_json::{Map, json};
use shoplab_harness::datasets::{SuiteSpec, build};
use std::path::PathBuf;

/// What `shoplab dataset build` builds.
#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// The scenario whose env plays the datasets.
    pub scenario: PathBuf,
    /// The learning policy of the scenario behind `medium` and
    /// `medium-replay` (such as `q_learning` or `dqn`).
    #[arg(long)]
    pub medium: String,
    /// Its training episodes (`medium-replay` is that run's log).
    #[arg(long)]
    pub medium_episodes: u32,
    /// The strong policy of the scenario behind `expert` (such as `oracle`).
    #[arg(long)]
    pub expert: String,
    /// Its training episodes before it is frozen (0: as built, for oracles
    /// and rules; a learner is trained first).
    #[arg(long, default_value_t = 0)]
    pub expert_episodes: u32,
    /// The ε-uniform noise of `medium` and `expert`, in [0, 1].
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
    /// Episodes of `random`, `medium` and `expert`.
    #[arg(long, default_value_t = 1000)]
    pub episodes: u32,
    /// The suite's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `parquet` or `csv`.
    #[arg(long, default_value = "parquet")]
    pub format: String,
    /// Where the suite goes: `OUT/<scenario>/<run id>/`.
    #[arg(long, default_value = "datasets")]
    pub out: PathBuf,
}

/// Most rows a suite may hold.
const MAX_ROWS: f64 = 5e7;

/// `shoplab dataset build SCENARIO --medium M --medium-episodes N --expert E`.
pub(crate) fn dataset_build(args: &BuildArgs, loader: &Loader<'_>) -> Result<()> {
    if !(0.0..=1.0).contains(&args.epsilon) {
        bail!("--epsilon must be in [0, 1] (found {})", args.epsilon);
    }
    let parquet = match args.format.as_str() {
        "parquet" => true,
        "csv" => false,
        other => bail!("--format: `{other}` is not parquet or csv"),
    };
    if args.episodes == 0 || args.medium_episodes == 0 {
        bail!("--episodes and --medium-episodes must be at least 1");
    }
    let prepared = loader.load(&args.scenario)?;
    let find = |name: &str| crate::logs::policy_index(&prepared, name, &args.scenario);
    let (medium, expert) = (find(&args.medium)?, find(&args.expert)?);
    let per_episode = prepared.family().episode_cost().decisions;
    let rows =
        per_episode * (4.0 * f64::from(args.episodes) + 2.0 * f64::from(args.medium_episodes));
    let training = per_episode * f64::from(args.expert_episodes);
    if rows > MAX_ROWS || training > MAX_ROWS {
        bail!(
            "the suite would hold about {rows:.1e} rows (and train its expert for {training:.1e} decisions), more than {MAX_ROWS:.0e} (fewer episodes)"
        );
    }
    let parent = args.out.join(&prepared.scenario.name);
    shoplab_harness::check_writable(&parent)?;
    let spec = SuiteSpec {
        medium,
        medium_episodes: args.medium_episodes,
        expert,
        expert_episodes: args.expert_episodes,
        epsilon: args.epsilon,
        episodes: args.episodes,
        seed: args.seed,
    };
    let start = std::time::Instant::now();
    let datasets = build(&prepared, &spec)?;
    // Each log's bytes, written aside and read back, then published whole.
    let scratch = Scratch(tempfile_dir(&parent)?);
    let scratch = &scratch.0;
    let mut tables = Vec::new();
    let mut listed = Vec::new();
    let extension = if parquet { "parquet" } else { "csv" };
    for d in &datasets {
        let name = format!("{}.{extension}", d.name);
        let path = scratch.join(&name);
        if parquet {
            d.log.write_parquet(&path)?;
        } else {
            d.log.write_csv(&path)?;
        }
        tables.push((name.clone(), std::fs::read(&path)?));
        println!(
            "{:<14} {:>9} rows, {:>6} sessions; behaviour: {}; value per session {:.4} ± {:.4} (±1.96 s.e.)",
            d.name,
            d.log.len(),
            d.log.sessions().len(),
            d.behaviour,
            d.value.0,
            1.96 * d.value.1
        );
        listed.push(json!({
            "file": name,
            "rows": d.log.len(),
            "sessions": d.log.sessions().len(),
            "behaviour": d.behaviour,
            "value_per_session": d.value.0,
            "value_se": d.value.1,
        }));
    }
    let mut fields = Map::new();
    fields.insert("command".into(), "dataset build".into());
    fields.insert("scenario".into(), crate::ope::input(&args.scenario)?);
    fields.insert("datasets".into(), listed.into());
    fields.insert(
        "settings".into(),
        json!({
            "medium": args.medium,
            "medium_episodes": args.medium_episodes,
            "expert": args.expert,
            "epsilon": args.epsilon,
            "episodes": args.episodes,
            "seed": args.seed,
        }),
    );
    let dir = shoplab_harness::publish_folder(&parent, &tables, &|_| Ok(Vec::new()), fields)?;
    println!(
        "wrote {} in {:.1} s",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A scratch folder, removed when dropped (on success or failure).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh hidden folder under `parent` for files written before they are
/// published.
fn tempfile_dir(parent: &std::path::Path) -> Result<PathBuf> {
    let dir = parent.join(format!(".scratch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}
