"""BC, IQL and CQL on discrete actions: their losses against numpy on tiny linear networks, the learner contract
(shapes, vmapped runs = separate runs, determinism), actions in range, log-probs, and what stays refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import bc, calql, cql, iql
from jaxrl.networks import CategoricalHead, QEnsemble
from jaxrl.types import Transition
from tests.agents.conftest import make_batch

NUM_ACTIONS = 4


def discrete_batch(key, spec, batch_size: int = 32) -> Transition:
    return make_batch(key, batch_size, spec)


def random_params(params, key):
    """Every leaf replaced by normal draws (scale 0.5): a linear network with known, nonzero weights."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [0.5 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves,
                                                                                                    strict=True)])


def linear_weights(params):
    """(kernel, bias) of a network without hidden layers, as numpy arrays (leading critic axis for ensembles)."""
    named = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in
             jax.tree_util.tree_flatten_with_path(params)[0]}
    (kernel,) = [v for k, v in named.items() if "kernel" in k]
    (bias,) = [v for k, v in named.items() if "bias" in k]
    return kernel, bias


def logsumexp(x, axis=-1):
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


@pytest.fixture(scope="module")
def tiny(discrete_spec):
    batch = discrete_batch(jax.random.key(0), discrete_spec, 16)
    return discrete_spec, batch, {k: np.asarray(v) for k, v in batch._asdict().items()}


def _ensemble(spec, key):
    critic = QEnsemble((), num_critics=2, num_actions=spec.action_size)
    return critic, random_params(critic.init(key, jnp.zeros((1, spec.obs_size))), key)


def test_q_ensemble_discrete_head_is_every_actions_value(tiny):
    spec, batch, b = tiny
    critic, params = _ensemble(spec, jax.random.key(1))
    kernel, bias = linear_weights(params)  # [2, obs, N], [2, N]
    expected = np.einsum("bo,con->cbn", b["obs"], kernel) + bias[:, None]
    np.testing.assert_allclose(critic.apply(params, batch.obs), expected, rtol=1e-5, atol=1e-5)
    chosen = critic.apply(params, batch.obs, batch.action)
    np.testing.assert_allclose(chosen, expected[:, np.arange(16), b["action"]], rtol=1e-5, atol=1e-5)


def test_discrete_cql_loss_and_double_q_target_against_numpy(tiny):
    spec, batch, b = tiny
    critic, params = _ensemble(spec, jax.random.key(2))
    _, target_params = _ensemble(spec, jax.random.key(3))
    config = cql.Config(hidden_sizes=(8,), cql_alpha=2.0)
    kernel, bias = linear_weights(params)
    target_kernel, target_bias = linear_weights(target_params)
    q_next_online = np.einsum("bo,con->cbn", b["next_obs"], kernel) + bias[:, None]
    q_next_target = np.einsum("bo,con->cbn", b["next_obs"], target_kernel) + target_bias[:, None]
    picked = q_next_online.mean(0).argmax(-1)
    next_q = q_next_target[:, np.arange(16), picked].min(0)
    np.testing.assert_allclose(cql.double_q_value(critic, params, target_params, batch.next_obs), next_q, rtol=1e-5)

    q_all = np.einsum("bo,con->cbn", b["obs"], kernel) + bias[:, None]
    q_data = q_all[:, np.arange(16), b["action"]]
    targets = b["reward"] + 0.99 * b["discount"] * next_q
    td = ((q_data - targets) ** 2).mean(1).sum()
    penalty = (logsumexp(q_all) - q_data).mean(1)
    expected = td + 2.0 * penalty.sum()
    loss, metrics = cql.discrete_critic_loss(params, jnp.asarray(next_q), jnp.ones(()), batch, jax.random.key(0),
                                             critic=critic, config=config, hp=cql.Hyperparams(cql_alpha=2.0))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["cql_penalty"]), penalty.mean(), rtol=1e-5)
    assert np.all(penalty >= 0)  # a logsumexp is never below one of its terms


def test_discrete_iql_critic_and_policy_losses_against_numpy(tiny):
    spec, batch, b = tiny
    nets = iql.make_networks(iql.Config(hidden_sizes=(8,)), spec)
    assert isinstance(nets.policy, CategoricalHead) and nets.critic.num_actions == spec.action_size
    # the same heads without hidden layers: linear, so numpy can compute them
    nets = nets._replace(critic=QEnsemble((), num_critics=2, num_actions=spec.action_size),
                         policy=CategoricalHead((), spec.action_size))
    critic_params = random_params(nets.critic.init(jax.random.key(4), batch.obs, batch.action), jax.random.key(4))
    policy_params = random_params(nets.policy.init(jax.random.key(5), batch.obs), jax.random.key(5))
    hp = iql.Hyperparams(inverse_temperature=2.0, max_advantage_weight=5.0)
    next_value = np.linspace(-1, 1, 16).astype(np.float32)
    kernel, bias = linear_weights(critic_params)
    q = (np.einsum("bo,con->cbn", b["obs"], kernel) + bias[:, None])[:, np.arange(16), b["action"]]
    expected = ((q - (b["reward"] + 0.99 * b["discount"] * next_value)) ** 2).mean(1).sum()
    loss, _ = iql.critic_loss(critic_params, jnp.asarray(next_value), batch, jax.random.key(0), nets=nets, hp=hp)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)

    advantage = np.linspace(-2, 2, 16).astype(np.float32)
    policy_kernel, policy_bias = linear_weights(policy_params)
    logits = b["obs"] @ policy_kernel + policy_bias
    log_softmax = logits - logsumexp(logits)[:, None]
    weights = np.minimum(np.exp(2.0 * advantage), 5.0)
    expected = -(weights * log_softmax[np.arange(16), b["action"]]).mean()
    loss, _ = iql.policy_loss(policy_params, jnp.asarray(advantage), batch, jax.random.key(0), nets=nets, hp=hp)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_discrete_bc_is_the_cross_entropy(tiny):
    spec, batch, b = tiny
    assert isinstance(bc.make_policy(bc.Config(hidden_sizes=(8,)), spec), CategoricalHead)
    policy = CategoricalHead((), spec.action_size)  # linear, so numpy can compute it
    params = random_params(policy.init(jax.random.key(6), batch.obs), jax.random.key(6))
    kernel, bias = linear_weights(params)
    logits = b["obs"] @ kernel + bias
    expected = -(logits - logsumexp(logits)[:, None])[np.arange(16), b["action"]].mean()
    loss, _ = bc.bc_loss(params, batch, jax.random.key(0), policy=policy)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


