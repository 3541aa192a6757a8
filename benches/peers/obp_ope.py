#!/usr/bin/env python3
"""shoplab's off-policy estimates against obp 0.5.7's, on identical inputs.

For each log of the shipped Open Bandit Dataset sample (`data/obd/random`
and `data/obd/bts`, campaign "all") this script

1. loads the log with obp's own `OpenBanditDataset` (its preprocessing),
   and with `shoplab obd FILE --out LOG` (shoplab's);
2. builds two sets of inputs, each a target action distribution and
   estimated rewards of shape (rounds, 80 items, 3 positions), saved as
   `.npy`:
   - "formula": a closed form of the context, item and position that
     `tests/logs.rs` recomputes in Rust (see `formula_inputs`), so the
     values obp prints here can be checked there without Python;
   - "obp-model": a target that mixes the uniform policy with the
     softmax of obp's fitted `RegressionModel` (logistic regression on
     context and item features, position-wise, as obp's examples fit it),
     and that model's estimated rewards;
3. runs obp's IPW, SNIPW, DM, DR, SNDR, Switch-DR and DR-OS on them, and
   `shoplab ope` on the same files, and prints both with their difference;
4. times obp's IPW and SNIPW over 10 million logged decisions of two
   actions, the workload of `cargo bench --bench speed -- ope`.

obp needs its own environment, which this script does not install:
Python 3.11 with numpy==1.23.5 pandas==1.5.2 scikit-learn==1.1.3
scipy==1.9.3 PyYAML==6.0 "matplotlib<3.8" seaborn==0.11.2 tqdm
mypy-extensions==0.4.4 torch==1.13.1, then obp 0.5.7's sdist
(`pip download obp==0.5.7 --no-deps --ignore-requires-python`) installed
with `pip install --no-deps --ignore-requires-python`. The script exits
non-zero if any estimate differs from obp's by more than 1e-9.

Usage (from the repository root, after `cargo build --release`):

    OBP_VENV/bin/python benches/peers/obp_ope.py [--shoplab target/release/shoplab]
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

TAU = 5.0  # Switch-DR's threshold on the weight
SHRINKAGE = 20.0  # DR-OS's λ


def formula_inputs(context):
    """The closed-form target and rewards that `tests/logs.rs` recomputes:
    with s = Σ_j 0.11·(j+1)·x_j over the context's one-hot columns,
    score(a, k) = sin(1 + 0.37·a + 1.3·k + s) for item a at position k,
    target(a | x, k) = softmax over a of 2·score(a, k), and
    q(x, a, k) = 0.001 + 0.002·(1 + score(a, k))."""
    n, d = context.shape
    s = (context * (0.11 * (np.arange(d) + 1.0))).sum(axis=1)
    a = np.arange(80, dtype=float)[None, :, None]
    k = np.arange(3, dtype=float)[None, None, :]
    score = np.sin(1.0 + 0.37 * a + 1.3 * k + s[:, None, None])
    e = np.exp(2.0 * score)
    target = e / e.sum(axis=1, keepdims=True)
    q = 0.001 + 0.002 * (1.0 + score)
    return target, q


def model_inputs(obp, feedback, seed=12345):
    """obp's RegressionModel (logistic regression, position-wise, on the
    context and the item features) fitted on the whole log, and a target
    that plays its softmax (temperature 0.001) half the time and the
    uniform policy otherwise."""
    from sklearn.linear_model import LogisticRegression

    model = obp.ope.RegressionModel(
        n_actions=feedback["n_actions"],
        len_list=int(feedback["position"].max()) + 1,
        action_context=feedback["action_context"],
        base_model=LogisticRegression(C=100, max_iter=10000, random_state=seed),
    )
    q = model.fit_predict(
        context=feedback["context"],
        action=feedback["action"],
        reward=feedback["reward"],
        position=feedback["position"],
        pscore=feedback["pscore"],
        n_folds=1,
        random_state=seed,
    )
    z = q / 0.001
    z -= z.max(axis=1, keepdims=True)
    soft = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    target = 0.5 * soft + 0.5 / feedback["n_actions"]
    return target, q


def obp_estimates(obp, feedback, target, q):
    """obp's OffPolicyEvaluation of every estimator shoplab shares."""
    e = obp.ope
    ope = e.OffPolicyEvaluation(
        bandit_feedback=feedback,
        ope_estimators=[
            e.InverseProbabilityWeighting(),
            e.SelfNormalizedInverseProbabilityWeighting(),
            e.DirectMethod(),
            e.DoublyRobust(),
            e.SelfNormalizedDoublyRobust(),
            e.SwitchDoublyRobust(lambda_=TAU),
            e.DoublyRobustWithShrinkage(lambda_=SHRINKAGE),
        ],
    )
    values = ope.estimate_policy_values(
        action_dist=target, estimated_rewards_by_reg_model=q
    )
    names = {
        "ipw": "ipw",
        "snipw": "snipw",
        "dm": "dm",
        "dr": "dr",
        "sndr": "sndr",
        "switch-dr": "switch-dr",
        "dr-os": "dr-os",
    }
    return {names[k]: float(v) for k, v in values.items()}


