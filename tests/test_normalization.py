"""Running observation statistics against numpy over all the data at once, and the standardization's clipping."""

import jax.numpy as jnp
import numpy as np

from jaxrl.normalization import init_stats, normalize, update_stats

OBS_SIZE = 3


def rollouts():
    """Rollouts [T, B, obs] of different sizes whose features have different, drifting means and scales."""
    rng = np.random.default_rng(0)
    shapes = [(4, 2), (1, 7), (16, 3), (5, 5)]
    return [rng.normal(loc=[5.0 * i, -2.0, 0.5 * i], scale=[1.0, 3.0, 0.1], size=(*shape, OBS_SIZE))
            for i, shape in enumerate(shapes)]


def test_update_stats_matches_numpy_over_all_batches_concatenated():
    stats = init_stats(OBS_SIZE)
    seen = []
    for batch in rollouts():
        stats = update_stats(stats, jnp.asarray(batch, jnp.float32))
        seen.append(batch.reshape(-1, OBS_SIZE))
        everything = np.concatenate(seen)
        np.testing.assert_allclose(stats.mean, everything.mean(axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats.var, everything.var(axis=0), rtol=1e-4)  # population variance
        assert float(stats.count) == len(everything)


def test_normalize_standardizes_with_the_statistics():
    stats = init_stats(OBS_SIZE)
    for batch in rollouts():
        stats = update_stats(stats, jnp.asarray(batch, jnp.float32))
    everything = np.concatenate([batch.reshape(-1, OBS_SIZE) for batch in rollouts()])
    obs = everything[:10]
    expected = (obs - everything.mean(axis=0)) / everything.std(axis=0)
    np.testing.assert_allclose(normalize(stats, jnp.asarray(obs, jnp.float32)), expected, rtol=1e-4, atol=1e-4)


def test_normalize_clips_to_the_given_range():
    stats = init_stats(2)._replace(mean=jnp.array([1.0, -1.0]), var=jnp.array([4.0, 0.25]))
    obs = jnp.array([[101.0, -101.0], [2.0, -1.25], [-99.0, 99.0]])
    # (obs - mean) / std = [[50, -200], [0.5, -0.5], [-50, 200]], then clipped to [-10, 10] (default) or [-3, 3].
    np.testing.assert_allclose(normalize(stats, obs), [[10.0, -10.0], [0.5, -0.5], [-10.0, 10.0]], rtol=1e-6)
    np.testing.assert_allclose(normalize(stats, obs, clip=3.0), [[3.0, -3.0], [0.5, -0.5], [-3.0, 3.0]], rtol=1e-6)


def test_before_any_data_normalize_is_the_identity_up_to_clipping():
    obs = jnp.array([[0.5, -2.0, 30.0]])
    np.testing.assert_allclose(normalize(init_stats(OBS_SIZE), obs), [[0.5, -2.0, 10.0]], rtol=1e-6)
