"""State novelty: the distance of a state to its nearest dataset state, in the dataset's standardized units and
relative to how far dataset states lie from each other, so 1 is typical of the data and much more is new ground.
That typical distance is measured between states of different episodes: within an episode, consecutive states
are close by construction, and a state of a new trajectory (a live one) has no such neighbour.

Brute force in chunks (a matmul per chunk of queries against every dataset state): exact, on the device, and at
our datasets' sizes (1e5 states) faster than building an index.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

QUERY_CHUNK = 1024  # query states per matmul against the dataset: bounds memory at QUERY_CHUNK x N
SCALE_SAMPLE = 2048  # dataset states whose nearest other dataset state sets the scale


class NoveltyModel(NamedTuple):
    reference: jax.Array  # [N, O] the dataset's states, standardized
    episode: jax.Array  # [N] int32, their episode ids
    mean: jax.Array  # [O]
    std: jax.Array  # [O]
    scale: jax.Array  # [] median distance of a dataset state to its nearest state of another episode


@jax.jit
def _nearest_squared(reference: jax.Array, reference_episode: jax.Array, queries: jax.Array,
                     query_episode: jax.Array) -> jax.Array:
    """min over reference rows of another episode than the query's of |q - r|², for each query [Q]."""
    squared = (jnp.sum(queries**2, axis=1)[:, None] + jnp.sum(reference**2, axis=1)[None, :]
               - 2.0 * queries @ reference.T)  # [Q, N]
    squared = jnp.where(reference_episode[None, :] == query_episode[:, None], jnp.inf, squared)
    return jnp.maximum(squared.min(axis=1), 0.0)


def _nearest(reference: jax.Array, queries: np.ndarray, reference_episode: jax.Array | None = None,
             query_episode: np.ndarray | None = None) -> np.ndarray:
    """Distance of each query [M, O] to its nearest reference row of another episode (ids -1: any row)."""
    reference_episode = jnp.full(reference.shape[0], -1) if reference_episode is None else reference_episode
    query_episode = np.full(len(queries), -2) if query_episode is None else query_episode
    distances = []
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = slice(start, start + QUERY_CHUNK)
        part = jnp.asarray(queries[chunk])
        padding = QUERY_CHUNK - part.shape[0]  # one compiled shape for every chunk
        part = jnp.pad(part, ((0, padding), (0, 0)))
        episode = jnp.pad(jnp.asarray(query_episode[chunk]), (0, padding), constant_values=-2)
        squared = _nearest_squared(reference, reference_episode, part, episode)
        distances.append(np.sqrt(np.asarray(squared))[: QUERY_CHUNK - padding])
    return np.concatenate(distances)


def fit_novelty(states: np.ndarray, episode_id: np.ndarray, key: jax.Array) -> NoveltyModel:
    """Standardize the dataset's states [N, O] and measure their typical distance to another episode's."""
    mean, std = states.mean(axis=0), states.std(axis=0) + 1e-3
    reference = jnp.asarray((states - mean) / std, jnp.float32)
    episode = jnp.asarray(episode_id, jnp.int32)
    sample = np.asarray(jax.random.choice(key, len(states), (min(SCALE_SAMPLE, len(states)),), replace=False))
    distances = _nearest(reference, np.asarray(reference)[sample], episode, np.asarray(episode_id)[sample])
    scale = float(np.median(distances))
    return NoveltyModel(reference, episode, jnp.asarray(mean), jnp.asarray(std), jnp.asarray(max(scale, 1e-6)))


def novelty(model: NoveltyModel, states: np.ndarray) -> np.ndarray:
    """Nearest-dataset-state distance of each state [M, O] over the dataset's typical one: [M]."""
    queries = (np.asarray(states) - np.asarray(model.mean)) / np.asarray(model.std)
    return _nearest(model.reference, queries.astype(np.float32), model.episode) / float(model.scale)
