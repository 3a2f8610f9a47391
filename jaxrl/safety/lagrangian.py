"""A cost constraint by Lagrangian relaxation: maximize return subject to E[episode cost] <= budget.

The learner maximizes J_r - λ J_c while λ >= 0 climbs when the measured episode cost J_c is over the budget d
and falls when it is under: gradient ascent on λ (J_c - d), with Adam, λ clipped at 0 (Ray et al. 2019's
PPO-Lagrangian as OmniSafe implements it). Every constrained learner shares this multiplier, whichever loop
trains it.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.loop_config import require


class Multiplier(NamedTuple):
    value: jax.Array  # [] λ >= 0
    opt_state: optax.OptState
    measured_cost: jax.Array  # [] the last measured mean episode cost J_c (nan before any episode ended)


def multiplier_optimizer(learning_rate: jax.Array) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


def init_multiplier(initial_value: jax.Array, learning_rate: jax.Array) -> Multiplier:
    value = jnp.asarray(initial_value, jnp.float32)
    return Multiplier(value, multiplier_optimizer(learning_rate).init(value), jnp.asarray(jnp.nan, jnp.float32))


def update_multiplier(multiplier: Multiplier, episode_cost: jax.Array, episodes: jax.Array, budget: jax.Array,
                      learning_rate: jax.Array) -> Multiplier:
    """One ascent step on λ (J_c - d), J_c = `episode_cost` (the mean cost of the `episodes` that just ended).
    Without a finished episode there is no measurement, and λ stays where it is."""
    loss_grad = -(episode_cost - budget)  # d/dλ of the minimized loss -λ (J_c - d)
    updates, opt_state = multiplier_optimizer(learning_rate).update(loss_grad, multiplier.opt_state)
    stepped = Multiplier(jnp.maximum(multiplier.value + updates, 0.0), opt_state, episode_cost)
    return jax.tree.map(lambda new, old: jnp.where(episodes > 0, new, old), stepped, multiplier)


def penalized_advantages(reward_advantages: jax.Array, cost_advantages: jax.Array, multiplier: jax.Array):
    """(A_r - λ A_c) / (1 + λ): the advantage of the Lagrangian, rescaled so its size does not grow with λ
    (OmniSafe's `_compute_adv_surrogate`)."""
    return (reward_advantages - multiplier * cost_advantages) / (1.0 + multiplier)


def finished_episode_cost(episode_cost: jax.Array, done: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The mean total cost of the episodes that ended in a rollout ([T, B] running totals and end flags), and
    how many ended (0: the mean is nan)."""
    episodes = done.sum()
    mean = jnp.where(episodes > 0, (done * episode_cost).sum() / jnp.maximum(episodes, 1.0), jnp.nan)
    return mean, episodes


@dataclasses.dataclass(frozen=True)
class CostConstraint:
    """The keys of the replay loop's cost constraint (jaxrl/safety/constrained.py), in the configs of its agents."""

    cost_budget: float | None = None  # expected cost per episode allowed; None: no constraint
    multiplier_lr: float = 0.01  # Adam step size of λ, once per update
    multiplier_init: float = 0.0  # λ at the start
    cost_critic_lr: float = 3e-4
    cost_gamma: float = 0.99  # the cost critic's discount

    def __post_init__(self) -> None:
        if hasattr(super(), "__post_init__"):
            super().__post_init__()
        if self.cost_budget is not None:
            require(self.cost_budget >= 0, "cost_budget", ">= 0 (or null: unconstrained)", self.cost_budget)
        require(self.multiplier_lr > 0, "multiplier_lr", "> 0", self.multiplier_lr)
        require(self.multiplier_init >= 0, "multiplier_init", ">= 0", self.multiplier_init)
        require(0 < self.cost_gamma < 1, "cost_gamma", "in (0, 1)", self.cost_gamma)
