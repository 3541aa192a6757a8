"""Gymnasium environments over one env of a shoplab scenario."""

from typing import Any, Optional

import gymnasium
import numpy as np
from gymnasium import spaces

from . import _native


def spaces_of(scenario, slate_size):
    """The observation ``Box`` from the env's declared bounds, and the
    action space (``Discrete``, or ``MultiDiscrete`` for slates)."""
    _, low, high = scenario.observation
    observation = spaces.Box(
        low=np.asarray(low, dtype=np.float32), high=np.asarray(high, dtype=np.float32), dtype=np.float32
    )
    n = scenario.n_actions
    action = spaces.Discrete(n) if slate_size == 1 else spaces.MultiDiscrete([n] * slate_size)
    return observation, action


class ShoplabEnv(gymnasium.Env):
    """One env of a shoplab scenario, as a Gymnasium environment.

    ``scenario`` is a scenario file or a shipped scenario's name
    (``shoplab.shipped_scenarios()``); ``overrides`` sets dotted keys of it
    (``{"pricing.horizon": 10}``) before it is validated, exactly as the
    CLI validates files: a bad scenario or override raises ``ValueError``
    with the CLI's message. ``family``, when given, is checked.

    ``reset(seed=s)`` starts the episode the Rust env starts from seed
    ``s``; ``reset()`` without a seed draws the next episode's seed from
    the generator the last seed started (``self.np_random``), so a seeded
    sequence of episodes repeats exactly. ``step`` returns Gymnasium's
    5-tuple with ``terminated`` and ``truncated`` as the env defines them;
    ``info`` holds the step's named metrics, and at the episode's end its
    ``reference``.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: str = "pricing", overrides: Optional[dict] = None, family: Optional[str] = None):
        self.scenario = _native.Scenario(scenario, overrides or {})
        if family is not None and self.scenario.family != family:
            raise ValueError(
                f"scenario `{self.scenario.name}` is of the {self.scenario.family} family, not {family}"
            )
        self._env = _native.Env(self.scenario)
        self.feature_names = list(self.scenario.observation[0])
        self.observation_space, self.action_space = spaces_of(self.scenario, self.scenario.slate_size)
        self.metric_names = list(self.scenario.metric_names)
        self.optimal_value = self.scenario.optimal_value

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        # A seeded reset plays the Rust env's episode of that seed; an
        # unseeded one draws the next seed from the generator it started.
        episode_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**63))
        return self._env.reset(episode_seed)

    def step(self, action: Any):
        if isinstance(action, np.ndarray):
            action = action.tolist()
        elif isinstance(action, np.integer):
            action = int(action)
        return self._env.step(action)


class PricingEnv(ShoplabEnv):
    """``shoplab/Pricing-v0``: a dynamic pricing scenario (default: the shipped ``pricing``)."""

    def __init__(self, scenario: str = "pricing", overrides: Optional[dict] = None):
        super().__init__(scenario, overrides, family="pricing")


class AdsEnv(ShoplabEnv):
    """``shoplab/Ads-v0``: an ad bidding scenario (default: the shipped ``ads``)."""

    def __init__(self, scenario: str = "ads", overrides: Optional[dict] = None):
        super().__init__(scenario, overrides, family="ads")


class RecommendationEnv(ShoplabEnv):
    """``shoplab/Recommendation-v0``: one shopper's session at a time in a
    recommendation scenario (default: the shipped ``recommendation``).

    The scenario's concurrent sessions are overridden to 1 (use
    ``shoplab.vector_env`` for the many-session batch): an episode is one
    shopper's session, terminated when the shopper leaves and truncated
    when the scenario's ticks run out.
    """

    def __init__(self, scenario: str = "recommendation", overrides: Optional[dict] = None):
        overrides = dict(overrides or {})
        overrides.setdefault("recommendation.concurrent_sessions", 1)
        super().__init__(scenario, overrides, family="recommendation")
