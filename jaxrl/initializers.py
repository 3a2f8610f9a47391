"""Orthogonal weight initialization computed with matrix products only, never LAPACK.

Why not `flax.linen.initializers.orthogonal`: it takes the QR decomposition of a Gaussian matrix with
LAPACK (`geqrf`, `orgqr`), and jaxlib 0.10.2's CPU LAPACK kernels deadlock. Each kernel splits its batch
into tasks on XLA's intra-op thread pool and blocks its worker until they finish; when the thunk executor
runs as many such kernels at once as the pool has threads (two on a 2-core machine: e.g. the batched QRs of
a critic ensemble's layers, or of several seeds), every worker waits for tasks no worker is free to run.
The program then sits at 0% CPU forever (`jaxrl train iql` on halfcheetah with one seed did).
`scripts/repro_lapack_deadlock.py` reproduces it with `jnp.linalg.qr` alone and tells whether an installed
jaxlib still has the bug: when it reports none, `orthogonal` can return to flax's initializer.

Here the same Gaussian draw is orthonormalized by Householder reflections in a `fori_loop` of rank-one
updates, then signed so R's diagonal is positive, which makes Q unique: the result equals jax's
`random.orthogonal` for the same key up to float rounding (tests/test_initializers.py), and it vmaps into
batched matrix products (seeds, critic ensembles) with no custom call at all.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def orthonormal_columns(matrix: jax.Array) -> jax.Array:
    """Q of the QR decomposition of `matrix` [m, k], m >= k, with R's diagonal made positive: [m, k]."""
    rows, cols = matrix.shape
    row_index = jnp.arange(rows)

    def reflect(j, carry):
        reduced, q = carry  # reduced = H_j-1 ... H_0 matrix; q = H_0 ... H_j-1 (each H symmetric)
        column = jnp.where(row_index >= j, reduced[:, j], 0.0)  # [m]
        sign = jnp.where(reduced[j, j] >= 0, 1.0, -1.0)
        v = column + sign * jnp.linalg.norm(column) * (row_index == j)  # reflects column onto -sign·|column|·e_j
        v = v / jnp.linalg.norm(v)
        reduced = reduced - 2.0 * jnp.outer(v, v @ reduced)
        q = q - 2.0 * jnp.outer(q @ v, v)
        return reduced, q

    reduced, q = jax.lax.fori_loop(0, cols, reflect, (matrix, jnp.eye(rows, dtype=matrix.dtype)))
    return q[:, :cols] * jnp.sign(jnp.diagonal(reduced))  # R = reduced[:k]; flip columns where R_jj < 0


def orthogonal(scale: float = math.sqrt(2.0)):
    """A flax kernel initializer: `scale` times a uniformly random (semi-)orthogonal matrix.

    For a kernel of shape [..., out], rows are the product of the leading axes; the smaller side is
    orthonormal, as in `jax.nn.initializers.orthogonal(scale)`.
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"orthogonal init needs a shape of at least 2 axes, got {shape}")
        num_rows, num_cols = math.prod(shape) // shape[-1], shape[-1]
        gaussian = jax.random.normal(key, (max(num_rows, num_cols), min(num_rows, num_cols)), dtype)
        q = orthonormal_columns(gaussian)
        if num_rows < num_cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init
