"""What is in a dataset: returns, terminations, state and action statistics, coverage, duplicates.

Action coverage (continuous actions, which live in [-1, 1]): each dimension is cut into `COVERAGE_BINS`
equal bins and a cell counts as covered when at least one action falls in it.
- `per_dim`: fraction of the bins occupied, per action dimension (1.0 = the whole range was tried);
- `pairwise_mean` / `pairwise_min`: fraction of the bins x bins cells occupied for each pair of dimensions,
  averaged and at its worst pair. Low pairwise coverage with high per-dim coverage means correlated actions
  (e.g. a policy that always moves two joints together), which per-dim numbers cannot show;
- `joint`: distinct occupied cells of the full grid divided by min(N, bins ** action_size), the most that N
  actions could occupy (None beyond `MAX_JOINT_DIMS` dimensions).
Discrete actions report each action's frequency, the fraction of actions ever taken and the effective number of
actions (exp of the frequencies' entropy).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.data.episodes import EpisodeEnds, episode_ends
from jaxrl.data.metadata import Metadata
from jaxrl.data.report_files import render_markdown, write_returns_histogram
from jaxrl.data.validate import invalid_mask
from jaxrl.infra.files import atomic_write_text
from jaxrl.types import Transition

COVERAGE_BINS = 10
MAX_JOINT_DIMS = 18  # bins ** dims must fit in int64
DENSE_GRID_CELLS = 10**7
PERCENTILES = (5, 25, 50, 75, 95)


def episode_sums(values: np.ndarray, episode_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode sums of `values` in order of first appearance; also returns each row's episode index."""
    _, first_row, inverse = np.unique(episode_id, return_index=True, return_inverse=True)
    order = np.argsort(first_row, kind="stable")  # episodes in the order they appear
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    episode_index = rank[inverse]
    sums = np.zeros(order.size, np.float64)
    np.add.at(sums, episode_index, values.astype(np.float64))
    return sums, episode_index


def _distribution(values: np.ndarray) -> dict[str, float]:
    stats = {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max()}
    stats.update({f"p{q}": np.percentile(values, q) for q in PERCENTILES})
    return {name: float(value) for name, value in stats.items()}


def _per_dim(values: np.ndarray) -> dict[str, list[float]]:
    values = values.astype(np.float64)
    return {
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
    }


def action_coverage(action: np.ndarray, bins: int = COVERAGE_BINS) -> dict[str, Any]:
    """Grid occupancy of continuous actions in [-1, 1] (see the module docstring)."""
    cells = np.clip(np.floor((action.astype(np.float64) + 1.0) / 2.0 * bins), 0, bins - 1).astype(np.int64)
    dims = cells.shape[1]
    occupied = lambda codes, size: np.count_nonzero(np.bincount(codes, minlength=size)) / size
    per_dim = [occupied(cells[:, d], bins) for d in range(dims)]
    pairs = {
        (i, j): occupied(cells[:, i] * bins + cells[:, j], bins**2) for i, j in itertools.combinations(range(dims), 2)
    }
    worst = min(pairs, key=pairs.get) if pairs else None
    joint = None
    if dims <= MAX_JOINT_DIMS:
        codes = cells @ (bins ** np.arange(dims, dtype=np.int64))
        # A bincount is ~100x faster than a sort while the grid is small enough to count densely.
        distinct = np.count_nonzero(np.bincount(codes)) if bins**dims <= DENSE_GRID_CELLS else np.unique(codes).size
        joint = distinct / min(len(cells), bins**dims)
    return {
        "bins": bins,
        "per_dim": per_dim,
        "pairwise_mean": float(np.mean(list(pairs.values()))) if pairs else None,
        "pairwise_min": pairs[worst] if pairs else None,
        "pairwise_min_dims": list(worst) if worst else None,
        "joint": joint,
    }


def discrete_coverage(action: np.ndarray, action_size: int) -> dict[str, Any]:
    """Frequency of each discrete action, the fraction of actions ever taken, and the effective number of actions:
    exp(entropy of the frequencies), as many as the logs would cover if they were spread evenly over them."""
    counts = np.bincount(action, minlength=action_size)
    frequencies = counts / counts.sum()
    taken = frequencies[frequencies > 0]
    return {"frequencies": frequencies.tolist(), "fraction_taken": float((counts > 0).mean()),
            "effective_actions": float(np.exp(-(taken * np.log(taken)).sum()))}


