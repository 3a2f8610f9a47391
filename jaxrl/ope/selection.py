"""How well an estimator's values of P candidate policies serve to pick among them, as DOPE and SCOPE-RL score it.

DOPE: Fu et al., "Benchmarks for Deep Off-Policy Evaluation" (ICLR 2021): rank correlation, regret@k, MSE.
SCOPE-RL: Kiyohara et al., "Towards Assessing and Benchmarking Risk-Return Tradeoff of Off-Policy Evaluation"
(arXiv:2311.18207, 2023): SharpeRatio@k.

Every metric takes [P] arrays and returns [], so `jax.vmap` runs it over estimators or bootstrap resamples; k is static.
The top-k set is the k policies with the highest estimates, ties broken toward the lower index (`jax.lax.top_k`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _check_k(k: int, num_policies: int, smallest: int = 1) -> None:
    if not smallest <= k <= num_policies:
        raise ValueError(f"k={k} is outside [{smallest}, {num_policies}]: k counts policies out of the "
                         f"{num_policies} candidates")


def _top_k_true_values(estimates: jax.Array, true_values: jax.Array, k: int) -> jax.Array:
    """The true values of the k policies with the highest estimates: [k]."""
    return true_values[jax.lax.top_k(estimates, k)[1]]


def average_ranks(values: jax.Array) -> jax.Array:
    """Ranks 1..P of `values` [P], tied values sharing the average of their ranks (scipy's rankdata): [P]."""
    below = jnp.sum(values[None, :] < values[:, None], axis=1)
    tied = jnp.sum(values[None, :] == values[:, None], axis=1)  # counts the value itself
    return below + (tied + 1) / 2.0


def spearman(estimates: jax.Array, true_values: jax.Array) -> jax.Array:
    """Spearman's rank correlation: the Pearson correlation of average ranks (nan when either is constant)."""
    estimate_ranks = average_ranks(estimates) - (estimates.shape[0] + 1) / 2.0  # centred: the mean rank is (P+1)/2
    true_ranks = average_ranks(true_values) - (true_values.shape[0] + 1) / 2.0
    return jnp.sum(estimate_ranks * true_ranks) / jnp.sqrt(jnp.sum(estimate_ranks**2) * jnp.sum(true_ranks**2))


def regret_at_k(estimates: jax.Array, true_values: jax.Array, k: int) -> jax.Array:
    """DOPE's regret@k, unnormalized: max true value - the best true value among the top-k by estimate.

    DOPE reports it normalized; that is the caller's to do (e.g. divided by max - min of the true values).
    """
    _check_k(k, estimates.shape[0])
    return jnp.max(true_values) - jnp.max(_top_k_true_values(estimates, true_values, k))


def mean_squared_error(estimates: jax.Array, true_values: jax.Array) -> jax.Array:
    """Mean over policies of (estimate - true value)²."""
    return jnp.mean((estimates - true_values) ** 2)


def coverage(true_values: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """The fraction of policies whose true value lies in its interval [low, high], ends included."""
    return jnp.mean((low <= true_values) & (true_values <= high))


def sharpe_ratio_at_k(estimates: jax.Array, true_values: jax.Array, behavior_value: jax.Array, k: int) -> jax.Array:
    """SCOPE-RL's SharpeRatio@k: (best@k - J(π_b)) / std@k over the true values of the top-k by estimate, k ≥ 2.

    Kiyohara et al. (2023) define std@k with 1/k (the population std), as used here; SCOPE-RL's code divides by k - 1
    and clips the numerator at 0. Top-k sets whose true values are all equal have std 0 and give ±inf.
    """
    _check_k(k, estimates.shape[0], smallest=2)  # std@1 is 0: the ratio is undefined
    top_values = _top_k_true_values(estimates, true_values, k)
    return (jnp.max(top_values) - behavior_value) / jnp.std(top_values)


@functools.partial(jax.jit, static_argnames=("ks",))
def selection_metrics(estimates: jax.Array, true_values: jax.Array, low: jax.Array, high: jax.Array,
                      behavior_value: jax.Array, ks: tuple[int, ...] = (1, 3)) -> dict[str, jax.Array]:
    """Every metric of one estimator's estimates [P] (intervals low, high [P]): "regret@k" for each k in `ks`,
    "sharpe@k" for each k ≥ 2 in `ks`, "spearman", "mse", "coverage"; each []."""
    metrics = {"spearman": spearman(estimates, true_values), "mse": mean_squared_error(estimates, true_values),
               "coverage": coverage(true_values, low, high)}
    for k in ks:
        metrics[f"regret@{k}"] = regret_at_k(estimates, true_values, k)
        if k >= 2:
            metrics[f"sharpe@{k}"] = sharpe_ratio_at_k(estimates, true_values, behavior_value, k)
    return metrics
