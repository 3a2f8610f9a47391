"""Minari datasets in and out, on local files only (minari 0.5.4, HDF5 storage).

Minari stores one episode as `observations` [T+1] (the final observation included), `actions`, `rewards`,
`terminations`, `truncations` [T] and `infos`. Its public writer, `minari.create_dataset_from_buffers`,
writes under the folder named by the MINARI_DATASETS_PATH environment variable; we point that variable at a
temporary folder for the duration of the call (so this is not thread-safe) and move the finished dataset to
`<root>/<dataset_id>` atomically; the root defaults to Minari's own (`datasets_root`), where
`minari.load_dataset(dataset_id)` finds the export. Import takes a dataset folder or a dataset id, which is
looked up as `minari.load_dataset` does (`resolve_dataset`). Nothing here needs the network: remote
download/upload (`minari.download_dataset`) is not used.

Per-step jaxrl fields without a Minari slot travel in `infos` with Minari's T+1 convention (entry 0 is the
reset info): `cost`, `behavior_log_prob`, `episode_id`; the jaxrl metadata travels as the `jaxrl_metadata`
entry of Minari's metadata, and reference returns as `ref_min_score` / `ref_max_score`. Continuous actions
of a Box with other finite bounds are rescaled to [-1, 1] on import (recorded in `extra`). Fields stored wider
than jaxrl keeps them (Minari's float64 rewards) are narrowed with a warning (`formats.warn_narrowed`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.data.formats import episode_ends, finish_import, imported_metadata, narrow, warn_narrowed
from jaxrl.data.metadata import DatasetError, Metadata
from jaxrl.infra.files import atomic_write_dir
from jaxrl.types import Transition


def datasets_root() -> Path:
    """Minari's datasets folder: $MINARI_DATASETS_PATH, else ~/.minari/datasets (Minari creates it if missing)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return get_dataset_path()


def _root_origin() -> str:
    if "MINARI_DATASETS_PATH" in os.environ:
        return "MINARI_DATASETS_PATH"
    return "Minari's default; set MINARI_DATASETS_PATH for another"


def default_dataset_id(env_name: str) -> str:
    """A valid Minari id for an env name: `<name>-v0` with characters Minari refuses replaced by `_`."""
    return re.sub(r"[^-\w]", "_", env_name) + "-v0"


@contextlib.contextmanager
def _datasets_root(root: Path) -> Iterator[None]:
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _after_reset_entry(values: np.ndarray, reset_value: float) -> np.ndarray:
    """Prepend the entry Minari's infos hold for the reset, so step t's value sits at index t + 1."""
    return np.concatenate([np.asarray([reset_value], values.dtype), values])


def _episode_buffers(transition: Transition) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    ends = episode_ends(transition)
    broken = ~ends[:-1] & np.any(transition.next_obs[:-1] != transition.obs[1:], axis=1)
    if broken.any():
        row = int(np.flatnonzero(broken)[0])
        raise DatasetError(
            f"field 'next_obs': row {row} differs from 'obs' of row {row + 1} in the same episode "
            f"({int(broken.sum())} rows); Minari stores one observation sequence per episode, so this dataset "
            "cannot be exported to Minari (use --format d4rl)"
        )
    terminal = transition.discount == 0
    buffers = []
    for start, stop in zip(np.append(0, np.flatnonzero(ends)[:-1] + 1), np.flatnonzero(ends) + 1, strict=True):
        rows = slice(start, stop)
        buffers.append(
            EpisodeBuffer(
                observations=np.concatenate([transition.obs[rows], transition.next_obs[stop - 1 : stop]]),
                actions=transition.action[rows],
                rewards=transition.reward[rows],
                terminations=terminal[rows],
                truncations=(ends & ~terminal)[rows],
                infos={
                    "cost": _after_reset_entry(transition.cost[rows], 0),
                    "behavior_log_prob": _after_reset_entry(transition.behavior_log_prob[rows], np.nan),
                    "episode_id": _after_reset_entry(transition.episode_id[rows], transition.episode_id[start]),
                },
            )
        )
    return buffers


