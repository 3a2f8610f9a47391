"""Offline agents' input normalization: dataset statistics, the normalizer they build, and agents that use it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import bc, common, cql, iql
from jaxrl.config import build_config
from jaxrl.data.statistics import dataset_statistics
from jaxrl.types import Transition

from .conftest import SMALL, SPEC, make_batch


def two_episodes() -> Transition:
    """Episode 7 (rows 0-2, rewards 1, 2, 3) and episode 9 (rows 3-4, rewards -1, 0.5); obs known by hand."""
    obs = np.array([[0, 10, 5], [2, 10, 5], [4, 10, 5], [6, 10, 5], [8, 10, 5]], np.float32)
    rows = len(obs)
    return Transition(obs, np.zeros((rows, 2), np.float32), np.array([1, 2, 3, -1, 0.5], np.float32),
                      np.zeros(rows, np.float32), np.ones(rows, np.float32), obs + 1, np.zeros(rows, np.float32),
                      np.array([7, 7, 7, 9, 9], np.int32))


def test_dataset_statistics_by_hand():
    statistics = dataset_statistics(two_episodes())
    np.testing.assert_allclose(statistics.obs_mean, [4, 10, 5])
    np.testing.assert_allclose(statistics.obs_std, [np.sqrt(8), 0, 0])  # population std of 0, 2, 4, 6, 8
    assert statistics.min_episode_return == -0.5 and statistics.max_episode_return == 6.0


def test_normalizer_standardizes_and_scales_as_configured():
    statistics = dataset_statistics(two_episodes())
    config = build_config(iql.Config, {**SMALL, "normalize_observations": True, "normalize_rewards": True})
    normalizer = common.make_normalizer(config, SPEC, statistics)  # SPEC: 10-step episodes
    batch = normalizer.transitions(jax.tree.map(jnp.asarray, two_episodes()))
    std = np.array([np.sqrt(8), 0, 0]) + common.OBS_STD_EPSILON
    np.testing.assert_allclose(batch.obs[1], (np.array([2, 10, 5]) - [4, 10, 5]) / std, rtol=1e-6)
    np.testing.assert_allclose(batch.next_obs[0], (np.array([1, 11, 6]) - [4, 10, 5]) / std, rtol=1e-6)
    np.testing.assert_allclose(batch.reward, np.array([1, 2, 3, -1, 0.5]) * 10 / 6.5, rtol=1e-6)


def test_normalizer_is_the_identity_unless_asked():
    normalizer = common.make_normalizer(build_config(iql.Config, SMALL), SPEC, None)
    batch = make_batch(jax.random.PRNGKey(0))
    jax.tree.map(np.testing.assert_array_equal, normalizer.transitions(batch), batch)


def test_normalizing_without_statistics_or_with_equal_returns_is_refused():
    config = build_config(bc.Config, {**SMALL, "normalize_rewards": True})
    with pytest.raises(ValueError, match="normalize_rewards need the dataset's statistics"):
        common.make_normalizer(config, SPEC, None)
    flat = two_episodes()._replace(reward=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="normalize_rewards"):
        common.make_normalizer(config, SPEC, dataset_statistics(flat))


SLOW = pytest.mark.slow


# IQL (26 s) and CQL (18 s) in the slow suite; BC shares the normalizer code path in the default one.
@pytest.mark.parametrize("module", [pytest.param(iql, marks=SLOW), pytest.param(cql, marks=SLOW), bc])
def test_agent_acts_and_learns_on_standardized_observations(module):
    """An agent with statistics acts on raw obs as the same networks act on obs standardized by hand."""
    statistics = dataset_statistics(two_episodes())
    normalized = module.make_learner(build_config(module.Config, {**SMALL, "normalize_observations": True}), SPEC,
                                     statistics)
    plain = module.make_learner(build_config(module.Config, SMALL), SPEC)
    state = normalized.init(jax.random.PRNGKey(0), normalized.hyperparams)
    np.testing.assert_allclose(state.normalizer.obs_mean, statistics.obs_mean)
    obs = jnp.asarray(two_episodes().obs)
    by_hand = (obs - statistics.obs_mean) / (statistics.obs_std + common.OBS_STD_EPSILON)
    identity = plain.init(jax.random.PRNGKey(0), plain.hyperparams)
    key = jax.random.PRNGKey(1)
    np.testing.assert_allclose(normalized.act(state, obs, key, True)[0], plain.act(identity, by_hand, key, True)[0],
                               rtol=1e-5, atol=1e-6)
    batch = jax.tree.map(jnp.asarray, two_episodes())
    _, metrics = normalized.update(state, batch, key)
    _, expected = plain.update(identity, batch._replace(obs=by_hand, next_obs=(batch.next_obs - statistics.obs_mean)
                                                        / (statistics.obs_std + common.OBS_STD_EPSILON)), key)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), metrics, expected)
