"""Fitted Q Evaluation (Le, Voloshin & Yue, 2019, arXiv:1903.08738, Algorithm 2): the Q-function of a fixed
policy π fitted on logged transitions by regression on r + γ Q'(s', a'), a' ~ π(·|s'). Its value at the episodes'
first states is the direct-method estimate of π's expected discounted return; along logged steps it is the model
the doubly robust estimators correct (jaxrl/ope/estimators.py).

FQE is a learner behind the shared interface, trained by the offline loop like any offline agent: its state holds
the evaluated policy's agent state (read, never updated), its `act` is that policy's, its `update` one regression
step on a sampled batch. Rewards and costs are fitted together, as the two outputs of one network: the pipeline's
safety gate needs the expected episode cost as much as the return.

As in FQE's paper, a time-limit truncation is not a terminal state (the dataset's discount is 1 there), so Q
estimates the infinite-horizon discounted value; `ope.default_gamma` keeps γ^(time limit) small so that this and
the value of the time-limited episode that rollouts measure agree (within 1% of the per-step scale / (1 - γ)).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common
from jaxrl.data.statistics import DatasetStatistics
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import check_positive, check_unit_interval
from jaxrl.networks import MLP
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition

OUTPUTS = ("return", "cost")  # what the network's two outputs estimate, in this order


@hyperparams
class Hyperparams:
    gamma: float = 0.99  # discount of the estimated value; `jaxrl ope` sets it from the env's time limit
    learning_rate: float = 3e-4  # Adam
    target_update_rate: float = 0.005  # polyak rate of the target network; `jaxrl ope` raises it where γ needs


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, common.OfflineConfig):
    """FQE: the offline loop's keys and FQE's. Its defaults fit our fast tasks' datasets in about a minute."""

    hidden_sizes: tuple[int, ...] = (256, 256)  # d3rlpy's FQE and DOPE's use 2 hidden layers of 256 (or 1024)
    normalize_observations: bool = True  # the dataset's observation moments, as the offline agents use them
    normalize_rewards: bool = True  # fit Q in units of the dataset's return range (the estimates come back unscaled)
    num_updates: int = 20_000  # regression steps (d3rlpy's FQE default is 1e5 on D4RL; our tasks converge sooner)
    eval_every: int = 20_000  # FQE has nothing to evaluate along the way: one chunk
    deterministic: bool = False  # evaluate the deterministic policy (`jaxrl evaluate`'s) instead of the stochastic

    def __post_init__(self) -> None:
        super().__post_init__()
        check_unit_interval(self, "gamma", high_open=True)
        check_unit_interval(self, "target_update_rate", low_open=True)
        check_positive(self, "learning_rate")


class AgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    normalizer: common.InputNormalizer
    q: common.TrainState  # Q(s, a) -> [B, 2]: return and cost, the return in the normalizer's reward scale
    target_q_params: Params
    policy: Any  # the evaluated policy's agent state (`attach_policy`); None until attached
    step: jax.Array  # [] int32


class FQE(NamedTuple):
    """The learner, and what the estimators read from a trained state: Q(s, a) and V(s) = E_a~π Q(s, a), both
    [B, 2] (return, cost) in the data's own units."""

    learner: Learner
    q_values: Any  # (state, obs [B, O], action [B, A]) -> [B, 2]
    state_values: Any  # (state, obs [B, O], key, num_samples) -> [B, 2]


def attach_policy(state: AgentState, policy_state: Any) -> AgentState:
    """The FQE state evaluating the policy whose agent state is `policy_state` (shapes as FQE's: per seed)."""
    return state._replace(policy=policy_state)


