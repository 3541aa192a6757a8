//! A trained policy's actions on the rows of a log, for the report's
//! off-policy estimates.

use shoplab_env::Observation;
use shoplab_policy::{Policy, Transition};

/// The greedy action of `agent` at every row of `log`. A policy whose
/// greedy decision reads the episode so far ([`Policy::greedy_is_markov`]
/// false) plays each logged session from its start, seeing every logged
/// step ([`Policy::see_greedy_step`]: the logged action and reward) before
/// the next, so each row's action is the one it would take after that
/// row's logged history.
pub(super) fn actions_on_log(agent: &mut dyn Policy, log: &shoplab_logs::Log) -> Vec<u32> {
    let observation = |i: usize| Observation {
        features: log.features_of(i).to_vec(),
    };
    if agent.greedy_is_markov() {
        let mut obs = Observation {
            features: Vec::with_capacity(log.features.len()),
        };
        return (0..log.len())
            .map(|i| {
                obs.features.clear();
                obs.features.extend_from_slice(log.features_of(i));
                agent.greedy(&obs) as u32
            })
            .collect();
    }
    let mut actions = vec![0; log.len()];
    for rows in log.sessions() {
        for (j, &i) in rows.iter().enumerate() {
            let obs = observation(i);
            actions[i] = agent.act_greedy(&obs) as u32;
            let last = j + 1 == rows.len();
            let next = if last {
                obs.clone()
            } else {
                observation(rows[j + 1])
            };
            agent.see_greedy_step(&Transition {
                slot: 0,
                obs: &obs,
                action: log.action[i] as usize,
                reward: log.reward[i],
                next_obs: &next,
                terminated: log.terminated[i],
                truncated: log.truncated[i] || last,
            });
        }
    }
    actions
}
