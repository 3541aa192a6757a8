//! Sessions as the softmax policy learns from them: what it reads of a
//! state, a session's steps, and each decision's discounted return — from
//! sessions it played ([`returns`]) or from a log's rows
//! ([`logged_sessions`]).

use crate::offline::Transitions;

/// What the policy reads of an observation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    /// Clicked items, oldest first.
    pub(crate) items: Vec<u32>,
    /// The encoded context features.
    pub(crate) context: Vec<f32>,
}

/// One step of a session: the state, the slate shown, each item's reward
/// (scaled).
#[derive(Debug, Clone)]
pub(crate) struct SessionStep {
    pub(crate) state: State,
    pub(crate) actions: Vec<u32>,
    pub(crate) rewards: Vec<f64>,
}

/// A decision whose return is known.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub(crate) state: State,
    pub(crate) action: u32,
    pub(crate) ret: f64,
}

/// The decisions of a session's `steps`, in order, each with its return:
/// the item's own reward plus `gamma` times the discounted total of the
/// steps after (item-wise credit within a slate), `bootstrap` standing for
/// the value after the last step.
pub(crate) fn returns(steps: Vec<SessionStep>, gamma: f64, bootstrap: f64) -> Vec<Decision> {
    let mut after = bootstrap;
    let mut decisions = Vec::new();
    for step in steps.into_iter().rev() {
        let total: f64 = step.rewards.iter().sum();
        for (&action, &r) in step.actions.iter().zip(&step.rewards).rev() {
            decisions.push(Decision {
                state: step.state.clone(),
                action,
                ret: r + gamma * after,
            });
        }
        after = total + gamma * after;
    }
    decisions.reverse();
    decisions
}

/// A log's rows as decisions with returns, and each one's logging
/// probability: sessions follow the rows' `next` links from every row no
/// other row links to; a row at slate position 0 (or every row, in a log
/// without positions) starts a step; a session's last row ends it (the
/// log's cut sessions count as ended, as the offline learners read them).
/// `state` reads a row's features; rewards are multiplied by `scale`.
/// Errs when the log has no propensities.
pub(crate) fn logged_sessions(
    data: &Transitions,
    state: impl Fn(&[f32]) -> State,
    gamma: f64,
    scale: f64,
) -> Result<(Vec<Decision>, Vec<f64>), String> {
    if data.propensity.len() != data.len() {
        return Err(
            "the logged data has no propensities: learning from a log corrects for the policy \
             that logged it, so every row needs the probability it was chosen with"
                .into(),
        );
    }
    let mut linked = vec![false; data.len()];
    for &n in data.next.iter().flatten() {
        linked[n] = true;
    }
    let mut decisions = Vec::with_capacity(data.len());
    let mut behaviour = Vec::with_capacity(data.len());
    for head in (0..data.len()).filter(|&i| !linked[i]) {
        let mut steps: Vec<SessionStep> = Vec::new();
        let mut rows = Vec::new();
        let mut row = Some(head);
        while let Some(i) = row {
            let starts = data.position.get(i).is_none_or(|&p| p == 0);
            if starts || steps.is_empty() {
                steps.push(SessionStep {
                    state: state(data.obs_of(i)),
                    actions: Vec::new(),
                    rewards: Vec::new(),
                });
            }
            let step = steps.last_mut().expect("a step was just started");
            step.actions.push(data.action[i]);
            step.rewards.push(data.reward[i] * scale);
            rows.push(i);
            row = data.next[i];
        }
        decisions.extend(returns(steps, gamma, 0.0));
        behaviour.extend(rows.iter().map(|&i| data.propensity[i]));
    }
    Ok((decisions, behaviour))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(x: &[f32]) -> State {
        State {
            items: vec![x[0] as u32],
            context: Vec::new(),
        }
    }

    /// Two sessions of a log, one with a slate of two: returns discounted
    /// per step with item-wise credit, propensities carried row by row.
    #[test]
    fn logged_sessions_follow_the_links_and_the_slate_positions() {
        let data = Transitions {
            dim: 1,
            obs: vec![0.0, 1.0, 1.0, 5.0, 2.0],
            action: vec![3, 4, 6, 7, 2],
            reward: vec![1.0, 2.0, 0.5, 4.0, 3.0],
            // Session A: row 0, then the slate of rows 1 and 2, then row 4;
            // session B: row 3 alone.
            next: vec![Some(1), Some(2), Some(4), None, None],
            propensity: vec![0.5, 0.25, 0.25, 1.0, 0.1],
            position: vec![0, 0, 1, 0, 0],
        };
        let (decisions, behaviour) = logged_sessions(&data, state, 0.5, 2.0).unwrap();
        let got: Vec<(u32, f64)> = decisions.iter().map(|d| (d.action, d.ret)).collect();
        // Scaled rewards: 2; (4, 1); 6 | 8.
        let after_slate = 6.0;
        let slate = 5.0 + 0.5 * after_slate;
        assert_eq!(
            got,
            [
                (3, 2.0 + 0.5 * slate),
                (4, 4.0 + 0.5 * after_slate),
                (6, 1.0 + 0.5 * after_slate),
                (2, 6.0),
                (7, 8.0),
            ]
        );
        assert_eq!(behaviour, [0.5, 0.25, 0.25, 0.1, 1.0]);
        // The slate's two rows share the step's state.
        assert_eq!(decisions[1].state, decisions[2].state);
        let bare = Transitions {
            propensity: Vec::new(),
            ..data
        };
        assert!(
            logged_sessions(&bare, state, 0.5, 1.0)
                .unwrap_err()
                .contains("propensities")
        );
    }
}
