//! How the softmax policy learns ([`super::Reinforce`]): finished
//! sessions into decisions with returns, one Adam step on a minibatch
//! (the full or the sampled softmax, the baseline weighed by the
//! off-policy weights from a log), and minibatches drawn from a log.

use super::{Reinforce, err};
use crate::seq::{
    encoder::rows_of,
    reinforce::{Loss, Objective},
    sessions::{Decision, SessionStep, State, logged_sessions, returns},
};
use candle_core::Tensor;
use rand::RngExt;
use shoplab_env::Observation;

impl Reinforce {
    /// Returns of a finished session's steps, `bootstrap` the (scaled)
    /// value after its last step, queued as decisions; then trains on every
    /// full minibatch.
    pub(super) fn finish(&mut self, steps: Vec<SessionStep>, bootstrap: f64) {
        self.ready
            .extend(returns(steps, self.config.gamma, bootstrap));
        while self.ready.len() >= self.config.batch_size && self.diverged.is_none() {
            let batch: Vec<Decision> = self.ready.drain(..self.config.batch_size).collect();
            let batch: Vec<&Decision> = batch.iter().collect();
            if let Err(e) = self.train_step(&batch, None) {
                self.diverged = Some(e);
            }
        }
    }

    /// Sessions cut by a limit bootstrap from `V` of their last state, all
    /// scored in one pass.
    pub(super) fn flush(&mut self) {
        if self.awaiting.is_empty() || self.diverged.is_some() {
            return;
        }
        let awaiting = std::mem::take(&mut self.awaiting);
        let states: Vec<&State> = awaiting.iter().map(|(_, s)| s).collect();
        let values = match self.state_values(&states) {
            Ok(v) => v,
            Err(e) => {
                self.diverged = Some(e);
                return;
            }
        };
        for ((steps, _), v) in awaiting.into_iter().zip(values) {
            self.finish(steps, f64::from(v));
        }
    }

    /// One Adam step on a minibatch of finished decisions.
    pub(super) fn train_step(
        &mut self,
        batch: &[&Decision],
        behaviour: Option<&[f64]>,
    ) -> Result<(), String> {
        let states: Vec<&State> = batch.iter().map(|d| &d.state).collect();
        let h = self.encode(&states)?;
        let values = self.values(&h).map_err(err)?;
        let returns: Vec<f32> = batch.iter().map(|d| d.ret as f32).collect();
        let baseline: Vec<f32> = values.detach().to_vec1().map_err(err)?;
        let advantages: Vec<f64> = returns
            .iter()
            .zip(&baseline)
            .map(|(&g, &v)| {
                // Without a value loss there is no baseline.
                if self.config.value_weight > 0.0 {
                    f64::from(g - v)
                } else {
                    f64::from(g)
                }
            })
            .collect();
        let actions: Vec<u32> = batch.iter().map(|d| d.action).collect();
        let objective = Objective {
            temperature: self.config.temperature,
            k: self.config.top_k.unwrap_or(self.slate_size),
            entropy: self.config.entropy,
            weight_cap: self.config.weight_cap,
        };
        let policy_loss = if self.config.sampled(self.items) {
            self.sampled_loss(&h, &objective, &actions, &advantages, behaviour)
        } else {
            self.logits(&h)
                .and_then(|logits| objective.loss(&logits, &actions, &advantages, behaviour))
        }
        .map_err(err)?;
        let target = Tensor::from_vec(returns, batch.len(), &self.device).map_err(err)?;
        let squared = (values - target).and_then(|e| e.sqr()).map_err(err)?;
        // From a log, the baseline regresses on the decisions weighed by
        // ω (normalised to mean 1): it estimates π's value, not the
        // logging policy's, whose higher-valued actions would otherwise
        // make every other logged action look bad.
        let squared = match behaviour {
            None => squared,
            Some(_) => {
                let total: f64 = policy_loss.weights.iter().sum();
                let weights: Vec<f32> = policy_loss
                    .weights
                    .iter()
                    .map(|&w| {
                        if total > 0.0 {
                            (w * batch.len() as f64 / total) as f32
                        } else {
                            0.0
                        }
                    })
                    .collect();
                Tensor::from_vec(weights, batch.len(), &self.device)
                    .and_then(|w| squared * w)
                    .map_err(err)?
            }
        };
        let value_loss = squared
            .mean_all()
            .and_then(|e| e * (0.5 * self.config.value_weight))
            .map_err(err)?;
        let loss = (policy_loss.value + &value_loss).map_err(err)?;
        let value = f64::from(loss.to_scalar::<f32>().map_err(err)?);
        if !value.is_finite() {
            return Err(format!(
                "after {} updates the loss is {value}",
                self.adam.steps()
            ));
        }
        let grads = loss.backward().map_err(err)?;
        self.adam
            .step(
                &self.trained,
                &grads,
                self.config.learning_rate,
                self.config.max_grad_norm,
            )
            .map_err(|e| e.0)?;
        self.stats.updates += 1;
        self.stats.loss += value;
        self.stats.value += baseline.iter().map(|&v| f64::from(v)).sum::<f64>()
            / baseline.len() as f64
            / self.config.reward_scale;
        Ok(())
    }

