"""Soft Actor-Critic (Haarnoja et al., 2018, arXiv:1812.05905): twin critics, a tanh-Gaussian policy and an
automatically tuned entropy temperature, trained off-policy from a replay buffer (the replay loop).

Its losses are the base that CQL adds its conservative penalty to (jaxrl/agents/cql.py imports them):
`sample_actions`, `soft_bellman_target`, `policy_loss` and `temperature_loss` exist here only.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import ReplayLoop, check_positive, check_unit_interval, check_widths, require
from jaxrl.networks import GaussianHead, QEnsemble, check_precision, compute_dtype, squashed_log_prob, tanh_gaussian
from jaxrl.safety.lagrangian import CostConstraint
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition


@hyperparams
class Hyperparams:
    """SAC's numeric hyperparameters (defaults: the paper's, Table 1), traced in the agent state."""

    gamma: float = 0.99  # discount factor
    critic_lr: float = 3e-4  # Adam learning rate of the twin Q networks
    policy_lr: float = 3e-4  # Adam learning rate of the policy
    temperature_lr: float = 3e-4  # Adam learning rate of log α
    target_update_rate: float = 0.005  # polyak rate of the target critics
    initial_temperature: float = 1.0  # α before any update


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, CostConstraint, ReplayLoop):
    """SAC: the replay loop's keys, the cost constraint's, SAC's static keys and its hyperparameters."""

    hidden_sizes: tuple[int, ...] = (256, 256)  # hidden layer widths of the critics and the policy
    precision: str = "fp32"  # fp32, or bf16: bfloat16 matmuls and activations, float32 parameters and losses
    # The critic ensemble (RLPD's keys; SAC's twin critics by default):
    num_critics: int = 2  # Q networks trained side by side on the same targets
    target_critics: int = 2  # the target is the min over this many target critics drawn at random per update
    critic_layer_norm: bool = False  # LayerNorm after every hidden layer of the critics
    policy_q: str = "min"  # how the policy's loss reads the critics: min (SAC) or mean (RLPD) over the ensemble
    target_entropy_scale: float = 1.0  # the temperature aims at an entropy of -scale * |A|

    def __post_init__(self) -> None:
        super().__post_init__()
        check_unit_interval(self, "gamma")
        check_unit_interval(self, "target_update_rate", low_open=True)
        check_positive(self, "critic_lr", "policy_lr", "temperature_lr", "initial_temperature", "num_critics",
                       "target_critics", "target_entropy_scale")
        require(self.target_critics <= self.num_critics, "target_critics", f"<= num_critics ({self.num_critics})",
                self.target_critics)
        require(self.policy_q in POLICY_Q, "policy_q", f"one of {sorted(POLICY_Q)}", self.policy_q)
        check_widths(self, "hidden_sizes")
        check_precision(self.precision)


POLICY_Q = {"min": jnp.min, "mean": jnp.mean}  # the policy_q key: how the policy reduces the critics' [C, B] values


class Networks(NamedTuple):
    critic: QEnsemble  # the Q ensemble (SAC's twins): outputs [C, ...]
    policy: GaussianHead  # tanh-Gaussian with a state-dependent log-std
    # The ensemble's random subset of target critics (RLPD): a QEnsemble of that size, run on a slice of the
    # target critics' parameters; None takes the min over every target critic (SAC, CQL).
    target_subset: QEnsemble | None = None
    policy_q: str = "min"  # a key of POLICY_Q


class AgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    critic: common.TrainState
    target_critic_params: Params
    policy: common.TrainState
    log_temperature: common.TrainState  # params: log α, [] float32
    step: jax.Array  # [] int32, gradient steps taken


def make_networks(hidden_sizes: tuple[int, ...], precision: str, spec: EnvSpec, num_critics: int = 2,
                  target_critics: int | None = None, layer_norm: bool = False, policy_q: str = "min") -> Networks:
    """A Q ensemble (twin critics by default: SAC's and CQL's) and a tanh-Gaussian policy with a state-dependent
    log-std; RLPD's ensemble takes its target from `target_critics` of the `num_critics`."""
    dtype = compute_dtype(precision)
    subset = target_critics is not None and target_critics < num_critics
    return Networks(
        critic=QEnsemble(hidden_sizes, num_critics=num_critics, layer_norm=layer_norm, dtype=dtype),
        policy=GaussianHead(hidden_sizes, spec.action_size, state_dependent_std=True, dtype=dtype),
        target_subset=QEnsemble(hidden_sizes, target_critics, layer_norm=layer_norm, dtype=dtype) if subset else None,
        policy_q=policy_q,
    )


