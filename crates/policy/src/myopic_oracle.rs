//! The myopic oracle: knows each shopper's true current state and shows what
//! maximises the immediate expected reward, ignoring what comes after.
//!
//! The runner passes it the env's expected immediate reward of every action
//! before each decision ([`Policy::see_expected_rewards`]). A slate is the `k`
//! actions of highest single-action expected reward, which is exactly the
//! click-maximising slate under a multinomial logit (the click probability
//! grows with every shown item's utility); for revenue it is a heuristic.

use crate::registry::{BuildContext, Built, NoSettings, PolicyKind};
use crate::{Policy, argmax, top_k};
use shoplab_env::Observation;

/// Greedy on the true expected immediate rewards.
#[derive(Debug, Clone, Default)]
pub struct MyopicOracle {
    expected: Vec<f64>,
}

impl MyopicOracle {
    /// A myopic oracle.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Policy for MyopicOracle {
    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn act_slate(&mut self, _obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        top_k(&self.expected, k, slate);
    }

    fn greedy_slate(&mut self, _obs: &Observation, k: usize, _n: usize, slate: &mut Vec<usize>) {
        top_k(&self.expected, k, slate);
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        argmax(&self.expected)
    }

    fn wants_expected_rewards(&self) -> bool {
        true
    }

    fn see_expected_rewards(&mut self, rewards: &[f64]) {
        self.expected.clear();
        self.expected.extend_from_slice(rewards);
    }
}

/// `kind = "myopic_oracle"`: greedy on the true expected immediate reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct MyopicOracleKind;

impl PolicyKind for MyopicOracleKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "myopic_oracle"
    }

    fn applies(&self, family: &dyn shoplab_env::Family) -> Result<(), String> {
        if family.expected_rewards() {
            Ok(())
        } else {
            Err(
                "it reads the env's true expected rewards, which only envs that can tell \
                 them offer (the recommendation family); where the exact optimum is known, \
                 use `oracle`"
                    .into(),
            )
        }
    }

    /// Each decision asks the env for every action's expected reward,
    /// which scores the item against the shopper (a few hundred operations).
    fn cost(
        &self,
        _: &Self::Config,
        cx: &BuildContext<'_>,
        _: f64,
    ) -> Result<shoplab_env::cost::PolicyCost, crate::PolicyError> {
        let work = 300.0 * cx.action_space.n() as f64;
        Ok(shoplab_env::cost::PolicyCost {
            bytes: 16.0 * cx.action_space.n() as f64 + 65_536.0,
            train_work: work,
            act_work: work,
        })
    }

    fn build(&self, _: &Self::Config, _: &BuildContext<'_>) -> Built {
        Ok(Box::new(MyopicOracle::new()))
    }
}
