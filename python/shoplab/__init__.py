"""shoplab in Python: Gymnasium environments over shoplab's Rust simulators.

    import gymnasium as gym
    import shoplab  # registers shoplab/Pricing-v0, shoplab/Recommendation-v0, shoplab/Ads-v0

    env = gym.make("shoplab/Pricing-v0")                   # the shipped pricing scenario
    env = gym.make("shoplab/Pricing-v0", scenario="my.toml",
                   overrides={"pricing.inventory": 30})    # a file, with overrides

Each env is a thin layer over the same Rust code the `shoplab` CLI runs:
observations are the env's features (a float32 ``Box`` from its declared
bounds), actions are ``Discrete`` (``MultiDiscrete`` for slates), and
``info`` carries the env's named metrics and, at an episode's end, its
``reference`` (the oracle's V*, or the hindsight optimum) so an agent can
report its share of the oracle. ``shoplab.vector_env`` steps many sessions
at once; ``shoplab.run`` and ``shoplab.load_run`` run a scenario and read
its run folder as DataFrames; ``shoplab.read_log`` reads a log for obp and
d3rlpy.
"""

from . import _native
from ._native import Scenario, shipped_scenarios
from .envs import AdsEnv, PricingEnv, RecommendationEnv, ShoplabEnv
from .logs import Log, read_log
from .results import Run, load_run, run
from .vector import ShoplabVectorEnv, vector_env

__version__ = _native.__version__

__all__ = [
    "AdsEnv",
    "Log",
    "PricingEnv",
    "RecommendationEnv",
    "Run",
    "Scenario",
    "ShoplabEnv",
    "ShoplabVectorEnv",
    "load_run",
    "read_log",
    "run",
    "shipped_scenarios",
    "vector_env",
]


def _register():
    import gymnasium

    for name, family in [("Pricing", "pricing"), ("Recommendation", "recommendation"), ("Ads", "ads")]:
        env_id = f"shoplab/{name}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"shoplab.envs:{name}Env",
                vector_entry_point=f"shoplab.vector:make_{family}_vec",
            )


_register()