def export_minari(
    root: str | Path | None,
    transition: Transition,
    metadata: Metadata,
    dataset_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Minari dataset to `<root>/<dataset_id>` and return that folder.

    `root` defaults to `datasets_root()`, where `minari.load_dataset(dataset_id)` finds it; `dataset_id` to
    `default_dataset_id(env_name)`.
    """
    import gymnasium as gym
    import minari
    from minari.dataset.minari_dataset import parse_dataset_id

    dataset_id = dataset_id or default_dataset_id(metadata.env_name)
    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise DatasetError(f"Minari dataset id {dataset_id!r}: expected (namespace/)name-v<version>") from None
    buffers = _episode_buffers(transition)
    observation_space = gym.spaces.Box(-np.inf, np.inf, (metadata.obs_size,), np.float32)
    if metadata.discrete:
        action_space = gym.spaces.Discrete(metadata.action_size)
    else:
        action_space = gym.spaces.Box(-1.0, 1.0, (metadata.action_size,), np.float32)
    extra_metadata = {"jaxrl_metadata": metadata.to_json()}
    if metadata.random_return is not None and metadata.expert_return is not None:
        extra_metadata.update(ref_min_score=metadata.random_return, ref_max_score=metadata.expert_return)

    def fill(folder: Path) -> None:
        scratch = folder / ".minari-root"
        with _datasets_root(scratch), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # minari warns about every optional field left out
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                observation_space=observation_space,
                action_space=action_space,
                algorithm_name=metadata.provenance.behavior_policy,
                author="jaxrl",
                code_permalink=metadata.provenance.code_version,
                description=f"{metadata.env_name} transitions exported by jaxrl",
                data_format="hdf5",
            )
            dataset.storage.update_metadata(extra_metadata)
        for item in (scratch / dataset_id).iterdir():
            item.rename(folder / item.name)
        shutil.rmtree(scratch)

    destination = Path(root if root is not None else datasets_root()) / dataset_id
    try:
        atomic_write_dir(destination, fill, overwrite)
    except FileExistsError as error:
        raise DatasetError(f"Minari dataset {dataset_id!r}: {error}") from None
    return destination


def _data_path(path: Path) -> Path | None:
    for candidate in (path / "data", path):
        file = candidate / "metadata.json"
        if file.is_file() and "minari_version" in json.loads(file.read_text()):
            return candidate
    return None


def resolve_dataset(source: str | Path) -> Path:
    """The folder of a local Minari dataset given as a folder or as a dataset id.

    A `source` that exists is a folder (`<root>/<dataset_id>` or its `data/`). Otherwise it is an id such as
    `D4RL/door/human-v2`, found where `minari.load_dataset` finds it: `<datasets_root()>/<id>`.
    """
    path = Path(source)
    if path.exists():
        if _data_path(path) is None:
            raise DatasetError(
                f"{path}: no Minari dataset here (expected {path}/data/metadata.json written by Minari); pass "
                "a dataset folder <root>/<dataset_id>, or an id such as D4RL/door/human-v2 that is not also a "
                "path here (an existing path is read as a folder)"
            )
        return path
    return _dataset_folder(str(source))


def _dataset_folder(dataset_id: str) -> Path:
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage.datasets_root_dir import get_dataset_path

    root = f"datasets root {datasets_root()}, from {_root_origin()}"
    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise DatasetError(
            f"{dataset_id!r}: no such folder, and not a Minari dataset id: ids are (namespace/)name-v<version>, "
            "e.g. D4RL/door/human-v2"
        ) from None
    except TypeError:  # minari 0.5.4 accepts an id without -v<version>, then fails to convert the version
        versions = ", ".join(_local_ids(f"{dataset_id}-v"))
        choice = f"one of the local versions: {versions}" if versions else f"e.g. {dataset_id}-v0 (none is local)"
        raise DatasetError(
            f"Minari dataset id {dataset_id!r} has no version; minari.load_dataset needs one, {choice} ({root})"
        ) from None
    folder = get_dataset_path(dataset_id)
    if _data_path(folder) is None:
        local = ", ".join(_local_ids()) or "none"
        raise DatasetError(
            f"Minari dataset {dataset_id!r}: no such folder, and no dataset at {folder / 'data'} ({root}); "
            f"local datasets: {local}. Download it with `minari download {dataset_id}`, or pass its folder"
        )
    return folder


def _local_ids(prefix: str = "") -> list[str]:
    """Ids of the datasets under `datasets_root()` that start with `prefix`."""
    import minari

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minari warns about every misconfigured folder
        ids = minari.list_local_datasets()
    return [dataset_id for dataset_id in ids if dataset_id.startswith(prefix)]


def _rescale(action: np.ndarray, space: Any, extra: dict[str, Any]) -> np.ndarray:
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or (np.all(low == -1) and np.all(high == 1)):
        return action
    extra["action_rescaled_from"] = {"low": low.tolist(), "high": high.tolist()}
    return (2.0 * (action - low) / (high - low) - 1.0).astype(np.float32)


def _info(episode: Any, name: str, steps: int, default: np.generic) -> np.ndarray:
    """Step values of info `name` (entry 0, the reset's, dropped), or `default` (a scalar of the kept dtype)."""
    values = (episode.infos or {}).get(name)
    if values is None:
        return np.full(steps, default)
    values = np.asarray(values)
    return values[1:] if len(values) == steps + 1 else values


def import_minari(
    source: str | Path,
    env_name: str,
    drop_invalid: bool = False,
    random_return: float | None = None,
    expert_return: float | None = None,
) -> tuple[Transition, Metadata]:
    """Read a local Minari dataset, a folder or an id (see `resolve_dataset`), into a validated Transition.

    Reference returns default to Minari's `ref_min_score` / `ref_max_score`, then to a jaxrl export's.
    Arrays are kept as float32 (int32 for episode ids and discrete actions). Wider fields, such as Minari's
    usual float64 rewards, are narrowed with a `NarrowingWarning` naming the field, its dtype and the largest
    change, recorded in `metadata.extra["narrowed_on_import"]`. A dataset jaxrl exported comes back
    bit-identical; a float64 one does not (docs/datasets.md).
    """
    import gymnasium as gym
    import minari

    path = resolve_dataset(source)
    dataset = minari.MinariDataset(_data_path(path))
    if not (isinstance(dataset.observation_space, gym.spaces.Box) and len(dataset.observation_space.shape) == 1):
        raise DatasetError(f"{path}: observation space {dataset.observation_space} is not a flat Box")
    action_space = dataset.action_space
    discrete = isinstance(action_space, gym.spaces.Discrete)
    if not discrete and not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1):
        raise DatasetError(f"{path}: action space {action_space} is neither Discrete nor a flat Box")
    arrays = _read_episodes(dataset, path)
    extra: dict[str, Any] = {"minari_dataset_id": dataset.id}
    narrowed: dict[str, Any] = {}
    field = lambda name, dtype=np.float32: narrow(name, arrays[name], dtype, narrowed)
    action = field("action", np.int32 if discrete else np.float32)
    transition = Transition(
        obs=field("obs"),
        action=action if discrete else _rescale(action, action_space, extra),
        reward=field("reward"),
        cost=field("cost"),
        discount=arrays["discount"],
        next_obs=field("next_obs"),
        behavior_log_prob=field("behavior_log_prob"),
        episode_id=field("episode_id", np.int32),
    )
    raw = dataset.storage.metadata
    stored = raw.get("jaxrl_metadata")
    stored = Metadata.from_json(stored, f"{path}: jaxrl_metadata") if stored is not None else None
    references = {
        "random_return": random_return if random_return is not None else raw.get("ref_min_score"),
        "expert_return": expert_return if expert_return is not None else raw.get("ref_max_score"),
    }
    action_size = int(action_space.n) if discrete else int(action_space.shape[0])
    metadata = imported_metadata(
        path, "minari", env_name, transition, discrete, action_size, stored=stored, extra=extra, narrowed=narrowed,
        **references,
    )
    warn_narrowed(narrowed)
    return finish_import(transition, metadata, str(path), drop_invalid)


def _read_episodes(dataset: Any, path: Path) -> dict[str, np.ndarray]:
    """Every episode's steps, concatenated per Transition field, in the dtypes Minari stored them."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in Transition._fields}
    for episode in dataset.iterate_episodes():
        steps = len(episode)
        observations = np.asarray(episode.observations)
        columns["obs"].append(observations[:-1])
        columns["next_obs"].append(observations[1:])
        columns["action"].append(np.asarray(episode.actions))
        columns["reward"].append(np.asarray(episode.rewards))
        columns["discount"].append(1.0 - np.asarray(episode.terminations, np.float32))
        columns["cost"].append(_info(episode, "cost", steps, np.float32(0.0)))
        columns["behavior_log_prob"].append(_info(episode, "behavior_log_prob", steps, np.float32(np.nan)))
        columns["episode_id"].append(_info(episode, "episode_id", steps, np.int32(episode.id)))
    if not columns["obs"]:
        raise DatasetError(f"{path}: the Minari dataset has no episodes")
    return {name: np.concatenate(values) for name, values in columns.items()}
