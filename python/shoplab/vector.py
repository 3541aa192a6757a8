"""Vector environments: many sessions of a scenario stepped together."""

from typing import Optional

import gymnasium
import numpy as np
from gymnasium.vector.utils import batch_space

from . import _native
from .envs import spaces_of

try:  # Gymnasium ≥ 1.1 names the autoreset modes.
    from gymnasium.vector import AutoresetMode

    _MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
except ImportError:  # pragma: no cover - Gymnasium 1.0
    _MODES = {"next_step": "next_step", "same_step": "same_step"}


class ShoplabVectorEnv(gymnasium.vector.VectorEnv):
    """Many sessions of a shoplab scenario as a ``gymnasium.vector.VectorEnv``.

    For a batched family (recommendation) the sessions are the scenario's
    concurrent shoppers, stepped by the simulator at once; for the others,
    ``num_envs`` copies of the single env. Rust steps them with the GIL
    released and writes the results straight into NumPy arrays.

    Autoreset: copies of a single env use Gymnasium's **next-step** mode
    (the step after a copy's episode ends resets it, ignoring its action,
    with reward 0); a batched family's sessions use **same-step** mode, as
    its simulator replaces a departed shopper at once (the slot returns the
    new shopper's first observation in the same step; a terminated
    session's last observation is not kept, as nothing bootstraps from it).
    When a batch episode's ticks run out, every slot is truncated and the
    batch restarts in the same step, its last observations in
    ``infos["final_obs"]``. For copies, ``infos["reference"]`` (masked by
    ``infos["_reference"]``) holds each ended episode's reference.

    Metrics: for copies, ``infos[name]`` is an array of each copy's value of
    the env's metric ``name`` this step (masked by ``infos["_" + name]``:
    a copy that reset instead of stepping has none); for a batched family,
    ``infos["batch_metrics"]`` holds the step's totals over all sessions.
    """

    def __init__(self, scenario: str, num_envs: Optional[int] = None, overrides: Optional[dict] = None):
        self.scenario = _native.Scenario(scenario, overrides or {})
        self._env = _native.VectorEnv(self.scenario, num_envs)
        self.num_envs = self._env.num_envs
        self.feature_names = list(self.scenario.observation[0])
        self.single_observation_space, self.single_action_space = spaces_of(self.scenario, self._env.slate_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": _MODES[self._env.autoreset_mode]}
        self.autoreset_mode = self._env.autoreset_mode

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError("a shoplab vector env is seeded with one int (copy i gets seed + i)")
        super().reset(seed=seed)
        batch_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**63))
        return self._env.reset(batch_seed), {}

    def step(self, actions):
        return self._env.step(np.asarray(actions))


def vector_env(scenario: str = "recommendation", num_envs: Optional[int] = None, overrides: Optional[dict] = None):
    """A :class:`ShoplabVectorEnv` of ``scenario`` (a file or a shipped name)."""
    return ShoplabVectorEnv(scenario, num_envs=num_envs, overrides=overrides)


def _vector_entry(family: str, default: str, batched: bool):
    """The ``vector_entry_point`` of ``shoplab/<Family>-v0``, for
    ``gymnasium.make_vec(id, num_envs=n, vectorization_mode="vector_entry_point")``:
    copies of the single env, or — for a batched family — its batch with
    ``n`` concurrent sessions."""

    def make(num_envs: int = 1, scenario: str = default, overrides: Optional[dict] = None, **kwargs):
        if kwargs:
            raise ValueError(f"unknown arguments: {sorted(kwargs)}")
        overrides = dict(overrides or {})
        if batched:
            overrides.setdefault(f"{family}.concurrent_sessions", num_envs)
            env = ShoplabVectorEnv(scenario, overrides=overrides)
        else:
            env = ShoplabVectorEnv(scenario, num_envs=num_envs, overrides=overrides)
        if env.scenario.family != family:
            raise ValueError(f"scenario `{env.scenario.name}` is of the {env.scenario.family} family, not {family}")
        return env

    return make


make_pricing_vec = _vector_entry("pricing", "pricing", batched=False)
make_ads_vec = _vector_entry("ads", "ads", batched=False)
make_recommendation_vec = _vector_entry("recommendation", "recommendation", batched=True)
