//! Greedy evaluation of a run folder's saved checkpoints, on episodes that
//! neither training nor the in-training evaluations used.

use crate::{CHECKPOINT_DIR, HarnessError, checkpoint_name, prepared::Prepared, runner, verify};
use std::path::{Path, PathBuf};

/// A trained policy's greedy performance, evaluated from its checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointEval {
    /// The policy's report name.
    pub policy: String,
    /// The training seed.
    pub seed: u64,
    /// The checkpoint file.
    pub file: PathBuf,
    /// The greedy episodes' returns, scores and references, with the
    /// family's oracle and baseline played on the same episodes.
    pub evaluation: runner::Evaluation,
}

/// What [`evaluate_checkpoints`] found: the evaluations, in policy then
/// seed order, and the checkpoints it skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointEvals {
    /// One per checkpoint evaluated.
    pub results: Vec<CheckpointEval>,
    /// Checkpoints the manifest lists that were missing or unreadable,
    /// with why (only with `skip_missing`; otherwise they are errors).
    pub skipped: Vec<(String, u64, String)>,
}

/// Loads the checkpoints of run folder `dir`, whose scenario is `prepared`
/// (see [`load_run`]) — those of `policy` only, if given — into freshly
/// built policies and plays `episodes` greedy episodes with each, on env
/// seeds `derive_seed(seed, "checkpoint-eval", k)`, which neither training
/// nor the in-training evaluations used. Runs in parallel; results come in
/// policy then seed order. Every checkpoint the manifest lists is expected:
/// one missing or unreadable is an error, unless `skip_missing`, when it is
/// reported in [`CheckpointEvals::skipped`]; one whose values are damaged
/// (a NaN weight, a negative count) is always an error.
pub fn evaluate_checkpoints(
    prepared: &Prepared,
    dir: &Path,
    policy: Option<&str>,
    episodes: u32,
    skip_missing: bool,
) -> Result<CheckpointEvals, HarnessError> {
    use rayon::prelude::*;
    if let Some(name) = policy
        && !prepared.names.iter().any(|n| n == name)
    {
        return Err(HarnessError::Checkpoint {
            path: dir.to_path_buf(),
            reason: format!(
                "no policy `{name}` in this run (policies: {})",
                prepared.names.join(", ")
            ),
        });
    }
    let listed = verify::listed_checkpoints(dir)?;
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for (index, name) in prepared.names.iter().enumerate() {
        if policy.is_some_and(|p| p != name) {
            continue;
        }
        for &seed in &prepared.scenario.run.seeds {
            let relative = checkpoint_name(name, seed);
            if !listed.contains(&relative) {
                continue;
            }
            let path = dir.join(&relative);
            let unreadable = match std::fs::metadata(&path) {
                Err(e) => Some(format!("missing ({e})")),
                Ok(m) if !m.is_file() => Some("not a regular file".to_string()),
                Ok(_) => None,
            };
            match unreadable {
                None => jobs.push((index, seed, path)),
                Some(why) if skip_missing => skipped.push((name.clone(), seed, why)),
                Some(why) => {
                    return Err(HarnessError::Checkpoint {
                        path,
                        reason: format!(
                            "the manifest lists this checkpoint, but it is {why}; \
                             `shoplab verify` checks the whole folder, and --skip-missing \
                             evaluates the others"
                        ),
                    });
                }
            }
        }
    }
    if jobs.is_empty() {
        return Err(HarnessError::Checkpoint {
            path: dir.join(CHECKPOINT_DIR),
            reason: format!(
                "no checkpoints{} (only policies with learned parameters, such as dqn, save them)",
                policy.map(|p| format!(" of `{p}`")).unwrap_or_default()
            ),
        });
    }
    let total = prepared.scenario.run.episodes as usize;
    let results = jobs
        .par_iter()
        .map(|(index, seed, path)| {
            let name = &prepared.names[*index];
            let failed = |reason: String| HarnessError::Checkpoint {
                path: path.clone(),
                reason,
            };
            let bytes =
                shoplab_env::input::read_regular_file(path, shoplab_env::input::MAX_DATA_BYTES)
                    .map_err(|e| failed(format!("the checkpoint {e}")))?;
            let policy_seed = shoplab_env::seed::derive_seed(*seed, &format!("policy/{name}"), 0);
            let mut agent = prepared
                .make_policy(*index, policy_seed)
                .map_err(|e| failed(e.to_string()))?;
            agent
                .load_checkpoint(&bytes)
                .map_err(|e| failed(e.to_string()))?;
            let mut env = prepared.make_env();
            let seeds = |k| shoplab_env::seed::derive_seed(*seed, "checkpoint-eval", k);
            let mut evaluation = runner::evaluate(
                prepared,
                &mut env,
                agent.as_mut(),
                seeds,
                episodes,
                (total - 1, total),
            )
            .map_err(failed)?;
            // The oracle and the baseline on the same episodes, for paired scores.
            let (oracle, baseline) =
                runner::reference_returns(prepared, &mut env, &seeds, episodes)
                    .map_err(|e| failed(format!("playing the references: {e}")))?;
            evaluation.oracle_scores = oracle;
            evaluation.baseline_scores = baseline;
            Ok(CheckpointEval {
                policy: name.clone(),
                seed: *seed,
                file: path.clone(),
                evaluation,
            })
        })
        .collect::<Result<_, HarnessError>>()?;
    Ok(CheckpointEvals { results, skipped })
}
