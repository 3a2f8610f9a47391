"""Policy evaluation on vectorized environments: returns, costs and lengths of whole episodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.types import AgentState, Learner, Metrics, PRNGKey


class EpisodeTotals(NamedTuple):
    returns: jax.Array  # [E]
    costs: jax.Array  # [E]
    lengths: jax.Array  # [E]
    discounted_returns: jax.Array  # [E] sum_t γ^t r_t
    discounted_costs: jax.Array  # [E] sum_t γ^t c_t


def make_episode_runner(learner: Learner, eval_env: Any, max_steps: int, deterministic: bool = True
                        ) -> Callable[[AgentState, PRNGKey, jax.Array], EpisodeTotals]:
    """`run(agent_state, key, gamma) -> EpisodeTotals`: one episode in each of eval_env's parallel envs.

    The loop stops as soon as every episode has ended (a policy that falls over in 20 steps costs 20 steps, not
    the full time limit), and after `max_steps` at most. `deterministic` picks the policy: `act`'s mode (what
    `jaxrl evaluate` reports) or its samples (the stochastic policy off-policy evaluation estimates).
    """

    def run(agent_state: AgentState, key: PRNGKey, gamma: jax.Array) -> EpisodeTotals:
        reset_key, act_key = jax.random.split(key)
        env_state = eval_env.reset(reset_key)
        zeros = jnp.zeros_like(env_state.reward)
        totals = EpisodeTotals(zeros, zeros, zeros, zeros, zeros)

        def running(carry):
            _, _, active, t = carry
            return jnp.logical_and(active.any(), t < max_steps)

        def step(carry):
            env_state, totals, active, t = carry
            action, _ = learner.act(agent_state, env_state.obs, jax.random.fold_in(act_key, t), deterministic)
            env_state = eval_env.step(env_state, action)
            weight = active * gamma**t
            totals = EpisodeTotals(totals.returns + active * env_state.reward,
                                   totals.costs + active * env_state.info["cost"],
                                   totals.lengths + active,
                                   totals.discounted_returns + weight * env_state.reward,
                                   totals.discounted_costs + weight * env_state.info["cost"])
            return env_state, totals, active * (1.0 - env_state.done), t + 1

        carry = (env_state, totals, jnp.ones_like(zeros), jnp.zeros((), jnp.int32))
        return jax.lax.while_loop(running, step, carry)[1]

    return run


def make_evaluator(learner: Learner, eval_env: Any, max_steps: int) -> Callable[[AgentState, PRNGKey], Metrics]:
    """`evaluate(agent_state, key) -> metrics` of the deterministic policy: one episode in each of eval_env's
    parallel envs (`make_episode_runner`), averaged."""
    run = make_episode_runner(learner, eval_env, max_steps)

    def evaluate(agent_state: AgentState, key: PRNGKey) -> Metrics:
        totals = run(agent_state, key, jnp.ones(()))
        return {"eval/return": totals.returns.mean(), "eval/return_std": totals.returns.std(),
                "eval/cost": totals.costs.mean(), "eval/length": totals.lengths.mean()}

    return evaluate
