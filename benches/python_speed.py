#!/usr/bin/env python3
"""shoplab's environments stepped from Python, one core.

Run from the repository root with the test environment scripts/test makes:

    target/python-venv/bin/python benches/python_speed.py

Rows (medians of 5 repetitions, per CPU-second of this process, so the
Rust work done inside each call counts; actions drawn beforehand so that
only stepping is timed):

- pricing, one env (`shoplab/Pricing-v0` on the shipped pricing scenario):
  steps per second with uniformly random prices, through
  `gymnasium.make` (its checker and order-enforcing wrappers) and
  unwrapped; reset whenever an episode ends;
- Gymnasium's CartPole-v1 (pure Python) the same way, for scale;
- the recommendation vector env (`shoplab.vector_env`) at 100 items,
  dim 20, slates of 10 and 1,000 concurrent shoppers: shopper-steps per
  second with random distinct slates.
"""

import platform
import statistics
import time

import gymnasium as gym
import numpy as np

import shoplab


def single(env, n_actions, steps=200_000, repeats=5):
    rng = np.random.default_rng(0)
    actions = rng.integers(0, n_actions, steps).tolist()
    rates = []
    for _ in range(repeats):
        env.reset(seed=0)
        step, reset = env.step, env.reset
        start = time.process_time()
        for a in actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                reset()
        rates.append(steps / (time.process_time() - start))
    return statistics.median(rates)


def vector(steps=300, repeats=5):
    venv = shoplab.vector_env(
        "recommendation",
        overrides={"recommendation.slate_size": 10, "recommendation.concurrent_sessions": 1000},
    )
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    slates = [np.argsort(rng.random((1000, 100)), axis=1)[:, :10] for _ in range(16)]
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        for i in range(steps):
            venv.step(slates[i % 16])
        rates.append(steps * 1000 / (time.process_time() - start))
    return statistics.median(rates)


def main():
    rows = [
        ("pricing, `gym.make(\"shoplab/Pricing-v0\")`", single(gym.make("shoplab/Pricing-v0"), 8), "steps/s"),
        ("pricing, unwrapped `shoplab.PricingEnv()`", single(shoplab.PricingEnv(), 8), "steps/s"),
        ("CartPole-v1, `gym.make` (pure Python)", single(gym.make("CartPole-v1"), 2), "steps/s"),
        ("CartPole-v1, unwrapped", single(gym.make("CartPole-v1").unwrapped, 2), "steps/s"),
        ("recommendation vector env, 1,000 shoppers, 100 items, dim 20, slate 10", vector(), "shopper-steps/s"),
    ]
    print(f"Python {platform.python_version()}, gymnasium {gym.__version__}, numpy {np.__version__}, "
          f"shoplab {shoplab.__version__}; {platform.processor() or platform.machine()}")
    print("| workload | per CPU-second |")
    print("|---|---:|")
    for name, rate, unit in rows:
        print(f"| {name} | {rate:,.0f} {unit} |")


if __name__ == "__main__":
    main()
