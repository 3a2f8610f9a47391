"""IQL: each loss against hand-computed values, learning on a fixed batch, and the learner contract."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import iql


@pytest.fixture(scope="module")
def config(small) -> iql.Config:
    return iql.Config(**small)


@pytest.fixture(scope="module")
def learner(config, spec):
    return iql.make_learner(config, spec)


@pytest.fixture(scope="module")
def nets(config, spec) -> iql.Networks:
    return iql.make_networks(config, spec)


@pytest.fixture(scope="module")
def contract(learner, batch, learner_contract):
    return learner_contract(learner, batch)


@pytest.fixture(scope="module")
def state(contract) -> iql.AgentState:
    return contract.init(jax.random.key(0))


def loss_fn(loss, nets, config):
    """`loss` jitted with its static networks and config bound."""
    return jax.jit(functools.partial(loss, nets=nets, hp=config))


def test_expectile_loss_weights_negative_errors_by_one_minus_tau():
    diffs = jnp.array([-2.0, -1.0, 0.0, 1.0, 3.0])
    expected = np.array([0.3 * 4, 0.3 * 1, 0.0, 0.7 * 1, 0.7 * 9])
    np.testing.assert_allclose(iql.expectile_loss(diffs, 0.7), expected, rtol=1e-6)


def test_value_loss_is_expectile_regression_on_target_q(nets, config, state, batch, constant):
    value_params = constant(state.value.params, 0.5)
    target_q = jnp.linspace(-2.0, 2.0, batch.obs.shape[0])
    loss, metrics = loss_fn(iql.value_loss, nets, config)(value_params, target_q, batch, jax.random.key(1))
    diff = np.asarray(target_q) - 0.5
    expected = np.mean(np.where(diff < 0, 0.3, 0.7) * diff**2)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["value_mean"], 0.5, rtol=1e-6)


def test_critic_loss_regresses_both_critics_on_reward_plus_discounted_next_value(nets, config, state, batch, constant):
    critic_params = constant(state.critic.params, 1.5)
    next_value = jnp.linspace(0.0, 1.0, batch.obs.shape[0])
    loss, _ = loss_fn(iql.critic_loss, nets, config)(critic_params, next_value, batch, jax.random.key(1))
    targets = np.asarray(batch.reward) + 0.99 * np.asarray(batch.discount) * np.asarray(next_value)
    expected = 2 * np.mean((1.5 - targets) ** 2)  # summed over the twin critics
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_policy_loss_is_clipped_advantage_weighted_log_likelihood(nets, config, state, batch):
    policy_params = jax.tree.map(jnp.zeros_like, state.policy.params)
    policy_params["params"]["log_std"] = jnp.full_like(policy_params["params"]["log_std"], -0.5)
    advantage = jnp.linspace(-1.0, 3.0, batch.obs.shape[0])  # exp(3 * 3) > 100: the clip is exercised
    loss, _ = loss_fn(iql.policy_loss, nets, config)(policy_params, advantage, batch, jax.random.key(1))
    # The policy is N(tanh(0), e^-0.5) in every dimension.
    action = np.asarray(batch.action)
    std = np.exp(-0.5)
    log_prob = np.sum(-0.5 * (action / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=-1)
    weights = np.minimum(np.exp(3.0 * np.asarray(advantage)), 100.0)
    np.testing.assert_allclose(loss, -np.mean(weights * log_prob), rtol=1e-5)


def test_updates_reduce_losses_on_a_fixed_batch(nets, config, batch, contract):
    initial, final, metrics = contract.train(60, jax.random.key(0))
    for name in ("value_loss", "critic_loss"):
        assert metrics[name][-5:].mean() < metrics[name][:5].mean(), name
    # The advantage weights move as V and Q learn, so the policy is judged on fixed ones.
    advantage = jnp.zeros(batch.obs.shape[0])
    policy_loss = loss_fn(iql.policy_loss, nets, config)
    losses = [policy_loss(s.policy.params, advantage, batch, jax.random.key(1))[0] for s in (initial, final)]
    assert losses[1] < losses[0]


def test_act_returns_actions_in_bounds(contract):
    contract.check_act()


def test_update_keeps_state_shapes_and_reports_scalar_metrics(contract):
    contract.check_update_shapes()


@pytest.mark.slow  # the runner vmaps every agent alike; BC and PPO check it in the default suite
def test_vmapped_seeds_match_separate_runs(contract):
    contract.check_vmap_matches_separate()


def test_same_key_gives_same_update(contract):
    contract.check_deterministic()


@pytest.mark.parametrize(
    "key, value",
    [
        ("expectile", 1.0),
        ("expectile", 0.0),
        ("gamma", 1.5),
        ("inverse_temperature", -1.0),
        ("target_update_rate", 0.0),
        ("policy_lr", 0.0),
        ("batch_size", 0),
        ("hidden_sizes", ()),
    ],
)
def test_bad_config_value_raises_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        iql.Config(**{key: value})
