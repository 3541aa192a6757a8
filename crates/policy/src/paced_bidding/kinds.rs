//! The paced bidders as scenario files name them: `greedy`, `even_pacing`,
//! `pid`, `dual_pacing`, `fixed_multiplier`, `q_pacing` and `dqn_pacing`. Each applies to
//! families that run budgeted auctions — those that provide a [`BidGrid`].

use super::{CreativeBandit, CreativeRule, PacedBidding, Pacing};
use crate::{
    Policy, PolicyError,
    dqn::{Dqn, DqnConfig},
    registry::{BuildContext, Built, Costed, PolicyKind, prefixed},
    tabular_q::{TabularQ, TabularQConfig},
};
use serde::{Deserialize, Serialize};
use shoplab_env::{Family, ObservationSpace, cost::PolicyCost, family::BidGrid};

/// `_creative_2`, `_thompson` or `_ucb1`, for policy names.
fn creative_suffix(rule: &CreativeRule) -> String {
    match rule {
        CreativeRule::Index(c) => format!("_creative_{c}"),
        CreativeRule::Bandit(CreativeBandit::Ucb1) => "_ucb1".into(),
        CreativeRule::Bandit(CreativeBandit::Thompson) => "_thompson".into(),
    }
}

fn needs_auctions(family: &dyn Family) -> Result<(), String> {
    match family.get::<BidGrid>() {
        Some(_) => Ok(()),
        None => Err(
            "it paces a budget over auctions, so it is only available in families \
                     that run budgeted auctions (ads)"
                .into(),
        ),
    }
}

fn grid<'a>(cx: &BuildContext<'a>) -> Result<&'a BidGrid, PolicyError> {
    cx.family
        .get::<BidGrid>()
        .ok_or_else(|| PolicyError::invalid("", "the family runs no budgeted auctions"))
}

/// A paced bidder with `pacing` and `creative` over the family's actions.
fn paced(
    cx: &BuildContext<'_>,
    pacing: Pacing,
    creative: CreativeRule,
) -> Result<Box<dyn Policy>, PolicyError> {
    let g = grid(cx)?;
    Ok(Box::new(PacedBidding::new(
        pacing,
        creative,
        &g.bid_multipliers,
        g.n_creatives,
        cx.observation_space,
        cx.seed,
    )?))
}

/// The grid index of the truthful multiplier (closest to 1).
fn truthful(cx: &BuildContext<'_>) -> Result<usize, PolicyError> {
    Ok(PacedBidding::nearest(&grid(cx)?.bid_multipliers, 1.0))
}

/// A paced bidder's [`PolicyKind`]: its name (with the creative rule's
/// suffix), whether it reads the state, that it needs budgeted auctions,
/// and a build that pairs the [`Pacing`] of `pacing` (an expression over
/// the config `c` and the context `cx`) with the config's creative rule;
/// any further items (a `cost`) go into the impl as they are.
macro_rules! paced_kind {
    (
        $kind:ident: $config:ty, $name:literal, $state:literal,
        |$c:ident, $cx:ident| $pacing:expr $(, $extra:item)*
    ) => {
        impl PolicyKind for $kind {
            type Config = $config;

            fn kind(&self) -> &'static str {
                $name
            }

            fn name(&self, config: &Self::Config) -> String {
                format!("{}{}", $name, creative_suffix(&config.creative))
            }

            fn state_dependent(&self) -> bool {
                $state
            }

            fn applies(&self, family: &dyn Family) -> Result<(), String> {
                needs_auctions(family)
            }

            fn build(&self, $c: &Self::Config, $cx: &BuildContext<'_>) -> Built {
                let pacing: Result<Pacing, PolicyError> = $pacing;
                paced($cx, pacing?, $c.creative)
            }

            $($extra)*
        }
    };
}

/// Settings of a bidder whose only choice is the creative rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeOnly {
    /// The creative: an index, `"ucb1"` or `"thompson"`.
    #[serde(default)]
    pub creative: CreativeRule,
}

