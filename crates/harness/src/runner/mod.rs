//! Running policies on seeded envs, in parallel across runs.
//!
//! A run is one policy trained on one seed for the scenario's episodes. Runs
//! are independent and deterministic: the env of episode `e` is reset with
//! `derive_seed(seed, "env", e)` (so every policy meets the same shoppers on
//! the same seed — common random numbers, which sharpens comparisons) and the
//! policy's generator with `derive_seed(seed, "policy/<name>", 0)`. Rayon
//! spreads runs over threads and collects results in job order, so the output
//! does not depend on the thread count or on scheduling.
//!
//! With `eval_episodes > 0`, training pauses every `eval_every` episodes
//! (and once at the end) for greedy evaluation: `eval_episodes` episodes on
//! the env seeds `derive_seed(seed, "eval", k)` — the same at every
//! evaluation point and for every policy — where the policy acts through
//! [`Policy::act_greedy`] and learns nothing.
//!
//! A run whose return is not finite, whose policy reports divergence
//! ([`Policy::divergence`]), or that panics, is stopped and reported with its
//! reason; the other runs finish.

use crate::prepared::Prepared;
use rayon::prelude::*;
use shoplab_env::{
    Env, EnvBox, Observation,
    batch::BatchEnv,
    family::{ActionRule, Baseline, GreedyTable},
    seed::derive_seed,
};
use shoplab_policy::{LearningStats, Mode, Policy, PolicyError, Transition, rollout};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Steps after which an episode that has not ended is truncated.
pub const MAX_EPISODE_STEPS: usize = 1_000_000;

/// One training episode's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeRecord {
    /// Sum of rewards.
    pub ret: f64,
    /// What the reference is compared with: the return, or the family's
    /// score metric ([`Family::score_metric`](shoplab_env::Family::score_metric)).
    pub score: f64,
    /// Sums of the env's per-step metrics.
    pub metrics: Vec<f64>,
    /// What an oracle would have earned in this episode (the exact optimum's
    /// expected return, or the env's hindsight optimum), where known.
    pub reference: Option<f64>,
    /// The learner's training statistics over the episode, if it reports them.
    pub learning: Option<LearningStats>,
    /// Decisions the policy made: steps, times the sessions stepped together
    /// in batched families (for throughput figures; not written to CSVs).
    pub decisions: u64,
}

/// One greedy evaluation of a policy during training.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Training episodes completed before it.
    pub after_episodes: usize,
    /// Return of each evaluation episode.
    pub returns: Vec<f64>,
    /// Score of each evaluation episode (the return, or the family's score
    /// metric), what references and reference rules are compared on.
    pub scores: Vec<f64>,
    /// Reference of each evaluation episode, where known.
    pub references: Vec<Option<f64>>,
    /// The scores of the family's oracle played on the same episodes, where
    /// it has a rule ([`Family::oracle`](shoplab_env::Family::oracle)); empty otherwise.
    pub oracle_scores: Vec<f64>,
    /// The scores of the family's baseline played on the same episodes,
    /// where it has one ([`Family::baseline`](shoplab_env::Family::baseline)); empty otherwise.
    pub baseline_scores: Vec<f64>,
}

/// A family's reference rule as a policy that acts by it and learns nothing.
struct RulePolicy(ActionRule);

impl std::fmt::Debug for RulePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RulePolicy")
    }
}

impl Policy for RulePolicy {
    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let mut ranked = Vec::with_capacity(1);
        (self.0)(obs, &mut ranked);
        ranked.first().copied().unwrap_or(0)
    }

    fn act_slate(&mut self, obs: &Observation, k: usize, n_actions: usize, slate: &mut Vec<usize>) {
        self.greedy_slate(obs, k, n_actions, slate);
    }

    /// The rule's first `k` actions, filled with the next actions by index
    /// (skipping those already shown) when it lists fewer.
    fn greedy_slate(&mut self, obs: &Observation, k: usize, n: usize, slate: &mut Vec<usize>) {
        (self.0)(obs, slate);
        slate.truncate(k);
        shoplab_policy::fill_slate(slate, k, n);
    }
}

