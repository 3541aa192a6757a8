"""The harness from Python: run a scenario, read a run folder as DataFrames."""

import csv
import json
import os
from typing import Optional

from . import _native

_TABLES = [
    "summary",
    "episodes",
    "curves",
    "evaluations",
    "runs",
    "learning",
    "policy_tables",
    "offline_ope",
    "sweep_runs",
    "sweep_summary",
]


class Run:
    """A run folder: its tables as DataFrames (pandas, or polars with
    ``backend="polars"``), its manifest and resolved scenario.

    Tables the folder lacks (``evaluations`` without evaluations) are
    ``None``. ``oracle_value`` is the scenario's V* where computable.

    A sweep's folder has ``sweep_runs`` and ``sweep_summary`` (one column
    per swept key) and ``configs``: each configuration's id and its own
    :class:`Run` of ``configs/<id>/``, whose ``values`` are the swept keys'
    values there.
    """

    def __init__(self, path: str, backend: str = "pandas", _parent: Optional["Run"] = None):
        if _parent is None and not os.path.isfile(os.path.join(path, "manifest.json")):
            raise ValueError(f"{path}: not a run folder (no manifest.json in it)")
        self.path = path
        if _parent is None:
            with open(os.path.join(path, "manifest.json")) as f:
                self.manifest = json.load(f)
            with open(os.path.join(path, "scenario.toml")) as f:
                self.scenario_toml = f.read()
        else:
            self.manifest = _parent.manifest
            self.scenario_toml = _parent.scenario_toml
        self.oracle_value = self.manifest.get("oracle_value")
        self.values = {}
        reader = _reader(backend)
        for table in _TABLES:
            file = os.path.join(path, f"{table}.csv")
            setattr(self, table, reader(file) if os.path.isfile(file) else None)
        self.configs = {}
        sweep = self.manifest.get("sweep") if _parent is None else None
        for config in (sweep or {}).get("configurations", []):
            child = Run(os.path.join(path, "configs", config["id"]), backend, _parent=self)
            child.values = config["values"]
            self.configs[config["id"]] = child

    def __repr__(self):
        return f"Run({self.path!r})"


def _reader(backend: str):
    if backend == "pandas":
        import pandas

        return pandas.read_csv
    if backend == "polars":
        import polars

        return polars.read_csv
    if backend == "csv":
        return lambda file: list(csv.DictReader(open(file)))
    raise ValueError(f"backend `{backend}`: pandas, polars or csv")


def run(scenario: str, overrides: Optional[dict] = None, results: str = "results", backend: str = "pandas") -> Run:
    """Runs ``scenario`` (a file or a shipped name, with dotted
    ``overrides``) and writes its run folder under ``results/``, exactly as
    ``shoplab run`` does; returns the folder as a :class:`Run`."""
    folder = _native.run(_native.Scenario(scenario, overrides or {}), results)
    return Run(folder, backend)


def load_run(path: str, backend: str = "pandas") -> Run:
    """The run folder at ``path`` as a :class:`Run`."""
    return Run(path, backend)
