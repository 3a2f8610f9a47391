"""Behavior cloning: regress a deterministic tanh policy onto the dataset's actions, or, for discrete actions,
fit a categorical policy by cross-entropy.

The mean-squared-error form (as CORL's BC baseline, and the BC term of TD3+BC, Fujimoto and Gu 2021) is a
strong offline baseline and the reference every value-based agent should beat. Discrete BC is the maximum
likelihood fit of the logging policy (d3rlpy's DiscreteBC); it acts by the most likely action when
deterministic, by a sample otherwise, and gives its log-probs (for off-policy evaluation).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common
from jaxrl.data.statistics import DatasetStatistics
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import check_positive
from jaxrl.networks import MLP, CategoricalHead, categorical, categorical_action, compute_dtype
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition


@hyperparams
class Hyperparams:
    """BC's numeric hyperparameters (defaults: CORL's BC), traced in the agent state."""

    learning_rate: float = 3e-4  # Adam learning rate of the policy


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, common.OfflineAgentConfig):
    """BC: the offline loop's keys, the shared offline keys and BC's hyperparameters."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "learning_rate")


class AgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    normalizer: common.InputNormalizer  # the dataset's statistics the agent sees its inputs through
    policy: common.TrainState
    step: jax.Array  # [] int32, gradient steps taken


def make_policy(config: Config, spec: EnvSpec) -> MLP | CategoricalHead:
    """π(s) = tanh(MLP(s)), whose small output init starts every action near 0; or the logits of a categorical
    policy over discrete actions (near-uniform at init)."""
    dtype = compute_dtype(config.precision)
    if spec.discrete:
        return CategoricalHead(config.hidden_sizes, spec.action_size, dtype=dtype)
    return MLP(config.hidden_sizes, spec.action_size, output_scale=0.01, dtype=dtype)


def policy_action(policy: MLP, policy_params: Params, obs: jax.Array) -> jax.Array:
    return jnp.tanh(policy.apply(policy_params, obs))


def bc_loss(policy_params: Params, batch: Transition, key: PRNGKey, *,
            policy: MLP | CategoricalHead) -> tuple[jax.Array, Metrics]:
    """E_(s,a)~D [(π(s) - a)²], averaged over the batch and the action dimensions (as CORL); for discrete actions
    the cross-entropy E_(s,a)~D [-log π(a|s)]."""
    del key  # deterministic; the key keeps the loss signature shared by all agents
    if isinstance(policy, CategoricalHead):
        loss = -categorical(policy.apply(policy_params, batch.obs)).log_prob(batch.action).mean()
        return loss, {"bc_loss": loss}
    error = policy_action(policy, policy_params, batch.obs) - batch.action  # [B, A]
    loss = jnp.mean(error**2)
    return loss, {"bc_loss": loss}


def make_learner(config: Config, spec: EnvSpec, statistics: DatasetStatistics | None = None) -> Learner:
    """BC as the learner: init(key, hyperparams), act(state, obs, key, deterministic), update(state, batch, key).

    `statistics` of the dataset are needed when the config normalizes observations or rewards."""
    policy = make_policy(config, spec)
    normalizer = common.make_normalizer(config, spec, statistics)

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        params = policy.init(key, jnp.zeros((1, spec.obs_size)))
        return AgentState(hyperparams=hp, normalizer=normalizer,
                          policy=common.init_train_state(params, optax.adam(hp.learning_rate)),
                          step=jnp.zeros((), jnp.int32))

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        obs = state.normalizer.observations(obs)
        if spec.discrete:
            return categorical_action(policy.apply(state.policy.params, obs), key, deterministic), {}
        return policy_action(policy, state.policy.params, obs), {}  # deterministic: key and flag unused

    def log_prob(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        """log π(a|s) of the categorical policy (discrete actions only: the continuous policy is deterministic)."""
        return categorical(policy.apply(state.policy.params, state.normalizer.observations(obs))).log_prob(action)

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        batch = state.normalizer.transitions(batch)
        grads, metrics = jax.grad(bc_loss, has_aux=True)(state.policy.params, batch, key, policy=policy)
        optimizer = optax.adam(state.hyperparams.learning_rate)
        new_state = state._replace(policy=common.apply_gradients(state.policy, grads, optimizer), step=state.step + 1)
        return new_state, metrics

    return Learner(init=init, act=act, update=update, hyperparams=traced(Hyperparams, config),
                   log_prob=log_prob if spec.discrete else None)