/// More baseline candidates than this are screened before calibration.
pub const SCREEN_ABOVE: usize = 20;

/// How many screened candidates go on to the full calibration.
pub const SHORTLIST: usize = 10;

/// The calibration episodes [`choose_baseline`] plays for `candidates`
/// candidates and `episodes` calibration episodes: the screening, then the
/// shortlist's full calibration.
pub fn calibration_work(candidates: usize, episodes: u32) -> f64 {
    let episodes = f64::from(episodes.max(1));
    if candidates > SCREEN_ABOVE {
        candidates as f64 * (episodes / 10.0).floor().max(1.0) + SHORTLIST as f64 * episodes
    } else {
        candidates as f64 * episodes
    }
}

/// Each candidate rule's mean score over the calibration episodes
/// `derive_seed(first seed, "calibration", k)` for `k < episodes`, in the
/// candidates' order.
fn calibrate(
    prepared: &Prepared,
    candidates: Vec<(String, ActionRule)>,
    episodes: u32,
) -> Result<Vec<(String, ActionRule, f64)>, String> {
    let first = prepared.scenario.run.seeds[0];
    candidates
        .into_par_iter()
        .map(|(name, rule)| {
            let mut env = prepared.make_env();
            let mut agent = RulePolicy(rule.clone());
            let mut total = 0.0;
            for k in 0..u64::from(episodes) {
                let seed = derive_seed(first, "calibration", k);
                total += play(prepared, &mut env, &mut agent, seed, true)?.score;
            }
            Ok((name, rule, total / f64::from(episodes)))
        })
        .collect()
}

/// The baseline of a prepared scenario: the family's exact one, or the best
/// of its candidates (found with the seed `derive_seed(first seed,
/// "baseline", 0)`) by mean score over the family's
/// [`calibration_episodes`](shoplab_env::Family::calibration_episodes) on
/// the env seeds `derive_seed(first seed, "calibration", k)`, the same for
/// every candidate (ties go to the earlier candidate). Past
/// [`SCREEN_ABOVE`] candidates, each is first screened on a tenth of those
/// episodes (at least one), and only the [`SHORTLIST`] best go on to the
/// full calibration.
/// `candidates` are the family's ([`baseline_candidates`]), drawn by the
/// caller so that it can count their work first.
///
/// [`baseline_candidates`]: shoplab_env::Family::baseline_candidates
pub fn choose_baseline(
    prepared: &Prepared,
    candidates: Vec<(String, ActionRule)>,
) -> Result<Option<Baseline>, String> {
    let family = prepared.family();
    if let Some(exact) = family.baseline() {
        return Ok(Some(exact));
    }
    let episodes = family.calibration_episodes().max(1);
    let mut candidates = candidates;
    if candidates.len() > SCREEN_ABOVE {
        let mut screened = calibrate(prepared, candidates, (episodes / 10).max(1))?;
        // Best first; a stable sort keeps ties in the family's order.
        screened.sort_by(|a, b| b.2.total_cmp(&a.2));
        screened.truncate(SHORTLIST);
        candidates = screened.into_iter().map(|(n, r, _)| (n, r)).collect();
    }
    let scored = calibrate(prepared, candidates, episodes)?;
    Ok(scored
        .into_iter()
        .reduce(|best, c| if c.2 > best.2 { c } else { best })
        .map(|(name, rule, value)| Baseline {
            name,
            value,
            basis: format!("mean over {episodes} calibration episodes"),
            rule,
        }))
}

/// The scores of the family's oracle and baseline rules on the evaluation
/// episodes `seeds(0..episodes)` (each empty where the family has no such rule).
pub(crate) fn reference_returns(
    prepared: &Prepared,
    env: &mut EnvBox,
    seeds: &impl Fn(u64) -> u64,
    episodes: u32,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let family = prepared.family();
    let mut play_rule = |rule: Option<ActionRule>| -> Result<Vec<f64>, String> {
        let Some(rule) = rule else {
            return Ok(Vec::new());
        };
        let mut agent = RulePolicy(rule);
        (0..u64::from(episodes))
            .map(|k| play(prepared, env, &mut agent, seeds(k), true).map(|r| r.score))
            .collect()
    };
    let oracle = play_rule(family.oracle())?;
    let baseline = play_rule(prepared.baseline().map(|b| b.rule.clone()))?;
    Ok((oracle, baseline))
}

