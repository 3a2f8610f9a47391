"""Proximal Policy Optimization (Schulman et al. 2017), with GAE (Schulman et al. 2016).

The online loop in `jaxrl.train` collects a `Trajectory`; `update` turns it into advantages and runs
`num_epochs` passes of `num_minibatches` clipped-surrogate steps. Observation statistics live in the
agent state and are refreshed from each rollout before the update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl import networks
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import OnlineLoop, check_unit_interval, require
from jaxrl.normalization import RunningStats, init_stats, normalize, update_stats
from jaxrl.types import EnvSpec, Learner, Trajectory


@hyperparams
class Hyperparams:
    """PPO's numeric hyperparameters, traced in the agent state."""

    learning_rate: float = 3e-4  # Adam step size at the start
    gamma: float = 0.99  # discount
    gae_lambda: float = 0.95  # GAE bias/variance trade-off
    entropy_coef: float = 0.01  # weight of the entropy bonus
    value_coef: float = 0.5  # weight of the value loss
    clip_eps: float = 0.2  # surrogate clipping range
    reward_scale: float = 1.0  # rewards are multiplied by this before GAE


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, OnlineLoop):
    """PPO: the online loop's keys, PPO's hyperparameters and its static keys."""

    num_minibatches: int = 8  # minibatches per epoch over one rollout
    num_epochs: int = 4  # passes over each rollout
    anneal_lr: bool = True  # decay the step size linearly to zero over the run
    max_grad_norm: float = 0.5  # global gradient-norm clip; 0 disables clipping (a switch, so static)
    normalize_observations: bool = True  # standardize observations with running statistics
    normalize_advantages: bool = True  # standardize advantages per minibatch
    policy_hidden_sizes: tuple[int, ...] = (64, 64)  # policy MLP widths
    value_hidden_sizes: tuple[int, ...] = (64, 64)  # value MLP widths
    activation: str = "tanh"  # hidden activation: relu, tanh, swish, silu or elu
    precision: str = "fp32"  # fp32, or bf16: bfloat16 matmuls and activations, float32 parameters and losses

    def __post_init__(self):
        super().__post_init__()
        for key in ["num_minibatches", "num_epochs"]:
            require(getattr(self, key) > 0, key, "positive", getattr(self, key))
        require((self.num_envs * self.unroll_length) % self.num_minibatches == 0, "num_minibatches",
                f"a divisor of num_envs * unroll_length ({self.num_envs * self.unroll_length})", self.num_minibatches)
        for key in ["gamma", "gae_lambda"]:
            check_unit_interval(self, key)
        require(self.activation in networks.ACTIVATIONS, "activation", f"one of {sorted(networks.ACTIVATIONS)}",
                self.activation)
        networks.check_precision(self.precision)
        require(self.max_grad_norm >= 0, "max_grad_norm", ">= 0 (0 disables clipping)", self.max_grad_norm)


class PPOState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    params: dict[str, Any]  # {"policy": ..., "value": ...}
    opt_state: optax.OptState
    obs_stats: RunningStats
    step: jax.Array  # updates done


class Networks(NamedTuple):
    policy: nn.Module
    value: nn.Module


def make_networks(config: Config, spec: EnvSpec) -> Networks:
    dtype = networks.compute_dtype(config.precision)
    if spec.discrete:
        policy = networks.CategoricalHead(config.policy_hidden_sizes, spec.action_size, config.activation, dtype)
    else:
        policy = networks.GaussianHead(config.policy_hidden_sizes, spec.action_size, config.activation,
                                       dtype=dtype)
    return Networks(policy, networks.ValueNet(config.value_hidden_sizes, config.activation, dtype=dtype))


def gae(rewards, values, bootstrap_value, discounts, truncation, gamma, lam):
    """Generalized advantage estimates and value targets, all [T, B].

    A_t = sum_k (gamma lam)^k delta_{t+k}, delta_t = r_t + gamma d_t V(s_{t+1}) - V(s_t) (GAE eq. 16).
    On a truncated step the next observation is already the reset one, so its delta is masked to zero
    and the recursion restarts there (as brax does): no bootstrapping across episodes.
    """
    next_values = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)
    live = 1.0 - truncation
    deltas = (rewards + gamma * discounts * next_values - values) * live

    def backward(advantage, step):
        delta, discount, alive = step
        advantage = delta + gamma * lam * discount * alive * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(bootstrap_value), (deltas, discounts, live), reverse=True)
    return advantages, advantages + values


