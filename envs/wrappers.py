"""Composable wrappers on Brax's Wrapper base: every counter and key lives in `state.info`, never on the wrapper.

Counters restart on the step *after* one that returned done=1 (they read the incoming `state.done`), so
they stay right whether or not an AutoReset sits outside them. `training_env` and `eval_env` stack them
in the order that keeps truncation and episode statistics correct.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper

EPISODE_STAT_KEYS = ("episode_return", "episode_length", "episode_cost")


class ZeroCost(Wrapper):
    """Adds `info["cost"] = 0.0` for envs that have no safety cost (Brax physics envs)."""

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        return state.replace(info={**state.info, "cost": jnp.zeros((), jnp.float32)})

    def step(self, state: State, action: jax.Array) -> State:
        state = self.env.step(state, action)
        return state.replace(info={**state.info, "cost": jnp.zeros((), jnp.float32)})


class ActionRepeat(Wrapper):
    """Applies each action `repeat` times; reward and cost are summed until the env terminates."""

    def __init__(self, env: Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, state: State, action: jax.Array) -> State:
        def substep(carry, _):
            state, reward, cost, done = carry
            state = self.env.step(state, action)
            alive = 1.0 - done  # stepping past a termination is harmless but must not score
            reward = reward + alive * state.reward
            cost = cost + alive * state.info["cost"]
            return (state, reward, cost, jnp.maximum(done, state.done)), None

        zero = jnp.zeros_like(state.reward)
        (state, reward, cost, done), _ = jax.lax.scan(substep, (state, zero, zero, zero), None, self.repeat)
        return state.replace(reward=reward, done=done, info={**state.info, "cost": cost})


class TimeLimit(Wrapper):
    """Ends episodes after `episode_length` steps of this wrapper.

    Sets done=1 at the limit, `info["truncation"]` = 1 when the limit (not the env) ended the episode,
    and counts the steps of the current episode in `info["steps"]` (int32).
    """

    def __init__(self, env: Env, episode_length: int):
        super().__init__(env)
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        info = {**state.info, "steps": jnp.zeros((), jnp.int32), "truncation": jnp.zeros((), jnp.float32)}
        return state.replace(info=info)

    def step(self, state: State, action: jax.Array) -> State:
        steps = jnp.where(state.done > 0, 0, state.info["steps"]) + 1
        # Brax envs that never terminate (halfcheetah, reacher, ...) leave `done` as they received it: a done=1
        # carried into the next episode would end every one of its steps. The inner env starts at done=0.
        state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
        at_limit = steps >= self.episode_length
        truncation = jnp.where(at_limit, 1.0 - state.done, 0.0).astype(jnp.float32)
        done = jnp.where(at_limit, 1.0, state.done).astype(jnp.float32)
        return state.replace(done=done, info={**state.info, "steps": steps, "truncation": truncation})


class EpisodeStats(Wrapper):
    """Running `info["episode_return"]`, `["episode_length"]` (int32) and `["episode_cost"]`.

    On a step with done=1 they hold the finished episode's totals (that step included); the next step
    starts again from zero. Mean return of the episodes finished in a rollout: sum(done * return) / sum(done).
    """

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        zero = jnp.zeros((), jnp.float32)
        stats = {"episode_return": zero, "episode_length": jnp.zeros((), jnp.int32), "episode_cost": zero}
        return state.replace(info={**state.info, **stats})

    def step(self, state: State, action: jax.Array) -> State:
        restart = state.done > 0
        previous = {key: jnp.where(restart, 0, state.info[key]) for key in EPISODE_STAT_KEYS}
        state = self.env.step(state, action)
        stats = {
            "episode_return": previous["episode_return"] + state.reward,
            "episode_length": previous["episode_length"] + 1,
            "episode_cost": previous["episode_cost"] + state.info["cost"],
        }
        return state.replace(info={**state.info, **stats})


class AutoReset(Wrapper):
    """After a step with done=1, returns a freshly reset obs and pipeline_state (new random initial state).

    `done`, `reward`, `metrics` and `info` (truncation, episode statistics) of the finished step are kept,
    and `info["final_obs"]` holds the observation the step produced, before any reset (the `next_obs` a
    logged transition needs).
    The reset key is carried in `info["reset_key"]` and split every step. The reset is computed on every
    step and selected with jnp.where, so it works under vmap; its price is one `reset` per step, which
    `VmapAutoReset` (what `training_env` uses) avoids on steps where no env of the batch finished.
    Environments must keep all their dynamic state in `pipeline_state` (and `obs`).
    """

    def reset(self, rng: jax.Array) -> State:
        rng, reset_key = jax.random.split(rng)
        state = self.env.reset(reset_key)
        return state.replace(info={**state.info, "reset_key": rng, "final_obs": state.obs})

    def step(self, state: State, action: jax.Array) -> State:
        key, reset_key = jax.random.split(state.info["reset_key"])
        state = self.env.step(state, action)
        restarted = restart_where_done(state, self.env.reset(reset_key))
        return restarted.replace(info={**state.info, "reset_key": key, "final_obs": state.obs})


def restart_where_done(state: State, fresh: State) -> State:
    """`state` with the pipeline state and obs of `fresh` if it is done (one env: `done` is a scalar)."""
    done = state.done > 0
    select = lambda new, old: jnp.where(done, new, old)
    return state.replace(pipeline_state=jax.tree.map(select, fresh.pipeline_state, state.pipeline_state),
                         obs=jax.tree.map(select, fresh.obs, state.obs))


class Vmap(Wrapper):
    """`num_envs` copies: reset splits the key num_envs ways, step is vmapped over the leading axis."""

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs

    def reset(self, rng: jax.Array) -> State:
        return jax.vmap(self.env.reset)(jax.random.split(rng, self.num_envs))

    def step(self, state: State, action: jax.Array) -> State:
        return jax.vmap(self.env.step)(state, action)


class VmapAutoReset(Vmap):
    """`Vmap(AutoReset(env), num_envs)`, step for step the same states, with the fresh resets computed only
    on steps where at least one of the envs finished.

    The per-env AutoReset pays for a reset on every step, which for Brax physics costs about as much as
    the step itself; most steps of locomotion tasks end no episode. Under an outer vmap (seeds) the
    `lax.cond` turns into a select and every step pays for the reset again, as with AutoReset.
    """

    def __init__(self, env: Env, num_envs: int):
        super().__init__(AutoReset(env), num_envs)

    def step(self, state: State, action: jax.Array) -> State:
        inner = self.env.env  # the env under AutoReset
        keys = jax.vmap(jax.random.split)(state.info["reset_key"])  # [N, 2, key]: next reset_key, this reset
        stepped = jax.vmap(inner.step)(state, action)

        def restart(stepped: State) -> State:
            return jax.vmap(restart_where_done)(stepped, jax.vmap(inner.reset)(keys[:, 1]))

        restarted = jax.lax.cond(jnp.any(stepped.done > 0), restart, lambda stepped: stepped, stepped)
        return restarted.replace(info={**stepped.info, "reset_key": keys[:, 0], "final_obs": stepped.obs})


def _episodic(env: Env, episode_length: int, action_repeat: int) -> Env:
    """ActionRepeat -> TimeLimit -> EpisodeStats; `episode_length` counts env steps, as in Brax."""
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    agent_steps = -(-episode_length // action_repeat)
    return EpisodeStats(TimeLimit(env, agent_steps))


def training_env(env: Env, num_envs: int, episode_length: int, action_repeat: int = 1) -> Env:
    """Batched env for collecting experience: time limit, episode statistics and auto-reset."""
    return VmapAutoReset(_episodic(env, episode_length, action_repeat), num_envs)


def eval_env(env: Env, num_envs: int, episode_length: int, action_repeat: int = 1) -> Env:
    """Batched env for evaluation: like training_env without auto-reset (mask steps after the first done)."""
    return Vmap(_episodic(env, episode_length, action_repeat), num_envs)
