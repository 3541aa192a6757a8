//! The env checker fails, with a message naming the rule, on envs built to
//! break each rule, and passes on envs that keep them all.
//!
//! Guards issue #9 (registries and the env checker), must-hold 4.

use rand::RngExt;
use shoplab_env::{
    ActionSpace, Env, EnvBox, Feature, Info, Observation, ObservationSpace, Step,
    batch::{BatchEnv, BatchStep},
    checker::{CheckError, check_env},
    seed::{SimRng, rng_from_seed},
};

/// The rule a toy env breaks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Broken {
    Nothing,
    NoActions,
    Categories,
    TerminalOutside,
    Fraction,
    ObservationLength,
    InfoLength,
    BothEnded,
    NanReward,
    NeverEnds,
    SeedIgnored,
    Unseeded,
}

/// A walk of `LENGTH` steps: the observation is the step count and a noisy
/// level drawn from the seed; the reward is the level.
struct Toy {
    broken: Broken,
    space: ObservationSpace,
    actions: ActionSpace,
    t: u32,
    rng: SimRng,
    /// Shared across resets, for the unseeded env.
    drift: u64,
}

const LENGTH: u32 = 6;

impl Toy {
    fn new(broken: Broken) -> Self {
        let feature = |name, high| Feature {
            name,
            low: 0.0,
            high,
            integer: name == "t",
            suggested_bins: 2,
        };
        let n = if broken == Broken::NoActions { 0 } else { 3 };
        let mut actions = ActionSpace::labelled((0..n).map(|a| a.to_string()).collect());
        if broken == Broken::Categories {
            actions.categories = vec![0, 1];
        }
        Self {
            broken,
            space: ObservationSpace {
                features: vec![feature("t", (LENGTH - 1) as f32), feature("level", 1.0)],
            },
            actions,
            t: 0,
            rng: rng_from_seed(0),
            drift: 0,
        }
    }

    fn observe(&mut self) -> Observation {
        let level = if self.broken == Broken::SeedIgnored {
            0.5
        } else {
            self.rng.random_range(0.0..1.0)
        };
        let mut t = self.t.min(LENGTH - 1) as f32;
        if self.broken == Broken::TerminalOutside {
            t = self.t as f32;
        }
        if self.broken == Broken::Fraction && self.t == 2 {
            t += 0.5;
        }
        let mut features = vec![t, level];
        if self.broken == Broken::ObservationLength && self.t == 3 {
            features.push(0.0);
        }
        Observation { features }
    }
}

impl Env for Toy {
    fn observation_space(&self) -> &ObservationSpace {
        &self.space
    }
    fn action_space(&self) -> &ActionSpace {
        &self.actions
    }
    fn metric_names(&self) -> &[&'static str] {
        &["steps"]
    }
    fn reset(&mut self, seed: u64) -> (Observation, Info) {
        self.t = 0;
        self.drift += 1;
        let seed = if self.broken == Broken::Unseeded {
            seed ^ self.drift
        } else {
            seed
        };
        self.rng = rng_from_seed(seed);
        (self.observe(), vec![0.0])
    }
    fn step(&mut self, action: usize) -> Step {
        assert!(action < self.actions.n());
        self.t += 1;
        let obs = self.observe();
        let done = self.t >= LENGTH && self.broken != Broken::NeverEnds;
        Step {
            reward: if self.broken == Broken::NanReward && self.t == 4 {
                f64::NAN
            } else {
                f64::from(obs.features[1])
            },
            obs,
            terminated: done,
            truncated: done && self.broken == Broken::BothEnded,
            info: if self.broken == Broken::InfoLength {
                vec![1.0, 2.0]
            } else {
                vec![1.0]
            },
        }
    }
}

fn check(broken: Broken) -> Result<String, String> {
    let mut env = EnvBox::Single(Box::new(Toy::new(broken)));
    let mut twin = EnvBox::Single(Box::new(Toy::new(broken)));
    check_env(&mut env, &mut twin, 11, 3)
        .map(|s| format!("{s:?}"))
        .map_err(|e| e.to_string())
}

#[test]
fn a_well_behaved_env_passes() {
    let summary = check(Broken::Nothing).unwrap();
    assert!(summary.contains("episodes: 3"), "{summary}");
}

#[test]
fn each_broken_rule_is_named() {
    let cases: [(Broken, &[&str]); 11] = [
        (Broken::NoActions, &["no actions"]),
        (Broken::Categories, &["2 categories for 3 actions"]),
        (
            Broken::TerminalOutside,
            &["step 6", "terminal observation", "`t` = 6", "[0, 5]"],
        ),
        (Broken::Fraction, &["step 2", "integer feature `t`", "2.5"]),
        (
            Broken::ObservationLength,
            &["step 3", "3 features", "declares 2"],
        ),
        (
            Broken::InfoLength,
            &["step 1", "info has 2 values", "1 metrics"],
        ),
        (Broken::BothEnded, &["step 6", "terminated and truncated"]),
        (Broken::NanReward, &["step 4", "not finite"]),
        (Broken::NeverEnds, &["did not end within 1000000 steps"]),
        (Broken::SeedIgnored, &["determinism", "seeds 11 and 12"]),
        (Broken::Unseeded, &["determinism", "same seed 11"]),
    ];
    for (broken, parts) in cases {
        let message = check(broken).expect_err(&format!("{broken:?} passed the check"));
        for part in parts {
            assert!(
                message.contains(part),
                "{broken:?}: {part:?} not in {message:?}"
            );
        }
    }
}

