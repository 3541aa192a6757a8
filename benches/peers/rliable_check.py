#!/usr/bin/env python3
"""rliable's point estimates on the score matrices `crates/harness/src/rliable.rs` tests.

The matrices are closed forms of the run and task index (the Rust test
builds the same ones), so rliable's values, printed here, are checked in
Rust without Python. Needs rliable (`pip install rliable==1.2.0`).

    RLIABLE_VENV/bin/python benches/peers/rliable_check.py
"""

import json

import numpy as np
from rliable import library as rly, metrics


def matrix(name, runs, tasks):
    if name == "a":
        f = lambda r, t: ((r * 7 + t * 13) % 17) / 10.0 + t * 0.1
    elif name == "b":
        f = lambda r, t: ((r * 5 + t * 11) % 19) / 12.0
    else:  # ties: few distinct values
        f = lambda r, t: float((r + t) % 3) / 2.0
    return np.array([[f(r, t) for t in range(tasks)] for r in range(runs)], dtype=np.float64)


def main():
    out = {}
    for name, runs, tasks in [("a", 10, 3), ("b", 7, 3), ("c", 9, 3)]:
        m = matrix(name, runs, tasks)
        out[name] = {
            "mean": metrics.aggregate_mean(m),
            "median": metrics.aggregate_median(m),
            "iqm": metrics.aggregate_iqm(m),
            "optimality_gap": metrics.aggregate_optimality_gap(m),
        }
        taus = np.linspace(0.0, 2.0, 9)
        profile, _ = rly.create_performance_profile({name: m}, taus, reps=2)
        out[name]["profile"] = profile[name].tolist()
    a, b, c = matrix("a", 10, 3), matrix("b", 7, 3), matrix("c", 9, 3)
    out["poi_a_b"] = metrics.probability_of_improvement(a, b)
    out["poi_b_a"] = metrics.probability_of_improvement(b, a)
    out["poi_c_a"] = metrics.probability_of_improvement(c, a)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