def clipped_surrogate(log_prob, old_log_prob, advantages, clip_eps):
    """PPO's clipped surrogate objective as a loss, with its diagnostics; all inputs [N], outputs scalars.

    policy_loss = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)] with r = pi(a|s) / pi_old(a|s) (PPO eq. 7);
    clip_fraction is the share of samples with r outside [1 - eps, 1 + eps]; approx_kl = E[(r - 1) - log r],
    an estimate of KL(pi_old || pi) that is never negative.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped_ratio = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    surrogate = jnp.minimum(ratio * advantages, clipped_ratio * advantages)
    clip_fraction = (jnp.abs(ratio - 1) > clip_eps).mean()
    approx_kl = ((ratio - 1) - jnp.log(ratio)).mean()
    return -surrogate.mean(), clip_fraction, approx_kl


def learning_rate_schedule(config: Config, learning_rate: jax.Array) -> optax.Schedule | jax.Array:
    """Adam's step size per SGD step: linear to 0 over exactly the run's SGD steps when `anneal_lr`."""
    if not config.anneal_lr:
        return learning_rate
    sgd_steps = config.num_iterations * config.num_epochs * config.num_minibatches
    return optax.linear_schedule(learning_rate, 0.0, sgd_steps)


def make_optimizer(config: Config, learning_rate: jax.Array) -> optax.GradientTransformation:
    """Adam (eps 1e-5, as brax and CleanRL) after global-norm clipping, at the scheduled step size."""
    clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
    return optax.chain(*clip, optax.adam(learning_rate_schedule(config, learning_rate), eps=1e-5))


class PolicyFunctions(NamedTuple):
    """The stochastic policy of a PPO-family agent, over its parameters and observation statistics."""

    observe: Callable  # (obs_stats, obs) -> what the networks see
    distribution: Callable  # (policy_params, seen obs) -> the action distribution (pre-tanh when continuous)
    act: Callable  # the Learner's act
    log_prob: Callable  # the Learner's log_prob
    log_prob_and_entropy: Callable  # (policy_params, seen obs, action, act_info) -> ([N], [N])


def policy_functions(config: Config, spec: EnvSpec, policy_net: nn.Module) -> PolicyFunctions:
    """Acting and densities of `policy_net`: categorical for discrete actions, tanh-squashed Gaussian otherwise."""

    def observe(stats, obs):
        return normalize(stats, obs) if config.normalize_observations else obs

    def distribution(policy_params, obs):
        if spec.discrete:
            return networks.categorical(policy_net.apply(policy_params, obs))
        return networks.gaussian(*policy_net.apply(policy_params, obs))

    def log_prob_and_entropy(policy_params, obs, action, act_info):
        dist = distribution(policy_params, obs)
        if spec.discrete:
            return dist.log_prob(action), dist.entropy()
        raw = act_info["raw_action"]
        return dist.log_prob(raw) - networks.tanh_log_det_jacobian(raw), dist.entropy()

    def act(state, obs, key, deterministic):
        dist = distribution(state.params["policy"], observe(state.obs_stats, obs))
        sample = dist.mode() if deterministic else dist.sample(seed=key)  # `deterministic` is static
        if spec.discrete:
            return sample, {"log_prob": dist.log_prob(sample)}
        raw = sample
        log_prob = dist.log_prob(raw) - networks.tanh_log_det_jacobian(raw)
        return jnp.tanh(raw), {"log_prob": log_prob, "raw_action": raw}

    def log_prob(state, obs, action):
        """The sampling policy's density at logged actions (continuous ones are tanh-squashed samples)."""
        policy_params, obs = state.params["policy"], observe(state.obs_stats, obs)
        if spec.discrete:
            return distribution(policy_params, obs).log_prob(action)
        return networks.squashed_log_prob(*policy_net.apply(policy_params, obs), action)

    return PolicyFunctions(observe, distribution, act, log_prob, log_prob_and_entropy)


def policy_terms(policy: PolicyFunctions, policy_params, obs, action, act_info, advantages, hp: Hyperparams):
    """The clipped surrogate on advantages as given, and the mean entropy: (policy_loss, entropy, metrics)."""
    log_prob, entropy = policy.log_prob_and_entropy(policy_params, obs, action, act_info)
    policy_loss, clip_fraction, approx_kl = clipped_surrogate(log_prob, act_info["log_prob"], advantages, hp.clip_eps)
    entropy_mean = entropy.mean()
    metrics = {"policy_loss": policy_loss, "entropy": entropy_mean, "clip_fraction": clip_fraction,
               "approx_kl": approx_kl}
    return policy_loss, entropy_mean, metrics


