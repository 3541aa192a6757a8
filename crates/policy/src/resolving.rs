//! Re-solving the fluid (deterministic) pricing problem every period: the
//! revenue-management heuristic a learner should beat.
//!
//! Replace random demand by its expectation and the pricing MDP becomes a
//! linear program (Gallego and van Ryzin, 1994; re-solving as in Jasin,
//! 2014). With `x[τ][a]` the share of period `τ` priced at `prices[a]`,
//! `μ(τ, a)` the expected buyers and `m_a = prices[a] − cost − salvage` the
//! margin over keeping a unit:
//!
//! ```text
//! maximise   Σ_τ Σ_a m_a μ(τ, a) x[τ][a]
//! subject to Σ_τ Σ_a μ(τ, a) x[τ][a] ≤ stock,   Σ_a x[τ][a] = 1,   x ≥ 0
//! ```
//!
//! over the periods left. Each period's feasible (demand, revenue) pairs are
//! the convex hull of its price points, and the single stock constraint makes
//! the LP a fractional knapsack: start every period at its most profitable
//! price and, while expected demand exceeds the stock, move along the periods'
//! upper hulls toward less demand, cheapest revenue lost per unit of demand
//! first (segments that cost the same are moved together, by the same
//! fraction). The policy solves it afresh in every period with the stock and
//! periods left, and posts the price that carries the largest share of the
//! current period (the higher price on a tie, which keeps stock).

use crate::registry::{NoSettings, PolicyKind};
use crate::{
    Policy, PolicyError,
    pricing_oracle::SeasonFeatures,
    registry::{BuildContext, Built, Costed},
};
use shoplab_env::{Family, Observation, cost::PolicyCost, inventory::PricingProblem};
use std::sync::Arc;

/// One move along a period's upper hull: from price `from` to price `to`
/// (less demand), losing `slope` revenue per unit of demand it removes.
#[derive(Debug, Clone, Copy)]
struct Move {
    period: usize,
    to: usize,
    demand: f64,
    slope: f64,
}

/// Each period's price shares in the fluid LP over periods `start..horizon`
/// with `stock` units: `shares[τ − start]` as (price index, share) pairs.
pub fn fluid_shares(problem: &PricingProblem, start: u32, stock: u32) -> Vec<Vec<(usize, f64)>> {
    let margin = problem.cost + problem.salvage_value;
    let periods = start as usize..problem.horizon as usize;
    let mut shares = Vec::with_capacity(periods.len());
    let mut moves = Vec::new();
    let mut demand = 0.0;
    for (i, t) in periods.enumerate() {
        let mu = &problem.expected_buyers[t];
        let points: Vec<(f64, f64)> = (0..problem.prices.len())
            .map(|a| (mu[a], (problem.prices[a] - margin) * mu[a]))
            .collect();
        let hull = upper_hull_leftward(&points);
        for pair in hull.windows(2) {
            let (from, to) = (points[pair[0]], points[pair[1]]);
            moves.push(Move {
                period: i,
                to: pair[1],
                demand: from.0 - to.0,
                slope: (from.1 - to.1) / (from.0 - to.0),
            });
        }
        demand += points[hull[0]].0;
        shares.push(vec![(hull[0], 1.0)]);
    }
    // Cheapest moves first; a period's own moves are already in that order
    // (the hull is concave), and the stable sort keeps them so on ties.
    moves.sort_by(|a, b| a.slope.total_cmp(&b.slope));
    let mut excess = demand - f64::from(stock);
    let mut i = 0;
    while excess > 0.0 && i < moves.len() {
        let group = moves[i..]
            .iter()
            .take_while(|m| m.slope == moves[i].slope)
            .count();
        let total: f64 = moves[i..i + group].iter().map(|m| m.demand).sum();
        let fraction = (excess / total).min(1.0);
        for m in &moves[i..i + group] {
            let period = &mut shares[m.period];
            // Move `fraction` of the share that sits at the move's start
            // (the period's last price so far) to its end.
            let (_, share) = period.last_mut().expect("a period has a price");
            let moved = *share * fraction;
            *share -= moved;
            period.push((m.to, moved));
        }
        excess -= total * fraction;
        i += group;
    }
    for period in &mut shares {
        period.retain(|&(_, share)| share > 0.0);
    }
    shares
}