/// One run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Index of the policy in the scenario's list.
    pub policy: usize,
    /// The run's seed.
    pub seed: u64,
    /// The episodes completed.
    pub episodes: Vec<EpisodeRecord>,
    /// Why the run stopped early, if it did.
    pub failure: Option<String>,
    /// The policy's greedy actions at the end, for state-dependent policies.
    pub table: Option<GreedyTable>,
    /// Greedy evaluations, in training order.
    pub evaluations: Vec<Evaluation>,
    /// The trained parameters (safetensors), for policies that have them.
    pub checkpoint: Option<Vec<u8>>,
    /// For offline learners: the trained policy's greedy action at every
    /// row of the scenario's offline log, what off-policy estimates of it
    /// are computed from ([`crate::offline::report`]).
    pub on_log: Option<Vec<u32>>,
    /// The exact expected return of the trained policy's greedy play, for
    /// families that evaluate policies exactly ([`Prepared::exact_value`]).
    pub exact_value: Option<f64>,
}

/// Builds policy `index` of the scenario with a seed: [`Prepared::make_policy`]
/// in every real run; tests pass their own.
pub type PolicyFactory<'a> = dyn Fn(usize, u64) -> Result<Box<dyn Policy>, PolicyError> + Sync + 'a;

/// One episode of a single-session env through the shared rollout loop;
/// `greedy` evaluates without exploring or learning.
fn single_episode(
    env: &mut dyn Env,
    agent: &mut dyn Policy,
    seed: u64,
    greedy: bool,
) -> EpisodeRecord {
    let mut record = EpisodeRecord {
        ret: 0.0,
        score: 0.0,
        metrics: vec![0.0; env.metric_names().len()],
        reference: None,
        learning: None,
        decisions: 0,
    };
    let mode = if greedy { Mode::Greedy } else { Mode::Train };
    rollout(env, agent, seed, mode, MAX_EPISODE_STEPS, |step| {
        record.decisions += 1;
        record.ret += step.reward;
        for (m, v) in record.metrics.iter_mut().zip(&step.info) {
            *m += v;
        }
    });
    record.reference = env.episode_reference();
    record
}

/// One batch episode of a many-session env. Each slot's slate comes from the
/// policy in slot order, and the policy learns from every shown action with
/// the reward the env credits it (item-wise credit, as in SlateQ's
/// decomposition; exact for slates of one). The return is the reward per
/// session: all reward earned in the window, by finished and unfinished
/// sessions alike, divided by the sessions that ended in it (metric
/// `ended`, as the family counts them) — the renewal-reward estimate of a
/// session's total; divided by the slots when none ended or the family
/// counts none.
fn batch_episode(
    env: &mut dyn BatchEnv,
    agent: &mut dyn Policy,
    seed: u64,
    greedy: bool,
    ended: Option<usize>,
) -> Result<EpisodeRecord, String> {
    let (n, k, n_actions) = (env.batch_size(), env.slate_size(), env.action_space().n());
    let oracle = agent.wants_expected_rewards();
    let (mut obs, _) = env.reset(seed);
    let mut slates = Vec::with_capacity(n * k);
    let mut slate = Vec::with_capacity(k);
    let mut expected = Vec::new();
    let mut total = 0.0;
    let mut metrics = vec![0.0; env.metric_names().len()];
    let mut steps = 0_u64;
    loop {
        if oracle && !env.expected_rewards(&mut expected) {
            return Err("this env cannot tell an oracle its expected rewards".into());
        }
        if oracle {
            slates.clear();
            for (s, o) in obs.iter().enumerate() {
                agent.see_expected_rewards(&expected[s * n_actions..(s + 1) * n_actions]);
                if greedy {
                    agent.greedy_slate(o, k, n_actions, &mut slate);
                } else {
                    agent.act_slate(o, k, n_actions, &mut slate);
                }
                shoplab_policy::check_slate(&slate, k)?;
                slates.extend_from_slice(&slate);
            }
        } else {
            let mode = if greedy { Mode::Greedy } else { Mode::Train };
            agent.act_slates(&obs, k, n_actions, mode, &mut slates)?;
        }
        let step = env.step(&slates);
        steps += 1;
        for s in 0..n {
            for j in 0..k {
                let transition = Transition {
                    slot: s,
                    obs: &obs[s],
                    action: slates[s * k + j],
                    reward: step.item_rewards[s * k + j],
                    next_obs: &step.obs[s],
                    terminated: step.terminated[s],
                    truncated: step.truncated[s],
                };
                if greedy {
                    agent.see_greedy_step(&transition);
                } else {
                    agent.learn(&transition);
                }
            }
        }
        total += step.rewards.iter().sum::<f64>();
        for (m, v) in metrics.iter_mut().zip(&step.info) {
            *m += v;
        }
        obs = step.obs;
        if step.episode_over {
            break;
        }
    }
    let sessions = ended.map_or(0.0, |i| metrics[i]);
    let ret = if sessions > 0.0 {
        total / sessions
    } else {
        total / n as f64
    };
    Ok(EpisodeRecord {
        ret,
        score: ret,
        metrics,
        reference: None,
        learning: None,
        decisions: steps * n as u64,
    })
}

