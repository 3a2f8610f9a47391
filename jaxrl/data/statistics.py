"""Dataset statistics the offline agents normalize with: observation moments and the episode-return range."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxrl.data.quality import episode_sums
from jaxrl.types import Transition


class DatasetStatistics(NamedTuple):
    obs_mean: np.ndarray  # [obs_size] float32
    obs_std: np.ndarray  # [obs_size] float32, population std
    min_episode_return: float  # over every episode of the dataset, those cut short included (as CORL)
    max_episode_return: float


def dataset_statistics(transition: Transition) -> DatasetStatistics:
    """Moments of the observations (float64 sums) and the range of the episodes' returns."""
    obs = np.asarray(transition.obs, np.float64)
    returns, _ = episode_sums(np.asarray(transition.reward), np.asarray(transition.episode_id))
    return DatasetStatistics(obs.mean(axis=0).astype(np.float32), obs.std(axis=0).astype(np.float32),
                             float(returns.min()), float(returns.max()))
