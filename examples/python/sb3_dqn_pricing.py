#!/usr/bin/env python3
"""Stable-Baselines3's DQN on shoplab/Pricing-v0, reported as a share of V*.

The shipped pricing scenario: 40 units over a 20-day season, 8 prices; the
oracle's expected season profit V* is computed exactly by dynamic
programming, so the agent's share of it is exact. Observations are scaled
to [-1, 1] by the env's declared bounds (SB3's MLP takes them raw
otherwise); γ = 1 over the finite season, as the scenario's own DQN.

Needs torch and stable-baselines3 (not installed by scripts/test):

    pip install ./python stable-baselines3
    python examples/python/sb3_dqn_pricing.py [--timesteps 100000] [--seed 0]

It trains, then plays the greedy policy on 500 seasons whose seeds
training never used, and prints the mean profit, its 95% interval, the
share of V* and of the best fixed price's exact value.
"""

import argparse
import time

import gymnasium as gym
import numpy as np

import shoplab


class Scaled(gym.ObservationWrapper):
    """Observations mapped from the env's bounds to [-1, 1]."""

    def __init__(self, env):
        super().__init__(env)
        space = env.observation_space
        self.low, self.span = space.low, np.maximum(space.high - space.low, 1e-6)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, space.shape, np.float32)

    def observation(self, obs):
        return (2.0 * (obs - self.low) / self.span - 1.0).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=500)
    args = parser.parse_args()
    from stable_baselines3 import DQN

    env = Scaled(gym.make("shoplab/Pricing-v0"))
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=50_000,
        learning_starts=1_000,
        batch_size=64,
        gamma=1.0,
        train_freq=4,
        target_update_interval=500,
        exploration_fraction=0.5,
        exploration_final_eps=0.02,
        policy_kwargs={"net_arch": [64, 64]},
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.time()
    model.learn(total_timesteps=args.timesteps)
    trained = time.time() - start
    scenario = env.unwrapped.scenario
    v_star = scenario.optimal_value
    baseline_name, baseline = scenario.baseline
    returns = []
    for k in range(args.episodes):
        obs, _ = env.reset(seed=1_000_000 + k)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(int(action))
            total += reward
            done = terminated or truncated
        assert info["reference"] == v_star
        returns.append(total)
    returns = np.array(returns)
    mean, half = returns.mean(), 1.96 * returns.std(ddof=1) / np.sqrt(len(returns))
    print(f"SB3 DQN on shoplab/Pricing-v0: {args.timesteps} steps in {trained:.0f} s (seed {args.seed})")
    print(f"greedy profit over {args.episodes} held-out seasons: {mean:.2f} ± {half:.2f} (95%)")
    print(f"V* = {v_star:.2f}: {100 * mean / v_star:.1f}% of the oracle; "
          f"{baseline_name} earns {baseline:.2f} ({100 * baseline / v_star:.1f}% of V*)")


if __name__ == "__main__":
    main()