def shoplab_estimates(shoplab, log, target, q, out):
    """`shoplab ope LOG --target T --rewards Q` with obp's parameters."""
    subprocess.run(
        [
            shoplab,
            "ope",
            log,
            "--target",
            target,
            "--rewards",
            q,
            "--tau",
            str(TAU),
            "--shrinkage",
            str(SHRINKAGE),
            "--bootstrap",
            "10",
            "--out",
            out,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(out) as f:
        return {row["estimator"]: float(row["estimate"]) for row in csv.DictReader(f)}


def timing(obp, rounds=5):
    """obp's IPW and SNIPW over 10 million decisions of two actions
    (median process-time rate of `rounds`), as `-- ope` times shoplab."""
    n = 10_000_000
    rng = np.random.default_rng(9)
    action = rng.integers(0, 2, n)
    reward = (rng.random(n) < 0.3).astype(float)
    pscore = np.full(n, 0.5)
    dist = np.tile(np.array([0.2, 0.8])[None, :, None], (n, 1, 1))
    rows = {}
    for name, est in [
        ("ipw", obp.ope.InverseProbabilityWeighting()),
        ("snipw", obp.ope.SelfNormalizedInverseProbabilityWeighting()),
    ]:
        rates = []
        for _ in range(rounds):
            start = time.process_time()
            est.estimate_policy_value(
                reward=reward, action=action, pscore=pscore, action_dist=dist
            )
            rates.append(n / (time.process_time() - start))
        rows[name] = sorted(rates)[rounds // 2]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoplab", default="target/release/shoplab")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    import obp
    from obp.dataset import OpenBanditDataset

    print(f"obp {obp.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for behaviour in ["random", "bts"]:
            data = OpenBanditDataset(
                behavior_policy=behaviour, campaign="all", data_path="data/obd"
            )
            feedback = data.obtain_batch_bandit_feedback()
            log = os.path.join(tmp, f"{behaviour}.csv")
            subprocess.run(
                [args.shoplab, "obd", f"data/obd/{behaviour}/all/all.csv", "--out", log],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            for label, (target, q) in [
                ("formula", formula_inputs(feedback["context"])),
                ("obp-model", model_inputs(obp, feedback)),
            ]:
                t, r = (os.path.join(tmp, f"{behaviour}-{label}-{x}.npy") for x in "tq")
                np.save(t, target)
                np.save(r, q)
                theirs = obp_estimates(obp, feedback, target, q)
                ours = shoplab_estimates(
                    args.shoplab, log, t, r, os.path.join(tmp, f"{behaviour}-{label}.csv")
                )
                print(f"\n{behaviour} log, {label} inputs")
                print(f"{'estimator':<10} {'obp 0.5.7':>24} {'shoplab':>24} {'|difference|':>12}")
                for name, v in theirs.items():
                    diff = abs(v - ours[name])
                    worst = max(worst, diff)
                    print(f"{name:<10} {v!r:>24} {ours[name]!r:>24} {diff:>12.2e}")
    print(f"\nlargest difference {worst:.2e}")
    if not args.no_timing:
        print("\nobp over 10 million logged decisions of two actions (1 core):")
        for name, rate in timing(obp).items():
            print(f"  {name}: {rate / 1e6:.1f} million decisions/s")
    sys.exit(0 if worst <= 1e-9 else 1)


if __name__ == "__main__":
    main()