/// `kind = "greedy"`: truthful bidding (λ = 1) until the budget runs out.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedyBidKind;

paced_kind!(GreedyBidKind: CreativeOnly, "greedy", false, |c, cx| Ok(
    Pacing::Fixed(truthful(cx)?)
));

/// `kind = "even_pacing"`: throttle to the even spend schedule.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvenPacingKind;

paced_kind!(EvenPacingKind: CreativeOnly, "even_pacing", false, |c, cx| Ok(
    Pacing::Even {
        truthful: truthful(cx)?
    }
));

/// Settings of `kind = "fixed_multiplier"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedMultiplierConfig {
    /// The multiplier λ, which must be on the grid.
    pub multiplier: f64,
    /// The creative: an index, `"ucb1"` or `"thompson"`.
    #[serde(default)]
    pub creative: CreativeRule,
}

/// `kind = "fixed_multiplier"`: always the same bid multiplier.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedMultiplierKind;

impl PolicyKind for FixedMultiplierKind {
    type Config = FixedMultiplierConfig;

    fn kind(&self) -> &'static str {
        "fixed_multiplier"
    }

    fn name(&self, config: &Self::Config) -> String {
        format!(
            "fixed_multiplier_{}{}",
            config.multiplier,
            creative_suffix(&config.creative)
        )
    }

    fn applies(&self, family: &dyn Family) -> Result<(), String> {
        needs_auctions(family)
    }

    fn build(&self, c: &Self::Config, cx: &BuildContext<'_>) -> Built {
        let grid = &grid(cx)?.bid_multipliers;
        let multiplier = c.multiplier;
        let index = grid
            .iter()
            .position(|m| (m - multiplier).abs() <= 1e-9 * m.abs().max(1.0))
            .ok_or_else(|| {
                PolicyError::invalid(
                    "multiplier",
                    format!("must be one of the bid multipliers {grid:?} (found {multiplier})"),
                )
            })?;
        paced(cx, Pacing::Fixed(index), c.creative)
    }
}

fn default_kp() -> f64 {
    0.3
}
fn default_ki() -> f64 {
    0.02
}
fn one() -> f64 {
    1.0
}

/// Settings of `kind = "pid"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PidConfig {
    /// Proportional gain.
    #[serde(default = "default_kp")]
    pub kp: f64,
    /// Integral gain.
    #[serde(default = "default_ki")]
    pub ki: f64,
    /// Derivative gain.
    #[serde(default)]
    pub kd: f64,
    /// The multiplier at the start of the day.
    #[serde(default = "one")]
    pub start_multiplier: f64,
    /// The creative: an index, `"ucb1"` or `"thompson"`.
    #[serde(default)]
    pub creative: CreativeRule,
}

impl Default for PidConfig {
    fn default() -> Self {
        Self {
            kp: default_kp(),
            ki: default_ki(),
            kd: 0.0,
            start_multiplier: one(),
            creative: CreativeRule::default(),
        }
    }
}

/// `kind = "pid"`: a PID pacing controller on `log λ`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PidKind;

paced_kind!(PidKind: PidConfig, "pid", false, |c, cx| pid(c, cx));

/// The PID controller of `c`, starting at the grid point nearest its
/// start multiplier.
fn pid(c: &PidConfig, cx: &BuildContext<'_>) -> Result<Pacing, PolicyError> {
    // Gains act on relative overspend (order 1) and move λ along the
    // grid: beyond ±1e6 they only saturate it.
    for (key, v) in [("kp", c.kp), ("ki", c.ki), ("kd", c.kd)] {
        shoplab_env::config::within(key, v, -1e6, 1e6)?;
    }
    let start_multiplier = c.start_multiplier;
    shoplab_env::config::scale("start_multiplier", start_multiplier, 1e6)?;
    let start = PacedBidding::nearest(&grid(cx)?.bid_multipliers, start_multiplier);
    let pid = Pacing::Pid {
        kp: c.kp,
        ki: c.ki,
        kd: c.kd,
        start,
        integral: 0.0,
        previous: 0.0,
    };
    Ok(pid)
}

