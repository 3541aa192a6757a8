#!/usr/bin/env python3
"""shoplab's discrete CQL against d3rlpy's `DiscreteCQL`, side by side.

Both learn from the same log — the pricing suite's `medium` dataset
(`shoplab dataset build scenarios/pricing.toml --medium q_learning
--medium-episodes 2000 --expert oracle --episodes 1000 --seed 0`, built
here) — with the same network and optimiser: inputs standardised by the
log's mean and standard deviation, 3 → 64 → 64 → 8 ReLU, Adam at 1e-3,
batch 256 drawn uniformly, γ = 1, α = 1, one critic, the target copied
every 500 steps, `--steps` gradient steps. d3rlpy's TD error is its own
(Huber); shoplab's is squared.

For each of `--seeds` seeds the script

1. trains d3rlpy's `DiscreteCQL` on one thread (`torch.set_num_threads(1)`),
   timing its updates (batch sampling included, as d3rlpy's `fit` samples;
   sampling and the update alone are timed apart too);
2. exports its greedy price over the pricing state grid (every period,
   stock 0 ..= 40 and last sales 0 ..= 40) as an action table;

then writes a scenario of the pricing env (`scenarios/pricing.toml`'s
family table) with shoplab's `cql` learning from the same log file (the
`[offline]` table) and one `action_table` policy per d3rlpy seed, and runs
it: every policy is played greedily on the same 500 held-out seasons per
seed, next to the DP oracle and the best fixed price. Finally it runs
`cargo bench --bench speed -- offline` for shoplab's gradient steps per
second (same network and batch, one thread) and prints both.

d3rlpy needs its own environment, which this script does not install:
Python 3.11 with `pip install d3rlpy==2.8.1 torch==2.5.1` (about 5 GB with
PyTorch's CUDA libraries, unused here).

Usage (from the repository root, after `cargo build --release`):

    D3RLPY_VENV/bin/python benches/peers/d3rlpy_cql.py [--steps 5000] [--seeds 5]
"""

import argparse
import csv
import glob
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time


def build_log(shoplab, out):
    """The pricing suite's medium dataset, as CSV; its path."""
    subprocess.run(
        [shoplab, "dataset", "build", "scenarios/pricing.toml", "--medium", "q_learning",
         "--medium-episodes", "2000", "--expert", "oracle", "--episodes", "1000",
         "--seed", "0", "--format", "csv", "--out", out],
        check=True, stdout=subprocess.DEVNULL)
    return glob.glob(os.path.join(out, "pricing", "*", "medium.csv"))[0]


def read_log(path, np):
    rows = list(csv.DictReader(open(path)))
    obs = np.array([[float(r["period"]), float(r["stock"]), float(r["last_sales"])]
                    for r in rows], dtype=np.float32)
    actions = np.array([int(r["action"]) for r in rows])
    rewards = np.array([float(r["reward"]) for r in rows], dtype=np.float32)
    terminals = np.array([int(r["terminated"]) for r in rows], dtype=np.float32)
    # A session's last row ends its episode: a terminal, or a timeout.
    last = np.array([i + 1 == len(rows) or rows[i + 1]["session"] != r["session"]
                     or rows[i + 1]["episode"] != r["episode"] for i, r in enumerate(rows)])
    timeouts = (last & (terminals == 0)).astype(np.float32)
    return obs, actions, rewards, terminals, timeouts


def train_d3rlpy(log, steps, seed, out_table):
    """Trains DiscreteCQL; writes its greedy table; returns the timings."""
    import d3rlpy
    import numpy as np
    import torch

    torch.set_num_threads(1)
    obs, actions, rewards, terminals, timeouts = log
    dataset = d3rlpy.dataset.MDPDataset(
        obs, actions, rewards, terminals, timeouts=timeouts,
        action_space=d3rlpy.ActionSpace.DISCRETE, action_size=8)
    scaler = d3rlpy.preprocessing.StandardObservationScaler(
        mean=obs.mean(axis=0), std=obs.std(axis=0))
    config = d3rlpy.algos.DiscreteCQLConfig(
        batch_size=256, learning_rate=1e-3, gamma=1.0, alpha=1.0,
        target_update_interval=500, n_critics=1,
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[64, 64]),
        observation_scaler=scaler)
    d3rlpy.seed(seed)
    cql = config.create(device="cpu:0")
    cql.build_with_dataset(dataset)
    start = time.perf_counter()
    for _ in range(steps):
        cql.update(dataset.sample_transition_batch(256))
    with_sampling = steps / (time.perf_counter() - start)
    batches = [dataset.sample_transition_batch(256) for _ in range(200)]
    start = time.perf_counter()
    for _ in range(200):
        dataset.sample_transition_batch(256)
    sampling = 200 / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in batches:
        cql.update(b)
    updates = 200 / (time.perf_counter() - start)
    grid = np.array([[t, s, l] for t in range(20) for s in range(41) for l in range(41)],
                    dtype=np.float32)
    greedy = cql.predict(grid)
    with open(out_table, "w") as f:
        f.write("period,stock,last_sales,action\n")
        for (t, s, l), a in zip(grid.astype(int), greedy):
            f.write(f"{t},{s},{l},{int(a)}\n")
    return with_sampling, sampling, updates


