"""Running observation statistics, kept in the agent state (never hidden inside a wrapper)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RunningStats(NamedTuple):
    """Mean and variance of everything seen so far (Chan et al. parallel update)."""

    mean: jax.Array  # [obs_size]
    var: jax.Array  # [obs_size]
    count: jax.Array  # []


def init_stats(size: int) -> RunningStats:
    return RunningStats(jnp.zeros(size, jnp.float32), jnp.ones(size, jnp.float32), jnp.zeros((), jnp.float32))


def update_stats(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Fold a batch [..., obs_size] into the statistics."""
    batch = batch.reshape(-1, batch.shape[-1])
    batch_count = jnp.asarray(batch.shape[0], jnp.float32)
    batch_mean = batch.mean(axis=0)
    batch_var = batch.var(axis=0)
    total = stats.count + batch_count
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * batch_count / total
    m2 = stats.var * stats.count + batch_var * batch_count + delta**2 * stats.count * batch_count / total
    return RunningStats(mean, m2 / total, total)


def normalize(stats: RunningStats, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    """Standardize `obs` with the statistics; before any data, this is the identity up to clipping."""
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)
