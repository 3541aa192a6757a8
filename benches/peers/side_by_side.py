#!/usr/bin/env python3
"""shoplab and its peers, side by side, on one machine in one session.

Runs each peer's workload interleaved with shoplab's matching rows
(A B A B ..., `--rounds` times), one thread each, and writes one Markdown
table with the date, the machine, the versions and the load. Python rows are
timed per CPU-second of this process (`time.process_time`), shoplab's by the
speed benchmark's own wall clock on one core.

It installs nothing. A peer that cannot be imported is reported and its
rows are left out; shoplab's rows run regardless. The peers, and what each
row runs:

- RecSim (`pip install recsim`): `interest_evolution.create_environment`
  with 100 candidates resampled each step and slates of 10, random slates,
  one user per call. Like for like with
  `scenarios/bench/recsim-interest-evolution*.toml`.
- AuctionGym (a checkout of its repository; pass its root as
  `--auctiongym`): its `main.py` set-up of `config/SP_Oracle.json`, then
  `Auction.simulate_opportunity` in a loop, logs cleared every
  `rounds_per_iter` auctions as its iterations do (without their plots).
  Like for like with `scenarios/bench/auctiongym-sp-oracle*.toml`.
- PyTorch: DQN gradient updates, MLP 32→128→128→50, batch 64 and 256
  (sample from a 10,000-transition buffer, target-network max, Huber loss,
  backward, gradient-norm clipping at 10, Adam, fused where available:
  PyTorch's fastest CPU settings). The same network, loss, clipping and
  optimiser as shoplab's `cargo bench --bench speed -- dqn`.
- Stable-Baselines3: DQN on CartPole-v1 with the DQN settings of
  `scenarios/pricing.toml` (64-64 MLP, batch 64, train_freq 4), env steps
  per second, against shoplab's DQN training on that scenario. Not like for
  like: different envs (CartPole's step is cheap, as the pricing env's is).

Each peer row runs in a fresh interpreter (`--python`, or
`--auctiongym-python` for AuctionGym, whose pinned numpy may differ from
RecSim's), which times itself and prints its rate.

Usage (from the repository root):

    python3 benches/peers/side_by_side.py --python PEERS_VENV/bin/python \\
        --auctiongym ../auction-gym --out benches/peers/results.md
"""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time

# One thread for every numeric library, before any of them is imported.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def shoplab_rows(which):
    """Runs `cargo bench --bench speed -- WHICH` and returns {row: rate}."""
    out = subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", "speed", "--", which],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        m = re.search(r"RecSim interest evolution .*?, (1 user per call|batched) .*: ([\d.]+) million", line)
        if m:
            rows["recsim " + m.group(1)] = float(m.group(2)) * 1e6
        m = re.search(r"AuctionGym SP_Oracle .*?, (1 market per call|batched) .*: ([\d.]+) million", line)
        if m:
            rows["auctiongym " + m.group(1)] = float(m.group(2)) * 1e6
        m = re.search(r"DQN gradient updates per second, .*batch (\d+) .*: ([\d.]+)$", line)
        if m:
            rows["dqn batch " + m.group(1)] = float(m.group(2))
        m = re.search(r"DQN training on scenarios/pricing.toml .*: ([\d.]+) env steps", line)
        if m:
            rows["dqn training"] = float(m.group(1))
    return rows


def cpu_rate(fn, work):
    """Runs `fn()` (which does `work` units) and returns units per CPU-second."""
    start = time.process_time()
    fn()
    return work / (time.process_time() - start)


def recsim_rate(steps=20_000):
    import numpy as np
    from recsim.environments import interest_evolution

    env = interest_evolution.create_environment(
        {"num_candidates": 100, "slate_size": 10, "resample_documents": True, "seed": 0}
    )
    rng = np.random.default_rng(0)

    def run():
        env.reset()
        for _ in range(steps):
            slate = rng.choice(100, 10, replace=False)
            _, _, done, _ = env.step(slate)
            if done:
                env.reset()

    return cpu_rate(run, steps)