def scenario_text(log_path, tables, steps):
    """The pricing env with shoplab's CQL on the log and d3rlpy's tables."""
    text = open("scenarios/pricing.toml").read()
    family = text[text.index("[pricing]"):text.index("[[policies]]")]
    policies = "".join(
        f'[[policies]]\nkind = "action_table"\nname = "d3rlpy_cql_seed{k}"\nfile = "{t}"\n\n'
        for k, t in enumerate(tables))
    return (
        'name = "d3rlpy-side-by-side"\n'
        "[run]\nseeds = [1, 2, 3, 4, 5]\nepisodes = 1\neval_episodes = 500\n\n"
        f'[offline]\nlog = "{log_path}"\nope = []\n\n'
        + family
        + '[[policies]]\nkind = "oracle"\n\n'
        + f'[[policies]]\nkind = "cql"\nalpha = 1.0\ngradient_steps = {steps}\ngamma = 1.0\n\n'
        + policies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoplab", default="target/release/shoplab")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    import d3rlpy
    import numpy as np
    import torch

    work = tempfile.mkdtemp(prefix="shoplab-d3rlpy-")
    log_path = build_log(args.shoplab, os.path.join(work, "datasets"))
    log = read_log(log_path, np)
    print(f"log: {log_path} ({len(log[1])} rows)")
    tables, timings = [], []
    for seed in range(args.seeds):
        table = os.path.join(work, f"d3rlpy_seed{seed}.csv")
        timings.append(train_d3rlpy(log, args.steps, seed, table))
        tables.append(table)
        print(f"d3rlpy seed {seed}: {timings[-1][0]:.0f} updates/s with sampling "
              f"(sampling alone {timings[-1][1]:.0f}/s, updates alone {timings[-1][2]:.0f}/s)")
    scenario = os.path.join(work, "side.toml")
    with open(scenario, "w") as f:
        f.write(scenario_text(log_path, tables, args.steps))
    results = os.path.join(work, "results")
    subprocess.run([args.shoplab, "run", scenario, "--results", results, "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    summary = glob.glob(os.path.join(results, "d3rlpy-side-by-side", "*", "summary.csv"))[0]
    rows = {r["policy"]: r for r in csv.DictReader(open(summary))}
    bench = subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", "speed", "--", "offline"],
        check=True, capture_output=True, text=True).stdout
    shoplab_rate = float(re.search(r"([0-9]+) gradient steps/s", bench).group(1))
    d3_rate = statistics.median(t[0] for t in timings)
    d3_updates = statistics.median(t[2] for t in timings)
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; "
          f"d3rlpy {d3rlpy.__version__}, torch {torch.__version__}, Python {platform.python_version()}")
    print(f"greedy value on 500 held-out seasons per seed (mean over 5 seeds, 95% interval), "
          f"after {args.steps} gradient steps:")
    for name, r in rows.items():
        print(f"  {name:<20} {float(r['eval_return_mean']):8.3f} "
              f"[{float(r['eval_return_ci_low']):.3f}, {float(r['eval_return_ci_high']):.3f}]")
    d3 = [float(rows[f"d3rlpy_cql_seed{k}"]["eval_return_mean"]) for k in range(args.seeds)]
    print(f"  d3rlpy, mean of its {args.seeds} seeds: {statistics.mean(d3):.3f} "
          f"(range {min(d3):.3f} .. {max(d3):.3f})")
    print(f"gradient steps per second, batch 256, one thread: shoplab {shoplab_rate:.0f}; "
          f"d3rlpy {d3_rate:.0f} with sampling ({d3_updates:.0f} updates alone); "
          f"ratio {shoplab_rate / d3_rate:.1f}x ({shoplab_rate / d3_updates:.1f}x against updates alone)")
    print(f"files kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