/// Indices of the upper concave hull of `points` (demand, revenue), from the
/// most profitable point (least demand among equals) toward less demand.
fn upper_hull_leftward(points: &[(f64, f64)]) -> Vec<usize> {
    let start = (0..points.len())
        .reduce(|best, a| {
            let (p, q) = (points[a], points[best]);
            if p.1 > q.1 || (p.1 == q.1 && p.0 < q.0) {
                a
            } else {
                best
            }
        })
        .expect("at least one price");
    // Candidates with less demand than the start, by decreasing demand.
    let mut left: Vec<usize> = (0..points.len())
        .filter(|&a| points[a].0 < points[start].0)
        .collect();
    left.sort_by(|&a, &b| points[b].0.total_cmp(&points[a].0));
    let mut hull = vec![start];
    for a in left {
        // Keep the hull concave: drop the last vertex while it lies on or
        // below the line from the one before it to `a` (with demand falling
        // along the hull, that is where the cross product is not positive).
        while hull.len() >= 2 {
            let (o, m) = (points[hull[hull.len() - 2]], points[hull[hull.len() - 1]]);
            let p = points[a];
            let cross = (m.0 - o.0) * (p.1 - o.1) - (m.1 - o.1) * (p.0 - o.0);
            if cross <= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(a);
    }
    hull
}

/// The price index the re-solving heuristic posts in period `t` with
/// `stock` units left: the largest share of period `t` in the fluid LP.
pub fn resolved_price(problem: &PricingProblem, t: u32, stock: u32) -> usize {
    let shares = fluid_shares(problem, t, stock);
    shares[0]
        .iter()
        .copied()
        .reduce(|best, (a, share)| {
            if share > best.1 || (share == best.1 && a > best.0) {
                (a, share)
            } else {
                best
            }
        })
        .map_or(0, |(a, _)| a)
}

/// Re-solves the fluid LP in every period and posts its price
/// ([`resolved_price`]); deterministic, and it learns nothing.
#[derive(Debug, Clone)]
pub struct FluidResolving {
    problem: Arc<PricingProblem>,
    features: SeasonFeatures,
}

impl FluidResolving {
    /// Plays `problem`, reading the period and stock from the features of
    /// the same names in `space`.
    pub fn new(
        problem: Arc<PricingProblem>,
        space: &shoplab_env::ObservationSpace,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            features: SeasonFeatures::find(space)?,
            problem,
        })
    }
}

impl Policy for FluidResolving {
    fn act(&mut self, obs: &Observation) -> usize {
        self.greedy(obs)
    }

    fn greedy(&self, obs: &Observation) -> usize {
        let p = &self.problem;
        let (t, s) = self.features.read(obs, p.horizon, p.inventory);
        resolved_price(p, t, s)
    }
}

/// `kind = "fluid_resolving"`: re-solves the fluid LP each period, for
/// families that provide their pricing problem (`Arc<PricingProblem>`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FluidResolvingKind;

