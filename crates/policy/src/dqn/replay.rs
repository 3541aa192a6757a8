//! Experience replay: a ring buffer of transitions, sampled uniformly or in
//! proportion to priority (Schaul et al., 2016).
//!
//! Transitions are stored column-wise in flat vectors (observations as
//! `capacity × dim` floats), so a minibatch is gathered by copying rows into
//! the batch buffers without allocating.
//!
//! Prioritized replay samples transition `i` with probability
//! `P(i) = p_i^α / Σ_k p_k^α`, where `p_i` is its last absolute TD error plus
//! a small constant, and weights its loss by the importance-sampling
//! correction `w_i = (N · P(i))^(−β) / max_k w_k`; the maximum is over the
//! whole buffer (from the smallest priority), so weights only scale updates
//! down. New transitions enter with the largest priority seen so far, so each
//! is replayed at least once soon. Sampling is stratified: the total priority
//! mass is cut into `batch` equal segments and one transition is drawn from
//! each, through a sum tree in `O(log N)`.

use rand::RngExt;
use shoplab_env::seed::SimRng;

/// One sampled minibatch, in flat buffers reused from call to call.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Buffer positions of the sampled transitions.
    pub indices: Vec<usize>,
    /// Observations, `batch × dim`, row-major.
    pub obs: Vec<f32>,
    /// Actions taken.
    pub actions: Vec<u32>,
    /// Rewards received (already scaled).
    pub rewards: Vec<f32>,
    /// Next observations, `batch × dim`.
    pub next_obs: Vec<f32>,
    /// 0 where the next state is terminal, 1 otherwise (truncation bootstraps).
    pub not_done: Vec<f32>,
    /// Importance-sampling weights (all 1 under uniform sampling).
    pub weights: Vec<f32>,
}

/// A fixed-capacity ring buffer of transitions.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    dim: usize,
    capacity: usize,
    len: usize,
    next: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<u32>,
    rewards: Vec<f32>,
    not_done: Vec<f32>,
    priorities: Option<Priorities>,
}

/// Sum and min trees over `p_i^α`, leaves at `size..2·size`.
#[derive(Debug, Clone)]
struct Priorities {
    alpha: f64,
    epsilon: f64,
    size: usize,
    sum: Vec<f64>,
    min: Vec<f64>,
    max_priority: f64,
}

impl Priorities {
    fn new(capacity: usize, alpha: f64, epsilon: f64) -> Self {
        let size = capacity.next_power_of_two();
        Self {
            alpha,
            epsilon,
            size,
            sum: vec![0.0; 2 * size],
            min: vec![f64::INFINITY; 2 * size],
            max_priority: 1.0,
        }
    }

    /// Sets leaf `i` to `priority^α` and updates its ancestors.
    fn set(&mut self, i: usize, priority: f64) {
        let value = priority.powf(self.alpha);
        let mut node = i + self.size;
        self.sum[node] = value;
        self.min[node] = value;
        while node > 1 {
            node /= 2;
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1];
            self.min[node] = self.min[2 * node].min(self.min[2 * node + 1]);
        }
    }

    /// The leaf where the prefix sum of priorities passes `mass`.
    fn find(&self, mut mass: f64, len: usize) -> usize {
        let mut node = 1;
        while node < self.size {
            let left = 2 * node;
            if mass < self.sum[left] {
                node = left;
            } else {
                mass -= self.sum[left];
                node = left + 1;
            }
        }
        // Rounding can step past the filled leaves; stay inside them.
        (node - self.size).min(len - 1)
    }
}

impl ReplayBuffer {
    /// An empty buffer of `capacity` transitions with observations of `dim`
    /// features; `prioritized` is `Some((α, ε))` for prioritized replay.
    pub fn new(capacity: usize, dim: usize, prioritized: Option<(f64, f64)>) -> Self {
        Self {
            dim,
            capacity,
            len: 0,
            next: 0,
            // Storage grows with the transitions stored, up to the capacity.
            obs: Vec::new(),
            next_obs: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            not_done: Vec::new(),
            priorities: prioritized.map(|(a, e)| Priorities::new(capacity, a, e)),
        }
    }

