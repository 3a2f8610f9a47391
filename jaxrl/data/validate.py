"""Checks every dataset passes on load and save: checksums, fields, shapes, dtypes, then row by row.

Structural problems (a changed file, a missing field, a wrong shape or dtype) always raise `DatasetError`.
Row problems (NaN/inf, actions outside [-1, 1] or the discrete range, discounts not in {0, 1}, a terminal
that is not the last row of its episode, an episode whose rows are not contiguous) raise too, unless
`drop_invalid=True`, which removes those rows and reports how many.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxrl.data.metadata import DatasetError, Metadata, array_sha256
from jaxrl.types import Transition

FIELDS = Transition._fields
INT_FIELDS = ("episode_id",)

__all__ = ["DatasetError", "RowProblem", "check_checksums", "check_structure", "row_problems", "validate"]


class RowProblem(NamedTuple):
    """Rows of one field that break one rule."""

    field: str
    reason: str  # e.g. "NaN or inf", "action outside [-1, 1]"
    bad: np.ndarray  # [N] bool

    def describe(self, file: str) -> str:
        rows = np.flatnonzero(self.bad)
        return f"{file}: field '{self.field}': {self.reason} at row {rows[0]} ({rows.size} of {self.bad.size} rows bad)"


def check_checksums(arrays: dict[str, np.ndarray], metadata: Metadata, file: str) -> None:
    """Refuse arrays whose sha256 differs from `metadata.checksums` (never droppable)."""
    for field in FIELDS:
        expected = metadata.checksums.get(field)
        if expected is None:
            raise DatasetError(f"{file}: metadata.json has no checksum for field '{field}'; the dataset is incomplete")
        if field in arrays and array_sha256(arrays[field]) != expected:
            raise DatasetError(
                f"{file}: field '{field}' does not match its sha256 in metadata.json: the file was changed "
                "after saving; restore it or re-create the dataset"
            )


def expected_dtype(field: str, metadata: Metadata) -> np.dtype:
    """float32 everywhere except int32 episode ids and discrete actions."""
    if field in INT_FIELDS or (field == "action" and metadata.discrete):
        return np.dtype(np.int32)
    return np.dtype(np.float32)


def expected_shape(field: str, n: int, metadata: Metadata) -> tuple[int, ...]:
    """[N, obs_size] observations, [N, action_size] or [N] actions, [N] per-row scalars."""
    if field in ("obs", "next_obs"):
        return (n, metadata.obs_size)
    if field == "action" and not metadata.discrete:
        return (n, metadata.action_size)
    return (n,)


def check_structure(arrays: dict[str, np.ndarray], metadata: Metadata, file: str) -> Transition:
    """Check fields, shapes and dtypes; return the arrays as a Transition."""
    missing = [field for field in FIELDS if field not in arrays]
    if missing:
        raise DatasetError(f"{file}: missing fields {missing}; a dataset needs all of {list(FIELDS)}")
    unknown = sorted(set(arrays) - set(FIELDS))
    if unknown:
        raise DatasetError(f"{file}: unknown fields {unknown}; a Transition has {list(FIELDS)}")
    n = len(arrays["obs"]) if np.ndim(arrays["obs"]) else 0
    if n == 0:
        raise DatasetError(f"{file}: field 'obs' has no rows; a dataset needs at least one transition")
    for field in FIELDS:
        array = np.asarray(arrays[field])
        shape = expected_shape(field, n, metadata)
        if array.shape != shape:
            raise DatasetError(
                f"{file}: field '{field}' has shape {array.shape}, expected {shape} "
                f"(N={n} rows from 'obs', obs_size={metadata.obs_size}, action_size={metadata.action_size}, "
                f"discrete={metadata.discrete})"
            )
        dtype = expected_dtype(field, metadata)
        if array.dtype != dtype:
            hint = _discrete_action_hint(array) if field == "action" and metadata.discrete else ""
            raise DatasetError(f"{file}: field '{field}' has dtype {array.dtype}, expected {dtype}{hint}")
    return Transition(**{field: np.asarray(arrays[field]) for field in FIELDS})


def _discrete_action_hint(action: np.ndarray) -> str:
    """Why a discrete dataset's non-int32 actions were refused: the first row that is not a whole number, if any."""
    if not np.issubdtype(action.dtype, np.number):
        return " (discrete actions are int32 indices)"
    with np.errstate(invalid="ignore"):
        fractional = ~np.isfinite(action) | (action != np.round(action)) if action.dtype.kind in "fc" else None
    if fractional is not None and fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        return (f" (discrete actions are int32 indices; row {row} holds {action[row].item()!r}, not a whole number, at "
                f"{int(fractional.sum())} row(s) in all)")
    return " (discrete actions are int32 indices: its values are whole numbers, so cast them with astype(np.int32))"


