//! The pricing MDP solved exactly: dynamic programming over (period, stock).
//!
//! Buyers in period `t` at price `p` are Poisson with mean `μ(t, p) = λ(t) · P(wtp ≥ p)`
//! (Poisson thinning), sales are `min(stock, buyers)`, and the season's value
//! satisfies the Bellman equation (Gallego and van Ryzin, 1994, in discrete time):
//!
//! ```text
//! V(H, s) = salvage · s                       (end of season)
//! V(t, 0) = 0                                 (sold out)
//! V(t, s) = max_p  Σ_{d<s} P(D=d) [(p − c)·d + V(t+1, s−d)]
//!                + P(D≥s) [(p − c)·s + V(t+1, 0)],      D ~ Poisson(μ(t, p))
//! ```
//!
//! `V(0, inventory)` is the optimal expected return, so regret against it is
//! exact. The pricing family solves it for its reference value, and the
//! `oracle` policy (`shoplab_policy::pricing_oracle`) plays the optimal price
//! table. It lives here, beside the other exact solutions ([`crate::mdp`]),
//! so that both the simulator and the policies can use it.

use crate::argmax;

/// The pricing MDP as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingProblem {
    /// Periods in the season.
    pub horizon: u32,
    /// Starting stock.
    pub inventory: u32,
    /// The price grid.
    pub prices: Vec<f64>,
    /// Cost of each unit sold.
    pub cost: f64,
    /// Value of each unit left at the end.
    pub salvage_value: f64,
    /// `expected_buyers[t][a]`: mean buyers in period `t` at price `prices[a]`.
    pub expected_buyers: Vec<Vec<f64>>,
}

/// The solved problem: optimal values and prices for every (period, stock).
#[derive(Debug, Clone, PartialEq)]
pub struct PricingSolution {
    inventory: u32,
    values: Vec<f64>,
    best: Vec<u16>,
}

impl PricingSolution {
    /// `V(t, s)`, for `t` in `0..=horizon`.
    pub fn value(&self, t: u32, stock: u32) -> f64 {
        self.values[t as usize * (self.inventory as usize + 1) + stock as usize]
    }

    /// The optimal price index at period `t` with `stock` units left.
    pub fn best_action(&self, t: u32, stock: u32) -> usize {
        usize::from(self.best[t as usize * (self.inventory as usize + 1) + stock as usize])
    }

    /// The starting stock of the problem it solves.
    pub fn inventory(&self) -> u32 {
        self.inventory
    }

    /// Periods in the season.
    pub fn horizon(&self) -> u32 {
        (self.values.len() / (self.inventory as usize + 1)) as u32 - 1
    }

    /// The optimal expected return of a season, `V(0, inventory)`.
    pub fn optimal_value(&self) -> f64 {
        self.value(0, self.inventory)
    }
}

/// Poisson probabilities `P(D = d)` for `d = 0..=n` and tails `P(D ≥ s)` for
/// `s = 0..=n`, computed in log space so large means do not underflow.
fn poisson_table(mean: f64, n: usize) -> (Vec<f64>, Vec<f64>) {
    let pmf: Vec<f64> = (0..=n)
        .map(|d| {
            if mean == 0.0 {
                f64::from(u8::from(d == 0))
            } else {
                let d = d as f64;
                (-mean + d * mean.ln() - libm::lgamma(d + 1.0)).exp()
            }
        })
        .collect();
    let mut tail = Vec::with_capacity(n + 1);
    let mut below = 0.0_f64;
    for p in &pmf {
        tail.push((1.0 - below).max(0.0));
        below += p;
    }
    (pmf, tail)
}

impl PricingProblem {
    /// Checks the table's shape.
    fn check_shape(&self) {
        assert_eq!(self.expected_buyers.len(), self.horizon as usize);
        assert!(
            self.expected_buyers
                .iter()
                .all(|r| r.len() == self.prices.len())
        );
        assert!(self.prices.len() <= usize::from(u16::MAX));
    }

