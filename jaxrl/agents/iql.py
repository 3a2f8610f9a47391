"""Implicit Q-Learning (Kostrikov, Nair and Levine, 2021, arXiv:2110.06169).

IQL never queries Q on actions outside the dataset: V is fitted as an upper expectile of Q over the
dataset's actions (Eq. 5), Q is regressed on r + γV(s') (Eq. 6), and the policy is extracted by
advantage-weighted regression (Eq. 7). Hyperparameters follow the paper's locomotion settings and CORL.

Discrete actions (the env spec decides): the critics output Q(s, ·) for every action (one head per action) and
are read at the dataset's action, V is the same expectile of them, and the policy is a categorical one fitted by
the same advantage-weighted log-likelihood; it acts by its most likely action when deterministic.
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
from jaxrl.loop_config import check_positive, check_unit_interval, require
from jaxrl.networks import CategoricalHead, GaussianHead, QEnsemble, ValueNet, categorical, compute_dtype, gaussian
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition


@hyperparams
class Hyperparams:
    """IQL's numeric hyperparameters (defaults: the paper's MuJoCo locomotion settings), traced in the agent state."""

    gamma: float = 0.99  # discount factor
    expectile: float = 0.7  # τ of the expectile regression of V on Q; 0.5 is the mean, → 1 the max
    inverse_temperature: float = 3.0  # β of the advantage weights exp(β(Q - V)); larger is greedier
    max_advantage_weight: float = 100.0  # advantage weights are clipped here for stability
    target_update_rate: float = 0.005  # polyak rate of the target critics
    value_lr: float = 3e-4  # Adam learning rate of V
    critic_lr: float = 3e-4  # Adam learning rate of the twin Q networks
    policy_lr: float = 3e-4  # initial Adam learning rate of the policy, cosine-decayed to 0 over num_updates


def check_hyperparams(config: Hyperparams) -> None:
    check_unit_interval(config, "gamma")
    check_unit_interval(config, "expectile", low_open=True, high_open=True)
    check_unit_interval(config, "target_update_rate", low_open=True)
    check_positive(config, "max_advantage_weight", "value_lr", "critic_lr", "policy_lr")
    require(config.inverse_temperature >= 0, "inverse_temperature", ">= 0", config.inverse_temperature)


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, common.OfflineAgentConfig):
    """IQL: the offline loop's keys, the shared offline keys and IQL's hyperparameters."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_hyperparams(self)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Hyperparams, common.FinetuneConfig):
    """IQL continued online on the replay loop (as CORL fine-tunes it): the same losses on batches that mix the
    dataset and the buffer. The policy's learning rate stays at `policy_lr` (the offline run annealed it to 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_hyperparams(self)


class Networks(NamedTuple):
    value: ValueNet
    critic: QEnsemble  # twin Q networks: outputs [2, ...]
    policy: GaussianHead | CategoricalHead  # Gaussian with tanh'd mean and a state-independent log-std; or logits


class AgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    normalizer: common.InputNormalizer  # the dataset's statistics the agent sees its inputs through
    value: common.TrainState
    critic: common.TrainState
    target_critic_params: Params
    policy: common.TrainState
    step: jax.Array  # [] int32, gradient steps taken


def make_networks(config: Config, spec: EnvSpec) -> Networks:
    dtype = compute_dtype(config.precision)
    if spec.discrete:
        policy = CategoricalHead(config.hidden_sizes, spec.action_size, dtype=dtype)
    else:
        policy = GaussianHead(config.hidden_sizes, spec.action_size, state_dependent_std=False, dtype=dtype)
    return Networks(
        value=ValueNet(config.hidden_sizes, dtype=dtype),
        critic=QEnsemble(config.hidden_sizes, num_critics=2, dtype=dtype,
                         num_actions=spec.action_size if spec.discrete else None),
        policy=policy,
    )


def expectile_loss(diff: jax.Array, expectile: jax.Array) -> jax.Array:
    """The expectile loss L₂^τ(u) = |τ - 1(u < 0)| u² of Sec. 4.1, elementwise."""
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff**2


def policy_distribution(nets: Networks, policy_params: Params, obs: jax.Array):
    """N(tanh(μ(s)), σ): the mean is squashed into [-1, 1], the log-std is a learned vector; or a categorical."""
    if isinstance(nets.policy, CategoricalHead):
        return categorical(nets.policy.apply(policy_params, obs))
    mean, log_std = nets.policy.apply(policy_params, obs)
    return gaussian(jnp.tanh(mean), log_std)


def value_loss(
    value_params: Params, target_q: jax.Array, batch: Transition, key: PRNGKey, *, nets: Networks, hp: Hyperparams
) -> tuple[jax.Array, Metrics]:
    """L_V(ψ) = E_(s,a)~D [L₂^τ(Q_θ̂(s, a) - V_ψ(s))] (Eq. 5); `target_q` [B] is min over the target critics."""
    del key  # deterministic; the key keeps the loss signature shared by all agents
    value = nets.value.apply(value_params, batch.obs)  # [B]
    loss = expectile_loss(target_q - value, hp.expectile).mean()
    return loss, {"value_loss": loss, "value_mean": value.mean()}


def critic_loss(
    critic_params: Params, next_value: jax.Array, batch: Transition, key: PRNGKey, *, nets: Networks, hp: Hyperparams
) -> tuple[jax.Array, Metrics]:
    """L_Q(θ) = E_(s,a,s')~D [(r + γ V_ψ(s') - Q_θ(s, a))²] (Eq. 6), summed over the twin critics."""
    del key
    q_targets = batch.reward + hp.gamma * batch.discount * next_value  # [B]
    q = nets.critic.apply(critic_params, batch.obs, batch.action)  # [2, B]
    loss = ((q - q_targets) ** 2).mean(axis=1).sum()
    return loss, {"critic_loss": loss, "q_mean": q.mean()}


def advantage_weights(advantage: jax.Array, inverse_temperature, max_weight) -> jax.Array:
    """exp(β(Q - V)) of Eq. 7, clipped at `max_weight` for stability."""
    return jnp.minimum(jnp.exp(inverse_temperature * advantage), max_weight)


def policy_loss(
    policy_params: Params, advantage: jax.Array, batch: Transition, key: PRNGKey, *, nets: Networks, hp: Hyperparams
) -> tuple[jax.Array, Metrics]:
    """L_π(φ) = -E_(s,a)~D [exp(β(Q_θ̂(s, a) - V_ψ(s))) log π_φ(a|s)] (Eq. 7), weights clipped; `advantage` [B]."""
    del key
    weights = advantage_weights(advantage, hp.inverse_temperature, hp.max_advantage_weight)  # [B]
    log_prob = policy_distribution(nets, policy_params, batch.obs).log_prob(batch.action)  # [B]
    loss = -(weights * log_prob).mean()
    return loss, {"policy_loss": loss, "advantage_weight_mean": weights.mean(), "data_log_prob": log_prob.mean()}


def policy_lr_schedule(config: Config | FinetuneConfig, learning_rate: jax.Array) -> optax.Schedule:
    """The paper (and CORL) anneal only the policy's learning rate: a cosine to 0 over the run's `num_updates`,
    exactly the updates the offline loop runs. Fine-tuning holds it constant, still as a schedule, so the optimizer
    state keeps the offline run's shape (and its moments carry over)."""
    if isinstance(config, FinetuneConfig):
        return lambda count: learning_rate
    return optax.cosine_decay_schedule(learning_rate, config.num_updates)


