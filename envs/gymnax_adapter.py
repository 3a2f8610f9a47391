"""Any gymnax environment behind the Brax Env API, with our action and observation conventions."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from gymnax.environments import spaces


def _strong(x: Any) -> jax.Array:
    """An array with a fixed dtype, so reset and step states match exactly (scan carries, where selects)."""
    x = jnp.asarray(x)
    return jnp.asarray(x, dtype=x.dtype)


class GymnaxAdapter(Env):
    """A gymnax env as a Brax Env: pipeline_state is the gymnax state, obs is flat float32.

    Actions: an int32 scalar for Discrete spaces, else a float vector in [-1, 1] rescaled to the Box bounds.
    `done` is gymnax's termination only; its time limit is left to our TimeLimit wrapper (the default
    length is `default_episode_length`). The key for gymnax's stochastic step lives in `info["rng"]`.
    """

    def __init__(self, env: Any, params: Any, name: str | None = None):
        self._env = env
        self._params = params
        self.name = name or env.name
        self._space = env.action_space(params)
        if not isinstance(self._space, spaces.Discrete | spaces.Box):
            raise ValueError(f"{self.name}: action space {self._space!r} is neither Discrete nor Box")
        self._obs_size = int(jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs.shape[0])

    def reset(self, rng: jax.Array) -> State:
        rng, reset_key = jax.random.split(rng)
        obs, env_state = self._env.reset_env(reset_key, self._params)
        zero = jnp.zeros((), jnp.float32)
        info = {"rng": rng, "cost": zero}
        return State(jax.tree.map(_strong, env_state), self._flatten(obs), zero, zero, {}, info)

    def step(self, state: State, action: jax.Array) -> State:
        rng, step_key = jax.random.split(state.info["rng"])
        obs, env_state, reward, terminated, _ = self._env.step_env(
            step_key, state.pipeline_state, self._to_env_action(action), self._params
        )
        info = {**state.info, "rng": rng, "cost": jnp.zeros((), jnp.float32)}
        return state.replace(
            pipeline_state=jax.tree.map(_strong, env_state),
            obs=self._flatten(obs),
            reward=jnp.asarray(reward, jnp.float32).reshape(()),
            done=jnp.asarray(terminated, jnp.float32).reshape(()),
            info=info,
        )

    def _to_env_action(self, action: jax.Array) -> jax.Array:
        if self.discrete:
            return jnp.asarray(action, jnp.int32).reshape(())
        low, high = jnp.asarray(self._space.low), jnp.asarray(self._space.high)
        unit = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        return (low + (unit + 1.0) * 0.5 * (high - low)).reshape(self._space.shape)

    @staticmethod
    def _flatten(obs: Any) -> jax.Array:
        return jnp.ravel(jnp.asarray(obs)).astype(jnp.float32)

    @property
    def discrete(self) -> bool:
        return isinstance(self._space, spaces.Discrete)

    @property
    def default_episode_length(self) -> int:
        return int(self._params.max_steps_in_episode)

    @property
    def observation_size(self) -> int:
        return self._obs_size

    @property
    def action_size(self) -> int:
        """Number of choices (discrete) or action dimensions (continuous)."""
        if self.discrete:
            return int(self._space.n)
        return math.prod(self._space.shape)

    @property
    def backend(self) -> str:
        return "gymnax"