def duplicate_count(transition: Transition) -> int:
    """Rows identical (bytewise, every field but episode_id) to an earlier row."""
    fields = [np.ascontiguousarray(getattr(transition, name)) for name in Transition._fields if name != "episode_id"]
    rows = np.concatenate([field.reshape(len(field), -1).view(np.uint8) for field in fields], axis=1)
    unique = np.unique(np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel())
    return int(len(rows) - unique.size)


def returns_over(ends: EpisodeEnds) -> str:
    """Which episodes the report's return and cost statistics cover."""
    if not ends.time_limit_known:
        return "every episode (time limit unknown: cut episodes cannot be told from whole ones)"
    if not ends.complete.any():
        return "every episode (none is whole: all were cut by the logging budget)"
    cut = int(ends.cut.sum())
    return "whole episodes" + (f" ({cut} cut by the logging budget left out)" if cut else "")


def quality_report(transition: Transition, metadata: Metadata) -> dict[str, Any]:
    """Everything `write_report` shows, as a JSON-ready dict; per-episode figures group rows by episode_id."""
    returns, episode_index = episode_sums(transition.reward, transition.episode_id)
    costs, _ = episode_sums(transition.cost, transition.episode_id)
    ends = episode_ends(transition.episode_id, transition.discount, metadata.time_limit)
    lengths = np.bincount(episode_index)
    # Return statistics over whole episodes only: a cut episode's return is a prefix of one.
    whole = ends.complete if ends.complete.any() else np.ones_like(ends.complete)
    report: dict[str, Any] = {
        "env_name": metadata.env_name,
        "fingerprint": metadata.fingerprint,
        "transitions": len(transition.obs),
        "episodes": int(returns.size),
        "episode_length": {"mean": float(lengths.mean()), "min": int(lengths.min()), "max": int(lengths.max())},
        "returns": _distribution(returns[whole]),
        "costs": _distribution(costs[whole]),
        "returns_over": returns_over(ends),
        "episode_returns": returns[whole].tolist(),
        "terminal_transitions": int((transition.discount == 0).sum()),
        "episodes_terminated": int(ends.terminated.sum()),
        "episodes_truncated": int((~ends.terminated).sum()),  # at the time limit or cut: both end without termination
        "episodes_at_time_limit": int(ends.at_time_limit.sum()) if ends.time_limit_known else None,
        "episodes_cut": int(ends.cut.sum()) if ends.time_limit_known else None,  # the logging stopped mid-episode
        "time_limit": metadata.time_limit,
        "observations": _per_dim(transition.obs),
        "duplicate_transitions": duplicate_count(transition),
        "invalid_rows": int(invalid_mask(transition, metadata).sum()),
        "dropped_invalid_rows": metadata.dropped_invalid_rows,
        "random_return": metadata.random_return,
        "expert_return": metadata.expert_return,
        "normalized_return_mean": metadata.normalized_score(float(returns[whole].mean())),
        "provenance": dataclasses.asdict(metadata.provenance),
    }
    if metadata.discrete:
        report["action_coverage"] = discrete_coverage(transition.action, metadata.action_size)
    else:
        report["actions"] = _per_dim(transition.action)
        report["action_coverage"] = action_coverage(transition.action)
    return report


SUMMARY_KEYS = (
    "transitions",
    "episodes",
    "terminal_transitions",
    "episodes_terminated",
    "episodes_truncated",
    "episodes_cut",
    "returns_over",
    "duplicate_transitions",
    "invalid_rows",
    "normalized_return_mean",
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The scalars of a report that `metadata.json` keeps (no per-dimension or per-episode lists)."""
    coverage = report["action_coverage"]
    brief = {key: report[key] for key in SUMMARY_KEYS}
    brief["returns"] = report["returns"]
    brief["costs_mean"] = report["costs"]["mean"]
    if "per_dim" in coverage:
        brief["action_coverage_per_dim_mean"] = float(np.mean(coverage["per_dim"]))
        brief["action_coverage_pairwise_mean"] = coverage["pairwise_mean"]
        brief["action_coverage_joint"] = coverage["joint"]
    else:
        brief["action_fraction_taken"] = coverage["fraction_taken"]
    return brief


def write_report(directory: str | Path, report: dict[str, Any]) -> list[Path]:
    """Write `quality.json`, `quality.md` and `returns.png` into `directory`; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "quality.json", directory / "quality.md", directory / "returns.png"]
    atomic_write_text(paths[0], json.dumps(report, indent=2, sort_keys=True))
    atomic_write_text(paths[1], render_markdown(report))
    write_returns_histogram(paths[2], np.asarray(report["episode_returns"]), report["env_name"])
    return paths