def init_params(nets: Networks, key: PRNGKey, spec: EnvSpec) -> tuple[Params, Params]:
    """The critics' and the policy's initial parameters (SAC's and CQL's), both from `key`."""
    critic_key, policy_key = jax.random.split(key)
    obs = jnp.zeros((1, spec.obs_size))
    return nets.critic.init(critic_key, obs, jnp.zeros((1, spec.action_size))), nets.policy.init(policy_key, obs)


def sample_actions(nets: Networks, policy_params: Params, obs: jax.Array, key: PRNGKey,
                   num_samples: int) -> tuple[jax.Array, jax.Array]:
    """`num_samples` reparameterised actions per state and their log-probs: [n, B, A], [n, B]."""
    mean, log_std = nets.policy.apply(policy_params, obs)
    return tanh_gaussian(mean, log_std).sample_and_log_prob(seed=key, sample_shape=(num_samples,))


def soft_bellman_target(nets: Networks, target_critic_params: Params, batch: Transition, next_action: jax.Array,
                        entropy_bonus: jax.Array | float, gamma: jax.Array,
                        subset_key: PRNGKey | None = None) -> tuple[jax.Array, jax.Array]:
    """r + γ d (min_i Q'_i(s', a') + entropy_bonus), with a' ~ π(·|s'): the Bellman targets [B] and the target
    critics' min [B]. SAC's bonus is -α log π(a'|s'); CQL backs up without it (0), as CORL does. With an ensemble
    subset (RLPD) the min runs over `nets.target_subset`'s size of target critics, drawn without replacement by
    `subset_key`, and only those are evaluated."""
    if nets.target_subset is None:
        target_q = nets.critic.apply(target_critic_params, batch.next_obs, next_action).min(axis=0)  # [B]
    else:
        num_critics, size = nets.critic.num_critics, nets.target_subset.num_critics
        chosen = jax.random.choice(subset_key, num_critics, (size,), replace=False)
        params = jax.tree.map(lambda leaf: leaf[chosen], target_critic_params)  # every leaf is [C, ...]
        target_q = nets.target_subset.apply(params, batch.next_obs, next_action).min(axis=0)  # [B]
    return batch.reward + gamma * batch.discount * (target_q + entropy_bonus), target_q


def critic_loss(critic_params: Params, target_critic_params: Params, policy_params: Params, temperature: jax.Array,
                batch: Transition, key: PRNGKey, *, nets: Networks, hp: Hyperparams) -> tuple[jax.Array, Metrics]:
    """Σ over the critics of the mean squared soft TD error (SAC, Eq. 5)."""
    subset_key = None
    if nets.target_subset is not None:
        key, subset_key = jax.random.split(key)
    next_actions, next_log_prob = sample_actions(nets, policy_params, batch.next_obs, key, 1)
    q_targets, target_q = soft_bellman_target(nets, target_critic_params, batch, next_actions[0],
                                              -temperature * next_log_prob[0], hp.gamma, subset_key)
    q = nets.critic.apply(critic_params, batch.obs, batch.action)  # [C, B]
    loss = ((q - q_targets) ** 2).mean(axis=1).sum()
    return loss, {"critic_loss": loss, "q_mean": q.mean(), "target_q_mean": target_q.mean()}


def policy_loss(policy_params: Params, critic_params: Params, temperature: jax.Array, batch: Transition,
                key: PRNGKey, *, nets: Networks, **_) -> tuple[jax.Array, Metrics]:
    """E_s,a~π [α log π(a|s) - min_i Q_i(s, a)] (SAC, Eq. 7); RLPD reads the ensemble's mean in place of the min."""
    actions, log_prob = sample_actions(nets, policy_params, batch.obs, key, 1)  # [1, B, A], [1, B]
    q = POLICY_Q[nets.policy_q](nets.critic.apply(critic_params, batch.obs, actions[0]), axis=0)  # [B]
    loss = (temperature * log_prob[0] - q).mean()
    return loss, {"policy_loss": loss, "entropy": -log_prob.mean()}


