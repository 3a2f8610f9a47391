"""Aggregate scores over tasks and runs, with stratified bootstrap confidence intervals.

The estimators and the bootstrap of Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice" (NeurIPS 2021), written with numpy because rliable 1.2.0 cannot be installed with our pins (it needs
arch < 8, and arch 7 fails to import with the pandas 3 that seaborn brings in; see docs/results.md).

One agent's scores are a list over tasks of arrays whose last axis holds the runs (seeds) on that task; leading
axes are batch axes (bootstrap resamples, evaluation steps), so one function gives the point estimate and its
bootstrap distribution. With the same number of runs on every task these are rliable's estimators; with unequal
counts, IQM, optimality gap and performance profile weight every run equally, mean and median every task.
"""

from __future__ import annotations

import zlib

import numpy as np

DEFAULT_REPS = 2000  # bootstrap resamples: 0.35 s for 3 agents x 10 tasks x 3 seeds on a shared 2-core CPU
CONFIDENCE = 0.95
IQM_CUT = 0.25  # fraction of the pooled runs dropped at each end: the interquartile mean


def pooled(task_scores: list[np.ndarray]) -> np.ndarray:
    """Every run of every task along the last axis: [..., runs]."""
    return np.concatenate(task_scores, axis=-1)


def task_means(task_scores: list[np.ndarray]) -> np.ndarray:
    """The mean over runs of each task: [..., tasks]."""
    return np.stack([scores.mean(-1) for scores in task_scores], axis=-1)


def mean(task_scores: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of the per-task mean scores."""
    return task_means(task_scores).mean(-1)


def median(task_scores: list[np.ndarray]) -> np.ndarray:
    """Median over tasks of the per-task mean scores."""
    return np.median(task_means(task_scores), axis=-1)


def iqm(task_scores: list[np.ndarray]) -> np.ndarray:
    """Interquartile mean: the mean of the pooled runs left after dropping the lowest and highest 25%."""
    runs = np.sort(pooled(task_scores), axis=-1)
    cut = int(IQM_CUT * runs.shape[-1])  # as scipy.stats.trim_mean: with fewer than 4 runs nothing is dropped
    return runs[..., cut:runs.shape[-1] - cut].mean(-1)


def optimality_gap(task_scores: list[np.ndarray], threshold: float) -> np.ndarray:
    """How far the pooled runs fall short of `threshold` on average, scores above it counting as `threshold`."""
    return threshold - np.minimum(pooled(task_scores), threshold).mean(-1)


def performance_profile(task_scores: list[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    """The fraction of pooled runs scoring above each threshold: [..., thresholds]."""
    runs = pooled(task_scores)
    return (runs[..., None, :] > thresholds[:, None]).mean(-1)


def stratified_resamples(task_scores: list[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`reps` bootstrap copies of each task's runs, drawn with replacement within that task: [..., reps, runs].

    Tasks are never mixed: the copy of a task holds only that task's runs, so a task whose runs agree contributes
    no spread. The draws go task by task, one `rng.integers(0, runs, (reps, runs))` each.
    """
    return [np.take(scores, rng.integers(0, scores.shape[-1], size=(reps, scores.shape[-1])), axis=-1)
            for scores in task_scores]


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
    """The central `confidence` interval of bootstrap samples along the last axis: [2, ...] (low, high)."""
    tail = 50.0 * (1.0 - confidence)
    return np.percentile(samples, [tail, 100.0 - tail], axis=-1)


def agent_rng(seed: int, agent: str) -> np.random.Generator:
    """The bootstrap's generator for one agent: its intervals do not change when other agents join the report."""
    return np.random.default_rng([seed, zlib.crc32(agent.encode())])