    /// The policy term with a sampled softmax: `negatives` items drawn
    /// uniformly with replacement for the minibatch, each row scoring its
    /// own action and the drawn items (a draw of its own action left out).
    pub(super) fn sampled_loss(
        &mut self,
        h: &Tensor,
        objective: &Objective,
        actions: &[u32],
        advantages: &[f64],
        behaviour: Option<&[f64]>,
    ) -> candle_core::Result<Loss> {
        let items = self.items as u32;
        let drawn: Vec<u32> = (0..self.config.negatives)
            .map(|_| self.negatives_rng.random_range(0..items))
            .collect();
        let hits: Vec<bool> = actions
            .iter()
            .flat_map(|&a| drawn.iter().map(move |&j| j == a))
            .collect();
        let table = self.params["encoder.embed.items"].as_tensor();
        let bias = self.params["items.bias"].as_tensor();
        let ids = |v: &[u32], offset: u32| {
            Tensor::from_vec(
                v.iter().map(|&i| i + offset).collect::<Vec<u32>>(),
                v.len(),
                &self.device,
            )
        };
        // Token ids are item ids + 2 (padding and start come first).
        let own = (h * table.index_select(&ids(actions, 2)?, 0)?)?
            .sum_keepdim(1)?
            .add(&bias.index_select(&ids(actions, 0)?, 0)?.unsqueeze(1)?)?;
        let others = (h.matmul(&table.index_select(&ids(&drawn, 2)?, 0)?.t()?)?
            + rows_of(&bias.index_select(&ids(&drawn, 0)?, 0)?, actions.len())?)?;
        let logits = Tensor::cat(&[own, others], 1)?;
        objective.sampled_loss(&logits, self.items, &hits, advantages, behaviour)
    }

    /// Learns from `data`'s decisions instead of the env's
    /// (`log_steps`): each session's returns are computed now, and before
    /// each training episode the policy takes its share of the steps on
    /// uniformly drawn minibatches, corrected by the log's propensities.
    pub fn learn_from_log(&mut self, data: &crate::offline::Transitions) -> Result<(), String> {
        if data.dim != self.features {
            return Err(format!(
                "{} features per row, the observations {}",
                data.dim, self.features
            ));
        }
        if let Some(a) = data.action.iter().find(|&&a| a as usize >= self.items) {
            return Err(format!(
                "action {a} is outside the catalog of {} items",
                self.items
            ));
        }
        let logged = logged_sessions(
            data,
            |x| {
                self.state(&Observation {
                    features: x.to_vec(),
                })
            },
            self.config.gamma,
            self.config.reward_scale,
        )?;
        if logged.0.is_empty() {
            return Err("no rows".into());
        }
        self.logged = Some(logged);
        Ok(())
    }

    /// One minibatch step on logged decisions, drawn uniformly.
    pub(super) fn log_step(&mut self) -> Result<(), String> {
        let Some((decisions, behaviour)) = self.logged.take() else {
            return Ok(());
        };
        let rows: Vec<usize> = (0..self.config.batch_size)
            .map(|_| self.log_rng.random_range(0..decisions.len()))
            .collect();
        let batch: Vec<&Decision> = rows.iter().map(|&i| &decisions[i]).collect();
        let propensities: Vec<f64> = rows.iter().map(|&i| behaviour[i]).collect();
        let result = self.train_step(&batch, Some(&propensities));
        self.logged = Some((decisions, behaviour));
        result
    }
}