def temperature_loss(log_temperature: jax.Array, entropy: jax.Array, target_entropy: float) -> jax.Array:
    """J(α) = E[-log α (log π(a|s) + H̄)] (SAC, Eq. 18, in log α as in CQL's code)."""
    return log_temperature * (entropy - target_entropy)


def tanh_policy_action(nets: Networks, policy_params: Params, obs: jax.Array, key: PRNGKey,
                       deterministic: bool) -> jax.Array:
    """tanh of the mean (deterministic) or a sample of the tanh-Gaussian policy."""
    mean, log_std = nets.policy.apply(policy_params, obs)
    return jnp.tanh(mean) if deterministic else tanh_gaussian(mean, log_std).sample(seed=key)


def tanh_policy_log_prob(nets: Networks, policy_params: Params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """log π(a|s) of the tanh-Gaussian policy at given actions [B, A] -> [B]."""
    return squashed_log_prob(*nets.policy.apply(policy_params, obs), action)


def make_learner(config: Config, spec: EnvSpec) -> Learner:
    """SAC as the learner: init(key, hyperparams), act(state, obs, key, deterministic), update(state, batch, key).

    One update: a critic step, then a policy step and a temperature step, all three reading the networks as they
    were before it (as CQL does); then the target critics move by polyak averaging. Target entropy:
    -target_entropy_scale * |A|. RLPD is this learner with its ensemble keys (jaxrl/agents/rlpd.py)."""
    common.require_continuous(spec, "SAC")
    nets = make_networks(config.hidden_sizes, config.precision, spec, config.num_critics, config.target_critics,
                         config.critic_layer_norm, config.policy_q)
    target_entropy = -config.target_entropy_scale * spec.action_size

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        critic_params, policy_params = init_params(nets, key, spec)
        return AgentState(
            hyperparams=hp,
            critic=common.init_train_state(critic_params, optax.adam(hp.critic_lr)),
            target_critic_params=critic_params,
            policy=common.init_train_state(policy_params, optax.adam(hp.policy_lr)),
            log_temperature=common.init_train_state(jnp.log(hp.initial_temperature), optax.adam(hp.temperature_lr)),
            step=jnp.zeros((), jnp.int32),
        )

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        return tanh_policy_action(nets, state.policy.params, obs, key, deterministic), {}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        hp = state.hyperparams
        critic_key, policy_key = jax.random.split(key)
        temperature = jnp.exp(state.log_temperature.params)
        critic_grads, critic_metrics = jax.grad(critic_loss, has_aux=True)(
            state.critic.params, state.target_critic_params, state.policy.params, temperature, batch, critic_key,
            nets=nets, hp=hp)
        policy_grads, policy_metrics = jax.grad(policy_loss, has_aux=True)(
            state.policy.params, state.critic.params, temperature, batch, policy_key, nets=nets)
        temperature_grad = jax.grad(temperature_loss)(state.log_temperature.params, policy_metrics["entropy"],
                                                      target_entropy)
        critic = common.apply_gradients(state.critic, critic_grads, optax.adam(hp.critic_lr))
        new_state = state._replace(
            critic=critic,
            target_critic_params=common.polyak_update(state.target_critic_params, critic.params,
                                                      hp.target_update_rate),
            policy=common.apply_gradients(state.policy, policy_grads, optax.adam(hp.policy_lr)),
            log_temperature=common.apply_gradients(state.log_temperature, temperature_grad,
                                                   optax.adam(hp.temperature_lr)),
            step=state.step + 1,
        )
        return new_state, {**critic_metrics, **policy_metrics, "temperature": temperature}

    def log_prob(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        return tanh_policy_log_prob(nets, state.policy.params, obs, action)

    return Learner(init, act, update, traced(Hyperparams, config), log_prob)
