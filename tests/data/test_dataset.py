import chex
import jax
import numpy as np
import pytest

from jaxrl.data.dataset import Dataset, sample

from .synthetic import ACTION_SIZE, OBS_SIZE, make_transition

sample_jit = jax.jit(sample, static_argnames="batch_size")


def test_sample_returns_batch_shapes_under_jit():
    dataset = Dataset.from_numpy(make_transition())
    batch = sample_jit(dataset, jax.random.key(0), batch_size=16)
    chex.assert_shape([batch.obs, batch.next_obs], (16, OBS_SIZE))
    chex.assert_shape(batch.action, (16, ACTION_SIZE))
    chex.assert_shape([batch.reward, batch.cost, batch.discount, batch.behavior_log_prob, batch.episode_id], (16,))
    assert batch.episode_id.dtype == np.int32


def test_sample_is_deterministic_in_the_key():
    dataset = Dataset.from_numpy(make_transition(episode_lengths=(50, 50)))
    first = sample_jit(dataset, jax.random.key(1), batch_size=32)
    again = sample_jit(dataset, jax.random.key(1), batch_size=32)
    other = sample_jit(dataset, jax.random.key(2), batch_size=32)
    chex.assert_trees_all_equal(first, again)
    assert not np.array_equal(first.obs, other.obs)


def test_sample_draws_whole_rows_of_the_dataset():
    transition = make_transition(episode_lengths=(20, 30))
    batch = sample_jit(Dataset.from_numpy(transition), jax.random.key(3), batch_size=64)
    for i, obs in enumerate(np.asarray(batch.obs)):
        (row,) = np.flatnonzero((transition.obs == obs).all(axis=1))
        np.testing.assert_array_equal(transition.next_obs[row], batch.next_obs[i])
        assert transition.reward[row] == batch.reward[i]


def test_sample_works_inside_vmap_over_keys():
    dataset = Dataset.from_numpy(make_transition())
    keys = jax.random.split(jax.random.key(0), 4)
    batches = jax.jit(jax.vmap(lambda key: sample(dataset, key, 8)))(keys)
    chex.assert_shape(batches.obs, (4, 8, OBS_SIZE))


def test_from_numpy_refuses_fields_of_different_lengths():
    transition = make_transition()
    with pytest.raises(ValueError, match="different lengths"):
        Dataset.from_numpy(transition._replace(reward=transition.reward[:-1]))


@pytest.mark.slow
def test_one_million_transitions_fit_and_sample_fast():
    import time

    n = 1_000_000
    transition = make_transition(episode_lengths=(n,), terminated=(False,))
    transition = transition._replace(obs=np.zeros((n, 17), np.float32), next_obs=np.zeros((n, 17), np.float32))
    transition = transition._replace(action=np.zeros((n, 6), np.float32))
    dataset = Dataset.from_numpy(transition)
    jax.block_until_ready(sample_jit(dataset, jax.random.key(0), batch_size=256))
    keys = list(jax.random.split(jax.random.key(1), 1000))
    start = time.perf_counter()
    for key in keys:
        batch = sample_jit(dataset, key, batch_size=256)
    jax.block_until_ready(batch)
    assert (time.perf_counter() - start) / len(keys) < 1e-3  # well under a millisecond per batch
