"""make / names / spec: every env family obeys the shape, dtype and info conventions."""

import chex
import jax
import jax.numpy as jnp
import pytest

import envs

EXPECTED_SPECS = {
    "pendulum": (3, 1, False, 200),
    "pointmass": (15, 2, False, 100),
    "gymnax/CartPole-v1": (4, 2, True, 500),
    "gymnax/Breakout-MinAtar": (400, 3, True, 1000),
    "inverted_pendulum": (4, 1, False, 1000),
}


def _random_action(spec, key):
    if spec.discrete:
        return jax.random.randint(key, (), 0, spec.action_size, jnp.int32)
    return jax.random.uniform(key, (spec.action_size,), minval=-1.0, maxval=1.0)


def _check_state(state, spec):
    chex.assert_shape(state.obs, (spec.obs_size,))
    chex.assert_shape([state.reward, state.done, state.info["cost"]], ())
    chex.assert_type([state.obs, state.reward, state.done, state.info["cost"]], jnp.float32)


@pytest.mark.parametrize("name", list(EXPECTED_SPECS))
def test_make_reset_and_step_follow_conventions(name):
    env = envs.make(name)
    spec = envs.spec(name, env)
    assert (spec.obs_size, spec.action_size, spec.discrete, spec.episode_length) == EXPECTED_SPECS[name]
    assert spec.name == name
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    _check_state(state, spec)
    next_state = jax.jit(env.step)(state, _random_action(spec, jax.random.PRNGKey(1)))
    _check_state(next_state, spec)
    assert float(next_state.info["cost"]) == 0.0 or name == "pointmass"


def test_unknown_name_lists_available_names_and_suggests_close_ones():
    with pytest.raises(ValueError, match="Unknown environment 'pointmas'") as error:
        envs.make("pointmas")
    message = str(error.value)
    assert "Did you mean 'pointmass'" in message
    for name in ("pendulum", "inverted_pendulum", "gymnax/CartPole-v1"):
        assert name in message
    assert isinstance(error.value, envs.UnknownEnvError)


def test_names_cover_brax_gymnax_and_own_envs():
    available = envs.names()
    for name in ("ant", "halfcheetah", "hopper", "walker2d", "humanoid", "reacher", "inverted_pendulum"):
        assert name in available
    assert "gymnax/Breakout-MinAtar" in available and "gymnax/Pendulum-v1" in available
    assert {"pendulum", "pointmass"} <= set(available)
    assert len(available) == len(set(available))


def test_brax_env_that_cannot_run_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="jnp.clip"):
        envs.make("swimmer")
    assert "swimmer" not in envs.names()


def test_brax_kwargs_reach_the_constructor():
    env = envs.make("inverted_pendulum", backend="positional")
    assert env.backend == "positional"


@pytest.mark.parametrize("name", ["pointmass", "pendulum", "gymnax/CartPole-v1"])
def test_same_key_gives_same_trajectory(name):
    env = envs.training_env(envs.make(name), num_envs=4, episode_length=50)
    spec = envs.spec(name, envs.make(name))

    @jax.jit
    def rollout(key):
        reset_key, action_key = jax.random.split(key)
        state = env.reset(reset_key)

        def step(state, key):
            action = jax.vmap(lambda k: _random_action(spec, k))(jax.random.split(key, 4))
            state = env.step(state, action)
            return state, (state.obs, state.reward)

        return jax.lax.scan(step, state, jax.random.split(action_key, 60))[1]

    first, again, other = rollout(jax.random.PRNGKey(3)), rollout(jax.random.PRNGKey(3)), rollout(jax.random.PRNGKey(4))
    chex.assert_trees_all_equal(first, again)
    assert not jnp.array_equal(first[0], other[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in envs.names() if "/" not in n and n not in ("pendulum", "pointmass")])
def test_every_brax_env_resets_and_steps(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (deprecation notes) into the working directory
    env = envs.make(name)
    spec = envs.spec(name, env)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jnp.zeros(spec.action_size))
    _check_state(state, spec)
    assert bool(jnp.all(jnp.isfinite(state.obs)))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in envs.names() if n.startswith("gymnax/") and "MNIST" not in n])
def test_every_gymnax_env_resets_and_steps(name):  # MNISTBandit downloads MNIST on construction: left out
    env = envs.make(name)
    spec = envs.spec(name, env)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, _random_action(spec, jax.random.PRNGKey(1)))
    _check_state(state, spec)