    /// Expected value of pricing `prices[a]` in period `t` for every stock level,
    /// given the next period's values `next[s]`.
    fn action_values(&self, t: usize, a: usize, next: &[f64], out: &mut [f64]) {
        let n = self.inventory as usize;
        let margin = self.prices[a] - self.cost;
        let (pmf, tail) = poisson_table(self.expected_buyers[t][a], n);
        // Beyond `reach`, P(D = d) is below 1e-300 and contributes nothing.
        let reach = pmf.iter().rposition(|&p| p > 1e-300).unwrap_or(0);
        for (s, slot) in out.iter_mut().enumerate() {
            let mut v = tail[s] * (margin * s as f64 + next[0]);
            for (d, &p) in pmf.iter().enumerate().take(s.min(reach + 1)) {
                v += p * (margin * d as f64 + next[s - d]);
            }
            *slot = v;
        }
    }

    /// `Q*(t, stock, a)`: the expected return of pricing `prices[a]` in
    /// period `t` with `stock` left and acting optimally after, from the
    /// problem's `solution` (`t` below the horizon).
    pub fn q_value(&self, solution: &PricingSolution, t: u32, stock: u32, a: usize) -> f64 {
        let n = self.inventory as usize;
        let next: Vec<f64> = (0..=self.inventory)
            .map(|s| solution.value(t + 1, s))
            .collect();
        let mut out = vec![0.0; n + 1];
        self.action_values(t as usize, a, &next, &mut out);
        out[stock as usize]
    }

    /// Solves the Bellman equation by backward induction.
    ///
    /// Work is `horizon × prices × (inventory + 1) × min(inventory, reach)`,
    /// where `reach` is where the Poisson probabilities vanish; memory is
    /// `(horizon + 1) × (inventory + 1)` values.
    pub fn solve(&self) -> PricingSolution {
        self.check_shape();
        let width = self.inventory as usize + 1;
        let h = self.horizon as usize;
        let mut values = vec![0.0; (h + 1) * width];
        let mut best = vec![0u16; h * width];
        for (s, v) in values[h * width..].iter_mut().enumerate() {
            *v = self.salvage_value * s as f64;
        }
        let mut candidate = vec![0.0; width];
        let mut q = vec![vec![0.0; self.prices.len()]; width];
        for t in (0..h).rev() {
            let (now, next) = values.split_at_mut((t + 1) * width);
            for a in 0..self.prices.len() {
                self.action_values(t, a, &next[..width], &mut candidate);
                for (row, &v) in q.iter_mut().zip(&candidate) {
                    row[a] = v;
                }
            }
            for s in 1..width {
                let a = argmax(&q[s]);
                best[t * width + s] = a as u16;
                now[t * width + s] = q[s][a];
            }
        }
        PricingSolution {
            inventory: self.inventory,
            values,
            best,
        }
    }

    /// Exact expected return of the Markov policy `policy(t, stock) -> price index`.
    pub fn evaluate(&self, policy: impl Fn(u32, u32) -> usize) -> f64 {
        self.check_shape();
        let width = self.inventory as usize + 1;
        let mut next: Vec<f64> = (0..width).map(|s| self.salvage_value * s as f64).collect();
        let mut now = vec![0.0; width];
        let mut per_action = vec![vec![0.0; width]; self.prices.len()];
        for t in (0..self.horizon as usize).rev() {
            for (a, values) in per_action.iter_mut().enumerate() {
                self.action_values(t, a, &next, values);
            }
            now[0] = 0.0;
            for s in 1..width {
                now[s] = per_action[policy(t as u32, s as u32)][s];
            }
            std::mem::swap(&mut now, &mut next);
        }
        next[width - 1]
    }

