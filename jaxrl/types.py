"""The shared vocabulary: transitions, trajectories, environment specs and the learner triple."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PRNGKey = jax.Array
Params = Any
AgentState = Any  # each agent defines its own NamedTuple / flax.struct.dataclass
Metrics = dict[str, jax.Array]
ActInfo = dict[str, jax.Array]  # per-step extras the policy reports (log_prob, raw_action, ...)


class Transition(NamedTuple):
    """One logged step; every array has a leading batch axis when stored or sampled."""

    obs: jax.Array  # [N, obs_size]
    action: jax.Array  # [N, action_size] (float) or [N] (int, discrete)
    reward: jax.Array  # [N]
    cost: jax.Array  # [N] safety cost of the step (0 where the env has none)
    discount: jax.Array  # [N] 0 where the episode terminated (not truncated), else 1
    next_obs: jax.Array  # [N, obs_size]
    behavior_log_prob: jax.Array  # [N] log-prob of action under the logging policy (nan if unknown)
    episode_id: jax.Array  # [N] int32, consecutive rows of one episode share it


class MCTransition(NamedTuple):
    """A Transition with the logged episode's discounted return-to-go from the step (Cal-QL's lower bound): what the
    loops sample for an agent that asks for it (`agents.MC_RETURNS`). Computed when the dataset loads
    (jaxrl/data/returns.py), never stored; rows added online, whose episodes have not ended, carry -inf (no bound).
    Its first fields are Transition's, so every loss reads it as one."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    cost: jax.Array
    discount: jax.Array
    next_obs: jax.Array
    behavior_log_prob: jax.Array
    episode_id: jax.Array
    mc_return: jax.Array  # [N] sum_k γ^k r_{t+k} to the episode's end (see returns_to_go for time limits)


class Trajectory(NamedTuple):
    """An on-policy rollout of T steps from B environments, time-major."""

    obs: jax.Array  # [T, B, obs_size] observation the action was taken in
    action: jax.Array  # [T, B, ...] action sent to the environment
    reward: jax.Array  # [T, B]
    cost: jax.Array  # [T, B]
    discount: jax.Array  # [T, B] 0 on termination
    truncation: jax.Array  # [T, B] 1 where the episode hit its time limit
    act_info: ActInfo  # [T, B, ...] what `act` reported (log_prob, raw_action, ...)
    last_obs: jax.Array  # [B, obs_size] observation after the last step, for bootstrapping
    episode_cost: jax.Array  # [T, B] the episode's total cost so far, its whole cost where it ended on the step

    @property
    def done(self) -> jax.Array:
        """[T, B] 1 where the episode ended on the step (terminated or truncated)."""
        return jnp.maximum(1.0 - self.discount, self.truncation)


class EnvSpec(NamedTuple):
    """Static facts about an environment that agents build their networks from."""

    name: str
    obs_size: int
    action_size: int  # number of action dimensions (continuous) or choices (discrete)
    discrete: bool
    episode_length: int
    # Continuous actions always live in [-1, 1]^action_size: environments rescale to their own bounds.


class Learner(NamedTuple):
    """Every agent is this triple of pure, jittable functions over explicit state, and its hyperparameters.

    `init(key, hyperparams)` puts the hyperparameters (traced scalars, see jaxrl/hyperparams.py) into the state,
    where `update` reads them: runs of other values are the same program on other data. `hyperparams` holds the
    config's values, the ones `init` gets unless a sweep gives others.

    `log_prob(state, obs, action)` is the density of the stochastic policy (`act` with deterministic=False) at
    logged actions, [B], what importance sampling weighs by (jaxrl/ope); None for a deterministic policy (BC).
    """

    init: Callable[[PRNGKey, Any], AgentState]
    act: Callable[[AgentState, jax.Array, PRNGKey, bool], tuple[jax.Array, ActInfo]]
    update: Callable[[AgentState, Any, PRNGKey], tuple[AgentState, Metrics]]
    hyperparams: Any = None  # the agent's Hyperparams pytree of the config's values
    log_prob: Callable[[AgentState, jax.Array, jax.Array], jax.Array] | None = None
