"""D4RL-style HDF5 files in and out; Minari datasets live in `jaxrl.data.minari_format`.

A D4RL file holds flat arrays `observations` [N, obs], `actions` [N, act], `rewards`, `terminals`,
`timeouts` [N], and optionally `next_observations`. An episode ends at a row with `terminals` or `timeouts`
set; rows after the last end form one more (cut-off) episode.

Without `next_observations`, next_obs is derived inside each episode as the following row's obs. The final
row of an episode has no following row of its own: if it is a terminal, it is kept with next_obs = obs (the
value is never used, since its discount is 0); if it is a timeout or the cut-off end, it is dropped. The
number of dropped rows is recorded in `metadata.extra["rows_without_next_obs_dropped"]`.

jaxrl writes the extra keys `costs`, `episode_ids`, `infos/action_log_probs` and a `jaxrl_metadata` JSON
attribute, and reads them back when present, so export followed by import gives identical arrays. Note
that a Transition has no timeout flag: on export, every non-terminal last row of an episode is a timeout.

jaxrl holds float32 floats and int32 integers. A field stored wider (float64 rewards or observations, int64
actions) is narrowed on import: the importer warns with the field, the source dtype and the largest absolute
change, and the import records the same under `metadata.extra["narrowed_on_import"]`. Such a source does
not come back bit-identical from a jaxrl export (docs/datasets.md lists which round trips are exact).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jaxrl.data.metadata import DatasetError, Metadata, Parent, Provenance, file_sha256
from jaxrl.data.validate import validate
from jaxrl.infra.files import atomic_write_file
from jaxrl.types import Transition

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
INHERITED = ("behavior_policy", "behavior_policy_fingerprint", "seed")


def episode_ends(transition: Transition) -> np.ndarray:
    """[N] bool: the last row of each episode (where the next row has another episode id, and the final row)."""
    return np.append(transition.episode_id[1:] != transition.episode_id[:-1], True)


class NarrowingWarning(UserWarning):
    """An imported field was stored in a wider dtype than jaxrl keeps; its values may have changed."""


def narrow(name: str, values: np.ndarray, dtype: type, narrowed: dict[str, Any]) -> np.ndarray:
    """`values` as `dtype`. A cast that can lose information (float64 -> float32, int64 -> int32) is recorded as
    `narrowed[name] = {"from", "to", "max_abs_change"}` (the change over finite source values)."""
    values = np.asarray(values)
    cast = values.astype(dtype)
    if np.can_cast(values.dtype, cast.dtype, "safe"):
        return cast
    finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    with np.errstate(over="ignore", invalid="ignore"):
        change = np.abs(cast[finite].astype(np.float64) - values[finite].astype(np.float64))
    narrowed[name] = {"from": str(values.dtype), "to": str(cast.dtype), "max_abs_change": float(change.max(initial=0))}
    return cast


def warn_narrowed(narrowed: dict[str, Any]) -> None:
    """One `NarrowingWarning` per field `narrow` narrowed, pointing at the importer's caller."""
    for name, record in narrowed.items():
        warnings.warn(describe_narrowing(name, record), NarrowingWarning, stacklevel=3)


def describe_narrowing(name: str, record: dict[str, Any]) -> str:
    """One line about a field `narrow` narrowed."""
    change = record["max_abs_change"]
    effect = f"largest absolute change {change:.3g}" if change else "values unchanged"
    return (
        f"field '{name}' narrowed from {record['from']} to {record['to']} on import ({effect}); "
        'recorded in metadata.json extra["narrowed_on_import"]'
    )


def imported_metadata(
    source: Path, fmt: str, env_name: str, transition: Transition, discrete: bool, action_size: int, **fields: Any
) -> Metadata:
    """Metadata of data imported from a foreign file: the file is the parent, identified by its sha256."""
    stored = fields.pop("stored", None)
    if transition.obs.ndim != 2:
        raise DatasetError(f"{source}: observations have shape {transition.obs.shape}, expected [N, obs_size]")
    provenance = Provenance(
        behavior_policy=f"unknown (imported from {fmt} file {source.name})",
        parent=Parent(str(source.resolve()), file_sha256(source), {"import": fmt}),
    )
    extra = fields.pop("extra", {})
    narrowed = fields.pop("narrowed", {})
    if narrowed:
        extra = {**extra, "narrowed_on_import": narrowed}
    if stored is not None:  # a file jaxrl exported: keep what it knew about the behaviour policy
        provenance = dataclasses.replace(provenance, **{name: getattr(stored.provenance, name) for name in INHERITED})
        for name in ("random_return", "expert_return", "time_limit"):
            if fields.get(name) is None:
                fields[name] = getattr(stored, name)
        extra = {**stored.extra, **extra}
        fields["dropped_invalid_rows"] = stored.dropped_invalid_rows
    return Metadata(
        env_name=env_name,
        obs_size=int(transition.obs.shape[1]),
        action_size=action_size,
        discrete=discrete,
        provenance=provenance,
        extra=extra,
        **fields,
    )


def finish_import(
    transition: Transition, metadata: Metadata, file: str, drop_invalid: bool
) -> tuple[Transition, Metadata]:
    """Validate imported arrays (dropping invalid rows if asked) and record the count."""
    transition, dropped = validate(transition._asdict(), metadata, file, drop_invalid)
    return transition, dataclasses.replace(metadata, dropped_invalid_rows=metadata.dropped_invalid_rows + dropped)


def _read(file: h5py.File, key: str, path: Path) -> np.ndarray:
    if key not in file:
        raise DatasetError(f"{path}: field '{key}' is missing; a D4RL file needs {list(REQUIRED_KEYS)}")
    return np.asarray(file[key][()])


