"""The gymnax adapter (and pendulum through it): action rescaling, termination vs time limit, rng handling."""

import chex
import jax
import jax.numpy as jnp
import pytest

import envs


@pytest.mark.parametrize(("action", "torque"), [(1.0, 2.0), (-1.0, -2.0), (0.0, 0.0), (0.5, 1.0), (3.0, 2.0)])
def test_pendulum_rescales_unit_actions_to_its_torque_bounds(action, torque):
    env = envs.make("pendulum")
    state = env.step(env.reset(jax.random.PRNGKey(0)), jnp.array([action]))
    assert float(state.pipeline_state.last_u) == pytest.approx(torque)


def test_gymnax_time_limit_is_not_reported_as_termination():
    env = envs.make("pendulum")  # gymnax would truncate at 200: the adapter leaves that to TimeLimit

    def step(state, _):
        state = env.step(state, jnp.zeros(1))
        return state, state.done

    _, done = jax.lax.scan(step, env.reset(jax.random.PRNGKey(0)), None, 250)
    assert float(done.sum()) == 0.0


def test_cartpole_terminates_when_the_pole_falls():
    env = envs.make("gymnax/CartPole-v1")

    def step(state, _):
        state = env.step(state, jnp.int32(1))  # always push right: falls within ~10-20 steps
        return state, state.done

    _, done = jax.lax.scan(step, env.reset(jax.random.PRNGKey(0)), None, 60)
    assert float(done.max()) == 1.0


def test_adapter_advances_its_step_key_and_flattens_image_observations():
    env = envs.make("gymnax/Breakout-MinAtar")
    state = env.reset(jax.random.PRNGKey(0))
    next_state = env.step(state, jnp.int32(0))
    assert not jnp.array_equal(state.info["rng"], next_state.info["rng"])
    chex.assert_shape(next_state.obs, (10 * 10 * 4,))
    assert next_state.pipeline_state.time.dtype == state.pipeline_state.time.dtype
