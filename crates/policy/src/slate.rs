//! Slates and the probabilities of actions: the top `k` of many scores,
//! the filling and random drawing of slates, and the action probabilities
//! of the simple exploration rules (what logged data records as
//! propensities).

use rand::RngExt;
use shoplab_env::seed::SimRng;

/// The position-wise probabilities of the default
/// [`Policy::act_slate`]: the first action drawn from `first` (one
/// probability per action), then the next actions in index order, so
/// action `a` is at position `j` when the first was `a − j (mod n)`.
pub fn shifted_slate_probabilities(first: &[f64], k: usize, probs: &mut Vec<f64>) {
    let n = first.len();
    probs.clear();
    for j in 0..k.min(n) {
        probs.extend((0..n).map(|a| first[(a + n - j) % n]));
    }
}

/// The position-wise probabilities of an ε-greedy slate: with probability
/// ε a uniformly random slate (each action 1/n at each position), else
/// `best` (the slate shown when exploiting).
pub fn epsilon_slate_probabilities(epsilon: f64, best: &[usize], n: usize, probs: &mut Vec<f64>) {
    probs.clear();
    for &b in best {
        let start = probs.len();
        probs.resize(start + n, epsilon / n as f64);
        probs[start + b] += 1.0 - epsilon;
    }
}

/// `probs` for ε-greedy over `n` actions: `ε/n` each, plus `1 − ε` on
/// `greedy`.
pub fn epsilon_greedy_probabilities(epsilon: f64, greedy: usize, n: usize, probs: &mut Vec<f64>) {
    probs.clear();
    probs.resize(n, epsilon / n as f64);
    probs[greedy] += 1.0 - epsilon;
}

/// `probs` for a deterministic choice of `action` among `n`.
pub fn one_hot_probabilities(action: usize, n: usize, probs: &mut Vec<f64>) {
    probs.clear();
    probs.resize(n, 0.0);
    probs[action] = 1.0;
}

/// The `k` indices with the largest scores, best first, the lower index first
/// among ties. A few of many (a slate from a large catalog) are kept in one
/// pass, each score compared with the `k`-th best so far; otherwise by
/// partial selection, `O(n + k log k)`. Both give the same indices.
pub fn top_k<T: Score>(scores: &[T], k: usize, out: &mut Vec<usize>) {
    out.clear();
    let k = k.min(scores.len());
    // `a` before `b`: the higher score, then the lower index.
    let before = |a: usize, b: usize| scores[b].total(&scores[a]).then(a.cmp(&b));
    if k > 0 && k <= 64 && scores.len() > 8 * k {
        out.extend(0..k);
        out.sort_unstable_by(|&a, &b| before(a, b));
        for i in k..scores.len() {
            // Later indices lose ties, so only a strictly higher score enters.
            if scores[i].total(&scores[out[k - 1]]).is_gt() {
                let at = out.partition_point(|&j| before(j, i).is_lt());
                out.insert(at, i);
                out.pop();
            }
        }
        return;
    }
    out.extend(0..scores.len());
    let order = |&a: &usize, &b: &usize| before(a, b);
    if k < scores.len() && k > 0 {
        out.select_nth_unstable_by(k - 1, order);
    }
    out.truncate(k);
    out.sort_unstable_by(order);
}

/// A score [`top_k`] ranks: a float, in IEEE total order.
pub trait Score: Copy {
    /// `self` against `other` in total order (NaN above every number).
    fn total(&self, other: &Self) -> std::cmp::Ordering;
}

impl Score for f64 {
    fn total(&self, other: &Self) -> std::cmp::Ordering {
        self.total_cmp(other)
    }
}

impl Score for f32 {
    fn total(&self, other: &Self) -> std::cmp::Ordering {
        self.total_cmp(other)
    }
}

/// Fills `slate` up to `k` distinct actions (of `n_actions`, fewer if
/// there are fewer) with the actions after its first one in index order,
/// wrapping around and skipping those already in it.
pub fn fill_slate(slate: &mut Vec<usize>, k: usize, n_actions: usize) {
    let target = k.min(n_actions);
    match *slate.as_slice() {
        [] => slate.extend(0..target),
        // Nothing to skip: the actions after the first, in a cycle.
        [first] => slate.extend(
            (1..n_actions)
                .map(|d| (first + d) % n_actions)
                .take(target.saturating_sub(1)),
        ),
        [first, ..] => {
            let mut next = first + 1;
            while slate.len() < target {
                let candidate = next % n_actions;
                if !slate.contains(&candidate) {
                    slate.push(candidate);
                }
                next += 1;
            }
        }
    }
}

/// Fills `out` with `k` distinct actions of `n`, uniformly at random.
pub fn random_slate(rng: &mut SimRng, n: usize, k: usize, out: &mut Vec<usize>) {
    out.clear();
    let k = k.min(n);
    while out.len() < k {
        let a = rng.random_range(0..n);
        if !out.contains(&a) {
            out.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_k_orders_by_score_then_index() {
        let mut out = Vec::new();
        super::top_k(&[1.0, 3.0, 3.0, 2.0, 0.5], 3, &mut out);
        assert_eq!(out, vec![1, 2, 3]);
        super::top_k(&[1.0, 3.0], 5, &mut out);
        assert_eq!(out, vec![1, 0]);
    }

    /// Slates fill in index order after their first action, wrapping and
    /// skipping what they hold, up to `k` or the number of actions.
    #[test]
    fn fill_slate_wraps_and_skips() {
        let cases: [(&[usize], usize, usize, &[usize]); 5] = [
            (&[], 3, 5, &[0, 1, 2]),
            (&[3], 3, 5, &[3, 4, 0]),
            (&[3], 9, 5, &[3, 4, 0, 1, 2]),
            (&[4, 0], 4, 5, &[4, 0, 1, 2]),
            (&[1, 2], 2, 5, &[1, 2]),
        ];
        for (start, k, n, want) in cases {
            let mut slate = start.to_vec();
            super::fill_slate(&mut slate, k, n);
            assert_eq!(slate, want, "{start:?}, k = {k}, n = {n}");
        }
    }
}
