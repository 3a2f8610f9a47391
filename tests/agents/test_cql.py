"""CQL: the penalty and losses against hand-computed values, learning on a fixed batch, the learner contract."""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxrl.agents import cql


@pytest.fixture(scope="module")
def config(small) -> cql.Config:
    return cql.Config(**small, policy_lr=1e-3, num_sampled_actions=4)


@pytest.fixture(scope="module")
def nets(config, spec) -> cql.Networks:
    return cql.make_networks(config, spec)


@pytest.fixture(scope="module")
def contract(config, spec, batch, learner_contract):
    return learner_contract(cql.make_learner(config, spec), batch)


@pytest.fixture(scope="module")
def state(contract) -> cql.AgentState:
    return contract.init(jax.random.key(0))


def loss_fn(loss, nets, config):
    """`loss` jitted with its static networks and config bound."""
    return jax.jit(functools.partial(loss, nets=nets, config=config))


def test_conservative_penalty_is_importance_weighted_logsumexp_minus_data_q():
    rng = np.random.default_rng(0)
    critics, samples, batch_size, action_size = 2, 3, 4, 2
    q_data = rng.normal(size=(critics, batch_size))
    q_random, q_current, q_next = (rng.normal(size=(critics, samples, batch_size)) for _ in range(3))
    current_log_prob, next_log_prob = (rng.normal(size=(samples, batch_size)) for _ in range(2))
    penalty = cql.conservative_penalty(
        *map(jnp.asarray, (q_data, q_random, q_current, q_next, current_log_prob, next_log_prob)), action_size
    )
    # Uniform density on [-1, 1]^2 is 1/4, so dividing by it adds log 4 to the exponent.
    weighted = np.concatenate([q_random + np.log(4.0), q_current - current_log_prob, q_next - next_log_prob], axis=1)
    expected = (logsumexp(weighted, axis=1) - q_data).mean(axis=1)
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)


def test_critic_loss_is_td_error_plus_weighted_penalty(nets, config, state, batch, constant):
    critic_params = constant(state.critic.params, 1.5)  # online and target critics output 1.5 everywhere
    loss, metrics = loss_fn(cql.critic_loss, nets, config)(
        critic_params, critic_params, state.policy.params, jnp.ones(()), batch, jax.random.key(1)
    )
    targets = np.asarray(batch.reward) + 0.99 * np.asarray(batch.discount) * 1.5
    expected_td = 2 * np.mean((1.5 - targets) ** 2)  # summed over the twin critics
    np.testing.assert_allclose(metrics["td_loss"], expected_td, rtol=1e-5)
    # Both critics are equal, so the loss adds cql_alpha times twice the (shared) penalty.
    np.testing.assert_allclose(loss, expected_td + 10.0 * 2 * metrics["cql_penalty"], rtol=1e-5)


@pytest.mark.parametrize("chunks", [2, 8, 32])
def test_critic_scored_in_slices_matches_scoring_all_rows_at_once(nets, config, state, batch, chunks):
    actions = jax.random.uniform(jax.random.key(3), (5,) + batch.action.shape, minval=-1.0, maxval=1.0)
    whole = cql.q_on_actions(nets, state.critic.params, batch.obs, actions, 1)
    sliced = jax.jit(cql.q_on_actions, static_argnums=(0, 4))(nets, state.critic.params, batch.obs, actions, chunks)
    assert whole.shape == sliced.shape == (2, 5, batch.obs.shape[0])
    np.testing.assert_allclose(sliced, whole, rtol=1e-5, atol=1e-6)
    # ... and so is the loss and its gradient, whatever the slicing (a count that does not divide the batch
    # falls back to the largest one that does).
    losses = {}
    for count in (1, chunks, 7):
        sliced_config = dataclasses.replace(config, critic_chunks=count)
        losses[count] = jax.value_and_grad(cql.critic_loss, has_aux=True)(
            state.critic.params, state.critic.params, state.policy.params, jnp.ones(()), batch, jax.random.key(1),
            nets=nets, config=sliced_config)
    for count in (chunks, 7):
        np.testing.assert_allclose(losses[count][0][0], losses[1][0][0], rtol=1e-5)
        chex.assert_trees_all_close(losses[count][1], losses[1][1], rtol=1e-4, atol=1e-6)


def test_policy_loss_is_entropy_regularised_negative_min_q(nets, config, state, batch, constant):
    critic_params = constant(state.critic.params, 2.0)
    loss, metrics = loss_fn(cql.policy_loss, nets, config)(
        state.policy.params, critic_params, jnp.asarray(0.5), batch, jax.random.key(1)
    )
    np.testing.assert_allclose(loss, -0.5 * metrics["entropy"] - 2.0, rtol=1e-5)


def test_temperature_and_lagrange_losses_match_hand_values():
    # log α · (H - H̄): entropy 1.0 above the target -2.0 pushes log α down.
    np.testing.assert_allclose(cql.temperature_loss(jnp.asarray(0.3), jnp.asarray(1.0), -2.0), 0.3 * 3.0, rtol=1e-6)
    config = cql.Config(lagrange=True, target_action_gap=5.0, cql_alpha=10.0)
    loss = cql.lagrange_loss(jnp.log(2.0), jnp.asarray(7.0), config)
    np.testing.assert_allclose(loss, -2.0 * 10.0 * (7.0 - 5.0), rtol=1e-6)


def test_updates_reduce_losses_on_a_fixed_batch(nets, config, batch, contract):
    initial, final, metrics = contract.train(60, jax.random.key(0))
    assert metrics["critic_loss"][-5:].mean() < metrics["critic_loss"][:5].mean()
    # The policy is judged against one fixed critic and temperature.
    policy_loss = loss_fn(cql.policy_loss, nets, config)
    losses = [
        policy_loss(s.policy.params, final.critic.params, jnp.asarray(0.1), batch, jax.random.key(1))[0]
        for s in (initial, final)
    ]
    assert losses[1] < losses[0]


def test_lagrange_multiplier_grows_while_penalty_exceeds_the_gap(small, spec, batch, state):
    config = cql.Config(**small, lagrange=True, target_action_gap=-100.0)
    learner = cql.make_learner(config, spec)  # same networks and state layout as the fixture's learner
    new_state, metrics = jax.jit(learner.update)(state, batch, jax.random.key(1))
    assert metrics["cql_penalty"] > config.target_action_gap
    assert new_state.log_lagrange_multiplier.params > state.log_lagrange_multiplier.params


def test_act_returns_actions_in_bounds(contract):
    contract.check_act()


def test_update_keeps_state_shapes_and_reports_scalar_metrics(contract):
    contract.check_update_shapes()


def test_vmapped_seeds_match_separate_runs(contract):
    contract.check_vmap_matches_separate()


def test_same_key_gives_same_update(contract):
    contract.check_deterministic()


@pytest.mark.parametrize(
    "key, value",
    [
        ("cql_alpha", -1.0),
        ("num_sampled_actions", 0),
        ("gamma", -0.1),
        ("target_update_rate", 1.5),
        ("critic_lr", 0.0),
        ("target_action_gap", float("nan")),
        ("eval_every", 0),
        ("critic_chunks", 0),
    ],
)
def test_bad_config_value_raises_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        cql.Config(**{key: value})


def test_discrete_actions_are_rejected(config, discrete_spec):
    with pytest.raises(ValueError, match="continuous"):
        cql.make_learner(config, discrete_spec)
