"""The harness from Python: run folders as DataFrames, logs for obp and d3rlpy."""

import filecmp
import subprocess

import numpy as np
import pytest

import shoplab


def test_run_writes_the_cli_s_run_folder(cli, small_pricing, tmp_path):
    file = small_pricing("both", episodes=20, eval_episodes=5)
    run = shoplab.run(file, results=str(tmp_path / "py"))
    subprocess.run([cli, "run", file, "--results", str(tmp_path / "cli"), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    (cli_folder,) = (tmp_path / "cli" / "both").iterdir()
    for table in ["summary.csv", "episodes.csv", "curves.csv", "evaluations.csv"]:
        assert filecmp.cmp(f"{run.path}/{table}", cli_folder / table, shallow=False), table
    assert list(run.summary["policy"]) == ["fixed_price_2", "random", "oracle"]
    assert len(run.episodes) == 3 * 2 * 20
    assert run.oracle_value == pytest.approx(float(run.summary["reference_value"][0]))
    again = shoplab.load_run(str(cli_folder))
    assert again.summary.equals(run.summary)
    assert again.offline_ope is None
    with pytest.raises(ValueError, match="not a run folder"):
        shoplab.load_run(str(tmp_path))


def test_the_oracle_table_is_the_dp_s():
    table = shoplab.Scenario("pricing").oracle_table()
    assert table["row_name"] and len(table["values"]) == len(table["rows"])
    assert shoplab.Scenario("recommendation").oracle_table() is None


def test_logs_for_obp_and_d3rlpy(cli, small_pricing, tmp_path):
    file = small_pricing("logged")
    log_file = tmp_path / "log.csv"
    subprocess.run([cli, "log", file, "--policy", "random", "--episodes", "30", "--out", str(log_file)],
                   check=True, stdout=subprocess.DEVNULL)
    log = shoplab.read_log(str(log_file))
    assert log.features == ["period", "stock", "last_sales"]
    feedback = log.bandit_feedback(n_actions=5)
    assert feedback["n_rounds"] == len(log) and feedback["context"].shape == (len(log), 3)
    assert np.allclose(feedback["pscore"], 0.2)
    arrays = log.mdp_arrays()
    ends = arrays["terminals"] + arrays["timeouts"]
    assert ends.sum() == 30 and ends[-1] == 1
    assert np.isclose(arrays["rewards"].sum(), log.reward.sum())
    with pytest.raises(ValueError):
        shoplab.read_log(str(tmp_path / "missing.csv"))


def test_run_folders_read_as_polars_too(cli, small_pricing, tmp_path):
    import polars

    run = shoplab.run(small_pricing("polar", episodes=5), results=str(tmp_path / "r"), backend="polars")
    assert isinstance(run.summary, polars.DataFrame)
    assert run.summary["policy"].to_list() == ["fixed_price_2", "random", "oracle"]
    pandas_view = shoplab.load_run(run.path)
    assert pandas_view.summary["final_return_mean"].tolist() == run.summary["final_return_mean"].to_list()
    with pytest.raises(ValueError, match="pandas, polars or csv"):
        shoplab.load_run(run.path, backend="arrow")


def test_a_sweep_runs_from_python_as_from_the_cli(cli, small_pricing, tmp_path):
    file = small_pricing("swept", episodes=20)
    with open(file, "a") as f:
        f.write('\n[sweep]\n[sweep.parameters]\n"pricing.inventory" = [6, 12]\n')
    run = shoplab.run(file, results=str(tmp_path / "py"))
    subprocess.run([cli, "run", file, "--results", str(tmp_path / "cli"), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    (cli_folder,) = (tmp_path / "cli" / "swept").iterdir()
    for table in ["sweep_runs.csv", "sweep_summary.csv", "configs/c02/summary.csv"]:
        assert filecmp.cmp(f"{run.path}/{table}", cli_folder / table, shallow=False), table
    assert run.summary is None
    assert list(run.sweep_summary["pricing.inventory"].unique()) == [6, 12]
    assert sorted(run.configs) == ["c01", "c02"]
    assert run.configs["c02"].values == {"pricing.inventory": 12}
    assert list(run.configs["c01"].summary["policy"]) == ["fixed_price_2", "random", "oracle"]


def test_importing_keeps_candle_on_the_run_s_thread_unless_told_otherwise():
    # As the CLI: one candle thread, and a mask instead of /proc/cpuinfo
    # reads; what the user set is kept, and with RAYON_NUM_THREADS set the
    # mask is left alone.
    import os
    import sys

    def after_import(env):
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("CANDLE_NUM_THREADS", "CANDLE_CPU_MASK", "RAYON_NUM_THREADS")}
        code = ("import os, shoplab; print(os.environ.get('CANDLE_NUM_THREADS'), "
                "os.environ.get('CANDLE_CPU_MASK'))")
        out = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                             check=True, capture_output=True, text=True)
        return out.stdout.split()

    assert after_import({}) == ["1", "0"]
    assert after_import({"CANDLE_NUM_THREADS": "3"}) == ["3", "0"]
    assert after_import({"RAYON_NUM_THREADS": "2"}) == ["1", "None"]
    assert after_import({"CANDLE_CPU_MASK": "1"}) == ["1", "1"]