def _nonfinite(array: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(array)
    return bad.reshape(len(array), -1).any(axis=1)


def _episode_problems(transition: Transition) -> list[RowProblem]:
    episode_id = transition.episode_id
    same_as_next = np.append(episode_id[1:] == episode_id[:-1], False)
    early_terminal = (transition.discount == 0) & same_as_next
    # Runs of equal ids; a run whose id already had an earlier run is not contiguous with it.
    run_starts = np.flatnonzero(np.append(True, episode_id[1:] != episode_id[:-1]))
    run_ids = episode_id[run_starts]
    _, first_run = np.unique(run_ids, return_index=True)
    repeated_run = np.ones(run_ids.size, bool)
    repeated_run[first_run] = False
    run_lengths = np.diff(np.append(run_starts, episode_id.size))
    split_episode = np.repeat(repeated_run, run_lengths)
    return [
        RowProblem("discount", "terminal (discount 0) that is not the last row of its episode", early_terminal),
        RowProblem("episode_id", "episode continues after other episodes (its rows are not contiguous)", split_episode),
    ]


def row_problems(transition: Transition, metadata: Metadata) -> list[RowProblem]:
    """Every broken rule with at least one bad row, in a fixed order."""
    problems = [RowProblem(name, "NaN or inf", _nonfinite(getattr(transition, name))) for name in ("obs", "next_obs")]
    action = transition.action
    if metadata.discrete:
        outside = (action < 0) | (action >= metadata.action_size)
        problems.append(RowProblem("action", f"discrete action outside [0, {metadata.action_size})", outside))
    else:
        problems.append(RowProblem("action", "NaN or inf", _nonfinite(action)))
        outside = ((action < -1.0) | (action > 1.0)).any(axis=1)
        problems.append(RowProblem("action", "action outside [-1, 1] (rescale to [-1, 1])", outside))
    for field in ("reward", "cost"):
        problems.append(RowProblem(field, "NaN or inf", _nonfinite(getattr(transition, field))))
    discount = transition.discount
    problems.append(RowProblem("discount", "discount not 0 or 1", (discount != 0) & (discount != 1)))
    log_prob_inf = np.isinf(transition.behavior_log_prob)
    problems.append(RowProblem("behavior_log_prob", "inf (NaN means unknown and is allowed)", log_prob_inf))
    problems.extend(_episode_problems(transition))
    return [problem for problem in problems if problem.bad.any()]


def invalid_mask(transition: Transition, metadata: Metadata) -> np.ndarray:
    """[N] bool: rows that break any row rule."""
    bad = np.zeros(len(transition.obs), bool)
    for problem in row_problems(transition, metadata):
        bad |= problem.bad
    return bad


def validate(
    arrays: dict[str, np.ndarray], metadata: Metadata, file: str, drop_invalid: bool = False
) -> tuple[Transition, int]:
    """Check structure and rows; return the (possibly row-dropped) Transition and how many rows were dropped.

    Checksums are checked separately (`check_checksums`) because in-memory data has none yet.
    """
    transition = check_structure(arrays, metadata, file)
    problems = row_problems(transition, metadata)
    if not problems:
        return transition, 0
    if not drop_invalid:
        details = "; ".join(problem.describe(file) for problem in problems)
        raise DatasetError(f"{details}. Pass drop_invalid=True (CLI: --drop-invalid) to drop these rows")
    keep = ~invalid_mask(transition, metadata)
    if not keep.any():
        raise DatasetError(f"{problems[0].describe(file)}; every row is invalid, nothing would be left")
    kept = Transition(*(array[keep] for array in transition))
    return kept, int((~keep).sum())