/// Settings of `kind = "dual_pacing"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DualPacingConfig {
    /// Step size η of the shadow price per unit of relative overspend
    /// (default `1/√periods`, the order the regret bound asks for).
    #[serde(default)]
    pub step_size: Option<f64>,
    /// The multiplier at the start of the day (default 1, μ = 0: truthful
    /// bidding; the grid's nearest end when 1 is outside it).
    #[serde(default)]
    pub start_multiplier: Option<f64>,
    /// The creative: an index, `"ucb1"` or `"thompson"`.
    #[serde(default)]
    pub creative: CreativeRule,
}

/// `kind = "dual_pacing"`: adaptive pacing by dual subgradient descent on
/// the budget's shadow price (Balseiro and Gur, 2019).
#[derive(Debug, Clone, Copy, Default)]
pub struct DualPacingKind;

paced_kind!(DualPacingKind: DualPacingConfig, "dual_pacing", false, |c, cx| dual(c, cx));

/// Dual subgradient pacing with the step size and start of `c`.
fn dual(c: &DualPacingConfig, cx: &BuildContext<'_>) -> Result<Pacing, PolicyError> {
    let g = grid(cx)?;
    let step = c
        .step_size
        .unwrap_or(1.0 / f64::from(g.periods.max(1)).sqrt());
    if !(step > 0.0 && step <= 1e6) {
        return Err(PolicyError::invalid(
            "step_size",
            format!("must be in (0, 1000000] (found {step})"),
        ));
    }
    let (low, high) = (
        g.bid_multipliers[0],
        g.bid_multipliers[g.bid_multipliers.len() - 1],
    );
    // Unset: truthful bidding (λ = 1), or the grid's nearest end.
    let start_multiplier = c.start_multiplier.unwrap_or(1.0_f64.clamp(low, high));
    if !(low..=high).contains(&start_multiplier) {
        return Err(PolicyError::invalid(
            "start_multiplier",
            format!("must lie in the grid's range [{low}, {high}] (found {start_multiplier})"),
        ));
    }
    let start = start_multiplier - 1.0;
    let dual = Pacing::Dual {
        step,
        start,
        mu: start,
        last_spent: 0.0,
    };
    Ok(dual)
}

fn default_control() -> String {
    "level".into()
}
fn one_period() -> u32 {
    1
}

/// The learned pacing rule of `control` (`"level"` or `"step"`), with a
/// learner built by `learner` over a space and a number of actions.
fn learned_pacing(
    cx: &BuildContext<'_>,
    control: &str,
    decide_every: u32,
    learner: impl Fn(&ObservationSpace, usize) -> Result<Box<dyn Policy>, PolicyError>,
) -> Result<Pacing, PolicyError> {
    let g = grid(cx)?;
    let multipliers = &g.bid_multipliers;
    let (space, n) = learner_shape(cx, control)?;
    if control == "level" {
        if decide_every == 0 || decide_every > g.periods {
            return Err(PolicyError::invalid(
                "decide_every",
                format!(
                    "must be between 1 and the {} periods (found {decide_every})",
                    g.periods
                ),
            ));
        }
        Ok(Pacing::Learned {
            q: learner(&space, n)?,
            every: decide_every as usize,
            held: None,
        })
    } else {
        let start = PacedBidding::nearest(multipliers, 1.0);
        Ok(Pacing::Stepped {
            q: learner(&space, n)?,
            start,
            current: start,
            last: (start, 1),
        })
    }
}

