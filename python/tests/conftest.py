"""Shared fixtures: the repository root, and the shoplab CLI binary the
test script builds beside the Python package."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def cli():
    """The release `shoplab` binary (built by the test command first)."""
    binary = ROOT / "target" / "release" / "shoplab"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "shoplab"], cwd=ROOT, check=True)
    return str(binary)


SMALL_PRICING = """
name = "{name}"
[run]
seeds = [1, 2]
episodes = {episodes}
bootstrap_resamples = 200
curve_points = 5
eval_episodes = {eval_episodes}

[pricing]
horizon = 8
inventory = 12
cost = 0.4
salvage_value = 0.1
price_grid = [1.0, 1.5, 2.0, 2.5, 3.0]
arrival_rate = {{ kind = "ramp", start = 2.0, end = 4.0 }}

[[pricing.segments]]
share = 0.6
wtp = {{ kind = "logit", alpha = 2.0, beta = 1.0 }}

[[pricing.segments]]
share = 0.4
wtp = {{ kind = "uniform", low = 0.5, high = 3.5 }}

[[policies]]
kind = "fixed"
price = 2.0

[[policies]]
kind = "random"

[[policies]]
kind = "oracle"
"""


@pytest.fixture
def small_pricing(tmp_path):
    """A small pricing scenario file (8 periods, 12 units, 5 prices)."""

    def make(name="small", episodes=10, eval_episodes=0):
        path = tmp_path / f"{name}.toml"
        path.write_text(SMALL_PRICING.format(name=name, episodes=episodes, eval_episodes=eval_episodes))
        return str(path)

    return make
