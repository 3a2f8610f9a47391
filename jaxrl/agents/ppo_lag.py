"""PPO-Lagrangian (Ray et al. 2019): PPO under the constraint E[episode cost] <= cost_budget.

PPO's rollout, surrogate and minibatch epochs (jaxrl/agents/ppo.py) with three additions, as OmniSafe's PPO-Lag:
a cost value network with its own GAE over the step costs, a Lagrange multiplier λ updated from the mean cost of
the episodes that ended in each rollout before the policy epochs (jaxrl/safety/lagrangian.py), and the policy
trained on the Lagrangian's advantage (A_r - λ A_c) / (1 + λ).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl import networks
from jaxrl.agents import ppo
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import require
from jaxrl.normalization import RunningStats, init_stats, update_stats
from jaxrl.safety import lagrangian
from jaxrl.types import EnvSpec, Learner, Trajectory


@hyperparams
class Hyperparams(ppo.Hyperparams):
    """PPO's hyperparameters and the constraint's, traced in the agent state."""

    cost_budget: float = 25.0  # the bound d on the expected episode cost (Safety-Gymnasium's usual 25 for 1000 steps)
    multiplier_lr: float = 0.035  # Adam step size of λ (OmniSafe's lambda_lr)
    multiplier_init: float = 0.001  # λ at the start (OmniSafe's lagrangian_multiplier_init)


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, ppo.Config):
    """PPO's keys and the constraint's."""

    def __post_init__(self):
        super().__post_init__()
        require(self.cost_budget >= 0, "cost_budget", ">= 0 (the expected episode cost allowed)", self.cost_budget)
        require(self.multiplier_lr > 0, "multiplier_lr", "> 0", self.multiplier_lr)
        require(self.multiplier_init >= 0, "multiplier_init", ">= 0 (λ is never negative)", self.multiplier_init)


class PPOLagState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    params: dict[str, Any]  # {"policy": ..., "value": ..., "cost_value": ...}
    opt_state: optax.OptState
    obs_stats: RunningStats
    step: jax.Array  # updates done
    multiplier: lagrangian.Multiplier


def make_learner(config: Config, spec: EnvSpec) -> Learner:
    """PPO-Lagrangian as a `Learner`; `update` takes a `Trajectory`, as PPO's."""
    nets = ppo.make_networks(config, spec)
    cost_value_net = networks.ValueNet(config.value_hidden_sizes, config.activation,
                                       dtype=networks.compute_dtype(config.precision))
    policy = ppo.policy_functions(config, spec, nets.policy)

    def init(key, hp: Hyperparams):
        policy_key, value_key, cost_key = jax.random.split(key, 3)
        dummy = jnp.zeros((1, spec.obs_size), jnp.float32)
        params = {"policy": nets.policy.init(policy_key, dummy), "value": nets.value.init(value_key, dummy),
                  "cost_value": cost_value_net.init(cost_key, dummy)}
        optimizer = ppo.make_optimizer(config, hp.learning_rate)
        return PPOLagState(hp, params, optimizer.init(params), init_stats(spec.obs_size), jnp.zeros((), jnp.int32),
                           lagrangian.init_multiplier(hp.multiplier_init, hp.multiplier_lr))

    def loss(params, minibatch, hp: Hyperparams):
        obs, action, act_info, reward_advantages, cost_advantages, targets, cost_targets, multiplier = minibatch
        # Both standardized (OmniSafe only centres the cost advantages): the Lagrangian's advantage then has PPO's
        # scale whatever unit the cost is in, so the entropy bonus and the clipping keep their tuned meaning and λ
        # is a unitless trade-off (λ = 1: a cost advantage of one std weighs as much as a reward advantage of one).
        if config.normalize_advantages:
            reward_advantages = ppo.standardize(reward_advantages)
            cost_advantages = ppo.standardize(cost_advantages)
        advantages = lagrangian.penalized_advantages(reward_advantages, cost_advantages, multiplier)
        policy_loss, entropy, metrics = ppo.policy_terms(policy, params["policy"], obs, action, act_info, advantages,
                                                         hp)
        values_loss = ppo.value_loss(nets.value, params["value"], obs, targets)
        cost_values_loss = ppo.value_loss(cost_value_net, params["cost_value"], obs, cost_targets)
        total = policy_loss + hp.value_coef * (values_loss + cost_values_loss) - hp.entropy_coef * entropy
        return total, {**metrics, "value_loss": values_loss, "cost_value_loss": cost_values_loss}

    def update(state: PPOLagState, batch: Trajectory, key):
        hp = state.hyperparams
        episode_cost, episodes = lagrangian.finished_episode_cost(batch.episode_cost, batch.done)
        multiplier = lagrangian.update_multiplier(state.multiplier, episode_cost, episodes, hp.cost_budget,
                                                  hp.multiplier_lr)
        obs_stats = update_stats(state.obs_stats, batch.obs) if config.normalize_observations else state.obs_stats
        obs = policy.observe(obs_stats, batch.obs)  # [T, B, obs_size]
        last_obs = policy.observe(obs_stats, batch.last_obs)  # [B, obs_size]
        reward_advantages, targets = ppo.advantages_and_targets(nets.value, state.params["value"], obs, last_obs,
                                                                batch.reward * hp.reward_scale, batch, hp)
        cost_advantages, cost_targets = ppo.advantages_and_targets(cost_value_net, state.params["cost_value"], obs,
                                                                   last_obs, batch.cost, batch, hp)
        lam = jnp.broadcast_to(multiplier.value, batch.reward.shape)  # [T, B]: one λ for every minibatch
        samples = (obs, batch.action, batch.act_info, reward_advantages, cost_advantages, targets, cost_targets, lam)
        optimizer = ppo.make_optimizer(config, hp.learning_rate)
        params, opt_state, metrics = ppo.minibatch_epochs(config, optimizer, loss, state.params, state.opt_state,
                                                          samples, hp, key)
        metrics = {**metrics, "lagrange_multiplier": multiplier.value,
                   "measured_episode_cost": multiplier.measured_cost}
        return PPOLagState(hp, params, opt_state, obs_stats, state.step + 1, multiplier), metrics

    return Learner(init, policy.act, update, traced(Hyperparams, config), policy.log_prob)