def _read_d4rl(path: Path) -> tuple[dict[str, np.ndarray], Metadata | None]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (expected a D4RL-style .hdf5 file)")
    try:
        with h5py.File(path, "r") as file:
            arrays = {key: _read(file, key, path) for key in REQUIRED_KEYS}
            for key in ("next_observations", "costs", "episode_ids", "infos/action_log_probs"):
                if key in file:
                    arrays[key] = np.asarray(file[key][()])
            stored = file.attrs.get("jaxrl_metadata")
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read as HDF5 ({error})") from None
    return arrays, Metadata.from_json(stored, f"{path}: attribute jaxrl_metadata") if stored is not None else None


def _derive_next_obs(arrays: dict[str, np.ndarray], ends: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """next_obs = the following row's obs inside an episode; see the module docstring for episode ends."""
    obs, terminal = arrays["observations"], arrays["terminals"].astype(bool)
    next_obs = np.concatenate([obs[1:], obs[-1:]])
    next_obs[ends] = obs[ends]  # only kept where the row is terminal
    keep = ~ends | terminal
    kept = {key: value[keep] for key, value in arrays.items()}
    kept["next_observations"] = next_obs[keep]
    return kept, int((~keep).sum())


def _d4rl_transition(arrays: dict[str, np.ndarray], discrete: bool, narrowed: dict[str, Any]) -> Transition:
    """The Transition of a D4RL file's rows (next_observations and episode_ids already present)."""
    rows = len(arrays["observations"])
    sources = {
        "obs": arrays["observations"],
        "action": arrays["actions"],
        "reward": arrays["rewards"],
        "cost": arrays.get("costs", np.zeros(rows, np.float32)),
        "next_obs": arrays["next_observations"],
        "behavior_log_prob": arrays.get("infos/action_log_probs", np.full(rows, np.nan, np.float32)),
        "episode_id": arrays["episode_ids"],
    }
    integers = {"episode_id", "action"} if discrete else {"episode_id"}
    fields = {name: narrow(name, value, np.int32 if name in integers else np.float32, narrowed)
              for name, value in sources.items()}
    return Transition(discount=(~arrays["terminals"].astype(bool)).astype(np.float32), **fields)


def import_d4rl(
    path: str | Path,
    env_name: str,
    drop_invalid: bool = False,
    random_return: float | None = None,
    expert_return: float | None = None,
) -> tuple[Transition, Metadata]:
    """Read a D4RL-style HDF5 file into a validated numpy Transition and its metadata.

    Reference returns default to those of a jaxrl-exported file. Integer 1-D actions are read as discrete,
    with action_size = the largest action + 1 (or the exported metadata's action_size).

    Arrays are kept as float32 (int32 for episode ids and discrete actions). Wider source fields, such as
    float64 rewards, are narrowed with a `NarrowingWarning` naming the field, its dtype and the largest change,
    recorded in `metadata.extra["narrowed_on_import"]`. A file jaxrl exported comes back bit-identical.
    """
    path = Path(path)
    arrays, stored = _read_d4rl(path)
    n = len(arrays["observations"])
    if n == 0:
        raise DatasetError(f"{path}: field 'observations' has no rows")
    for key, value in arrays.items():
        if len(value) != n:
            raise DatasetError(f"{path}: field '{key}' has {len(value)} rows, 'observations' has {n}")
    terminal = arrays["terminals"].astype(bool)
    ends = terminal | arrays["timeouts"].astype(bool)
    ends[-1] = True
    if "episode_ids" not in arrays:
        arrays["episode_ids"] = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int32)
    dropped_ends = 0
    if "next_observations" not in arrays:
        arrays, dropped_ends = _derive_next_obs(arrays, ends)
    actions = arrays["actions"]
    discrete = actions.ndim == 1 and np.issubdtype(actions.dtype, np.integer)
    if not discrete and actions.ndim == 1:
        arrays["actions"] = actions = actions[:, None]
    if len(arrays["observations"]) == 0:
        raise DatasetError(f"{path}: no rows left after dropping episode ends without a next observation")
    narrowed: dict[str, Any] = {}
    transition = _d4rl_transition(arrays, discrete, narrowed)
    if stored is not None:
        action_size = stored.action_size
    else:
        action_size = int(actions.max()) + 1 if discrete else int(actions.shape[1])
    extra = {"rows_without_next_obs_dropped": dropped_ends} if dropped_ends else {}
    references = {"random_return": random_return, "expert_return": expert_return}
    metadata = imported_metadata(
        path, "d4rl", env_name, transition, discrete, action_size, stored=stored, extra=extra, narrowed=narrowed,
        **references,
    )
    warn_narrowed(narrowed)
    return finish_import(transition, metadata, str(path), drop_invalid)


def export_d4rl(path: str | Path, transition: Transition, metadata: Metadata, overwrite: bool = False) -> None:
    """Write a D4RL-style HDF5 file (plus jaxrl's extra keys) atomically; refuse an existing file unless overwrite."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists; choose another file or pass overwrite=True (CLI: --overwrite)")
    ends = episode_ends(transition)
    terminal = transition.discount == 0
    columns = {
        "observations": transition.obs,
        "actions": transition.action,
        "rewards": transition.reward,
        "terminals": terminal,
        "timeouts": ends & ~terminal,
        "next_observations": transition.next_obs,
        "costs": transition.cost,
        "episode_ids": transition.episode_id,
        "infos/action_log_probs": transition.behavior_log_prob,
    }

    def write(handle: Any) -> None:
        with h5py.File(handle, "w") as file:
            for key, value in columns.items():
                file.create_dataset(key, data=np.asarray(value))
            file.attrs["jaxrl_metadata"] = metadata.to_json()

    atomic_write_file(path, write)
