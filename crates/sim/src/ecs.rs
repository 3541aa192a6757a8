//! What the envs built on `bevy_ecs` share: the accessors that read their
//! fields as they are, the actions a batch step hands to its systems, and a
//! world whose schedule the env runs by hand, one tick per step.

use bevy_ecs::{query::IterQueryData, schedule::Schedule, world::World};
use shoplab_env::{Info, Observation};

/// The accessors of an [`Env`](shoplab_env::Env) or a
/// [`BatchEnv`](shoplab_env::batch::BatchEnv) with fields `space` and
/// `actions` and a `METRICS` list in scope.
macro_rules! env_spaces {
    () => {
        fn observation_space(&self) -> &ObservationSpace {
            &self.space
        }

        fn action_space(&self) -> &ActionSpace {
            &self.actions
        }

        fn metric_names(&self) -> &[&'static str] {
            &METRICS
        }
    };
}
pub(crate) use env_spaces;

/// Copies a step's `actions` into `shown` (the resource its systems read),
/// each converted by `convert`.
///
/// # Panics
/// If an action is not below `n` (the env's action count, named `what`):
/// callers validate actions against the action space first.
pub(crate) fn take_actions<T>(
    shown: &mut Vec<T>,
    actions: &[usize],
    (n, what): (usize, &str),
    convert: impl Fn(usize) -> T,
) {
    shown.clear();
    shown.extend(actions.iter().map(|&a| {
        assert!(a < n, "action {a} is not one of {n} {what}");
        convert(a)
    }));
}

/// A world with the schedule one step runs on it, and the ticks run since
/// the episode began.
pub(crate) struct HandDriven {
    /// The world: the env's entities and resources.
    pub world: World,
    schedule: Schedule,
    tick: u32,
}

/// An entity's state (a query item) that an episode restarts.
pub(crate) trait Restart<M> {
    /// Restarts the entity for the episode of `seed` under `model`.
    fn restart(&mut self, model: &M, seed: u64);
}

impl HandDriven {
    /// `world` driven by `schedule`, before its first episode.
    pub fn new(world: World, schedule: Schedule) -> Self {
        Self {
            world,
            schedule,
            tick: 0,
        }
    }

    /// Starts the episode of `seed`: no ticks yet, and every entity that
    /// matches `D` restarted under `model`.
    pub fn restart<D, M>(&mut self, model: &M, seed: u64)
    where
        D: IterQueryData,
        for<'w, 's> D::Item<'w, 's>: Restart<M>,
    {
        self.tick = 0;
        let mut entities = self.world.query::<D>();
        for mut entity in entities.iter_mut(&mut self.world) {
            entity.restart(model, seed);
        }
    }

    /// Runs the schedule once and counts the tick; whether the episode of
    /// `ticks` ticks is now over.
    ///
    /// A schedule run by hand (not by a bevy `App`) must clear the change
    /// trackers itself — the removed-component records of despawned
    /// entities would otherwise pile up for as long as the env lives.
    pub fn run_tick(&mut self, ticks: u32) -> bool {
        self.schedule.run(&mut self.world);
        self.world.clear_trackers();
        self.tick += 1;
        self.tick >= ticks
    }
}

/// What a reset returns: `n` observations filled by `observe`, and zero
/// for each of `metrics` metrics.
pub(crate) fn first_observations(
    n: usize,
    metrics: usize,
    observe: impl FnOnce(&mut [Observation]),
) -> (Vec<Observation>, Info) {
    let mut obs = vec![Observation::default(); n];
    observe(&mut obs);
    (obs, vec![0.0; metrics])
}