def make_fqe(config: Config, spec: EnvSpec, policy: Learner, statistics: DatasetStatistics | None,
             value_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None) -> FQE:
    """FQE of the policy `policy` (its `act`, stochastic unless `config.deterministic`) on `spec`'s data.

    Discrete actions: the network outputs Q of every action (the DQN head), and V(s) = Σ_a π(a|s) Q(s, a) is exact
    over the actions (the policy's `log_prob` at each), in the Bellman target and in `state_values` alike.

    `value_bounds`: ((G_min, G_max) of the return, (C_min, C_max) of the cost), in the data's units, that no
    discounted sum of the data's per-step values can leave (`estimators.return_range`); the Bellman target's Q'
    is clipped to them. Where the evaluated policy acts far from the data, Q' extrapolates and the iteration can
    diverge; clipped, it stays a valid (if loose) value."""
    discrete = spec.discrete
    low, high = zip(*value_bounds, strict=True) if value_bounds is not None else (None, None)  # [2] each
    net = MLP(config.hidden_sizes, len(OUTPUTS) * (spec.action_size if discrete else 1))
    normalizer = common.make_normalizer(config, spec, statistics)
    exact = discrete and not config.deterministic and policy.log_prob is not None

    def all_q(params: Params, state: AgentState, obs: jax.Array) -> jax.Array:
        """Discrete actions: [B, N, 2]."""
        return net.apply(params, state.normalizer.observations(obs)).reshape(-1, spec.action_size, len(OUTPUTS))

    def scaled_q(params: Params, state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        if discrete:
            index = action.astype(jnp.int32)[:, None, None]
            return jnp.take_along_axis(all_q(params, state, obs), index, axis=1)[:, 0]  # [B, 2]
        return net.apply(params, jnp.concatenate([state.normalizer.observations(obs), action], axis=-1))  # [B, 2]

    def expected_q(params: Params, state: AgentState, obs: jax.Array, key: PRNGKey) -> jax.Array:
        """E_a~π Q(s, a) [B, 2]: exact over discrete actions, else Q at one action of π (sampled unless
        deterministic)."""
        if not exact:
            return scaled_q(params, state, obs, policy_action(state, obs, key))
        actions = jnp.arange(spec.action_size, dtype=jnp.int32)
        log_probs = jax.vmap(lambda a: policy.log_prob(state.policy, obs, jnp.full(obs.shape[:1], a)))(actions)
        return jnp.einsum("nb,bnk->bk", jnp.exp(log_probs), all_q(params, state, obs))

    def unscale(state: AgentState, values: jax.Array) -> jax.Array:
        return values / jnp.stack([state.normalizer.reward_scale, jnp.ones(())])

    def policy_action(state: AgentState, obs: jax.Array, key: PRNGKey) -> jax.Array:
        return policy.act(state.policy, obs, key, config.deterministic)[0]

    def loss(params: Params, state: AgentState, batch: Transition, key: PRNGKey) -> tuple[jax.Array, Metrics]:
        """E_D [(Q(s, a) - r - γ d Q'(s', a'))²], a' ~ π(·|s'), summed over the two outputs (Algorithm 2, line 5)."""
        hp = state.hyperparams
        next_q = expected_q(state.target_q_params, state, batch.next_obs, key)
        if value_bounds is not None:
            scale = jnp.stack([state.normalizer.reward_scale, jnp.ones(())])
            next_q = jnp.clip(next_q, jnp.asarray(low) * scale, jnp.asarray(high) * scale)
        signals = jnp.stack([batch.reward * state.normalizer.reward_scale, batch.cost], axis=-1)  # [B, 2]
        targets = signals + hp.gamma * batch.discount[:, None] * next_q
        q = scaled_q(params, state, batch.obs, batch.action)
        value = ((q - jax.lax.stop_gradient(targets)) ** 2).mean(axis=0).sum()
        return value, {"fqe_loss": value, "q_return_mean": q[:, 0].mean() / state.normalizer.reward_scale,
                       "q_cost_mean": q[:, 1].mean()}

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        params = net.init(key, jnp.zeros((1, spec.obs_size + (0 if discrete else spec.action_size))))
        return AgentState(hp, normalizer, common.init_train_state(params, optax.adam(hp.learning_rate)), params, None,
                          jnp.zeros((), jnp.int32))

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        del deterministic  # FQE evaluates one policy, chosen by its config
        return policy_action(state, obs, key), {}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        hp = state.hyperparams
        grads, metrics = jax.grad(loss, has_aux=True)(state.q.params, state, batch, key)
        q = common.apply_gradients(state.q, grads, optax.adam(hp.learning_rate))
        target = common.polyak_update(state.target_q_params, q.params, hp.target_update_rate)
        return state._replace(q=q, target_q_params=target, step=state.step + 1), metrics

    def q_values(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        return unscale(state, scaled_q(state.q.params, state, obs, action))

    def state_values(state: AgentState, obs: jax.Array, key: PRNGKey, num_samples: int) -> jax.Array:
        """Monte Carlo E_a~π Q(s, a) over `num_samples` actions (one suffices for a deterministic policy); exact over
        discrete actions."""
        if exact:
            return unscale(state, expected_q(state.q.params, state, obs, key))
        samples = 1 if config.deterministic else num_samples
        keys = jax.random.split(key, samples)
        return jax.vmap(lambda k: q_values(state, obs, policy_action(state, obs, k)))(keys).mean(axis=0)

    return FQE(Learner(init, act, update, traced(Hyperparams, config), policy.log_prob), q_values, state_values)
