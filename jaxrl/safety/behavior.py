"""A behavior model: the logging policy's action density estimated from a dataset, a tanh-Gaussian (a categorical
over discrete actions) fitted by maximum likelihood (behavior cloning with a density). It scores how likely the
logged policy was to take an action, so a candidate policy's actions can be compared with the logged ones
(jaxrl/safety/shift.py).

It is a learner behind the shared interface, trained by the offline loop; `log_prob` is its density.
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
from jaxrl.networks import CategoricalHead, GaussianHead, categorical, categorical_action, squashed_log_prob
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition


@hyperparams
class Hyperparams:
    learning_rate: float = 3e-4  # Adam


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, common.OfflineConfig):
    """The behavior model: the offline loop's keys and its own."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    normalize_observations: bool = True
    num_updates: int = 10_000  # maximum-likelihood steps; the log-likelihood of our tasks' data levels off sooner
    eval_every: int = 10_000  # nothing to evaluate along the way: one chunk

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "learning_rate")


class AgentState(NamedTuple):
    hyperparams: Hyperparams
    normalizer: common.InputNormalizer
    policy: common.TrainState
    step: jax.Array  # [] int32


def make_behavior_model(config: Config, spec: EnvSpec, statistics: DatasetStatistics | None) -> Learner:
    """The learner whose `update` raises the log-likelihood of logged actions and whose `log_prob` reads it."""
    if spec.discrete:
        head = CategoricalHead(config.hidden_sizes, spec.action_size)
    else:
        head = GaussianHead(config.hidden_sizes, spec.action_size, state_dependent_std=True)
    normalizer = common.make_normalizer(config, spec, statistics)

    def log_prob_of(params: Params, state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        out = head.apply(params, state.normalizer.observations(obs))
        return categorical(out).log_prob(action) if spec.discrete else squashed_log_prob(*out, action)

    def loss(params: Params, state: AgentState, batch: Transition) -> tuple[jax.Array, Metrics]:
        """-E_D [log π_b(a|s)]: maximum likelihood of the logged actions."""
        value = -log_prob_of(params, state, batch.obs, batch.action).mean()
        return value, {"behavior_nll": value}

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        params = head.init(key, jnp.zeros((1, spec.obs_size)))
        return AgentState(hp, normalizer, common.init_train_state(params, optax.adam(hp.learning_rate)),
                          jnp.zeros((), jnp.int32))

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        if spec.discrete:
            logits = head.apply(state.policy.params, state.normalizer.observations(obs))
            return categorical_action(logits, key, deterministic), {}
        mean, log_std = head.apply(state.policy.params, state.normalizer.observations(obs))
        sample = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return jnp.tanh(sample), {}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        del key  # deterministic
        grads, metrics = jax.grad(loss, has_aux=True)(state.policy.params, state, batch)
        policy = common.apply_gradients(state.policy, grads, optax.adam(state.hyperparams.learning_rate))
        return state._replace(policy=policy, step=state.step + 1), metrics

    def log_prob(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        return log_prob_of(state.policy.params, state, obs, action)

    return Learner(init, act, update, traced(Hyperparams, config), log_prob)