    /// Exact expected return of the deterministic policy
    /// `policy(t, stock, last_sales) -> price index` that may also read the
    /// units sold in the period before (0 in the first period), by backward
    /// induction over (period, stock, last sales): what the pricing env's
    /// observation `[period, stock, last_sales]` holds.
    ///
    /// Only states with `stock + last_sales ≤ inventory` can occur, so only
    /// they are visited: work is about `horizon × (inventory + 1)² / 2`
    /// policy calls and `× min(inventory, reach)` for the expectations;
    /// memory is `2 × (inventory + 1)²` values.
    pub fn evaluate_observed(&self, policy: impl Fn(u32, u32, u32) -> usize) -> f64 {
        self.check_shape();
        let n = self.inventory as usize;
        let w = n + 1;
        // values[stock * w + last_sales], at the end of the season.
        let mut next: Vec<f64> = (0..w * w)
            .map(|i| self.salvage_value * (i / w) as f64)
            .collect();
        let mut now = vec![0.0; w * w];
        for t in (0..self.horizon as usize).rev() {
            let tables: Vec<_> = self.expected_buyers[t]
                .iter()
                .map(|&mean| {
                    let (pmf, tail) = poisson_table(mean, n);
                    let reach = pmf.iter().rposition(|&p| p > 1e-300).unwrap_or(0);
                    (pmf, tail, reach)
                })
                .collect();
            for s in 1..w {
                for l in 0..w - s {
                    let a = policy(t as u32, s as u32, l as u32);
                    let (pmf, tail, reach) = &tables[a];
                    let margin = self.prices[a] - self.cost;
                    // Sold out: stock 0, and `s` units sold this period.
                    let mut v = tail[s] * (margin * s as f64 + next[s]);
                    for (d, &p) in pmf.iter().enumerate().take(s.min(reach + 1)) {
                        v += p * (margin * d as f64 + next[(s - d) * w + d]);
                    }
                    now[s * w + l] = v;
                }
            }
            std::mem::swap(&mut now, &mut next);
        }
        next[n * w]
    }