def standardize(advantages: jax.Array) -> jax.Array:
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def minibatch_epochs(config: Config, optimizer: optax.GradientTransformation, loss: Callable, params, opt_state,
                     samples, hp: Hyperparams, key):
    """`num_epochs` passes over `samples` (a pytree of [T, B, ...] arrays), each in `num_minibatches` shuffled
    minibatches, one step of `optimizer` on `loss(params, minibatch, hp) -> (loss, metrics)` per minibatch:
    the new params and optimizer state, and the metrics averaged over all steps."""
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), samples)  # [T * B, ...]
    size = jax.tree.leaves(flat)[0].shape[0]

    def sgd_step(carry, minibatch):
        params, opt_state = carry
        grads, metrics = jax.grad(loss, has_aux=True)(params, minibatch, hp)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, size)
        minibatches = jax.tree.map(lambda x: x[order].reshape(config.num_minibatches, -1, *x.shape[1:]), flat)
        return jax.lax.scan(sgd_step, carry, minibatches)

    (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, config.num_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def advantages_and_targets(value_net: nn.Module, value_params, obs, last_obs, signal, batch: Trajectory,
                           hp: Hyperparams):
    """GAE advantages and value targets [T, B] of `signal` (the scaled rewards; PPO-Lagrangian's costs too) under
    `value_net`, from the rollout's observations [T, B, ...] and the one after it [B, ...], as the networks see them."""
    values = value_net.apply(value_params, obs)  # [T, B]
    bootstrap = value_net.apply(value_params, last_obs)  # [B]
    return gae(signal, values, bootstrap, batch.discount, batch.truncation, hp.gamma, hp.gae_lambda)


def value_loss(value_net: nn.Module, value_params, obs, targets) -> jax.Array:
    return 0.5 * jnp.square(value_net.apply(value_params, obs) - targets).mean()


def make_learner(config: Config, spec: EnvSpec) -> Learner:
    """PPO as a `Learner`; `update` takes a `Trajectory` of T = unroll_length steps from B = num_envs envs."""
    nets = make_networks(config, spec)
    policy = policy_functions(config, spec, nets.policy)

    def init(key, hp: Hyperparams):
        policy_key, value_key = jax.random.split(key)
        dummy = jnp.zeros((1, spec.obs_size), jnp.float32)
        params = {"policy": nets.policy.init(policy_key, dummy), "value": nets.value.init(value_key, dummy)}
        optimizer = make_optimizer(config, hp.learning_rate)
        return PPOState(hp, params, optimizer.init(params), init_stats(spec.obs_size), jnp.zeros((), jnp.int32))

    def loss(params, minibatch, hp: Hyperparams):
        obs, action, act_info, advantages, targets = minibatch
        if config.normalize_advantages:
            advantages = standardize(advantages)
        policy_loss, entropy, metrics = policy_terms(policy, params["policy"], obs, action, act_info, advantages, hp)
        values_loss = value_loss(nets.value, params["value"], obs, targets)
        total = policy_loss + hp.value_coef * values_loss - hp.entropy_coef * entropy
        return total, {**metrics, "value_loss": values_loss}

    def update(state: PPOState, batch: Trajectory, key):
        hp = state.hyperparams
        optimizer = make_optimizer(config, hp.learning_rate)
        obs_stats = update_stats(state.obs_stats, batch.obs) if config.normalize_observations else state.obs_stats
        obs = policy.observe(obs_stats, batch.obs)  # [T, B, obs_size]
        advantages, targets = advantages_and_targets(nets.value, state.params["value"], obs,
                                                     policy.observe(obs_stats, batch.last_obs),
                                                     batch.reward * hp.reward_scale, batch, hp)
        samples = (obs, batch.action, batch.act_info, advantages, targets)
        params, opt_state, metrics = minibatch_epochs(config, optimizer, loss, state.params, state.opt_state,
                                                      samples, hp, key)
        return PPOState(hp, params, opt_state, obs_stats, state.step + 1), metrics

    return Learner(init, policy.act, update, traced(Hyperparams, config), policy.log_prob)