/// The observation space and action count a pacer's learner sees: the
/// env's space and one action per multiplier with `"level"` control; the
/// space with the current multiplier added and three moves with `"step"`.
fn learner_shape(
    cx: &BuildContext<'_>,
    control: &str,
) -> Result<(ObservationSpace, usize), PolicyError> {
    let n = grid(cx)?.bid_multipliers.len();
    match control {
        "level" => Ok((cx.observation_space.clone(), n)),
        "step" => Ok((PacedBidding::stepped_space(cx.observation_space, n), 3)),
        other => Err(PolicyError::invalid(
            "control",
            format!("must be \"step\" or \"level\" (found {other:?})"),
        )),
    }
}

/// A learned pacer's settings and kind: `control`, `decide_every`, the
/// learner's settings under `$key` and the creative rule, in that order.
/// `build` makes the learner from its settings `l`, a space, a number of
/// actions and a seed; `cost` prices it from the same and the number of
/// training decisions.
macro_rules! learned_pacer {
    (
        $(#[$config_doc:meta])* $config:ident,
        $(#[$kind_doc:meta])* $kind:ident,
        $name:literal, $key:ident: $learner:ty, $learner_doc:literal,
        build = |$l:ident, $space:ident, $n:ident, $seed:ident| $build:expr,
        cost = |$cl:ident, $cspace:ident, $cn:ident, $decisions:pat_param| $cost:expr $(,)?
    ) => {
        $(#[$config_doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $config {
            /// `"level"` (default): learn λ itself from the state; `"step"`:
            /// learn moves of λ (down, stay, up) from the state and the
            /// current λ.
            #[serde(default = "default_control")]
            pub control: String,
            /// With `"level"` control: periods per decision (λ is held between).
            #[serde(default = "one_period")]
            pub decide_every: u32,
            #[doc = $learner_doc]
            #[serde(default)]
            pub $key: $learner,
            /// The creative: an index, `"ucb1"` or `"thompson"`.
            #[serde(default)]
            pub creative: CreativeRule,
        }

        impl Default for $config {
            fn default() -> Self {
                Self {
                    control: default_control(),
                    decide_every: one_period(),
                    $key: <$learner>::default(),
                    creative: CreativeRule::default(),
                }
            }
        }

        $(#[$kind_doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $kind;

        paced_kind!($kind: $config, $name, true, |c, cx| {
            let learner = |$space: &ObservationSpace, $n: usize| {
                let ($l, $seed) = (&c.$key, cx.seed);
                let built: Result<Box<dyn Policy>, PolicyError> = $build;
                built.map_err(|e| prefixed(stringify!($key), e))
            };
            learned_pacing(cx, &c.control, c.decide_every, learner)
        }, fn cost(&self, c: &Self::Config, cx: &BuildContext<'_>, training_decisions: f64) -> Costed {
            let ($cspace, $cn) = learner_shape(cx, &c.control)?;
            let ($cl, $decisions) = (&c.$key, training_decisions);
            let cost: Result<PolicyCost, PolicyError> = $cost;
            cost.map_err(|e| prefixed(stringify!($key), e))
        });
    };
}

learned_pacer!(
    /// Settings of `kind = "q_pacing"`.
    QPacingConfig,
    /// `kind = "q_pacing"`: tabular Q-learning over the multipliers, or over
    /// moves of the multiplier.
    QPacingKind,
    "q_pacing", q: TabularQConfig, "The Q-learning settings.",
    build = |q, space, n, seed| Ok(Box::new(TabularQ::new(q.clone(), space, n, seed)?)),
    cost = |q, space, n, _| q.cost(&space, n),
);

learned_pacer!(
    /// Settings of `kind = "dqn_pacing"`.
    DqnPacingConfig,
    /// `kind = "dqn_pacing"`: as `q_pacing`, with a Q-network over the
    /// observation's features instead of a table.
    DqnPacingKind,
    "dqn_pacing", dqn: DqnConfig, "The deep Q-learning settings.",
    build = |dqn, space, n, seed| Ok(Box::new(Dqn::new(dqn.clone(), space, n, seed)?)),
    cost = |dqn, space, n, decisions| dqn.cost(&space, n, decisions),
);