def auctiongym_rate(root, rounds=50_000):
    sys.path.insert(0, os.path.join(root, "src"))
    import main as ag  # AuctionGym's own set-up code

    parsed = ag.parse_config(os.path.join(root, "config", "SP_Oracle.json"))
    rng, config, agent_configs, agents2items, agents2item_values = parsed[:5]
    max_slots, embedding_size, embedding_var, obs_embedding_size = parsed[6:10]
    agents = ag.instantiate_agents(rng, agent_configs, agents2item_values, agents2items)
    auction, _, rounds_per_iter, _ = ag.instantiate_auction(
        rng, config, agents2items, agents2item_values, agents, max_slots,
        embedding_size, embedding_var, obs_embedding_size,
    )

    def run():
        for i in range(rounds):
            auction.simulate_opportunity()
            if (i + 1) % rounds_per_iter == 0:
                for agent in auction.agents:
                    agent.clear_utility()
                    agent.clear_logs()

    return cpu_rate(run, rounds)


def torch_dqn_rate(batch, updates):
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def mlp():
        return nn.Sequential(
            nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 50)
        )

    q, target = mlp(), mlp()
    target.load_state_dict(q.state_dict())
    # PyTorch's fastest CPU Adam (fused) where this version has it.
    try:
        opt = torch.optim.Adam(q.parameters(), lr=1e-3, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.Adam(q.parameters(), lr=1e-3)
    n = 10_000
    obs, next_obs = torch.rand(n, 32) * 2 - 1, torch.rand(n, 32) * 2 - 1
    actions = torch.randint(0, 50, (n,))
    rewards, dones = torch.rand(n), (torch.rand(n) < 0.01).float()

    def step():
        idx = torch.randint(0, n, (batch,))
        with torch.no_grad():
            best = target(next_obs[idx]).max(dim=1).values
            y = rewards[idx] + 0.99 * (1 - dones[idx]) * best
        pred = q(obs[idx]).gather(1, actions[idx].unsqueeze(1)).squeeze(1)
        loss = nn.functional.smooth_l1_loss(pred, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(q.parameters(), 10.0, foreach=True)
        opt.step()

    for _ in range(50):
        step()

    def run():
        for _ in range(updates):
            step()

    return cpu_rate(run, updates)


def sb3_rate(steps=20_000):
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    model = DQN(
        "MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [64, 64]},
        batch_size=64, train_freq=4, learning_starts=1_000, buffer_size=50_000,
        device="cpu", seed=0, verbose=0,
    )
    return cpu_rate(lambda: model.learn(total_timesteps=steps), steps)


def version(module):
    try:
        mod = __import__(module)
        return getattr(mod, "__version__", "installed")
    except Exception as e:  # noqa: BLE001 - report whatever stops the import
        return None if isinstance(e, ImportError) else f"broken ({type(e).__name__})"


MEASURES = {
    "recsim": lambda args: recsim_rate(),
    "auctiongym": lambda args: auctiongym_rate(args.auctiongym),
    "torch64": lambda args: torch_dqn_rate(64, 1_000),
    "torch256": lambda args: torch_dqn_rate(256, 400),
    "sb3": lambda args: sb3_rate(),
}


def run_peer(python, name, args):
    """Runs measurement `name` in a fresh `python`; its rate, or the error."""
    cmd = [python, os.path.abspath(__file__), "--measure", name]
    if args.auctiongym:
        cmd += ["--auctiongym", args.auctiongym]
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(tail[:200])
    return float(lines[-1])


def versions(python, modules):
    """{module: version or None} as `python` imports them."""
    code = (
        "import json, sys; sys.path.insert(0, %r); import side_by_side as s; "
        "print(json.dumps({m: s.version(m) for m in %r}))"
    ) % (os.path.dirname(os.path.abspath(__file__)), modules)
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    try:
        import json

        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {m: None for m in modules}


def shoplab_version():
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return f"commit {commit or 'unknown'}"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--auctiongym", help="root of an AuctionGym checkout")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the peers")
    parser.add_argument("--auctiongym-python", help="interpreter for AuctionGym (default --python)")
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds per row (median)")
    parser.add_argument("--out", default="benches/peers/results.md")
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(MEASURES[args.measure](args))
        return
    ag_python = args.auctiongym_python or args.python

    peers = versions(args.python, ["recsim", "torch", "stable_baselines3", "gymnasium", "numpy"])
    ag = versions(ag_python, ["numpy", "numba"])
    if args.auctiongym:
        commit = subprocess.run(
            ["git", "-C", args.auctiongym, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True,
        ).stdout.strip()
        peers["auctiongym"] = (
            f"{commit or args.auctiongym} (numpy {ag['numpy']}, numba {ag['numba']})"
        )
    else:
        peers["auctiongym"] = None

    # (row, shoplab bench section, shoplab row, peer, peer measurement, like for like)
    rows = [
        ("RecSim interest evolution, 1 user per call (user-steps/s)", "like-for-like",
         "recsim 1 user per call", "recsim", args.python, True),
        ("RecSim interest evolution, shoplab batched 1,000 users (user-steps/s)", "like-for-like",
         "recsim batched", "recsim", args.python, True),
        ("AuctionGym SP_Oracle, 1 market per call (auctions/s)", "like-for-like",
         "auctiongym 1 market per call", "auctiongym", ag_python, True),
        ("AuctionGym SP_Oracle, shoplab batched 1,000 markets (auctions/s)", "like-for-like",
         "auctiongym batched", "auctiongym", ag_python, True),
        ("DQN updates, MLP 32→128→128→50, batch 64 (updates/s)", "dqn", "dqn batch 64",
         "torch64", args.python, True),
        ("DQN updates, MLP 32→128→128→50, batch 256 (updates/s)", "dqn", "dqn batch 256",
         "torch256", args.python, True),
        ("DQN training, env steps/s (shoplab: pricing.toml; SB3: CartPole-v1)", "dqn",
         "dqn training", "sb3", args.python, False),
    ]
    load_before = os.getloadavg()
    results = []
    needs = {"recsim": "recsim", "auctiongym": "auctiongym", "torch64": "torch",
             "torch256": "torch", "sb3": "stable_baselines3"}
    for label, section, key, measure, python, like in rows:
        ours, theirs, note = [], [], ""
        for _ in range(args.rounds):
            ours.append(shoplab_rows(section)[key])
            module = needs[measure]
            if peers.get(module) is None or str(peers[module]).startswith("broken"):
                note = f"{module} not importable"
                continue
            try:
                theirs.append(run_peer(python, measure, args))
            except RuntimeError as e:  # a failing peer row is reported, not fatal
                note = f"{module} failed: {e}"
        a = statistics.median(ours)
        b = statistics.median(theirs) if theirs else None
        results.append((label, a, b, like, note))
        print(label, a, b, note, flush=True)
    load_after = os.getloadavg()

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# shoplab and its peers, side by side ({now})",
        "",
        f"- machine: {machine()}",
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{k} {v or 'absent'}" for k, v in peers.items()),
        f"- shoplab {shoplab_version()}",
        f"- load average (1, 5, 15 min): before {load_before}, after {load_after}",
        f"- medians of {args.rounds} interleaved rounds, one thread each; Python per CPU-second",
        "",
        "| workload | shoplab | peer | ratio | like for like |",
        "|---|---:|---:|---:|---|",
    ]
    for label, a, b, like, note in results:
        peer = f"{b:,.0f}" if b else note
        ratio = f"{a / b:,.1f}×" if b else "—"
        lines.append(f"| {label} | {a:,.0f} | {peer} | {ratio} | {'yes' if like else 'no'} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    tmp = args.out + ".partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(text)


if __name__ == "__main__":
    main()
