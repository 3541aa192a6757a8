#!/usr/bin/env python3
"""A CleanRL-style single-file DQN on shoplab's vector recommendation env.

The shipped recommendation scenario: 200 shoppers in session at once, 100
items, one recommended per shopper and step, reward = click. The vector env
steps all 200 shoppers in one Rust call (same-step autoreset: a shopper who
leaves is replaced at once); the agent is a Q-network over the shopper's
segment and last topic clicked (one-hot) and session step, with ε-greedy
exploration,
a replay buffer and a target network, trained on every shopper's
transitions.

Needs torch (not installed by scripts/test):

    pip install ./python torch
    python examples/python/cleanrl_dqn_recommendation.py [--ticks 20000] [--seed 0]

It prints clicks per session while training and, at the end, the greedy
policy's clicks per session on held-out batch episodes next to uniformly
random recommendations' on the same episodes.
"""

import argparse
import random
import time

import numpy as np
import torch
import torch.nn as nn

import shoplab


def features(obs, names):
    """The observation with segment and last topic one-hot (the rest scaled)."""
    seg, topic = names.index("segment"), names.index("last_topic")
    step = names.index("session_step")
    out = [
        np.eye(3, dtype=np.float32)[obs[:, seg].astype(int)],
        np.eye(11, dtype=np.float32)[obs[:, topic].astype(int)],
        obs[:, [step]] / 25.0,
    ]
    return np.concatenate(out, axis=1)


def play(envs, names, act, batch_episodes, seed):
    """Clicks per ended session over `batch_episodes` batch episodes."""
    clicks = ended = 0.0
    obs, _ = envs.reset(seed=seed)
    episodes = 0
    while episodes < batch_episodes:
        obs, rewards, terminated, truncated, infos = envs.step(act(obs))
        clicks += rewards.sum()
        ended += terminated.sum()
        if "final_obs" in infos:
            episodes += 1
    return clicks / max(ended, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    envs = shoplab.vector_env("recommendation")
    names, n, items = envs.feature_names, envs.num_envs, envs.single_action_space.n
    obs, _ = envs.reset(seed=args.seed)
    dim = features(obs, names).shape[1]
    q = nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, items))
    target = nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, items))
    target.load_state_dict(q.state_dict())
    optimizer = torch.optim.Adam(q.parameters(), lr=1e-3)
    size, gamma, batch = 200_000, 0.9, 512
    buf_obs = np.zeros((size, dim), np.float32)
    buf_next = np.zeros((size, dim), np.float32)
    buf_act = np.zeros(size, np.int64)
    buf_rew = np.zeros(size, np.float32)
    buf_live = np.zeros(size, np.float32)
    filled = cursor = 0
    start = time.time()
    clicks = ended = 0.0
    x = features(obs, names)
    for tick in range(args.ticks):
        epsilon = max(0.05, 1.0 - tick / (0.5 * args.ticks))
        with torch.no_grad():
            greedy = q(torch.from_numpy(x)).argmax(1).numpy()
        explore = np.random.random(n) < epsilon
        actions = np.where(explore, np.random.randint(0, items, n), greedy)
        obs, rewards, terminated, truncated, infos = envs.step(actions)
        nxt = features(infos["final_obs"], names) if "final_obs" in infos else features(obs, names)
        idx = (cursor + np.arange(n)) % size
        buf_obs[idx], buf_next[idx], buf_act[idx] = x, nxt, actions
        buf_rew[idx], buf_live[idx] = rewards, 1.0 - terminated
        cursor, filled = (cursor + n) % size, min(filled + n, size)
        x = features(obs, names)
        clicks += rewards.sum()
        ended += terminated.sum()
        if filled >= 10 * batch:
            i = np.random.randint(0, filled, batch)
            with torch.no_grad():
                y = torch.from_numpy(buf_rew[i]) + gamma * torch.from_numpy(buf_live[i]) * target(
                    torch.from_numpy(buf_next[i])).max(1).values
            pred = q(torch.from_numpy(buf_obs[i])).gather(1, torch.from_numpy(buf_act[i])[:, None])[:, 0]
            loss = nn.functional.mse_loss(pred, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if tick % 500 == 0:
            target.load_state_dict(q.state_dict())
        if (tick + 1) % 5_000 == 0:
            print(f"tick {tick + 1}: ε = {epsilon:.2f}, {clicks / max(ended, 1):.3f} clicks per session "
                  f"(training, last 5,000 ticks), {time.time() - start:.0f} s")
            clicks = ended = 0.0
    evaluation = shoplab.vector_env("recommendation")
    with torch.no_grad():
        dqn = play(evaluation, names, lambda o: q(torch.from_numpy(features(o, names))).argmax(1).numpy(),
                   20, seed=10_000)
    rng = np.random.default_rng(1)
    uniform = play(evaluation, names, lambda o: rng.integers(0, items, len(o)), 20, seed=10_000)
    print(f"greedy DQN: {dqn:.3f} clicks per session on 20 held-out batch episodes; "
          f"random recommendations: {uniform:.3f} ({n} shoppers at once, "
          f"{args.ticks * n:,} shopper-steps of training in {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
