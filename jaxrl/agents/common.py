"""Pieces every offline agent shares: the offline config keys, input normalization, optimizer state and target
nets."""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.data.statistics import DatasetStatistics
from jaxrl.loop_config import OfflineLoop, ReplayLoop, check_widths, require
from jaxrl.networks import check_precision
from jaxrl.safety.lagrangian import CostConstraint
from jaxrl.types import EnvSpec, Params, Transition


@dataclasses.dataclass(frozen=True)
class AgentKeys:
    """The static keys every offline agent shares, whichever loop trains it: offline (`OfflineConfig`) or the
    replay loop that fine-tunes it online (`FinetuneConfig`)."""

    hidden_sizes: tuple[int, ...] = (256, 256)  # hidden layer widths of every network
    # Standardize observations by the dataset's mean and std (+ OBS_STD_EPSILON), as CORL and unifloral offer.
    normalize_observations: bool = False
    # Multiply rewards by episode_length / (max - min episode return of the dataset): IQL's locomotion setting
    # (1000 / range on D4RL's 1000-step tasks), under which its fixed inverse temperature was tuned.
    normalize_rewards: bool = False
    precision: str = "fp32"  # fp32, or bf16: bfloat16 matmuls and activations, float32 parameters and losses

    # The keys a fine-tuning run must keep from its offline run: they shape the networks and what they see.
    STRUCTURE = ("hidden_sizes", "normalize_observations", "normalize_rewards", "precision")

    def __post_init__(self) -> None:
        if hasattr(super(), "__post_init__"):
            super().__post_init__()
        check_precision(self.precision)
        check_widths(self, "hidden_sizes")


@dataclasses.dataclass(frozen=True)
class OfflineConfig(AgentKeys, OfflineLoop):
    """The offline loop's keys and the static keys every offline agent shares; each agent's Config extends this
    and its own `Hyperparams`."""


@dataclasses.dataclass(frozen=True)
class CostPenalty:
    """The offline agents' `cost_penalty` key."""

    # Train on reward - cost_penalty x cost: a fixed Lagrange multiplier on the logged cost, so an offline agent
    # learns to keep unsafe actions rare (recsys: unsafe recommendations). 0 leaves the logged reward as it is.
    cost_penalty: float = 0.0

    def __post_init__(self) -> None:
        if hasattr(super(), "__post_init__"):
            super().__post_init__()
        require(math.isfinite(self.cost_penalty) and self.cost_penalty >= 0, "cost_penalty", "finite and >= 0",
                self.cost_penalty)


@dataclasses.dataclass(frozen=True)
class OfflineAgentConfig(CostPenalty, OfflineConfig):
    """What BC, IQL and CQL's offline Configs extend: the offline loop's keys, the shared static keys and
    `cost_penalty`."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(AgentKeys, CostConstraint, ReplayLoop):
    """An offline agent continued online: the replay loop's keys (with the offline dataset mixed in, half of
    every batch by default, as RLPD and Cal-QL sample) and the agent's static keys, which `jaxrl finetune` takes
    from the offline run. Each fine-tunable agent's FinetuneConfig extends this and its own `Hyperparams`."""

    offline_fraction: float = 0.5
    learning_starts: int = 0  # the pretrained policy acts from the first step; updates start at once


def require_continuous(spec: EnvSpec, agent: str, supported: str = "BC, IQL and CQL offline") -> None:
    """For the agents and uses that model continuous actions in [-1, 1] only."""
    if spec.discrete:
        raise ValueError(
            f"{agent}: environment '{spec.name}' has discrete actions, which {agent} does not support "
            f"(discrete actions: {supported}; PPO online)"
        )


def example_action(spec: EnvSpec, batch: int = 1) -> jax.Array:
    """Zero actions [batch, action_size] (continuous) or [batch] int32 (discrete), to initialize networks."""
    return jnp.zeros((batch,), jnp.int32) if spec.discrete else jnp.zeros((batch, spec.action_size), jnp.float32)


OBS_STD_EPSILON = 1e-3  # added to the dataset's observation std (CORL's value): constant features stay finite


class InputNormalizer(NamedTuple):
    """What an offline agent does to its inputs: standardize observations, scale rewards.

    Part of the agent state, so it is checkpointed with the networks, and a restored agent (evaluation,
    fine-tuning) sees observations as it was trained to. Identity (mean 0, std 1, scale 1) when the config
    normalizes nothing, which changes no value.
    """

    obs_mean: jax.Array  # [obs_size]
    obs_std: jax.Array  # [obs_size]
    reward_scale: jax.Array  # []

    def observations(self, obs: jax.Array) -> jax.Array:
        return (obs - self.obs_mean) / self.obs_std

    def transitions(self, batch: Transition) -> Transition:
        """A sampled batch as the agent learns from it (returns-to-go, where it has them, scaled as rewards)."""
        scaled = {"mc_return": batch.mc_return * self.reward_scale} if hasattr(batch, "mc_return") else {}
        return batch._replace(obs=self.observations(batch.obs), next_obs=self.observations(batch.next_obs),
                              reward=batch.reward * self.reward_scale, **scaled)


def make_normalizer(config: OfflineConfig, spec: EnvSpec, statistics: DatasetStatistics | None) -> InputNormalizer:
    """The normalizer `config` asks for, from the dataset's `statistics` (None: only an identity is possible)."""
    mean, std = np.zeros(spec.obs_size, np.float32), np.ones(spec.obs_size, np.float32)
    scale = 1.0
    wanted = [key for key in ("normalize_observations", "normalize_rewards") if getattr(config, key)]
    if wanted and statistics is None:
        raise ValueError(f"config key(s) {', '.join(wanted)} need the dataset's statistics; none were given")
    if config.normalize_observations:
        mean, std = statistics.obs_mean, statistics.obs_std + OBS_STD_EPSILON
    if config.normalize_rewards:
        spread = statistics.max_episode_return - statistics.min_episode_return
        require(spread > 0, "normalize_rewards", "used on a dataset whose episode returns differ (max > min)",
                f"all episodes return {statistics.max_episode_return}")
        scale = spec.episode_length / spread
    return InputNormalizer(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32),
                           jnp.asarray(scale, jnp.float32))


class TrainState(NamedTuple):
    """Parameters of one network and the state of its optimizer (the optimizer itself lives in the learner)."""

    params: Params
    opt_state: optax.OptState


def init_train_state(params: Params, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(params, optimizer.init(params))


def apply_gradients(state: TrainState, grads: Params, optimizer: optax.GradientTransformation) -> TrainState:
    """One optimizer step on one network."""
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state)


def polyak_update(target_params: Params, online_params: Params, rate: float) -> Params:
    """Move target networks a fraction `rate` towards the online ones: θ' ← rate·θ + (1 - rate)·θ'."""
    return optax.incremental_update(online_params, target_params, rate)


def scalar_param(value: float) -> jax.Array:
    """A learned scalar (log-temperature, log-multiplier) as a float32 array."""
    return jnp.asarray(value, dtype=jnp.float32)
