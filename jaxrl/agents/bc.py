"""Behavior cloning: regress a deterministic tanh policy onto the dataset's actions.

The mean-squared-error form (as CORL's BC baseline, and the BC term of TD3+BC, Fujimoto and Gu 2021) is a
strong offline baseline and the reference every value-based agent should beat.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common
from jaxrl.data.statistics import DatasetStatistics
from jaxrl.networks import MLP
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition


@dataclasses.dataclass(frozen=True)
class Config(common.OfflineConfig):
    """BC hyperparameters (defaults: CORL's BC)."""

    learning_rate: float = 3e-4  # Adam learning rate of the policy

    def __post_init__(self) -> None:
        super().__post_init__()
        common.check_positive(self, "learning_rate")


class AgentState(NamedTuple):
    normalizer: common.InputNormalizer  # the dataset's statistics the agent sees its inputs through
    policy: common.TrainState
    step: jax.Array  # [] int32, gradient steps taken


def make_policy(config: Config, spec: EnvSpec) -> MLP:
    """π(s) = tanh(MLP(s)); the small output init starts every action near 0."""
    return MLP(config.hidden_sizes, spec.action_size, output_scale=0.01)


def policy_action(policy: MLP, policy_params: Params, obs: jax.Array) -> jax.Array:
    return jnp.tanh(policy.apply(policy_params, obs))


def bc_loss(policy_params: Params, batch: Transition, key: PRNGKey, *, policy: MLP) -> tuple[jax.Array, Metrics]:
    """E_(s,a)~D [(π(s) - a)²], averaged over the batch and the action dimensions (as CORL)."""
    del key  # deterministic; the key keeps the loss signature shared by all agents
    error = policy_action(policy, policy_params, batch.obs) - batch.action  # [B, A]
    loss = jnp.mean(error**2)
    return loss, {"bc_loss": loss}


def make_learner(config: Config, spec: EnvSpec, statistics: DatasetStatistics | None = None) -> Learner:
    """BC as the learner triple: init(key), act(state, obs, key, deterministic), update(state, batch, key).

    `statistics` of the dataset are needed when the config normalizes observations or rewards."""
    common.require_continuous(spec, "BC")
    policy = make_policy(config, spec)
    optimizer = optax.adam(config.learning_rate)
    normalizer = common.make_normalizer(config, spec, statistics)

    def init(key: PRNGKey) -> AgentState:
        params = policy.init(key, jnp.zeros((1, spec.obs_size)))
        return AgentState(normalizer=normalizer, policy=common.init_train_state(params, optimizer),
                          step=jnp.zeros((), jnp.int32))

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        del key, deterministic  # the policy is deterministic
        return policy_action(policy, state.policy.params, state.normalizer.observations(obs)), {}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        batch = state.normalizer.transitions(batch)
        grads, metrics = jax.grad(bc_loss, has_aux=True)(state.policy.params, batch, key, policy=policy)
        new_state = AgentState(normalizer=state.normalizer,
                               policy=common.apply_gradients(state.policy, grads, optimizer), step=state.step + 1)
        return new_state, metrics

    return Learner(init=init, act=act, update=update)
