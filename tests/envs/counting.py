"""A scripted env for wrapper and evaluator tests: every total is easy to compute by hand."""

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class CountingEnv(Env):
    """obs = [t, start]: start is random per reset; reward t after the t-th step; action > 0 terminates.

    Every step costs 0.5, so episode totals are easy to compute by hand. Without auto-reset the count keeps going
    after done: anything a consumer adds past an episode's end shows up in its totals.
    """

    def reset(self, rng):
        obs = jnp.array([0.0, jax.random.uniform(rng)])
        zero = jnp.zeros((), jnp.float32)
        return State(obs, obs, zero, zero, {}, {"cost": zero})

    def step(self, state, action):
        obs = state.pipeline_state.at[0].add(1.0)
        done = (jnp.asarray(action) > 0).astype(jnp.float32).reshape(())
        info = {**state.info, "cost": jnp.float32(0.5)}
        return state.replace(pipeline_state=obs, obs=obs, reward=obs[0], done=done, info=info)

    @property
    def observation_size(self):
        return 2

    @property
    def action_size(self):
        return 1

    @property
    def backend(self):
        return "test"