/// The rule a toy batch env breaks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum BatchBroken {
    Nothing,
    SlateTooLarge,
    ShortRewards,
    LiveSlotAtEnd,
    OutsideSpace,
}

/// `SLOTS` sessions of a coin-flip click, stepped together for `TICKS` ticks.
struct ToyBatch {
    broken: BatchBroken,
    space: ObservationSpace,
    actions: ActionSpace,
    tick: u32,
    rng: SimRng,
}

const SLOTS: usize = 4;
const TICKS: u32 = 5;

impl ToyBatch {
    fn new(broken: BatchBroken) -> Self {
        Self {
            broken,
            space: ObservationSpace {
                features: vec![Feature {
                    name: "last_click",
                    low: 0.0,
                    high: 1.0,
                    integer: true,
                    suggested_bins: 2,
                }],
            },
            actions: ActionSpace::labelled((0..3).map(|a| a.to_string()).collect()),
            tick: 0,
            rng: rng_from_seed(0),
        }
    }
}

impl BatchEnv for ToyBatch {
    fn observation_space(&self) -> &ObservationSpace {
        &self.space
    }
    fn action_space(&self) -> &ActionSpace {
        &self.actions
    }
    fn slate_size(&self) -> usize {
        if self.broken == BatchBroken::SlateTooLarge {
            4
        } else {
            2
        }
    }
    fn batch_size(&self) -> usize {
        SLOTS
    }
    fn metric_names(&self) -> &[&'static str] {
        &["clicks"]
    }
    fn reset(&mut self, seed: u64) -> (Vec<Observation>, Info) {
        self.tick = 0;
        self.rng = rng_from_seed(seed);
        let obs = Observation {
            features: vec![0.0],
        };
        (vec![obs; SLOTS], vec![0.0])
    }
    fn step(&mut self, slates: &[usize]) -> BatchStep {
        assert_eq!(slates.len(), SLOTS * self.slate_size());
        self.tick += 1;
        let clicks: Vec<f64> = (0..SLOTS)
            .map(|_| f64::from(u8::from(self.rng.random_bool(0.5))))
            .collect();
        let over = self.tick >= TICKS;
        let high = if self.broken == BatchBroken::OutsideSpace {
            2.0
        } else {
            1.0
        };
        BatchStep {
            obs: clicks
                .iter()
                .map(|&c| Observation {
                    features: vec![c as f32 * high],
                })
                .collect(),
            item_rewards: clicks.iter().flat_map(|&c| [c, 0.0]).collect(),
            rewards: if self.broken == BatchBroken::ShortRewards {
                clicks[1..].to_vec()
            } else {
                clicks.clone()
            },
            terminated: vec![false; SLOTS],
            truncated: (0..SLOTS)
                .map(|s| over && !(self.broken == BatchBroken::LiveSlotAtEnd && s == 2))
                .collect(),
            info: vec![clicks.iter().sum()],
            episode_over: over,
        }
    }
}

fn check_batch(broken: BatchBroken) -> Result<String, String> {
    let mut env = EnvBox::Batch(Box::new(ToyBatch::new(broken)));
    let mut twin = EnvBox::Batch(Box::new(ToyBatch::new(broken)));
    check_env(&mut env, &mut twin, 5, 2)
        .map(|s| format!("{s:?}"))
        .map_err(|e| e.to_string())
}

#[test]
fn batch_rules() {
    let summary = check_batch(BatchBroken::Nothing).unwrap();
    assert!(summary.contains("observations: 48"), "{summary}");
    let cases: [(BatchBroken, &[&str]); 4] = [
        (
            BatchBroken::SlateTooLarge,
            &["slates of 4 distinct actions", "3 actions"],
        ),
        (
            BatchBroken::ShortRewards,
            &["step 1", "rewards has 3 entries, expected 4"],
        ),
        (
            BatchBroken::LiveSlotAtEnd,
            &["step 5", "slot 2 neither terminated"],
        ),
        (
            BatchBroken::OutsideSpace,
            &["feature `last_click` = 2", "[0, 1]"],
        ),
    ];
    for (broken, parts) in cases {
        let message = check_batch(broken).expect_err(&format!("{broken:?} passed"));
        for part in parts {
            assert!(
                message.contains(part),
                "{broken:?}: {part:?} not in {message:?}"
            );
        }
    }
}

#[test]
fn rules_are_typed() {
    // The error carries its fields, for programs that check envs.
    let mut env = EnvBox::Single(Box::new(Toy::new(Broken::TerminalOutside)));
    let mut twin = EnvBox::Single(Box::new(Toy::new(Broken::TerminalOutside)));
    assert!(matches!(
        check_env(&mut env, &mut twin, 1, 1),
        Err(CheckError::OutsideSpace {
            feature: "t",
            terminal: true,
            ..
        })
    ));
}
