//! A paced bidder's decisions with their probabilities, for logs: the
//! joint action's distribution is the multiplier's (one-hot for the rule
//! controllers, the learner's own for learned pacing, the learner's over
//! moves mapped onto the multipliers for stepped pacing) times the
//! creative's (one-hot for a fixed creative or UCB1). Thompson sampling
//! over several creatives has no closed form: such a bidder cannot be
//! logged.

use super::{CreativeBandit, CreativeRule, PacedBidding, Pacing, last_index};
use shoplab_env::Observation;

impl PacedBidding {
    /// Decides as [`crate::Policy::act`] does, writing each joint action's
    /// probability into `probs`; `None`, before anything is decided, where
    /// there is no closed form.
    pub(super) fn logged(&mut self, obs: &Observation, probs: &mut Vec<f64>) -> Option<usize> {
        let nc = self.n_creatives;
        if self.creative == CreativeRule::Bandit(CreativeBandit::Thompson) && nc > 1 {
            return None;
        }
        if obs.features[self.features[0]] == 0.0 {
            self.budget = f64::from(obs.features[self.features[1]]);
        }
        let top = last_index(&self.multipliers);
        let mut chances = vec![0.0; top + 1];
        let mut inner = Vec::new();
        let multiplier = match &mut self.pacing {
            Pacing::Learned { q, every, held } => match held {
                Some((_, action, _, covered)) if *covered < *every => *action,
                _ => {
                    let action = q.act_logged(obs, &mut inner)?;
                    chances.copy_from_slice(inner.get(..=top)?);
                    *held = Some((obs.clone(), action, 0.0, 0));
                    action
                }
            },
            Pacing::Stepped {
                q, current, last, ..
            } => {
                let extended = Self::extend(obs, *current);
                let step = q.act_logged(&extended, &mut inner)?;
                for (s, &p) in inner.iter().enumerate() {
                    chances[(*current + s).saturating_sub(1).min(top)] += p;
                }
                *last = (*current, step);
                *current = (*current + step).saturating_sub(1).min(top);
                *current
            }
            _ => self.choose_multiplier(obs, true),
        };
        if chances.iter().all(|&p| p == 0.0) {
            chances[multiplier] = 1.0;
        }
        let creative = self.choose_creative(true);
        probs.clear();
        probs.resize((top + 1) * nc, 0.0);
        for (m, &p) in chances.iter().enumerate() {
            probs[m * nc + creative] = p;
        }
        Some(multiplier * nc + creative)
    }
}
