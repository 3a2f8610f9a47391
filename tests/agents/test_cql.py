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
    return jax.jit(functools.partial(loss, nets=nets, config=config, hp=config))


class BilinearCritic:
    """Twin critics Q_c(s, a) = s·M_c·a + w_c·a that numpy can recompute; params (M [C, obs, A], w [C, A])."""

    def apply(self, params, obs, action):
        bilinear, linear = params
        return jnp.einsum("...o,coa,...a->c...", obs, bilinear, action) + jnp.einsum("ca,...a->c...", linear, action)


class LinearPolicy:
    """Mean s·P and a state-independent log-std, so π(·|s) and π(·|s') differ; params (P [obs, A], log_std [A])."""

    def apply(self, params, obs):
        weights, log_std = params
        mean = obs @ weights
        return mean, jnp.broadcast_to(log_std, mean.shape)


LINEAR_NETS = cql.Networks(critic=BilinearCritic(), policy=LinearPolicy())


def numpy_q(params, obs, actions):
    """Q of BilinearCritic in float64: obs [B, obs], actions [..., B, A] -> [C, ..., B]."""
    bilinear, linear = (np.asarray(p, np.float64) for p in params)
    actions = np.asarray(actions, np.float64)
    return np.einsum("bo,coa,...ba->c...b", np.asarray(obs, np.float64), bilinear, actions) + np.einsum(
        "ca,...ba->c...b", linear, actions)


def numpy_tanh_gaussian_log_prob(params, obs, actions):
    """log π(a|s) of a = tanh(u), u ~ N(s·P, exp(log_std)^2): Gaussian log-density of u minus log|da/du|, [..., B]."""
    weights, log_std = (np.asarray(p, np.float64) for p in params)
    mean = np.asarray(obs, np.float64) @ weights  # [B, A]
    actions = np.asarray(actions, np.float64)
    raw = np.arctanh(actions)
    gaussian = -0.5 * ((raw - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    return (gaussian - np.log(1 - actions**2)).sum(axis=-1)


def numpy_penalty(q_data, q_random, q_current, q_next, current_log_prob, next_log_prob, action_size):
    """E_s[log Σ_i exp Q(s, a_i) / μ(a_i) - Q(s, a_data)] per critic (Eq. 4 with Appendix F's importance sampling):
    μ is 2^-A for the uniform actions and the policy's density for the policy's actions."""
    q_samples = np.concatenate([q_random, q_current, q_next], axis=1)  # [C, 3n, B]
    densities = np.concatenate([np.full(q_random.shape[1:], 0.5**action_size), np.exp(current_log_prob),
                                np.exp(next_log_prob)])  # [3n, B]
    return (logsumexp(q_samples, axis=1, b=1 / densities) - q_data).mean(axis=1)


@pytest.fixture(scope="module")
def linear_params(spec):
    """Critic, target critic and policy params for LINEAR_NETS; Q is O(1) so every block of the penalty counts."""
    rng = np.random.default_rng(7)
    critic = lambda: (rng.normal(size=(2, spec.obs_size, spec.action_size)), rng.normal(size=(2, spec.action_size)))
    policy = (0.2 * rng.normal(size=(spec.obs_size, spec.action_size)), np.array([-1.0, -0.7]))
    as_f32 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)
    return as_f32(critic()), as_f32(critic()), as_f32(policy)


@pytest.mark.parametrize("action_size", [1, 3])
def test_conservative_penalty_is_importance_weighted_logsumexp_minus_data_q(action_size):
    rng = np.random.default_rng(0)
    critics, samples, batch_size = 2, 3, 4
    q_data = rng.normal(size=(critics, batch_size))
    q_random, q_current, q_next = (rng.normal(size=(critics, samples, batch_size)) for _ in range(3))
    current_log_prob, next_log_prob = (rng.normal(size=(samples, batch_size)) for _ in range(2))
    penalty = cql.conservative_penalty(
        *map(jnp.asarray, (q_data, q_random, q_current, q_next, current_log_prob, next_log_prob)), action_size
    )
    expected = numpy_penalty(q_data, q_random, q_current, q_next, current_log_prob, next_log_prob, action_size)
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)


def test_conservative_penalty_matches_hand_value():
    # One critic, state and sample per block, A = 1 (uniform density 1/2): Q = 1 on the uniform action, 2 on the
    # π(·|s) one (density e^0), 3 on the π(·|s') one (density e^log 2), 0.5 on the data:
    # log(e^1 / (1/2) + e^2 / 1 + e^3 / 2) - 0.5.
    q = lambda value: jnp.full((1, 1, 1), value)
    log_prob = lambda value: jnp.full((1, 1), value)
    penalty = cql.conservative_penalty(log_prob(0.5), q(1.0), q(2.0), q(3.0), log_prob(0.0), log_prob(np.log(2.0)), 1)
    e = np.e
    np.testing.assert_allclose(penalty, [np.log(2 * e + e**2 + e**3 / 2) - 0.5], rtol=1e-6)


@pytest.mark.parametrize("chunks", [1, 2, 8, 32])
def test_q_on_actions_scores_each_state_on_each_of_its_actions(linear_params, batch, chunks):
    actions = jax.random.uniform(jax.random.key(3), (5,) + batch.action.shape, minval=-1.0, maxval=1.0)
    q = cql.q_on_actions(LINEAR_NETS, linear_params[0], batch.obs, actions, chunks)
    np.testing.assert_allclose(q, numpy_q(linear_params[0], batch.obs, actions), rtol=1e-4, atol=1e-5)


