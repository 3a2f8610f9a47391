"""Orthogonal init without LAPACK: the same matrix numpy's QR gives, orthonormal, batched by vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.initializers import orthogonal, orthonormal_columns


def numpy_orthonormal(matrix: np.ndarray) -> np.ndarray:
    """Q of numpy's (LAPACK) QR with R's diagonal made positive: the unique Q an orthogonal init draws."""
    q, r = np.linalg.qr(matrix.astype(np.float64))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("rows, cols", [(5, 5), (9, 4), (64, 17), (256, 256)])
def test_orthonormal_columns_equal_numpys_qr(rows, cols):
    matrix = np.random.default_rng(rows + cols).normal(size=(rows, cols)).astype(np.float32)
    ours = np.asarray(jax.jit(orthonormal_columns)(matrix))
    np.testing.assert_allclose(ours, numpy_orthonormal(matrix), atol=2e-5)
    np.testing.assert_allclose(ours.T @ ours, np.eye(cols), atol=2e-5)


@pytest.mark.parametrize("shape", [(17, 256), (256, 6), (4, 4), (3, 4, 5)])
def test_orthogonal_init_is_scaled_semi_orthogonal_and_matches_jax(shape):
    key = jax.random.PRNGKey(7)
    kernel = np.asarray(orthogonal(2.0)(key, shape)).reshape(-1, shape[-1]) / 2.0
    rows, cols = kernel.shape
    smaller = kernel.T @ kernel if rows >= cols else kernel @ kernel.T
    np.testing.assert_allclose(smaller, np.eye(min(rows, cols)), atol=2e-5)
    reference = np.asarray(jax.nn.initializers.orthogonal(2.0)(key, shape)).reshape(rows, cols) / 2.0
    np.testing.assert_allclose(kernel, reference, atol=1e-5)  # same draw, same unique Q


def test_orthogonal_init_vmaps_into_the_same_matrices():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batched = jax.jit(jax.vmap(lambda key: orthogonal()(key, (32, 32))))(keys)
    for key, matrix in zip(keys, batched, strict=True):
        np.testing.assert_allclose(matrix, orthogonal()(key, (32, 32)), atol=1e-5)


def test_orthogonal_init_calls_no_lapack():
    text = jax.jit(jax.vmap(lambda key: orthogonal()(key, (64, 64)))).lower(jax.random.split(jax.random.PRNGKey(0), 2))
    assert "lapack" not in text.as_text()
    assert "lapack" in jax.jit(lambda key: jnp.linalg.qr(jax.random.normal(key, (4, 4)))[0]).lower(
        jax.random.PRNGKey(0)).as_text()  # the check would see a LAPACK call


def test_orthogonal_init_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 axes"):
        orthogonal()(jax.random.PRNGKey(0), (5,))