    /// Transitions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores a transition, overwriting the oldest once full.
    pub fn push(&mut self, obs: &[f32], action: usize, reward: f32, next_obs: &[f32], done: bool) {
        let i = self.next;
        let d = self.dim;
        let not_done = if done { 0.0 } else { 1.0 };
        if i == self.actions.len() {
            self.obs.extend_from_slice(obs);
            self.next_obs.extend_from_slice(next_obs);
            self.actions.push(action as u32);
            self.rewards.push(reward);
            self.not_done.push(not_done);
        } else {
            self.obs[i * d..(i + 1) * d].copy_from_slice(obs);
            self.next_obs[i * d..(i + 1) * d].copy_from_slice(next_obs);
            self.actions[i] = action as u32;
            self.rewards[i] = reward;
            self.not_done[i] = not_done;
        }
        if let Some(p) = &mut self.priorities {
            let max = p.max_priority;
            p.set(i, max);
        }
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Fills `batch` with `size` transitions (which must not exceed the
    /// stored count); `beta` is the importance-sampling exponent, used only
    /// by prioritized replay.
    pub fn sample(&self, rng: &mut SimRng, size: usize, beta: f64, batch: &mut Batch) {
        batch.indices.clear();
        batch.weights.clear();
        match &self.priorities {
            None => {
                batch
                    .indices
                    .extend((0..size).map(|_| rng.random_range(0..self.len)));
                batch.weights.resize(size, 1.0);
            }
            Some(p) => {
                let total = p.sum[1];
                let segment = total / size as f64;
                // The largest weight belongs to the smallest priority.
                let max_weight = (self.len as f64 * p.min[1] / total).powf(-beta);
                for k in 0..size {
                    let mass = segment * (k as f64 + rng.random::<f64>());
                    let i = p.find(mass, self.len);
                    let probability = p.sum[i + p.size] / total;
                    let weight = (self.len as f64 * probability).powf(-beta) / max_weight;
                    batch.indices.push(i);
                    batch.weights.push(weight as f32);
                }
            }
        }
        let d = self.dim;
        batch.obs.clear();
        batch.next_obs.clear();
        batch.actions.clear();
        batch.rewards.clear();
        batch.not_done.clear();
        for &i in &batch.indices {
            batch.obs.extend_from_slice(&self.obs[i * d..(i + 1) * d]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * d..(i + 1) * d]);
            batch.actions.push(self.actions[i]);
            batch.rewards.push(self.rewards[i]);
            batch.not_done.push(self.not_done[i]);
        }
    }

    /// Sets the priorities of sampled transitions from their absolute TD
    /// errors (no-op under uniform replay).
    pub fn update_priorities(&mut self, indices: &[usize], td_errors: &[f32]) {
        if let Some(p) = &mut self.priorities {
            for (&i, &e) in indices.iter().zip(td_errors) {
                let priority = f64::from(e.abs()) + p.epsilon;
                if priority.is_finite() {
                    p.max_priority = p.max_priority.max(priority);
                    p.set(i, priority);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::seed::rng_from_seed;

    fn filled(prioritized: Option<(f64, f64)>) -> ReplayBuffer {
        let mut buffer = ReplayBuffer::new(4, 1, prioritized);
        for i in 0..6 {
            buffer.push(&[i as f32], i, i as f32, &[i as f32 + 1.0], i == 5);
        }
        buffer
    }

    #[test]
    fn ring_keeps_the_newest() {
        let buffer = filled(None);
        assert_eq!(buffer.len(), 4);
        let mut rewards = buffer.rewards.clone();
        rewards.sort_by(f32::total_cmp);
        assert_eq!(rewards, vec![2.0, 3.0, 4.0, 5.0]);
        let mut rng = rng_from_seed(1);
        let mut batch = Batch::default();
        buffer.sample(&mut rng, 32, 0.0, &mut batch);
        for k in 0..32 {
            assert_eq!(batch.obs[k] + 1.0, batch.next_obs[k]);
            assert_eq!(batch.rewards[k], batch.obs[k]);
            assert_eq!(
                batch.not_done[k],
                if batch.obs[k] == 5.0 { 0.0 } else { 1.0 }
            );
        }
    }

    /// With priorities 1, 2, 3, 4 and α = 1, transition i is drawn with
    /// probability p_i / 10. Over 40,000 draws each frequency's standard error
    /// is at most √(0.25 / 40,000) = 0.0025; the test allows 4 SE (0.01).
    /// IS weights with β = 1 are `(N P(i))⁻¹ / max`, i.e. `p_min / p_i`.
    #[test]
    fn prioritized_sampling_follows_priorities() {
        let mut buffer = ReplayBuffer::new(4, 1, Some((1.0, 0.0)));
        for i in 0..4 {
            buffer.push(&[i as f32], 0, 0.0, &[0.0], false);
        }
        buffer.update_priorities(&[0, 1, 2, 3], &[1.0, 2.0, 3.0, 4.0]);
        let mut rng = rng_from_seed(7);
        let mut batch = Batch::default();
        let mut counts = [0usize; 4];
        for _ in 0..1_000 {
            buffer.sample(&mut rng, 40, 1.0, &mut batch);
            for (&i, &w) in batch.indices.iter().zip(&batch.weights) {
                counts[i] += 1;
                assert!((f64::from(w) - 1.0 / (i as f64 + 1.0)).abs() < 1e-6);
            }
        }
        for (i, &c) in counts.iter().enumerate() {
            let expected = (i as f64 + 1.0) / 10.0;
            let seen = c as f64 / 40_000.0;
            assert!(
                (seen - expected).abs() < 0.01,
                "transition {i}: {seen} vs {expected}"
            );
        }
    }
}
