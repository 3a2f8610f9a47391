"""Cal-QL: returns-to-go of the logged episodes (hand-computed), the calibrated penalty on a tiny input where the
Monte-Carlo return is below Q and where it is above (hand-computed), and its wiring into CQL's critic loss."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import calql, cql, sac
from jaxrl.config import build_config
from jaxrl.data.returns import returns_to_go, with_returns_to_go
from jaxrl.types import MCTransition, Transition
from tests.agents.conftest import SPEC, make_batch


def _episodes(rewards, discounts, ids) -> Transition:
    n = len(rewards)
    zeros = np.zeros(n, np.float32)
    return Transition(np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), np.asarray(rewards, np.float32),
                      zeros, np.asarray(discounts, np.float32), np.zeros((n, 1), np.float32), zeros,
                      np.asarray(ids, np.int32))


def test_returns_to_go_end_at_a_termination_and_continue_the_mean_reward_after_a_time_limit():
    # Episode 7 terminates after 3 steps; episode 9 is cut by the time limit after 2 (mean reward 3).
    data = _episodes([1, 2, 3, 2, 4], [1, 1, 0, 1, 1], [7, 7, 7, 9, 9])
    gamma = 0.5
    tail = 3.0 / (1 - gamma)  # the cut episode's mean reward forever: 6
    expected = [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3, 2 + 0.5 * (4 + 0.5 * tail), 4 + 0.5 * tail]
    np.testing.assert_allclose(returns_to_go(data, gamma), expected, rtol=1e-6)
    rows = with_returns_to_go(data, gamma)
    assert isinstance(rows, MCTransition) and rows.reward is data.reward


def test_the_calibrated_penalty_matches_hand_computed_values():
    # One critic, one sampled action of each kind, one action dimension (uniform density 1/2), log-probs 0;
    # Q = 0 on the data's and the uniform action, 1 on the policy's. State 0's MC return (0.5) is below Q: Q stays
    # 1. State 1's (3.0) is above: Q on the policy's actions is raised to 3.
    q_data = jnp.zeros((1, 2))
    q_random = jnp.zeros((1, 1, 2))
    q_policy = jnp.ones((1, 1, 2))
    mc_return = jnp.array([0.5, 3.0])
    log_prob = jnp.zeros((1, 2))
    calibrated = cql.calibrate(q_policy, mc_return)
    np.testing.assert_allclose(calibrated, [[[1.0, 3.0]]])
    penalty = cql.conservative_penalty(q_data, q_random, calibrated, calibrated, log_prob, log_prob, 1)
    state0 = math.log(math.exp(math.log(2)) + 2 * math.exp(1.0)) - 0.0  # uniform: Q - log(1/2)
    state1 = math.log(math.exp(math.log(2)) + 2 * math.exp(3.0)) - 0.0
    np.testing.assert_allclose(penalty, [(state0 + state1) / 2], rtol=1e-6)
    plain = cql.conservative_penalty(q_data, q_random, q_policy, q_policy, log_prob, log_prob, 1)
    np.testing.assert_allclose(plain, [state0], rtol=1e-6)  # uncalibrated, both states are state 0


def _critic_loss(mc_return: float, calibrated: bool):
    config = build_config(calql.Config, {"hidden_sizes": (16, 16), "batch_size": 32, "critic_chunks": 1})
    nets = cql.make_networks(config, SPEC)
    critic_params, policy_params = sac.init_params(nets, jax.random.key(0), SPEC)
    batch = make_batch(jax.random.key(1))
    batch = MCTransition(*batch, mc_return=jnp.full(batch.reward.shape, mc_return))
    hp = calql.Hyperparams()
    loss = jax.jit(lambda batch: cql.critic_loss(critic_params, critic_params, policy_params, jnp.ones(()), batch,
                                                 jax.random.key(2), nets=nets, config=config, hp=hp,
                                                 calibrated=calibrated)[1])
    return loss(batch)


def test_the_calibration_bounds_the_penalty_only_where_the_return_is_above_q():
    cql_penalty = _critic_loss(0.0, calibrated=False)["cql_penalty"]
    # A return of -inf (an online row) bounds nothing: CQL's penalty, exactly.
    unbounded = _critic_loss(-jnp.inf, calibrated=True)
    assert float(unbounded["cql_penalty"]) == pytest.approx(float(cql_penalty), abs=0)
    assert float(unbounded["calql_bound_fraction"]) == 0.0
    # A return far above every Q (about 0 at initialization) raises the policy's Q, so the penalty grows.
    bounded = _critic_loss(50.0, calibrated=True)
    assert float(bounded["cql_penalty"]) > float(cql_penalty) + 40
    assert float(bounded["calql_bound_fraction"]) == 1.0 and float(bounded["mc_return_mean"]) == 50.0