    /// The fixed price with the highest exact expected return, found by
    /// evaluating every fixed-price policy ([`evaluate`](Self::evaluate)):
    /// its index and value. Ties go to the lower price.
    pub fn best_fixed_price(&self) -> (usize, f64) {
        (0..self.prices.len())
            .map(|a| (a, self.evaluate(|_, _| a)))
            .fold((0, f64::NEG_INFINITY), |best, (a, v)| {
                if v > best.1 { (a, v) } else { best }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Policy evaluation over (period, stock, last sales) agrees with the
    /// one over (period, stock) for policies that ignore last sales (to
    /// rounding, 1e-12 relative), gives V* for the optimal policy, and
    /// stays below V* for one that reads last sales.
    #[test]
    fn evaluation_with_last_sales_agrees_with_the_markov_one() {
        let p = problem(6, 9, vec![1.0, 1.5, 2.0, 3.0], 1.2);
        let solution = p.solve();
        let v_star = solution.optimal_value();
        let optimal = p.evaluate_observed(|t, s, _| solution.best_action(t, s));
        assert!(
            (optimal - v_star).abs() <= 1e-12 * v_star,
            "{optimal} vs {v_star}"
        );
        let by_stock = |t: u32, s: u32| ((t + s) % 4) as usize;
        let markov = p.evaluate(by_stock);
        let observed = p.evaluate_observed(|t, s, _| by_stock(t, s));
        assert!((markov - observed).abs() <= 1e-12 * markov.abs());
        let reactive = p.evaluate_observed(|_, _, l| if l >= 2 { 3 } else { 1 });
        assert!(reactive < v_star && reactive > 0.0, "{reactive}");
    }

    fn logit(p: f64) -> f64 {
        1.0 / (1.0 + (-(2.0 - p)).exp())
    }

    fn problem(horizon: u32, inventory: u32, prices: Vec<f64>, rate: f64) -> PricingProblem {
        PricingProblem {
            horizon,
            inventory,
            expected_buyers: (0..horizon)
                .map(|t| {
                    prices
                        .iter()
                        .map(|&p| rate * (1.0 + 0.3 * f64::from(t)) * logit(p))
                        .collect()
                })
                .collect(),
            prices,
            cost: 0.3,
            salvage_value: 0.2,
        }
    }

    /// Forward enumeration of every demand outcome: an independent way to get
    /// a Markov policy's expected return.
    fn enumerate(p: &PricingProblem, policy: &[usize], t: u32, stock: u32) -> f64 {
        if t == p.horizon {
            return p.salvage_value * f64::from(stock);
        }
        if stock == 0 {
            return 0.0;
        }
        let a = policy[(t * (p.inventory + 1) + stock) as usize];
        let mean = p.expected_buyers[t as usize][a];
        let margin = p.prices[a] - p.cost;
        let mut total = 0.0;
        let mut mass = 0.0;
        let mut pmf = (-mean).exp();
        for d in 0..stock {
            total += pmf * (margin * f64::from(d) + enumerate(p, policy, t + 1, stock - d));
            mass += pmf;
            pmf *= mean / f64::from(d + 1);
        }
        total + (1.0 - mass) * (margin * f64::from(stock) + enumerate(p, policy, t + 1, 0))
    }

    /// The DP value equals the best of all deterministic Markov policies,
    /// found by brute force, on tiny instances.
    #[test]
    fn dp_equals_brute_force() {
        for (horizon, inventory, prices) in [
            (2, 2, vec![1.0, 2.5]),
            (3, 2, vec![0.5, 2.0, 3.5]),
            (2, 3, vec![1.0, 2.0, 3.0]),
        ] {
            let p = problem(horizon, inventory, prices, 1.5);
            let states = (horizon * (inventory + 1)) as usize;
            let n = p.prices.len();
            let mut best = f64::NEG_INFINITY;
            for code in 0..n.pow(states as u32) {
                let policy: Vec<usize> = (0..states).map(|i| code / n.pow(i as u32) % n).collect();
                best = best.max(enumerate(&p, &policy, 0, inventory));
            }
            let solution = p.solve();
            assert!(
                (solution.optimal_value() - best).abs() < 1e-9,
                "DP {} vs brute force {best}",
                solution.optimal_value()
            );
            let played = p.evaluate(|t, s| solution.best_action(t, s));
            assert!((played - best).abs() < 1e-9);
        }
    }

    /// The best fixed price equals the best of every fixed-price policy
    /// evaluated by forward enumeration of all demand outcomes (independent
    /// of the backward evaluation it uses), on instances where the best
    /// price differs from the greedy one-period price.
    #[test]
    fn best_fixed_price_matches_enumeration() {
        for (horizon, inventory, rate) in [(3, 4, 1.5), (4, 3, 2.5), (2, 6, 4.0)] {
            let p = problem(horizon, inventory, vec![0.5, 1.5, 2.5, 3.5], rate);
            let states = (horizon * (inventory + 1)) as usize;
            let enumerated: Vec<f64> = (0..p.prices.len())
                .map(|a| enumerate(&p, &vec![a; states], 0, inventory))
                .collect();
            let (best, value) = p.best_fixed_price();
            let top = enumerated.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!((value - top).abs() < 1e-9, "{value} vs {top}");
            assert_eq!(enumerated[best], top);
            assert!(value <= p.solve().optimal_value() + 1e-12);
        }
    }

    /// With unlimited stock, one period and the logit purchase probability
    /// `1/(1 + e^−(2 − p))`, revenue per shopper is `p·q(p)`, maximised at
    /// `p* = (1 + W(e^(α−1)))/β = 2` with `q = 0.5`: 1.0 per shopper.
    #[test]
    fn closed_form_logit_price() {
        let prices: Vec<f64> = (1..=8).map(|i| 0.5 * f64::from(i)).collect();
        let rate = 10.0;
        let p = PricingProblem {
            horizon: 1,
            inventory: 500,
            expected_buyers: vec![prices.iter().map(|&x| rate * logit(x)).collect()],
            prices,
            cost: 0.0,
            salvage_value: 0.0,
        };
        let solution = p.solve();
        assert_eq!(p.prices[solution.best_action(0, 500)], 2.0);
        assert!((solution.optimal_value() - rate * 1.0).abs() < 1e-9);
    }
}
