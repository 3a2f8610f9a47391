"""The Lagrange multiplier (jaxrl/safety/lagrangian.py) against hand-computed steps, the Lagrangian advantage and
the finished episodes' cost measurement."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.safety import lagrangian


def test_multiplier_rises_by_the_step_size_when_the_cost_is_over_budget():
    # Adam's first step is lr * g / (|g| + eps): λ moves by almost exactly the step size, against the gradient.
    multiplier = lagrangian.init_multiplier(0.5, 0.1)
    stepped = lagrangian.update_multiplier(multiplier, jnp.float32(3.0), jnp.float32(10), jnp.float32(1.0),
                                           jnp.float32(0.1))
    assert float(stepped.value) == pytest.approx(0.6, abs=1e-6)
    assert float(stepped.measured_cost) == 3.0


def test_multiplier_falls_when_under_budget_and_never_below_zero():
    multiplier = lagrangian.init_multiplier(0.05, 0.1)
    stepped = lagrangian.update_multiplier(multiplier, jnp.float32(0.2), jnp.float32(4), jnp.float32(1.0),
                                           jnp.float32(0.1))
    assert float(stepped.value) == 0.0  # 0.05 - 0.1 clipped at 0
    again = lagrangian.update_multiplier(lagrangian.init_multiplier(1.0, 0.1), jnp.float32(0.2), jnp.float32(4),
                                         jnp.float32(1.0), jnp.float32(0.1))
    assert float(again.value) == pytest.approx(0.9, abs=1e-6)


def test_multiplier_stays_without_a_finished_episode():
    multiplier = lagrangian.init_multiplier(0.7, 0.1)
    stepped = lagrangian.update_multiplier(multiplier, jnp.float32(jnp.nan), jnp.float32(0), jnp.float32(1.0),
                                           jnp.float32(0.1))
    assert float(stepped.value) == pytest.approx(0.7)
    assert np.isnan(float(stepped.measured_cost))
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in
               [stepped.opt_state[0].mu, stepped.opt_state[0].nu])  # the skipped step left Adam's moments alone


def test_penalized_advantage_by_hand():
    reward, cost = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, 1.0, -1.0])
    np.testing.assert_allclose(lagrangian.penalized_advantages(reward, cost, jnp.float32(0.0)), [1.0, -2.0, 0.5])
    # λ = 3: (A_r - 3 A_c) / 4
    np.testing.assert_allclose(lagrangian.penalized_advantages(reward, cost, jnp.float32(3.0)),
                               [0.25, -1.25, 0.875])


def test_finished_episode_cost_averages_the_episodes_that_ended():
    # Two envs over four steps: env 0 ends an episode of cost 2 at step 1 and one of cost 1 at step 3; env 1 ends
    # nothing (its running total 5 must not count).
    episode_cost = jnp.array([[1.0, 3.0], [2.0, 4.0], [0.0, 4.5], [1.0, 5.0]])
    done = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    mean, episodes = lagrangian.finished_episode_cost(episode_cost, done)
    assert float(episodes) == 2 and float(mean) == pytest.approx(1.5)
    mean, episodes = lagrangian.finished_episode_cost(episode_cost, jnp.zeros_like(done))
    assert float(episodes) == 0 and np.isnan(float(mean))