AGENTS = {"bc": bc, "iql": iql, "cql": cql}


def _contract(name, spec, learner_contract, small):
    module = AGENTS[name]
    learner = module.make_learner(module.Config(**small), spec)
    return learner, learner_contract(learner, discrete_batch(jax.random.key(1), spec))


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_discrete_update_shapes_actions_in_range_and_log_probs(name, discrete_spec, learner_contract, small):
    learner, contract = _contract(name, discrete_spec, learner_contract, small)
    contract.check_update_shapes()
    state = contract.init(jax.random.key(0))
    obs = contract.batch.obs * 10
    for deterministic in (True, False):
        action, _ = contract.act(state, obs, jax.random.key(1), deterministic)
        assert action.dtype == jnp.int32 and action.shape == (32,)
        assert bool(jnp.all((action >= 0) & (action < NUM_ACTIONS)))
    # log-probs: a distribution over the actions, and the greedy action is the most likely one
    log_probs = jnp.stack([learner.log_prob(state, obs, jnp.full((32,), a, jnp.int32)) for a in range(NUM_ACTIONS)])
    np.testing.assert_allclose(jnp.exp(log_probs).sum(0), np.ones(32), rtol=1e-5)
    greedy, _ = contract.act(state, obs, jax.random.key(1), True)
    np.testing.assert_array_equal(greedy, log_probs.argmax(0))


# CQL's discrete learner is its own code: checked by default. BC's and IQL's discrete paths differ from their
# continuous ones (whose contract runs by default) only in the heads: slow suite.
@pytest.mark.parametrize("name", ["cql", pytest.param("iql", marks=pytest.mark.slow),
                                  pytest.param("bc", marks=pytest.mark.slow)])
def test_discrete_vmapped_runs_match_separate_runs_and_are_deterministic(name, discrete_spec, learner_contract,
                                                                         small):
    _, contract = _contract(name, discrete_spec, learner_contract, small)
    contract.check_vmap_matches_separate()
    contract.check_deterministic()


def test_learning_moves_every_discrete_agent_toward_the_rewarded_action(discrete_spec, small):
    """One state, action 2 pays 1 and the others 0 (a bandit): after 300 updates at learning rates of 3e-3 each
    agent picks action 2 (IQL's policy learning rate decays to 0 over num_updates: 300 here)."""
    obs = jnp.ones((64, discrete_spec.obs_size))
    action = jnp.arange(64, dtype=jnp.int32) % NUM_ACTIONS
    batch = Transition(obs, action, (action == 2).astype(jnp.float32), jnp.zeros(64), jnp.zeros(64), obs,
                       jnp.zeros(64), jnp.zeros(64, jnp.int32))
    fast = {"num_updates": 300, "critic_lr": 3e-3, "policy_lr": 3e-3}
    for name, extra in (("iql", {"value_lr": 3e-3}), ("cql", {})):
        learner = AGENTS[name].make_learner(AGENTS[name].Config(**{**small, **fast, **extra}), discrete_spec)
        state = learner.init(jax.random.key(0), learner.hyperparams)
        state = jax.jit(lambda s, k, learner=learner: jax.lax.fori_loop(
            0, 300, lambda i, s: learner.update(s, batch, jax.random.fold_in(k, i))[0], s))(state, jax.random.key(1))
        picked, _ = learner.act(state, obs[:1], jax.random.key(2), True)
        assert int(picked[0]) == 2, name


def test_cal_ql_stays_refused_on_discrete_actions(discrete_spec, small):
    with pytest.raises(ValueError, match="Cal-QL"):
        calql.make_learner(calql.Config(**small), discrete_spec)


def test_discrete_cql_explores_epsilon_greedily_with_that_density(discrete_spec, small):
    learner = cql.make_learner(cql.Config(**small, exploration_epsilon=0.2), discrete_spec)
    state = learner.init(jax.random.key(0), learner.hyperparams)
    obs = jnp.repeat(jax.random.normal(jax.random.key(1), (1, discrete_spec.obs_size)), 20000, axis=0)
    greedy, _ = learner.act(state, obs[:1], jax.random.key(2), True)
    sampled, _ = learner.act(state, obs, jax.random.key(3), False)
    frequency = np.bincount(np.asarray(sampled), minlength=NUM_ACTIONS) / 20000
    expected = np.full(NUM_ACTIONS, 0.2 / NUM_ACTIONS)
    expected[int(greedy[0])] += 0.8
    np.testing.assert_allclose(frequency, expected, atol=0.015)
    log_probs = [float(learner.log_prob(state, obs[:1], jnp.array([a], jnp.int32))[0]) for a in range(NUM_ACTIONS)]
    np.testing.assert_allclose(np.exp(log_probs), expected, rtol=1e-5)
