"""How each logged episode ended: terminated by the task, truncated at the env's time limit, or cut by the logging
budget (the collection stopped while it was running).

Only the first two are whole episodes of the task: a cut episode's return is a prefix of one, which biases return
statistics and every estimator of an episode's value downward (on tasks with positive rewards) or upward. The
rows of a cut episode are still valid transitions for anything that learns from single steps (TD learning, FQE).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EpisodeEnds(NamedTuple):
    """Per episode, in the order of the rows."""

    first_row: np.ndarray  # [E] int, row index of the episode's first step
    length: np.ndarray  # [E] int, steps
    terminated: np.ndarray  # [E] bool, the last step has discount 0
    cut: np.ndarray  # [E] bool, neither terminated nor at the time limit (all False where the limit is unknown)
    time_limit_known: bool

    @property
    def complete(self) -> np.ndarray:
        """[E] bool: terminated, or truncated at the time limit. Where the time limit is unknown, every
        non-terminal end counts as the time limit, as D4RL's `timeouts` are read."""
        return ~self.cut

    @property
    def at_time_limit(self) -> np.ndarray:
        return ~self.terminated & ~self.cut


def episode_ends(episode_id: np.ndarray, discount: np.ndarray, time_limit: int | None) -> EpisodeEnds:
    """Classify the episodes of rows whose episodes are consecutive runs of one `episode_id` [N]."""
    episode_id = np.asarray(episode_id)
    starts = np.flatnonzero(np.append(True, episode_id[1:] != episode_id[:-1]))
    length = np.diff(np.append(starts, len(episode_id)))
    terminated = np.asarray(discount)[starts + length - 1] == 0
    cut = ~terminated & (length < time_limit) if time_limit is not None else np.zeros(len(starts), bool)
    return EpisodeEnds(starts, length, terminated, cut, time_limit is not None)
