"""BC: the MSE loss against a hand-computed value, learning on a fixed batch, and the learner contract."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from jaxrl.agents import bc


@pytest.fixture(scope="module")
def config(small) -> bc.Config:
    return bc.Config(**small, learning_rate=3e-3)


@pytest.fixture(scope="module")
def policy(config, spec):
    return bc.make_policy(config, spec)


@pytest.fixture(scope="module")
def contract(config, spec, batch, learner_contract):
    return learner_contract(bc.make_learner(config, spec), batch)


def test_bc_loss_is_mean_squared_error_of_tanh_policy(policy, contract, batch, constant):
    policy_params = constant(contract.init(jax.random.key(0)).policy.params, 0.5)  # π(s) = tanh(0.5)
    loss, _ = jax.jit(functools.partial(bc.bc_loss, policy=policy))(policy_params, batch, jax.random.key(1))
    np.testing.assert_allclose(loss, np.mean((np.tanh(0.5) - np.asarray(batch.action)) ** 2), rtol=1e-5)


def test_updates_reduce_the_loss_on_a_fixed_batch(contract):
    _, _, metrics = contract.train(60, jax.random.key(0))
    assert metrics["bc_loss"][-1] < 0.5 * metrics["bc_loss"][0]


def test_act_returns_actions_in_bounds(contract):
    contract.check_act()


def test_update_keeps_state_shapes_and_reports_scalar_metrics(contract):
    contract.check_update_shapes()


def test_vmapped_seeds_match_separate_runs(contract):
    contract.check_vmap_matches_separate()


def test_same_key_gives_same_update(contract):
    contract.check_deterministic()


@pytest.mark.parametrize("key, value", [("learning_rate", 0.0), ("num_updates", -1), ("hidden_sizes", (16, 0))])
def test_bad_config_value_raises_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        bc.Config(**{key: value})
