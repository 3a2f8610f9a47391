"""Minari datasets in and out, on local files only (minari 0.5.4, HDF5 storage).

Minari stores one episode as `observations` [T+1] (the final observation included), `actions`, `rewards`,
`terminations`, `truncations` [T] and `infos`. Its public writer, `minari.create_dataset_from_buffers`,
writes under the folder named by the MINARI_DATASETS_PATH environment variable; we point that variable at a
temporary folder for the duration of the call (so this is not thread-safe) and move the finished dataset to
`<root>/<dataset_id>` atomically. Reading needs no environment variable: `minari.MinariDataset(data_path)`
opens a folder directly, and `MINARI_DATASETS_PATH=<root> minari.load_dataset(dataset_id)` finds exports.
Nothing here needs the network: remote download/upload (`minari.download_dataset`) is not used.

Per-step jaxrl fields without a Minari slot travel in `infos` with Minari's T+1 convention (entry 0 is the
reset info): `cost`, `behavior_log_prob`, `episode_id`; the jaxrl metadata travels as the `jaxrl_metadata`
entry of Minari's metadata, and reference returns as `ref_min_score` / `ref_max_score`. Continuous actions
of a Box with other finite bounds are rescaled to [-1, 1] on import (recorded in `extra`).
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

from jaxrl.data.atomic import write_dir_atomic
from jaxrl.data.formats import episode_ends, finish_import, imported_metadata
from jaxrl.data.metadata import DatasetError, Metadata
from jaxrl.types import Transition


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
    root: str | Path, transition: Transition, metadata: Metadata, dataset_id: str | None = None, overwrite: bool = False
) -> Path:
    """Write a Minari dataset to `<root>/<dataset_id>` (default id: `default_dataset_id(env_name)`); return it."""
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

    destination = Path(root) / dataset_id
    write_dir_atomic(destination, fill, overwrite)
    return destination


def _data_path(path: Path) -> Path:
    for candidate in (path / "data", path):
        file = candidate / "metadata.json"
        if file.is_file() and "minari_version" in json.loads(file.read_text()):
            return candidate
    raise DatasetError(f"{path}: no Minari dataset here (expected {path}/data/metadata.json written by Minari)")


def _rescale(action: np.ndarray, space: Any, extra: dict[str, Any]) -> np.ndarray:
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or (np.all(low == -1) and np.all(high == 1)):
        return action
    extra["action_rescaled_from"] = {"low": low.tolist(), "high": high.tolist()}
    return (2.0 * (action - low) / (high - low) - 1.0).astype(np.float32)


def _info(episode: Any, name: str, steps: int, default: float) -> np.ndarray:
    values = (episode.infos or {}).get(name)
    if values is None:
        return np.full(steps, default)
    values = np.asarray(values)
    return values[1:] if len(values) == steps + 1 else values


def import_minari(
    path: str | Path,
    env_name: str,
    drop_invalid: bool = False,
    random_return: float | None = None,
    expert_return: float | None = None,
) -> tuple[Transition, Metadata]:
    """Read a local Minari dataset folder (`<root>/<dataset_id>` or its `data/`) into a validated Transition.

    Reference returns default to Minari's `ref_min_score` / `ref_max_score`, then to a jaxrl export's.
    """
    import gymnasium as gym
    import minari

    path = Path(path)
    dataset = minari.MinariDataset(_data_path(path))
    if not (isinstance(dataset.observation_space, gym.spaces.Box) and len(dataset.observation_space.shape) == 1):
        raise DatasetError(f"{path}: observation space {dataset.observation_space} is not a flat Box")
    action_space = dataset.action_space
    discrete = isinstance(action_space, gym.spaces.Discrete)
    if not discrete and not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1):
        raise DatasetError(f"{path}: action space {action_space} is neither Discrete nor a flat Box")
    columns: dict[str, list[np.ndarray]] = {name: [] for name in Transition._fields}
    for episode in dataset.iterate_episodes():
        steps = len(episode)
        observations = np.asarray(episode.observations)
        columns["obs"].append(observations[:-1])
        columns["next_obs"].append(observations[1:])
        columns["action"].append(np.asarray(episode.actions))
        columns["reward"].append(np.asarray(episode.rewards))
        columns["discount"].append(1.0 - np.asarray(episode.terminations, np.float32))
        columns["cost"].append(_info(episode, "cost", steps, 0.0))
        columns["behavior_log_prob"].append(_info(episode, "behavior_log_prob", steps, np.nan))
        columns["episode_id"].append(_info(episode, "episode_id", steps, episode.id))
    if not columns["obs"]:
        raise DatasetError(f"{path}: the Minari dataset has no episodes")
    arrays = {name: np.concatenate(values) for name, values in columns.items()}
    extra: dict[str, Any] = {"minari_dataset_id": dataset.id}
    action = arrays["action"].astype(np.int32) if discrete else _rescale(arrays["action"], action_space, extra)
    float32 = lambda name: arrays[name].astype(np.float32)
    transition = Transition(
        obs=float32("obs"),
        action=action if discrete else action.astype(np.float32),
        reward=float32("reward"),
        cost=float32("cost"),
        discount=float32("discount"),
        next_obs=float32("next_obs"),
        behavior_log_prob=float32("behavior_log_prob"),
        episode_id=arrays["episode_id"].astype(np.int32),
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
        path, "minari", env_name, transition, discrete, action_size, stored=stored, extra=extra, **references
    )
    return finish_import(transition, metadata, str(path), drop_invalid)
