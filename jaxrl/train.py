"""The agent-agnostic loops: one rollout, one online loop, one offline loop.

A loop here is a `Trainer`: `init(key)` builds the state of one seed and `run_chunk(state, data)` advances
it by a fixed number of iterations inside one `lax.scan`. Both are pure, so the host runner vmaps them
over seeds and jits a whole chunk as the unit of work. Only these functions step environments or sample
datasets; agents see batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.evaluate import make_evaluator
from jaxrl.types import ActInfo, AgentState, Learner, Metrics, PRNGKey, Trajectory


class RunState(NamedTuple):
    agent: AgentState
    env_state: Any  # the batched environment state (online), None offline
    key: PRNGKey


class Trainer(NamedTuple):
    init: Callable[[PRNGKey], RunState]
    run_chunk: Callable[[RunState, Any], tuple[RunState, Metrics]]  # second argument: shared data (dataset) or None
    evaluate: Callable[[AgentState, PRNGKey], Metrics]
    chunk_size: int  # progress units (env steps online, updates offline) per chunk
    num_chunks: int
    unit: str  # "env_steps" or "updates"


Policy = Callable[[jax.Array, PRNGKey], tuple[jax.Array, ActInfo]]  # (obs [B, ...], key) -> (action, act_info)


class Steps(NamedTuple):
    """What `run_policy` records, time-major [T, B, ...]."""

    obs: jax.Array  # observation the action was taken in
    action: jax.Array
    act_info: ActInfo
    reward: jax.Array
    cost: jax.Array
    done: jax.Array  # the episode ended on this step (terminated or truncated)
    truncation: jax.Array  # ... by the time limit
    final_obs: jax.Array  # observation the step produced, before any auto-reset
    episode_return: jax.Array  # totals of the episode, valid where done
    episode_cost: jax.Array

    @property
    def discount(self) -> jax.Array:
        """0 where the episode terminated (not where it was truncated), else 1."""
        return 1.0 - self.done * (1.0 - self.truncation)


def run_policy(policy: Policy, env: Any, env_state: Any, key: PRNGKey, length: int) -> tuple[Any, Steps]:
    """Step a batched, auto-resetting env `length` times with `policy`; the one loop that steps environments."""

    def step(env_state, step_key):
        action, act_info = policy(env_state.obs, step_key)
        next_state = env.step(env_state, action)
        info = next_state.info
        record = Steps(env_state.obs, action, act_info, next_state.reward, info["cost"], next_state.done,
                       info["truncation"], info["final_obs"], info["episode_return"], info["episode_cost"])
        return next_state, record

    return jax.lax.scan(step, env_state, jax.random.split(key, length))


def rollout(learner: Learner, env: Any, agent_state: AgentState, env_state: Any, key: PRNGKey, length: int):
    """Run the stochastic policy for `length` steps: the final env state, the `Trajectory` and the totals
    of the episodes that ended during it."""
    policy = lambda obs, step_key: learner.act(agent_state, obs, step_key, False)
    env_state, steps = run_policy(policy, env, env_state, key, length)
    trajectory = Trajectory(steps.obs, steps.action, steps.reward, steps.cost, steps.discount, steps.truncation,
                            steps.act_info, env_state.obs)
    finished = {"episodes": steps.done.sum(), "return_sum": (steps.done * steps.episode_return).sum(),
                "cost_sum": (steps.done * steps.episode_cost).sum()}
    return env_state, trajectory, finished


def _episode_metrics(finished: dict[str, jax.Array]) -> Metrics:
    count = finished["episodes"]
    safe = jnp.maximum(count, 1.0)
    return {"train/episodes": count,
            "train/episode_return": jnp.where(count > 0, finished["return_sum"] / safe, jnp.nan),
            "train/episode_cost": jnp.where(count > 0, finished["cost_sum"] / safe, jnp.nan)}


def make_online_trainer(learner: Learner, train_env: Any, eval_env: Any, config: Any, max_eval_steps: int) -> Trainer:
    """Rollout + update, `iterations_per_chunk` times per chunk; one chunk per `config.eval_every` env steps."""
    steps_per_iteration = config.num_envs * config.unroll_length * config.action_repeat
    iterations_per_chunk = max(1, round(config.eval_every / steps_per_iteration))
    num_chunks = max(1, -(-config.total_steps // (steps_per_iteration * iterations_per_chunk)))

    def init(key):
        agent_key, env_key, key = jax.random.split(key, 3)
        return RunState(learner.init(agent_key), train_env.reset(env_key), key)

    def iteration(state: RunState, _):
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        env_state, trajectory, finished = rollout(learner, train_env, state.agent, state.env_state, rollout_key,
                                                  config.unroll_length)
        agent, metrics = learner.update(state.agent, trajectory, update_key)
        return RunState(agent, env_state, key), (metrics, finished)

    def run_chunk(state: RunState, _data=None):
        state, (metrics, finished) = jax.lax.scan(iteration, state, None, iterations_per_chunk)
        metrics = jax.tree.map(jnp.mean, metrics)
        return state, {**metrics, **_episode_metrics(jax.tree.map(jnp.sum, finished))}

    evaluate = make_evaluator(learner, eval_env, max_eval_steps)
    return Trainer(init, run_chunk, evaluate, steps_per_iteration * iterations_per_chunk, num_chunks, "env_steps")


def make_offline_trainer(learner: Learner, eval_env: Any, config: Any, max_eval_steps: int) -> Trainer:
    """Sample + update, `config.eval_every` updates per chunk; the dataset is the chunk's shared argument."""
    num_chunks = max(1, -(-config.num_updates // config.eval_every))

    def init(key):
        agent_key, key = jax.random.split(key)
        return RunState(learner.init(agent_key), None, key)

    from jaxrl.data.dataset import sample

    def run_chunk(state: RunState, dataset):
        def one_update(carry, _):
            agent, key = carry
            key, sample_key, update_key = jax.random.split(key, 3)
            agent, metrics = learner.update(agent, sample(dataset, sample_key, config.batch_size), update_key)
            return (agent, key), metrics

        (agent, key), metrics = jax.lax.scan(one_update, (state.agent, state.key), None, config.eval_every)
        return RunState(agent, None, key), jax.tree.map(jnp.mean, metrics)

    evaluate = make_evaluator(learner, eval_env, max_eval_steps)
    return Trainer(init, run_chunk, evaluate, config.eval_every, num_chunks, "updates")
