//! What a scenario file asks to run: its configurations and their jobs.
//!
//! A scenario without a `[sweep]` is one configuration; with one, each of
//! the sweep's configurations ([`crate::sweep`]) is a scenario of its own,
//! read and validated whole from the file's text with its values written
//! in. A job is one policy trained on one seed in one configuration; jobs
//! are numbered configuration-major, then policy, then seed, and that
//! order — never the order they finish in — is the order of every table.

use crate::{
    budget::Limits,
    prepared::Prepared,
    registry::Registry,
    scenario::{self, ScenarioError},
    sweep::Configuration,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One policy on one seed in one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Job {
    /// The configuration's index (0 without a sweep).
    pub config: usize,
    /// The policy's index in the scenario.
    pub policy: usize,
    /// The seed.
    pub seed: u64,
}

/// A scenario file's configurations, validated.
pub struct Plan {
    /// The scenario as written (with its `[sweep]` table, if any).
    pub base: Prepared,
    /// Each configuration of the sweep with its validated scenario; empty
    /// without a sweep.
    pub configs: Vec<(Configuration, Prepared)>,
}

/// A plan's configurations, borrowed: a [`Plan`]'s, or one scenario's.
#[derive(Clone, Copy)]
pub struct Runs<'a> {
    /// The scenario as written.
    pub base: &'a Prepared,
    /// The sweep's configurations (empty without a sweep).
    pub configs: &'a [(Configuration, Prepared)],
}

impl Plan {
    /// The configurations, borrowed.
    pub fn runs(&self) -> Runs<'_> {
        Runs {
            base: &self.base,
            configs: &self.configs,
        }
    }
}

impl<'a> Runs<'a> {
    /// One scenario without a sweep.
    pub fn single(prepared: &'a Prepared) -> Self {
        Self {
            base: prepared,
            configs: &[],
        }
    }

    /// Whether the scenario is a sweep.
    pub fn is_sweep(&self) -> bool {
        !self.configs.is_empty()
    }

    /// The scenario every job of configuration `index` runs.
    pub fn prepared(&self, index: usize) -> &'a Prepared {
        match self.configs.get(index) {
            Some((_, p)) => p,
            None => self.base,
        }
    }

    /// The configurations' scenarios, in order (the base alone without a sweep).
    pub fn all(&self) -> Vec<&'a Prepared> {
        if self.configs.is_empty() {
            vec![self.base]
        } else {
            self.configs.iter().map(|(_, p)| p).collect()
        }
    }

    /// Every job, configuration-major, then policy, then seed.
    pub fn jobs(&self) -> Vec<Job> {
        self.all()
            .iter()
            .enumerate()
            .flat_map(|(config, p)| {
                let seeds = &p.scenario.run.seeds;
                (0..p.names.len()).flat_map(move |policy| {
                    seeds.iter().map(move |&seed| Job {
                        config,
                        policy,
                        seed,
                    })
                })
            })
            .collect()
    }

    /// Episodes every job of configuration `config` trains.
    pub fn episodes(&self, config: usize) -> u64 {
        u64::from(self.prepared(config).scenario.run.episodes)
    }

    /// What identifies a configuration's results (see [`identity`]).
    pub fn identities(&self) -> Vec<[u8; 32]> {
        self.all().iter().map(|p| identity(p)).collect()
    }

    /// What identifies the whole plan: every configuration's identity.
    pub fn identity(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.base.scenario.to_toml().as_bytes());
        for id in self.identities() {
            hash.update(id);
        }
        format!("{:x}", hash.finalize())
    }
}

/// What a configuration's results depend on: its resolved scenario with
/// input files named by their SHA-256 rather than their place (a copy
/// elsewhere, on another machine of a cluster, is the same input), and
/// this version of shoplab.
pub fn identity(prepared: &Prepared) -> [u8; 32] {
    let mut scenario = prepared.scenario.clone();
    scenario.map_input_paths(&mut |_, path| {
        let digest = std::fs::read(path)
            .map(|bytes| format!("{:x}", Sha256::digest(bytes)))
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        PathBuf::from(digest)
    });
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update(scenario.to_toml().as_bytes());
    hash.finalize().into()
}

/// The key a job's result is stored under: its configuration's identity,
/// its policy and its seed.
pub fn job_key(identity: &[u8; 32], job: &Job) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(identity);
    hash.update((job.policy as u64).to_le_bytes());
    hash.update(job.seed.to_le_bytes());
    hash.finalize().into()
}

/// Reads and validates a scenario file and, when it has a `[sweep]`,
/// every configuration of it, within `limits`; the sweep's configurations
/// together, split over `shards` machines, must also fit the work limit.
pub fn load_plan(
    file: &Path,
    registry: &Registry,
    limits: &Limits,
    shards: u32,
) -> Result<Plan, ScenarioError> {
    let text = shoplab_env::input::read_text_file(file, shoplab_env::input::MAX_SCENARIO_BYTES)
        .map_err(|reason| ScenarioError::Read {
            file: file.to_path_buf(),
            reason,
        })?;
    plan_from_text(&text, file, registry, limits, shards)
}

/// [`load_plan`] for scenario text read elsewhere; `file` names it in
/// errors, and input paths are relative to its folder.
pub fn plan_from_text(
    text: &str,
    file: &Path,
    registry: &Registry,
    limits: &Limits,
    shards: u32,
) -> Result<Plan, ScenarioError> {
    let scenario = scenario::parse(text, file, registry)?;
    let lines = scenario.key_lines.clone();
    let names = scenario.policy_names();
    let configurations = match &scenario.sweep {
        Some(sweep) => sweep
            .configurations(scenario.run.seeds.first().copied().unwrap_or(0))
            .map_err(|e| ScenarioError::invalid(file, e, &lines))?,
        None => Vec::new(),
    };
    let base = Prepared::with_limits(scenario, file, limits)?;
    // Validated in parallel; the first refusal in configuration order is
    // reported, whatever the thread count.
    let configs: Vec<(Configuration, Prepared)> = configurations
        .into_par_iter()
        .map(|configuration| {
            let within = |source: ScenarioError| ScenarioError::Sweep {
                configuration: format!("{} ({})", configuration.id, configuration.describe()),
                refusal: Box::new(source),
            };
            let text = crate::sweep::configuration_text(text, &configuration, &names)
                .map_err(|e| within(ScenarioError::invalid(file, e, &lines)))?;
            let mut scenario = scenario::parse(&text, file, registry).map_err(within)?;
            scenario.sweep = None;
            let prepared = Prepared::with_limits(scenario, file, limits).map_err(within)?;
            Ok((configuration, prepared))
        })
        .collect::<Vec<Result<_, ScenarioError>>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    let work =
        configs.iter().map(|(_, p)| p.estimate().work).sum::<f64>() / f64::from(shards.max(1));
    if work > limits.max_work {
        return Err(ScenarioError::Invalid {
            file: file.to_path_buf(),
            key: "sweep".into(),
            line: scenario::line_of_key(&lines, "sweep"),
            rule: format!(
                "the sweep's {} configurations are estimated at {work:.2e} operations{}, \
                 over the limit of {:.2e} (--max-work); sweep fewer values, or split it into \
                 more shards (--shard K/N)",
                configs.len(),
                if shards > 1 { " a shard" } else { " in all" },
                limits.max_work
            ),
        });
    }
    Ok(Plan { base, configs })
}
