"""Pieces every offline agent shares: the offline-loop config keys, range checks, optimizer state and target nets."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.types import EnvSpec, Params


def require(ok: bool, key: str, requirement: str, value: Any) -> None:
    """Raise a ValueError naming the config `key` when `ok` is false."""
    if not ok:
        raise ValueError(f"config key '{key}' must be {requirement}, got {value!r}")


def check_positive(config: Any, *keys: str) -> None:
    """Every named numeric field of `config` must be finite and > 0."""
    for key in keys:
        value = getattr(config, key)
        require(math.isfinite(value) and value > 0, key, "> 0", value)


def check_unit_interval(config: Any, key: str, low_open: bool = False, high_open: bool = False) -> None:
    """The named field must lie in [0, 1], with either end excluded when asked."""
    value = getattr(config, key)
    above = value > 0 if low_open else value >= 0
    below = value < 1 if high_open else value <= 1
    interval = f"in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    require(above and below, key, interval, value)


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """The keys the offline loop reads; every offline agent's Config extends this."""

    batch_size: int = 256  # transitions sampled from the dataset per gradient step
    num_updates: int = 1_000_000  # total gradient steps (also the length of learning-rate schedules)
    eval_every: int = 5_000  # gradient steps between evaluations
    eval_episodes: int = 10  # episodes per evaluation
    seed: int = 0  # seed of the run's root key
    hidden_sizes: tuple[int, ...] = (256, 256)  # hidden layer widths of every network

    def __post_init__(self) -> None:
        check_positive(self, "batch_size", "num_updates", "eval_every", "eval_episodes")
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(
            len(self.hidden_sizes) > 0 and all(size > 0 for size in self.hidden_sizes),
            "hidden_sizes",
            "a non-empty list of positive layer widths",
            self.hidden_sizes,
        )


def require_continuous(spec: EnvSpec, agent: str) -> None:
    """Offline agents model continuous actions in [-1, 1] only."""
    if spec.discrete:
        raise ValueError(
            f"{agent}: environment '{spec.name}' has discrete actions; the offline agents support continuous "
            "actions for now (use an environment with a continuous action space)"
        )


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
