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

import os as _os

# As the `shoplab` binary does (src/main.rs, `one_candle_thread`): each
# run's candle ops stay on its own thread, since shoplab runs one seed per
# core, and candle's matrix product answers "how many threads" from a
# mask instead of reading /proc/cpuinfo on every call. Set before the
# native module loads, and only where the user set nothing; results are
# the same bytes either way, only the speed differs.
_os.environ.setdefault("CANDLE_NUM_THREADS", "1")
if "RAYON_NUM_THREADS" not in _os.environ:
    _os.environ.setdefault("CANDLE_CPU_MASK", "0")

from . import _native  # noqa: E402
from ._native import Scenario, shipped_scenarios  # noqa: E402
from .envs import AdsEnv, PricingEnv, RecommendationEnv, ShoplabEnv  # noqa: E402
from .logs import Log, read_log  # noqa: E402
from .results import Run, load_run, run  # noqa: E402
from .vector import ShoplabVectorEnv, vector_env  # noqa: E402

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
