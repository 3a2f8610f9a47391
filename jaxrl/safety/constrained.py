"""A cost constraint for any agent on the replay loop (SAC, RLPD, and IQL, CQL or Cal-QL fine-tuning online):
maximize the return subject to E[episode cost] <= cost_budget, by Lagrangian reward shaping (Tessler et al.
2019, RCPO). The agent learns from r - λ c in place of r; a cost critic Q_c(s, a) of the agent's own policy
measures the constraint, and λ climbs while the policy's expected cost is over the budget and falls while it is
under (jaxrl/safety/lagrangian.py, the multiplier PPO-Lagrangian uses).

The episode budget d becomes a per-state value, d (1 - γ^T) / ((1 - γ) T) for episodes of T steps: the discounted
cost of spending d evenly over an episode (as FSRL's SAC-Lagrangian does). Q_c is fitted by TD on the batches the
agent learns from, with next actions from the agent's current policy, and read at the batch's states with actions
from that policy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common
from jaxrl.networks import QEnsemble
from jaxrl.safety import lagrangian
from jaxrl.types import EnvSpec, Learner, PRNGKey, Transition


class ConstrainedState(NamedTuple):
    inner: Any  # the agent's own state
    cost_critic: common.TrainState  # twin Q_c networks
    target_cost_critic_params: Any
    multiplier: lagrangian.Multiplier
    threshold: jax.Array  # [] the per-state discounted cost allowed
    multiplier_lr: jax.Array  # []


TARGET_RATE = 0.005  # polyak rate of the target cost critic (SAC's)


def per_state_threshold(budget: float, gamma: float, episode_length: int) -> float:
    """The discounted cost of spending `budget` evenly over `episode_length` steps, per step of it."""
    return budget * (1.0 - gamma**episode_length) / ((1.0 - gamma) * episode_length)


def constrain(learner: Learner, keys: lagrangian.CostConstraint, spec: EnvSpec, hidden_sizes: tuple[int, ...]
              ) -> Learner:
    """`learner` under the constraint; its act and log_prob read the inner state."""
    critic = QEnsemble(hidden_sizes, num_critics=2, num_actions=spec.action_size if spec.discrete else None)
    threshold = per_state_threshold(keys.cost_budget, keys.cost_gamma, spec.episode_length)
    optimizer = optax.adam(keys.cost_critic_lr)

    def observations(inner, obs):
        normalizer = getattr(inner, "normalizer", None)
        return normalizer.observations(obs) if normalizer is not None else obs

    def init(key: PRNGKey, hyperparams: Any) -> ConstrainedState:
        inner_key, critic_key = jax.random.split(key)
        params = critic.init(critic_key, jnp.zeros((1, spec.obs_size)), common.example_action(spec))
        return ConstrainedState(learner.init(inner_key, hyperparams), common.init_train_state(params, optimizer),
                                params, lagrangian.init_multiplier(keys.multiplier_init, keys.multiplier_lr),
                                jnp.float32(threshold), jnp.float32(keys.multiplier_lr))

    def cost_loss(params, state: ConstrainedState, batch: Transition, key: PRNGKey):
        """Twin TD on costs, next actions from the policy; also the policy's mean cost value at the batch's states."""
        next_key, key = jax.random.split(key)
        next_action, _ = learner.act(state.inner, batch.next_obs, next_key, False)
        obs, next_obs = observations(state.inner, batch.obs), observations(state.inner, batch.next_obs)
        target = critic.apply(state.target_cost_critic_params, next_obs, next_action).max(axis=0)  # pessimistic
        targets = jax.lax.stop_gradient(batch.cost + keys.cost_gamma * batch.discount * target)
        q = critic.apply(params, obs, batch.action)  # [2, B]
        action, _ = learner.act(state.inner, batch.obs, key, False)
        policy_cost = jax.lax.stop_gradient(critic.apply(params, obs, action).max(axis=0).mean())
        return ((q - targets) ** 2).mean(axis=1).sum(), policy_cost

    def update(state: ConstrainedState, batch: Transition, key: PRNGKey):
        inner_key, cost_key = jax.random.split(key)
        multiplier = state.multiplier.value
        inner, metrics = learner.update(state.inner, batch._replace(reward=batch.reward - multiplier * batch.cost),
                                        inner_key)
        (loss, policy_cost), grads = jax.value_and_grad(cost_loss, has_aux=True)(state.cost_critic.params, state,
                                                                                 batch, cost_key)
        cost_critic = common.apply_gradients(state.cost_critic, grads, optimizer)
        target = common.polyak_update(state.target_cost_critic_params, cost_critic.params, TARGET_RATE)
        stepped = lagrangian.update_multiplier(state.multiplier, policy_cost, jnp.float32(1.0), state.threshold,
                                               state.multiplier_lr)
        metrics = {**metrics, "cost_critic_loss": loss, "policy_cost_value": policy_cost,
                   "cost_threshold": state.threshold, "lagrange_multiplier": multiplier}
        return ConstrainedState(inner, cost_critic, target, stepped, state.threshold, state.multiplier_lr), metrics

    act = lambda state, obs, key, deterministic: learner.act(state.inner, obs, key, deterministic)
    log_prob = (None if learner.log_prob is None else
                lambda state, obs, action: learner.log_prob(state.inner, obs, action))
    return Learner(init, act, update, learner.hyperparams, log_prob)


def penalize_cost(learner: Learner, penalty: float) -> Learner:
    """`learner` trained on reward - penalty x cost (a fixed multiplier: the `cost_penalty` key of the offline
    agents); its state, act and log_prob are the learner's own."""

    def update(state: Any, batch: Transition, key: PRNGKey):
        return learner.update(state, batch._replace(reward=batch.reward - penalty * batch.cost), key)

    return learner._replace(update=update)
