"""Small hand-built datasets for the data tests: continuous observations that flow from step to step."""

from __future__ import annotations

import numpy as np

from jaxrl.data.metadata import Metadata, Provenance
from jaxrl.types import Transition

OBS_SIZE = 3
ACTION_SIZE = 2


def make_transition(
    episode_lengths: tuple[int, ...] = (3, 4, 5),
    terminated: tuple[bool, ...] | None = None,
    discrete: bool = False,
    seed: int = 0,
    first_episode_id: int = 0,
) -> Transition:
    """Episodes of the given lengths; next_obs[t] == obs[t + 1] inside an episode; reward of episode e is e + 1
    per step, so episode e returns (e + 1) * length; costs are 0.5 per step; the last row of episode e is a
    terminal where `terminated[e]` (default: every other episode)."""
    rng = np.random.default_rng(seed)
    terminated = terminated if terminated is not None else tuple(e % 2 == 0 for e in range(len(episode_lengths)))
    columns: dict[str, list[np.ndarray]] = {name: [] for name in Transition._fields}
    for episode, (length, ends_in_terminal) in enumerate(zip(episode_lengths, terminated, strict=True)):
        states = rng.standard_normal((length + 1, OBS_SIZE)).astype(np.float32)
        columns["obs"].append(states[:-1])
        columns["next_obs"].append(states[1:])
        if discrete:
            columns["action"].append(rng.integers(0, ACTION_SIZE, length).astype(np.int32))
        else:
            columns["action"].append(rng.uniform(-1, 1, (length, ACTION_SIZE)).astype(np.float32))
        columns["reward"].append(np.full(length, episode + 1, np.float32))
        columns["cost"].append(np.full(length, 0.5, np.float32))
        discount = np.ones(length, np.float32)
        discount[-1] = 0.0 if ends_in_terminal else 1.0
        columns["discount"].append(discount)
        columns["behavior_log_prob"].append(rng.standard_normal(length).astype(np.float32))
        columns["episode_id"].append(np.full(length, first_episode_id + episode, np.int32))
    return Transition(**{name: np.concatenate(values) for name, values in columns.items()})


def make_metadata(discrete: bool = False, **fields) -> Metadata:
    """Metadata matching `make_transition`."""
    provenance = Provenance(behavior_policy="uniform random", behavior_policy_fingerprint="abc123", seed=7)
    return Metadata(
        env_name="toy", obs_size=OBS_SIZE, action_size=ACTION_SIZE, discrete=discrete, provenance=provenance, **fields
    )


def with_row(transition: Transition, field: str, row: int, value) -> Transition:
    """A copy of `transition` with `field[row] = value`."""
    array = np.array(getattr(transition, field))
    array[row] = value
    return transition._replace(**{field: array})


def write_raw(folder, transition: Transition, metadata: Metadata) -> None:
    """Write a dataset folder without validation (as another tool might), with matching checksums."""
    import dataclasses

    from jaxrl.data.metadata import checksums_of

    folder.mkdir(parents=True)
    np.savez(folder / "arrays.npz", **transition._asdict())
    metadata = dataclasses.replace(metadata, checksums=checksums_of(transition))
    (folder / "metadata.json").write_text(metadata.to_json())
