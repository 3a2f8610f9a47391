"""The replay loop's cost constraint (jaxrl/safety/constrained.py) with a stand-in agent that records what it was
taught: it learns from r - λ c, λ climbs while the policy's cost value is over the per-state budget, and the cost
critic converges to the closed-form value of a constant cost; a fine-tuning config turns it on end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import iql
from jaxrl.config import build_config
from jaxrl.safety import lagrangian
from jaxrl.safety.constrained import constrain, penalize_cost, per_state_threshold
from jaxrl.types import EnvSpec, Learner, Transition

SPEC = EnvSpec("toy", obs_size=3, action_size=2, discrete=False, episode_length=100)


def recorder() -> Learner:
    """An agent whose state is the mean reward of the last batch it learned from; it always acts 0."""
    act = lambda state, obs, key, deterministic: (jnp.zeros((obs.shape[0], 2)), {})
    update = lambda state, batch, key: (batch.reward.mean(), {})
    return Learner(lambda key, hyperparams: jnp.float32(0.0), act, update, None, None)


def batch(cost: float, reward: float = 1.0, size: int = 64) -> Transition:
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(size, 3)), jnp.float32)
    ones = jnp.ones(size)
    return Transition(obs, jnp.zeros((size, 2)), reward * ones, cost * ones, ones, obs, ones * jnp.nan,
                      jnp.zeros(size, jnp.int32))


def test_per_state_threshold_by_hand():
    assert per_state_threshold(10.0, 0.5, 2) == pytest.approx(10.0 * 0.75 / (0.5 * 2))  # 7.5
    assert per_state_threshold(25.0, 0.99, 1000) == pytest.approx(25.0 * (1 - 0.99**1000) / (0.01 * 1000))


def test_the_agent_learns_from_the_lagrangian_reward_and_the_multiplier_climbs_over_budget():
    keys = lagrangian.CostConstraint(cost_budget=1.0, multiplier_lr=0.1, multiplier_init=0.5, cost_gamma=0.9)
    learner = constrain(recorder(), keys, SPEC, (16,))
    state = learner.init(jax.random.PRNGKey(0), None)
    data = batch(cost=1.0)  # every step costs 1: the value is 10 per state, far over 1.0 * (1 - 0.9^100) / 10
    update = jax.jit(learner.update)
    for step in range(3000):
        previous = float(state.multiplier.value)
        state, metrics = update(state, data, jax.random.PRNGKey(step))
        assert float(state.inner) == pytest.approx(1.0 - previous * 1.0, rel=1e-5, abs=1e-5)  # r - λ c, λ before it
    assert float(state.multiplier.value) > 0.5 + 0.1 * 2500  # Adam's steps of about lr each, all upwards
    # Q_c of a cost of 1 forever (discount 1 on every row) is 1 / (1 - 0.9) = 10; the target critic's polyak rate
    # (0.005) makes the approach slow: measured 1.0 after 300 updates, 7.2 after 3000.
    assert 5.0 < float(metrics["policy_cost_value"]) <= 10.5


def test_the_multiplier_stays_at_zero_under_budget():
    keys = lagrangian.CostConstraint(cost_budget=50.0, multiplier_lr=0.1, cost_gamma=0.9)
    learner = constrain(recorder(), keys, SPEC, (16,))
    state = learner.init(jax.random.PRNGKey(0), None)
    for step in range(20):
        state, _ = learner.update(state, batch(cost=0.0), jax.random.PRNGKey(step))
    assert float(state.multiplier.value) == 0.0 and float(state.inner) == pytest.approx(1.0)


def test_cost_penalty_trains_the_offline_agent_on_the_penalized_reward():
    """The wrapper hands the agent reward - penalty x cost and leaves everything else as it is."""
    seen = []
    spy = Learner(lambda key, hp: 0, None, lambda state, batch, key: seen.append(batch) or (state, {}), None)
    batch = Transition(*(jnp.arange(4.0) for _ in range(8)))._replace(reward=jnp.array([1.0, 2.0, 3.0, 4.0]),
                                                                       cost=jnp.array([0.0, 1.0, 0.0, 2.0]))
    penalize_cost(spy, 1.5).update(0, batch, None)
    np.testing.assert_allclose(seen[0].reward, [1.0, 0.5, 3.0, 1.0])
    np.testing.assert_array_equal(seen[0].cost, batch.cost)
    assert build_config(iql.Config, {"cost_penalty": 2.0}).cost_penalty == 2.0
    with pytest.raises(ValueError, match="cost_penalty"):
        build_config(iql.Config, {"cost_penalty": -1.0})
