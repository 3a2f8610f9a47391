"""Derived datasets that keep a subset of episodes, recording their parent and the filter."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from jaxrl.data.metadata import DatasetError, Metadata, Parent, checksums_of, fingerprint_of, now_iso
from jaxrl.data.quality import episode_sums
from jaxrl.types import Transition


def top_fraction(
    transition: Transition, metadata: Metadata, fraction: float, parent_path: str | Path | None = None
) -> tuple[Transition, Metadata]:
    """Keep the ceil(fraction * episodes) episodes with the highest return (ties: earlier episode first).

    Rows keep their order. The new metadata names its parent by `parent_path` (the folder it was loaded
    from, if any) and the fingerprint of the given arrays, and records the filter. Episodes cut off at the
    end of logging compete with their partial return.
    """
    if not 0.0 < fraction <= 1.0:
        raise DatasetError(f"top fraction {fraction}: expected a number in (0, 1], e.g. 0.1 for the best 10%")
    returns, episode_index = episode_sums(transition.reward, transition.episode_id)  # [E], [N]
    keep_count = math.ceil(fraction * returns.size)
    ranked = np.argsort(-returns, kind="stable")
    kept_episodes = np.zeros(returns.size, bool)
    kept_episodes[ranked[:keep_count]] = True
    rows = kept_episodes[episode_index]
    derivation = {
        "filter": "top_fraction",
        "fraction": fraction,
        "episodes_kept": keep_count,
        "episodes_in_parent": int(returns.size),
        "min_return_kept": float(returns[ranked[keep_count - 1]]),
    }
    path = str(Path(parent_path).resolve()) if parent_path is not None else None
    parent = Parent(path, fingerprint_of(checksums_of(transition)), derivation)
    provenance = dataclasses.replace(metadata.provenance, parent=parent, created_at=now_iso())
    child = dataclasses.replace(metadata, provenance=provenance, checksums={}, quality=None)
    return Transition(*(np.asarray(field)[rows] for field in transition)), child