def policy_optimizer(config: Config | FinetuneConfig, learning_rate: jax.Array) -> optax.GradientTransformation:
    return optax.adam(policy_lr_schedule(config, learning_rate))


def make_learner(config: Config | FinetuneConfig, spec: EnvSpec,
                 statistics: DatasetStatistics | None = None) -> Learner:
    """IQL as the learner: init(key, hyperparams), act(state, obs, key, deterministic), update(state, batch, key).

    `statistics` of the dataset are needed when the config normalizes observations or rewards."""
    nets = make_networks(config, spec)
    normalizer = common.make_normalizer(config, spec, statistics)

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        value_key, critic_key, policy_key = jax.random.split(key, 3)
        obs = jnp.zeros((1, spec.obs_size))
        critic_params = nets.critic.init(critic_key, obs, common.example_action(spec))
        return AgentState(
            hyperparams=hp,
            normalizer=normalizer,
            value=common.init_train_state(nets.value.init(value_key, obs), optax.adam(hp.value_lr)),
            critic=common.init_train_state(critic_params, optax.adam(hp.critic_lr)),
            target_critic_params=critic_params,
            policy=common.init_train_state(nets.policy.init(policy_key, obs), policy_optimizer(config, hp.policy_lr)),
            step=jnp.zeros((), jnp.int32),
        )

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        dist = policy_distribution(nets, state.policy.params, state.normalizer.observations(obs))
        action = dist.mode() if deterministic else dist.sample(seed=key)
        return (action.astype(jnp.int32) if spec.discrete else jnp.clip(action, -1.0, 1.0)), {}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        hp = state.hyperparams
        losses = {"nets": nets, "hp": hp}
        batch = state.normalizer.transitions(batch)
        # All three losses read the pre-update networks, so they are computed side by side.
        target_q = nets.critic.apply(state.target_critic_params, batch.obs, batch.action).min(axis=0)  # [B]
        next_value = nets.value.apply(state.value.params, batch.next_obs)  # [B]
        value = nets.value.apply(state.value.params, batch.obs)  # [B] shared with the value loss by XLA's CSE
        value_key, critic_key, policy_key = jax.random.split(key, 3)
        value_grads, value_metrics = jax.grad(value_loss, has_aux=True)(
            state.value.params, target_q, batch, value_key, **losses
        )
        critic_grads, critic_metrics = jax.grad(critic_loss, has_aux=True)(
            state.critic.params, next_value, batch, critic_key, **losses
        )
        policy_grads, policy_metrics = jax.grad(policy_loss, has_aux=True)(
            state.policy.params, target_q - value, batch, policy_key, **losses
        )
        critic = common.apply_gradients(state.critic, critic_grads, optax.adam(hp.critic_lr))
        new_state = AgentState(
            hyperparams=hp,
            normalizer=state.normalizer,
            value=common.apply_gradients(state.value, value_grads, optax.adam(hp.value_lr)),
            critic=critic,
            target_critic_params=common.polyak_update(state.target_critic_params, critic.params,
                                                      hp.target_update_rate),
            policy=common.apply_gradients(state.policy, policy_grads, policy_optimizer(config, hp.policy_lr)),
            step=state.step + 1,
        )
        metrics = {**value_metrics, **critic_metrics, **policy_metrics, "advantage_mean": (target_q - value).mean()}
        return new_state, metrics

    def log_prob(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        """The Gaussian's density: `act` clips its samples to [-1, 1], which changes the density only at the bounds,
        where logged actions of a squashed behavior policy never are."""
        dist = policy_distribution(nets, state.policy.params, state.normalizer.observations(obs))
        return dist.log_prob(action)

    return Learner(init=init, act=act, update=update, hyperparams=traced(Hyperparams, config), log_prob=log_prob)