impl PolicyKind for FluidResolvingKind {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "fluid_resolving"
    }

    fn state_dependent(&self) -> bool {
        true
    }

    fn applies(&self, family: &dyn Family) -> Result<(), String> {
        match family.get::<Arc<PricingProblem>>() {
            Some(_) => Ok(()),
            None => {
                Err("it needs a family with a pricing problem's expected demand (pricing)".into())
            }
        }
    }

    /// Each decision re-solves the LP over the periods left: every
    /// period's upper hull and a sort of the moves, about
    /// `20 · horizon · prices · log₂(horizon · prices)` operations at most.
    fn cost(&self, _: &Self::Config, cx: &BuildContext<'_>, _: f64) -> Costed {
        let size = cx
            .family
            .get::<Arc<PricingProblem>>()
            .map_or(1.0, |p| f64::from(p.horizon) * p.prices.len() as f64);
        let work = 20.0 * size * size.log2().max(1.0);
        Ok(PolicyCost {
            bytes: 64.0 * size + 65_536.0,
            train_work: work,
            act_work: work,
        })
    }

    fn build(&self, _: &Self::Config, cx: &BuildContext<'_>) -> Built {
        let problem = cx
            .family
            .get::<Arc<PricingProblem>>()
            .ok_or_else(|| PolicyError::invalid("", "the family has no pricing problem"))?;
        Ok(Box::new(FluidResolving::new(
            Arc::clone(problem),
            cx.observation_space,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prices 1, 2, 3 at no cost; `mu[t]` expected buyers per price.
    fn problem(mu: Vec<Vec<f64>>, stock: u32) -> PricingProblem {
        PricingProblem {
            horizon: mu.len() as u32,
            inventory: stock,
            prices: vec![1.0, 2.0, 3.0],
            cost: 0.0,
            salvage_value: 0.0,
            expected_buyers: mu,
        }
    }

    fn share(shares: &[(usize, f64)], a: usize) -> f64 {
        shares.iter().filter(|s| s.0 == a).map(|s| s.1).sum()
    }

    /// Worked by hand. Period 0 sells 6, 4, 1 at prices 1, 2, 3 (revenue
    /// 6, 8, 3): best price 2 with demand 4, and one hull move to price 3
    /// costing 5/3 per unit. Period 1 sells 6, 2, 1 (revenue 6, 4, 3): best
    /// price 1 with demand 6; moves to price 2 (cost 0.5 per unit, 4 units)
    /// then to price 3 (cost 1 per unit, 1 unit).
    /// - stock 12 ≥ demand 10: each period at its best price;
    /// - stock 8: the 2 excess units come off period 1's cheapest move, half
    ///   of its 4 units: period 1 half at price 1, half at 2; period 0 at 2;
    /// - stock 4: excess 6 = 4 (period 1 to price 2, cost 0.5) + 1 (period 1
    ///   to price 3, cost 1) + 1 of period 0's 3 units (cost 5/3): period 0
    ///   posts 2 with share 2/3 and 3 with share 1/3.
    #[test]
    fn matches_the_hand_computed_instance() {
        let p = problem(vec![vec![6.0, 4.0, 1.0], vec![6.0, 2.0, 1.0]], 12);
        let at = |stock| fluid_shares(&p, 0, stock);
        assert_eq!(at(12), vec![vec![(1, 1.0)], vec![(0, 1.0)]]);
        let s = at(8);
        assert_eq!(s[0], vec![(1, 1.0)]);
        assert!((share(&s[1], 0) - 0.5).abs() < 1e-12 && (share(&s[1], 1) - 0.5).abs() < 1e-12);
        let s = at(4);
        assert!((share(&s[0], 1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((share(&s[0], 2) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s[1], vec![(2, 1.0)]);
        assert_eq!(resolved_price(&p, 0, 12), 1);
        assert_eq!(resolved_price(&p, 0, 4), 1);
        // With one unit the excess (9) exceeds every move (3 + 5 = 8): all
        // periods end at their least-demand price, 3.
        assert_eq!(resolved_price(&p, 0, 1), 2);
        // Re-solved in period 1 with 3 units: 3 of the 4 units of the move
        // to price 2 (share 3/4), so it posts 2.
        let s = fluid_shares(&p, 1, 3);
        assert!((share(&s[0], 1) - 0.75).abs() < 1e-12);
        assert_eq!(resolved_price(&p, 1, 3), 1);
    }

    /// A price whose (demand, revenue) point lies below the chord of its
    /// neighbours is never part of the fluid solution.
    #[test]
    fn points_below_the_hull_are_skipped() {
        let points = [(6.0, 6.0), (3.0, 3.5), (1.0, 3.0)];
        assert_eq!(upper_hull_leftward(&points), vec![0, 2]);
        let points = [(6.0, 6.0), (3.0, 5.0), (1.0, 3.0)];
        assert_eq!(upper_hull_leftward(&points), vec![0, 1, 2]);
    }

    /// Identical periods with tied moves are moved by the same fraction:
    /// the LP's symmetric solution.
    #[test]
    fn tied_moves_are_shared_equally() {
        let p = problem(vec![vec![6.0, 4.0, 1.0]; 2], 6);
        // Demand 8, stock 6: 2 of the 6 units of the two tied moves, 1/3 each.
        let s = fluid_shares(&p, 0, 6);
        for period in &s {
            assert!((share(period, 2) - 1.0 / 3.0).abs() < 1e-12);
        }
        assert_eq!(resolved_price(&p, 0, 6), 1);
        assert_eq!(resolved_price(&p, 0, 3), 2);
    }

    /// The fluid LP's value bounds the true optimum from above (Gallego and
    /// van Ryzin), and the heuristic's exact expected return, from the DP's
    /// policy evaluation, lies below the optimum.
    #[test]
    fn fluid_value_bounds_the_optimum() {
        let mu = |t: f64| vec![5.0 + t, 3.0 + 0.5 * t, 1.0];
        let p = problem((0..6).map(|t| mu(f64::from(t))).collect(), 12);
        let shares = fluid_shares(&p, 0, 12);
        let fluid: f64 = shares
            .iter()
            .enumerate()
            .flat_map(|(t, s)| s.iter().map(move |&(a, x)| (t, a, x)))
            .map(|(t, a, x)| x * p.prices[a] * p.expected_buyers[t][a])
            .sum();
        let optimum = p.solve().optimal_value();
        let heuristic = p.evaluate(|t, s| resolved_price(&p, t, s));
        assert!(fluid >= optimum - 1e-9, "fluid {fluid} vs V* {optimum}");
        assert!(heuristic <= optimum + 1e-9);
        assert!(heuristic > 0.9 * optimum, "{heuristic} vs {optimum}");
    }
}
