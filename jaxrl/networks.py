"""Networks and action distributions shared by every agent.

Each agent composes these; none defines its own MLP or distribution. Continuous actions live in
[-1, 1]: policies either squash a Gaussian with tanh (sampling agents) or clip its mean (IQL-style
deterministic extraction), and the environments rescale to their own bounds.

Precision: every network takes a compute `dtype`. Under `precision: bf16` (`compute_dtype`) its matmuls and
activations run in bfloat16 while its parameters stay float32 (flax casts them per use, so gradients and the
optimizer state are float32), and every head returns float32, so losses and their reductions are float32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.initializers import orthogonal

Activation = Callable[[jax.Array], jax.Array]
ACTIVATIONS: dict[str, Activation] = {
    "relu": nn.relu, "tanh": nn.tanh, "swish": nn.swish, "silu": nn.silu, "elu": nn.elu,
}

# The `precision` config key: its values and the dtype networks compute in under each.
PRECISIONS: dict[str, Any] = {"fp32": jnp.float32, "bf16": jnp.bfloat16}


def check_precision(precision: str) -> None:
    """The `precision` config key names one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"config key 'precision' must be one of {sorted(PRECISIONS)}, got {precision!r}")


def compute_dtype(precision: str) -> Any:
    """The dtype of matmuls and activations under `precision` ("fp32" or "bf16"); parameters stay float32."""
    check_precision(precision)
    return PRECISIONS[precision]


class MLP(nn.Module):
    """Dense layers with an activation between them; the last layer is linear when `output_size` is set."""

    hidden_sizes: Sequence[int]
    output_size: int | None = None
    activation: str = "relu"
    layer_norm: bool = False
    output_scale: float = 1.0  # orthogonal init scale of the output layer (small for policy heads)
    dtype: Any = jnp.float32  # compute dtype; the output layer's result is float32 whatever it is

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=orthogonal(), dtype=self.dtype)(x)
            if self.layer_norm:
                x = nn.LayerNorm(dtype=self.dtype)(x)
            x = act(x)
        if self.output_size is not None:
            x = nn.Dense(self.output_size, kernel_init=orthogonal(self.output_scale), dtype=self.dtype)(x)
            x = x.astype(jnp.float32)
        return x


class ValueNet(nn.Module):
    """State value V(s)."""

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    layer_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, 1, self.activation, self.layer_norm, dtype=self.dtype)(obs)[..., 0]


class QNet(nn.Module):
    """Action value. Continuous actions (`num_actions` None): Q(s, a) from the state and action concatenated.
    Discrete actions: one output per action, Q(s, ·) [..., num_actions] when `action` is None, else Q(s, a) of the
    int actions given (the DQN head: every action's value from one forward pass)."""

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    layer_norm: bool = False
    dtype: Any = jnp.float32
    num_actions: int | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array | None = None) -> jax.Array:
        if self.num_actions is None:
            x = jnp.concatenate([obs, action], axis=-1)
            return MLP(self.hidden_sizes, 1, self.activation, self.layer_norm, dtype=self.dtype)(x)[..., 0]
        q = MLP(self.hidden_sizes, self.num_actions, self.activation, self.layer_norm, dtype=self.dtype)(obs)
        return q if action is None else select_action(q, action)


def select_action(values: jax.Array, action: jax.Array) -> jax.Array:
    """values [..., N] at int actions [...] -> [...]."""
    return jnp.take_along_axis(values, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


class QEnsemble(nn.Module):
    """`num_critics` independent Q networks evaluated in one vmapped call: returns [num_critics, ...]; with
    `num_actions` (discrete) and no action, [num_critics, ..., num_actions]."""

    hidden_sizes: Sequence[int]
    num_critics: int = 2
    activation: str = "relu"
    layer_norm: bool = False
    dtype: Any = jnp.float32
    num_actions: int | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array | None = None) -> jax.Array:
        ensemble = nn.vmap(
            QNet,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden_sizes, self.activation, self.layer_norm, self.dtype, self.num_actions)(obs, action)


class GaussianHead(nn.Module):
    """Mean and log-std of a diagonal Gaussian; log-std is state-dependent or a learned vector."""

    hidden_sizes: Sequence[int]
    action_size: int
    activation: str = "relu"
    state_dependent_std: bool = True
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    layer_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = MLP(self.hidden_sizes, None, self.activation, self.layer_norm, dtype=self.dtype)(obs)
        head = lambda: nn.Dense(self.action_size, kernel_init=orthogonal(0.01), dtype=self.dtype)
        mean = head()(features).astype(jnp.float32)
        if self.state_dependent_std:
            log_std = head()(features).astype(jnp.float32)
        else:
            log_std = jnp.broadcast_to(self.param("log_std", nn.initializers.zeros, (self.action_size,)), mean.shape)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class CategoricalHead(nn.Module):
    """Logits over `num_actions` discrete choices."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, self.num_actions, self.activation, output_scale=0.01, dtype=self.dtype)(obs)


def tanh_gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """A diagonal Gaussian squashed into (-1, 1) by tanh, as one multivariate distribution."""
    base = distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
    return distrax.Transformed(base, distrax.Block(distrax.Tanh(), ndims=1))


def squashed_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """log-density of the tanh-Gaussian at `action` [B, A] -> [B]. Actions are pulled inside (-1, 1) by
    `ACTION_EDGE` first: a logged action at the bound (clipped by the env or a float32 tanh) would have
    atanh = inf."""
    raw = jnp.arctanh(jnp.clip(action, -ACTION_EDGE, ACTION_EDGE))
    return gaussian(mean, log_std).log_prob(raw) - tanh_log_det_jacobian(raw)


ACTION_EDGE = 1.0 - 1e-6  # the largest |action| a squashed density is read at (float32 resolves it: atanh = 7.25)


def gaussian(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """A diagonal Gaussian (no squashing)."""
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def tanh_log_det_jacobian(raw_action: jax.Array) -> jax.Array:
    """log|d tanh(u)/du| summed over action dims, in the numerically stable form 2(log2 - u - softplus(-2u))."""
    return jnp.sum(2.0 * (jnp.log(2.0) - raw_action - jax.nn.softplus(-2.0 * raw_action)), axis=-1)


def categorical(logits: jax.Array) -> distrax.Distribution:
    """A categorical distribution over the last axis of `logits`."""
    return distrax.Categorical(logits=logits)


def categorical_action(logits: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
    """The most likely action (deterministic) or a sample of the categorical policy, int32."""
    dist = categorical(logits)
    return (dist.mode() if deterministic else dist.sample(seed=key)).astype(jnp.int32)
