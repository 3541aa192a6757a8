"""The Gymnasium environments: the checker, spaces, seeding, references."""

import csv
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import shoplab
from shoplab import _native

FAMILIES = [
    ("shoplab/Pricing-v0", {}),
    ("shoplab/Recommendation-v0", {}),
    ("shoplab/Ads-v0", {}),
]


@pytest.mark.parametrize("env_id,kwargs", FAMILIES)
def test_gymnasium_env_checker_passes_without_warnings(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def rollout(env, seed, policy_seed, steps=10_000):
    """Observations, actions and rewards of one seeded episode, actions
    drawn from a generator of their own."""
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs.copy()]
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        trace += [action, reward, obs.copy()]
        if terminated or truncated:
            return trace, info
    raise AssertionError("the episode did not end")


@pytest.mark.parametrize("env_id", ["shoplab/Pricing-v0", "shoplab/Recommendation-v0", "shoplab/Ads-v0"])
def test_same_seed_same_trajectory_and_different_seed_different(env_id):
    env = gym.make(env_id)
    a, _ = rollout(env, seed=7, policy_seed=1)
    b, _ = rollout(env, seed=7, policy_seed=1)
    c, _ = rollout(env, seed=8, policy_seed=1)
    same = lambda x, y: len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y))
    assert same(a, b)
    assert not same(a, c)


def test_unseeded_resets_continue_the_seeded_sequence():
    env = shoplab.PricingEnv()
    env.reset(seed=3)
    first = [env.reset()[0] for _ in range(3)]
    env.reset(seed=3)
    again = [env.reset()[0] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_spaces_hold_every_observation():
    for env in [shoplab.PricingEnv(), shoplab.AdsEnv(), shoplab.RecommendationEnv()]:
        trace, _ = rollout(env, seed=2, policy_seed=3)
        for obs in trace[::3]:
            assert env.observation_space.contains(obs), (env, obs)
        assert env.observation_space.dtype == np.float32
    assert shoplab.PricingEnv().action_space == gym.spaces.Discrete(8)
    slates = shoplab.RecommendationEnv(overrides={"recommendation.slate_size": 3})
    assert slates.action_space == gym.spaces.MultiDiscrete([100] * 3)


def test_info_names_the_metrics_and_ends_with_the_reference():
    env = shoplab.PricingEnv()
    _, info = rollout(env, seed=1, policy_seed=1)
    assert set(env.metric_names) <= set(info)
    assert info["reference"] == pytest.approx(env.scenario.optimal_value, abs=0)


def test_an_episode_replays_the_rust_run_exactly(cli, small_pricing, tmp_path):
    """`fixed` at 2.0 in Python, on the env seed the Rust runner gives
    episode e of seed s (`derive_seed(s, "env", e)`), earns what the run's
    episodes.csv says, and its reference (V*) makes the same regret."""
    import subprocess

    file = small_pricing("replay", episodes=4)
    subprocess.run([cli, "run", file, "--results", str(tmp_path / "r"), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    (folder,) = (tmp_path / "r" / "replay").iterdir()
    rows = [r for r in csv.DictReader(open(folder / "episodes.csv")) if r["policy"] == "fixed_price_2"]
    env = shoplab.PricingEnv(file)
    price = env.scenario.action_labels.index("2")
    for row in rows:
        env.reset(seed=_native.derive_seed(int(row["seed"]), "env", int(row["episode"])))
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(price)
            total += reward
            done = terminated or truncated
        assert total == pytest.approx(float(row["return"]), abs=1e-9)
        assert info["reference"] - total == pytest.approx(float(row["regret"]), abs=1e-9)