def expected_critic_loss(params, batch, key, config):
    """critic_loss recomputed in numpy on the actions critic_loss draws (the same key splits, reproduced here)."""
    critic_params, target_params, policy_params = params
    n = config.num_sampled_actions
    random_key, current_key, next_key = jax.random.split(key, 3)
    current_actions = cql.sample_actions(LINEAR_NETS, policy_params, batch.obs, current_key, n)[0]  # [n, B, A]
    next_actions = cql.sample_actions(LINEAR_NETS, policy_params, batch.next_obs, next_key, n + 1)[0]  # [n+1, B, A]
    random_actions = jax.random.uniform(random_key, current_actions.shape, minval=-1.0, maxval=1.0)
    # Draws near ±1 would make arctanh (and so the numpy log-probs) imprecise in float32.
    assert np.abs(np.asarray(jnp.concatenate([current_actions, next_actions]))).max() < 0.99

    target_q = numpy_q(target_params, batch.next_obs, next_actions[0]).min(axis=0)  # [B]
    q_targets = np.asarray(batch.reward) + config.gamma * np.asarray(batch.discount) * target_q
    q_data = numpy_q(critic_params, batch.obs, batch.action)  # [C, B]
    td_loss = ((q_data - q_targets) ** 2).mean(axis=1).sum()
    penalty = numpy_penalty(
        q_data,
        numpy_q(critic_params, batch.obs, random_actions),
        numpy_q(critic_params, batch.obs, current_actions),
        numpy_q(critic_params, batch.obs, next_actions[1:]),  # actions drawn at s' are scored at s
        numpy_tanh_gaussian_log_prob(policy_params, batch.obs, current_actions),
        numpy_tanh_gaussian_log_prob(policy_params, batch.next_obs, next_actions[1:]),
        batch.action.shape[-1],
    )
    return td_loss, penalty, q_data.mean(), numpy_q(critic_params, batch.obs, random_actions).mean(), target_q.mean()


@pytest.mark.parametrize("lagrange, multiplier", [(False, 1.0), (True, 0.7)])
def test_critic_loss_is_td_error_plus_weighted_penalty(linear_params, batch, lagrange, multiplier):
    config = cql.Config(batch_size=batch.obs.shape[0], num_sampled_actions=3, lagrange=lagrange,
                        target_action_gap=2.0, cql_alpha=5.0)
    key = jax.random.key(1)
    loss, metrics = loss_fn(cql.critic_loss, LINEAR_NETS, config)(*linear_params, jnp.asarray(multiplier), batch, key)
    td_loss, penalty, q_mean, q_random_mean, target_q_mean = expected_critic_loss(linear_params, batch, key, config)
    gap = 2.0 if lagrange else 0.0
    np.testing.assert_allclose(metrics["td_loss"], td_loss, rtol=1e-4)
    np.testing.assert_allclose(metrics["cql_penalty"], penalty.mean(), rtol=1e-4)
    np.testing.assert_allclose(metrics["q_mean"], q_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(metrics["q_random_mean"], q_random_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(metrics["target_q_mean"], target_q_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, td_loss + (5.0 * multiplier * (penalty - gap)).sum(), rtol=1e-4)


def test_critic_scored_in_slices_gives_the_same_loss_and_gradient(nets, config, state, batch):
    # A count that does not divide the batch falls back to the largest one that does.
    losses = {}
    for count in (1, 8, 7):
        sliced_config = dataclasses.replace(config, critic_chunks=count)
        losses[count] = jax.value_and_grad(cql.critic_loss, has_aux=True)(
            state.critic.params, state.critic.params, state.policy.params, jnp.ones(()), batch, jax.random.key(1),
            nets=nets, config=sliced_config, hp=config)
    for count in (8, 7):
        np.testing.assert_allclose(losses[count][0][0], losses[1][0][0], rtol=1e-5)
        chex.assert_trees_all_close(losses[count][1], losses[1][1], rtol=1e-4, atol=1e-6)


def test_policy_loss_is_entropy_regularised_negative_min_q(linear_params, batch):
    critic_params, _, policy_params = linear_params
    key = jax.random.key(1)
    loss, metrics = loss_fn(cql.policy_loss, LINEAR_NETS, cql.Config())(
        policy_params, critic_params, jnp.asarray(0.5), batch, key
    )
    actions = cql.sample_actions(LINEAR_NETS, policy_params, batch.obs, key, 1)[0][0]  # the draw policy_loss makes
    log_prob = numpy_tanh_gaussian_log_prob(policy_params, batch.obs, actions)  # [B]
    min_q = numpy_q(critic_params, batch.obs, actions).min(axis=0)  # [B]
    np.testing.assert_allclose(loss, (0.5 * log_prob - min_q).mean(), rtol=1e-4)
    np.testing.assert_allclose(metrics["entropy"], -log_prob.mean(), rtol=1e-4)


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
    state = state._replace(hyperparams=learner.hyperparams)  # the gap is read from the state
    new_state, metrics = jax.jit(learner.update)(state, batch, jax.random.key(1))
    assert metrics["cql_penalty"] > config.target_action_gap
    assert new_state.log_lagrange_multiplier.params > state.log_lagrange_multiplier.params


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