/// One episode on `env`, training or (`greedy`) evaluating, with the
/// scenario's reference filled in where the env gives none.
pub(crate) fn play(
    prepared: &Prepared,
    env: &mut EnvBox,
    agent: &mut dyn Policy,
    seed: u64,
    greedy: bool,
) -> Result<EpisodeRecord, String> {
    let mut record = match env {
        EnvBox::Single(env) => single_episode(env.as_mut(), agent, seed, greedy),
        EnvBox::Batch(env) => {
            let ended = prepared.sessions().map(|s| s.ended_metric);
            batch_episode(env.as_mut(), agent, seed, greedy, ended)?
        }
    };
    record.reference = record.reference.or(prepared.optimal_value());
    record.score = match prepared.family().score_metric() {
        Some(i) => record.metrics[i],
        None => record.ret,
    };
    Ok(record)
}

/// Plays `episodes` greedy episodes (no exploring, no learning) on the env
/// seeds `seeds(0), seeds(1), …`; `(episode, total)` is where training
/// stands, passed to [`Policy::begin_episode`] to reset per-episode state
/// without moving schedules.
pub fn evaluate(
    prepared: &Prepared,
    env: &mut EnvBox,
    agent: &mut dyn Policy,
    seeds: impl Fn(u64) -> u64,
    episodes: u32,
    (episode, total): (usize, usize),
) -> Result<Evaluation, String> {
    let mut evaluation = Evaluation {
        after_episodes: episode + 1,
        returns: Vec::new(),
        scores: Vec::new(),
        references: Vec::new(),
        oracle_scores: Vec::new(),
        baseline_scores: Vec::new(),
    };
    for k in 0..u64::from(episodes) {
        agent.begin_episode(episode, total);
        let record = play(prepared, env, agent, seeds(k), true)?;
        if !record.ret.is_finite() {
            return Err(format!("the return is not finite ({})", record.ret));
        }
        evaluation.returns.push(record.ret);
        evaluation.scores.push(record.score);
        evaluation.references.push(record.reference);
    }
    Ok(evaluation)
}

