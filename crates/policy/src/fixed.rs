//! Always the same action: the fixed-price (or fixed-bid) baseline.

use crate::Policy;
use shoplab_env::Observation;

/// Takes one action forever.
#[derive(Debug, Clone)]
pub struct Fixed {
    action: usize,
}

impl Fixed {
    /// A policy that always takes `action`.
    pub fn new(action: usize) -> Self {
        Self { action }
    }
}

impl Policy for Fixed {
    fn act(&mut self, _obs: &Observation) -> usize {
        self.action
    }

    fn greedy(&self, _obs: &Observation) -> usize {
        self.action
    }
}
