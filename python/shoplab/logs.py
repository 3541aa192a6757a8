"""Logs for the Python tools: obp's ``bandit_feedback`` and d3rlpy's arrays."""

from typing import Optional

import numpy as np

from . import _native


class Log:
    """A log in shoplab's format (CSV or Parquet), its columns as arrays:
    ``episode``, ``session``, ``step``, ``x`` (rows × features),
    ``features``, ``action``, ``position``, ``reward``, ``propensity``,
    ``terminated``, ``truncated``."""

    def __init__(self, columns: dict):
        for key, value in columns.items():
            setattr(self, key, value)

    def __len__(self):
        return len(self.action)

    def bandit_feedback(self, n_actions: Optional[int] = None) -> dict:
        """obp's ``bandit_feedback`` dict: ``n_rounds``, ``n_actions``,
        ``action``, ``position``, ``reward``, ``pscore``, ``context`` and
        ``action_context`` (one-hot items, as obp's synthetic data has
        none of its own)."""
        n = int(n_actions if n_actions is not None else self.action.max() + 1)
        if self.action.max() >= n:
            raise ValueError(f"the log has action {self.action.max()}, beyond n_actions = {n}")
        return {
            "n_rounds": len(self),
            "n_actions": n,
            "action": self.action.astype(np.int64),
            "position": self.position.astype(np.int64),
            "reward": self.reward,
            "pscore": self.propensity,
            "context": self.x.astype(np.float64),
            "action_context": np.eye(n),
        }

    def mdp_arrays(self) -> dict:
        """The arrays d3rlpy's ``MDPDataset`` takes: ``observations``,
        ``actions``, ``rewards``, ``terminals`` and ``timeouts``, rows
        ordered by episode, session and step, each session's last row its
        end (terminal, or a timeout when it was not terminated)."""
        if (self.position > 0).any():
            raise ValueError("a slate log has several rows a decision; MDP datasets take one")
        order = np.lexsort((self.step, self.session, self.episode))
        episode, session = self.episode[order], self.session[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (episode[1:] != episode[:-1]) | (session[1:] != session[:-1])
        terminals = self.terminated[order].astype(np.float32)
        return {
            "observations": self.x[order].astype(np.float32),
            "actions": self.action[order].astype(np.int64),
            "rewards": self.reward[order].astype(np.float32),
            "terminals": terminals,
            "timeouts": (last & (terminals == 0)).astype(np.float32),
        }


def read_log(path: str) -> Log:
    """Reads and validates the log at ``path`` (``ValueError`` with the
    CLI's message when it is not a valid log)."""
    return Log(_native.read_log(path))