/// Trains policy `policy` on `seed`, calling `progress` after each episode
/// (and the evaluation that follows it) with the seconds it took.
pub fn run_one(
    prepared: &Prepared,
    make_policy: &PolicyFactory<'_>,
    policy: usize,
    seed: u64,
    progress: &(dyn Fn(crate::eta::Progress) + Sync),
) -> RunResult {
    let mut result = RunResult {
        policy,
        seed,
        episodes: Vec::new(),
        failure: None,
        table: None,
        evaluations: Vec::new(),
        on_log: None,
        checkpoint: None,
        exact_value: None,
    };
    let mut env = prepared.make_env();
    let run = &prepared.scenario.run;
    let episodes = run.episodes as usize;
    let every = run.eval_every as usize;
    let evaluate_after = |done: usize| {
        run.eval_episodes > 0 && (done == episodes || (every > 0 && done.is_multiple_of(every)))
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let name = &prepared.names[policy];
        let mut agent = make_policy(policy, derive_seed(seed, &format!("policy/{name}"), 0))
            .map_err(|e| format!("could not build the policy: {e}"))?;
        let env_seed = |episode: usize| derive_seed(seed, "env", episode as u64);
        let eval_seed = |k: u64| derive_seed(seed, "eval", k);
        // The references' returns on the evaluation episodes, played once:
        // the episodes are the same at every evaluation point.
        let mut paired: Option<(Vec<f64>, Vec<f64>)> = None;
        for episode in 0..episodes {
            let started = std::time::Instant::now();
            agent.begin_episode(episode, episodes);
            let mut record = play(prepared, &mut env, agent.as_mut(), env_seed(episode), false)?;
            record.learning = agent.learning_stats();
            if !record.ret.is_finite() {
                return Err(format!(
                    "episode {episode}: the return is not finite ({}); run stopped",
                    record.ret
                ));
            }
            if let Some(reason) = agent.divergence() {
                return Err(format!(
                    "episode {episode}: diverged: {reason}; run stopped"
                ));
            }
            result.episodes.push(record);
            if evaluate_after(episode + 1) {
                let mut evaluation = evaluate(
                    prepared,
                    &mut env,
                    agent.as_mut(),
                    eval_seed,
                    run.eval_episodes,
                    (episode, episodes),
                )
                .map_err(|e| format!("evaluation after episode {episode}: {e}"))?;
                if paired.is_none() {
                    paired = Some(
                        reference_returns(prepared, &mut env, &eval_seed, run.eval_episodes)
                            .map_err(|e| format!("playing the references: {e}"))?,
                    );
                }
                if let Some((oracle, baseline)) = &paired {
                    evaluation.oracle_scores.clone_from(oracle);
                    evaluation.baseline_scores.clone_from(baseline);
                }
                result.evaluations.push(evaluation);
            }
            progress(crate::eta::Progress {
                policy,
                episodes: 1,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if let Some(bytes) = agent.checkpoint() {
            result.checkpoint =
                Some(bytes.map_err(|e| format!("could not save the checkpoint: {e}"))?);
        }
        if prepared.scenario.policies[policy].is_state_dependent() {
            result.table = prepared.greedy_table(agent.as_ref());
        }
        result.exact_value = prepared.exact_value(agent.as_ref());
        // The learned policy's actions on the log, for the off-policy
        // estimates of the report; none asked for, none computed (at a
        // large catalog each is a pass over every item).
        let estimated = prepared.offline().filter(|o| !o.ope.is_empty());
        if let (Some(offline), Some(_)) = (estimated, prepared.offline_steps(policy)) {
            result.on_log = Some(on_log::actions_on_log(agent.as_mut(), &offline.log));
        }
        Ok(())
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => result.failure = Some(reason),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            result.failure = Some(format!("the run panicked: {message}"));
        }
    }
    result
}

mod on_log;
mod schedule;
pub use schedule::{run_all, run_all_with, run_jobs};

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::family::{constant_rule, fixed_slate_rule};

    /// A rule's slate is its own ranking, cut to `k`, then the next actions
    /// by index that it does not already show.
    #[test]
    fn rule_slates_fill_with_the_next_actions() {
        let obs = Observation { features: vec![] };
        let mut slate = Vec::new();
        RulePolicy(constant_rule(5)).greedy_slate(&obs, 3, 6, &mut slate);
        assert_eq!(slate, [5, 0, 1]);
        RulePolicy(fixed_slate_rule(vec![2, 3])).greedy_slate(&obs, 3, 6, &mut slate);
        assert_eq!(slate, [2, 3, 4]);
        RulePolicy(fixed_slate_rule(vec![4, 1, 0, 2])).greedy_slate(&obs, 2, 6, &mut slate);
        assert_eq!(slate, [4, 1]);
        assert_eq!(RulePolicy(fixed_slate_rule(vec![3, 1])).greedy(&obs), 3);
    }
}
