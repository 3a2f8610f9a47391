"""Off-policy estimates of a target policy's expected discounted return Σ_t γ^t r_t from logged episodes.

The importance-sampling family (Precup, Sutton and Singh 2000), the doubly robust estimators (Jiang and Li 2016;
Thomas and Brunskill 2016), a percentile bootstrap over episodes, and the high-confidence lower bound of Thomas,
Theocharous and Ghavamzadeh (AAAI 2015). Every estimator is `estimator(episodes, gamma, weight) -> []`, where `weight`
[E] counts how often each episode is in the sample: ones for the estimate itself, multinomial counts for a bootstrap
resample, so the bootstrap is a vmap over weight vectors.

Padding: an episode that ended before T goes on in an absorbing state where both policies take the same action, with
log ratio 0 and reward, q and v all 0 there, so its cumulative weight ρ_{0:t} stays at its final value. This is how
Thomas and Brunskill (2016) reduce episodes of unequal length to a fixed horizon, and it fixes the weighted per-decision
estimators: an ended episode adds no reward but stays in the normalizer of WPDIS and WDR at its final weight.
(Normalizing over the episodes still alive at t instead would not give the mean discounted return when π = b.)
Padding may hold any values, nan included: every read of it goes through the mask.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

BOOTSTRAP_BATCH = 128  # resamples evaluated at once: bounds memory at [128, E, T] whatever num_resamples is
HCOPE_PRE_FRACTION = 0.05  # share of the episodes held out to choose the clip c (Thomas et al. 2015 use 1/20)


class Episodes(NamedTuple):
    """Logged episodes padded to T steps; padding has mask 0 (and any values)."""

    reward: jax.Array  # [E, T] (the caller passes costs here to estimate expected episode cost)
    mask: jax.Array  # [E, T] 1.0 on real steps, 0.0 on padding (real steps are a prefix of each row)
    log_ratio: jax.Array  # [E, T] log π_target(a_t|s_t) - log π_behavior(a_t|s_t)
    q: jax.Array  # [E, T] a model's Q^π(s_t, a_t) (FQE), for the doubly robust estimators
    v: jax.Array  # [E, T] the model's V^π(s_t) = E_{a~π} Q^π(s_t, a)


class Interval(NamedTuple):
    """A point estimate and its percentile bootstrap interval."""

    estimate: jax.Array  # []
    low: jax.Array  # []
    high: jax.Array  # []


Estimator = Callable[[Episodes, jax.Array | float, jax.Array], jax.Array]


def _real(episodes: Episodes, values: jax.Array) -> jax.Array:
    """`values` on real steps and 0 on padding, whatever padding holds: [E, T]."""
    return jnp.where(episodes.mask > 0, values, 0.0)


def _discounts(gamma: jax.Array | float, num_steps: int) -> jax.Array:
    return gamma ** jnp.arange(num_steps)  # [T]


def _weighted_mean(values: jax.Array, weight: jax.Array) -> jax.Array:
    return jnp.sum(weight * values) / jnp.sum(weight)


def _self_normalized(log_weights: jax.Array, weight: jax.Array) -> jax.Array:
    """weight_i ρ_i / Σ_j weight_j ρ_j along the episode axis, from log ρ: same shape as `log_weights` ([E] or [E, T]).

    The max is taken over the episodes in the sample only: one left out with a huge ratio must not underflow the rest.
    """
    weight = weight.reshape(weight.shape + (1,) * (log_weights.ndim - 1))
    log_weights = jnp.where(weight > 0, log_weights, -jnp.inf)
    scaled = weight * jnp.exp(log_weights - jnp.max(log_weights, axis=0))
    return scaled / jnp.sum(scaled, axis=0)


def discounted_returns(episodes: Episodes, gamma: jax.Array | float) -> jax.Array:
    """Each episode's Σ_t γ^t r_t over its real steps: [E]."""
    rewards = _real(episodes, episodes.reward)
    return rewards @ _discounts(gamma, rewards.shape[1])


def cumulative_log_ratios(episodes: Episodes) -> jax.Array:
    """log ρ_{0:t} = Σ_{k≤t} log π(a_k|s_k)/b(a_k|s_k), constant over padding: [E, T]."""
    return jnp.cumsum(_real(episodes, episodes.log_ratio), axis=1)


def trajectory_log_weights(episodes: Episodes) -> jax.Array:
    """log ρ_i of each whole episode: [E]."""
    return cumulative_log_ratios(episodes)[:, -1]


def effective_sample_size(log_weights: jax.Array, weight: jax.Array) -> jax.Array:
    """Kish's (Σ_i w_i ρ_i)² / Σ_i w_i ρ_i² of trajectory weights ρ_i = exp(log_weights) [E], in log space: []."""
    log_weights = jnp.where(weight > 0, log_weights, -jnp.inf)
    log_sum = jax.nn.logsumexp(log_weights, b=weight)
    log_sum_squares = jax.nn.logsumexp(2.0 * log_weights, b=weight)
    return jnp.exp(2.0 * log_sum - log_sum_squares)


def direct_method(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """DM: the model's V̂^π(s_0) averaged over episodes."""
    del gamma  # the model's V is already discounted
    return _weighted_mean(episodes.v[:, 0], weight)


def trajectory_is(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """IS: Σ_i w_i ρ_i G_i / Σ_i w_i, each return weighted by its whole episode's ratio (Precup et al. 2000)."""
    ratios = jnp.exp(trajectory_log_weights(episodes))  # [E]
    return _weighted_mean(ratios * discounted_returns(episodes, gamma), weight)


def weighted_trajectory_is(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """WIS: Σ_i w_i ρ_i G_i / Σ_i w_i ρ_i, IS self-normalized (Precup et al. 2000)."""
    normalized = _self_normalized(trajectory_log_weights(episodes), weight)  # [E], sums to 1
    return jnp.sum(normalized * discounted_returns(episodes, gamma))


def per_decision_is(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """PDIS: Σ_i w_i Σ_t γ^t ρ_{0:t} r_t / Σ_i w_i, a reward weighted by the actions up to it (Precup et al. 2000)."""
    ratios = jnp.exp(cumulative_log_ratios(episodes))  # [E, T]
    rewards = _real(episodes, episodes.reward)
    return _weighted_mean((ratios * rewards) @ _discounts(gamma, rewards.shape[1]), weight)


def weighted_per_decision_is(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """WPDIS: Σ_t γ^t Σ_i w_i ρ_{i,0:t} r_{i,t} / Σ_i w_i ρ_{i,0:t} (Precup et al. 2000; Thomas and Brunskill 2016)."""
    normalized = _self_normalized(cumulative_log_ratios(episodes), weight)  # [E, T], each step's column sums to 1
    rewards = _real(episodes, episodes.reward)
    return jnp.sum((normalized * rewards) @ _discounts(gamma, rewards.shape[1]))


def _previous(cumulative_log: jax.Array) -> jax.Array:
    """log ρ_{0:t-1} from log ρ_{0:t}, with ρ_{0:-1} = 1: [E, T]."""
    return jnp.pad(cumulative_log[:, :-1], ((0, 0), (1, 0)))


def _doubly_robust_terms(episodes: Episodes, gamma: jax.Array | float, current: jax.Array,
                         previous: jax.Array) -> jax.Array:
    """Σ_t γ^t [current_t (r_t - q_t) + previous_t v_t] of each episode, current and previous [E, T]: [E]."""
    residuals = _real(episodes, episodes.reward - episodes.q)
    values = _real(episodes, episodes.v)
    return (current * residuals + previous * values) @ _discounts(gamma, residuals.shape[1])


def doubly_robust(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """DR: the mean over episodes of Σ_t γ^t [ρ_{0:t} (r_t - q_t) + ρ_{0:t-1} v_t], ρ_{0:-1} = 1.

    Jiang and Li (2016): their recursion V_DR = v_t + ρ_t (r_t + γ V_DR' - q_t), unrolled from the last step; the same
    sum is Thomas and Brunskill's (2016) DR with unnormalized weights.
    """
    cumulative = cumulative_log_ratios(episodes)
    per_episode = _doubly_robust_terms(episodes, gamma, jnp.exp(cumulative), jnp.exp(_previous(cumulative)))
    return _weighted_mean(per_episode, weight)


def weighted_doubly_robust(episodes: Episodes, gamma: jax.Array | float, weight: jax.Array) -> jax.Array:
    """WDR (Thomas and Brunskill 2016): DR with ρ_{0:t} self-normalized across episodes at each t.

    Σ_i Σ_t γ^t [ŵ_{i,t} (r - q) + ŵ_{i,t-1} v], ŵ_{i,t} = w_i ρ_{i,0:t} / Σ_j w_j ρ_{j,0:t}, ŵ_{i,-1} = w_i / Σ_j w_j.
    """
    cumulative = cumulative_log_ratios(episodes)
    current = _self_normalized(cumulative, weight)
    previous = _self_normalized(_previous(cumulative), weight)
    return jnp.sum(_doubly_robust_terms(episodes, gamma, current, previous))


ESTIMATORS: dict[str, Estimator] = {
    "dm": direct_method,
    "is": trajectory_is,
    "wis": weighted_trajectory_is,
    "pdis": per_decision_is,
    "wpdis": weighted_per_decision_is,
    "dr": doubly_robust,
    "wdr": weighted_doubly_robust,
}


def _resample_counts(key: jax.Array, num_episodes: int) -> jax.Array:
    """How often each episode is drawn in one bootstrap resample of `num_episodes` draws with replacement: [E]."""
    drawn = jax.random.randint(key, (num_episodes,), 0, num_episodes)
    return jnp.zeros(num_episodes).at[drawn].add(1.0)


@functools.partial(jax.jit, static_argnames=("estimator", "num_resamples"))
def resampled_estimates(estimator: Estimator, episodes: Episodes, gamma: jax.Array | float, key: jax.Array,
                        num_resamples: int = 1000) -> jax.Array:
    """`estimator` on `num_resamples` bootstrap resamples of the episodes: [R]. The resamples depend on the key and
    the episode count only, so estimates of several policies on the same episodes with the same key are paired
    (each resample is one alternative dataset), which the selection metrics' intervals rely on."""
    num_episodes = episodes.reward.shape[0]
    batch = min(num_resamples, BOOTSTRAP_BATCH)
    num_batches = -(-num_resamples // batch)  # whole batches: a remainder would compile a second copy of the body
    keys = jax.random.split(key, num_batches * batch).reshape(num_batches, batch)
    resample = lambda resample_key: estimator(episodes, gamma, _resample_counts(resample_key, num_episodes))
    return jax.lax.map(jax.vmap(resample), keys).reshape(-1)[:num_resamples]  # [R]


def percentile_interval(estimate: jax.Array, samples: jax.Array, level: jax.Array | float) -> Interval:
    """The central `level` percentile interval of bootstrap `samples` [R] around `estimate`."""
    tail = (1.0 - level) / 2.0
    low, high = jnp.quantile(samples, jnp.stack([tail, 1.0 - tail]))
    return Interval(estimate, low, high)


def bootstrap(estimator: Estimator, episodes: Episodes, gamma: jax.Array | float, key: jax.Array,
              num_resamples: int = 1000, level: jax.Array | float = 0.95) -> Interval:
    """`estimator`'s estimate and its central `level` percentile bootstrap interval, episodes resampled as units."""
    samples = resampled_estimates(estimator, episodes, gamma, key, num_resamples)
    estimate = estimator(episodes, gamma, jnp.ones(episodes.reward.shape[0]))
    return percentile_interval(estimate, samples, level)


def return_range(r_min: float, r_max: float, horizon: int, gamma: float) -> tuple[float, float]:
    """Bounds (G_min, G_max) on Σ_t γ^t r_t of episodes of any length up to `horizon`, rewards in [r_min, r_max].

    An episode may end after one step, so a positive r_min only bounds G below by 0 (and a negative r_max above).
    Pass tighter bounds to `normalize_returns` where every episode is known to last the full horizon.
    """
    total_discount = sum(gamma**t for t in range(horizon))
    return min(r_min, 0.0) * total_discount, max(r_max, 0.0) * total_discount


def normalize_returns(returns: jax.Array, g_min: float, g_max: float) -> jax.Array:
    """Returns mapped to [0, 1] for HCOPE: (G - G_min) / (G_max - G_min)."""
    return (returns - g_min) / (g_max - g_min)


def denormalize(value: jax.Array, g_min: float, g_max: float) -> jax.Array:
    """A value (a bound) on the [0, 1] scale of `normalize_returns` mapped back to returns."""
    return g_min + (g_max - g_min) * value


def _bernstein_bound(mean: jax.Array, variance: jax.Array, c: jax.Array, delta: float, n: int) -> jax.Array:
    """mean(Y) - 7 c ln(2/δ) / (3 (n - 1)) - sqrt(2 ln(2/δ) Var(Y) / n), Var the unbiased sample variance."""
    log_term = jnp.log(2.0 / delta)
    return mean - 7.0 * c * log_term / (3.0 * (n - 1)) - jnp.sqrt(2.0 * log_term * variance / n)


def hcope_bound(values: jax.Array, c: jax.Array | float, delta: float = 0.05) -> jax.Array:
    """A 1-δ lower bound on E[X] from n samples X_i ≥ 0 [n] clipped at c: []. Thomas et al. (2015), Theorem 1.

    With every c_i = c the theorem reads mean(Y) - 7 c ln(2/δ) / (3 (n-1)) - sqrt(2 ln(2/δ)/(n-1) (n ΣY² - (ΣY)²)/n²),
    Y_i = min(X_i, c): Maurer and Pontil's (2009) empirical Bernstein bound on Y/c ∈ [0, 1], scaled by c, and valid for
    E[X] because clipping only lowers the mean. c must not depend on `values`.
    """
    clipped = jnp.minimum(values, c)
    return _bernstein_bound(clipped.mean(), clipped.var(ddof=1), c, delta, values.shape[0])


def choose_clip(pre_values: jax.Array, delta: float, num_post: int) -> jax.Array:
    """The c among the held-out values [n_pre] that maximizes the bound they predict for `num_post` samples: [].

    Thomas et al. (2015), the choice of c after Theorem 1: the bound with the held-out mean and variance of Y but the
    size n_post of the data it will be applied to. The candidates are the held-out values themselves (jittable).
    """
    def predicted(c: jax.Array) -> jax.Array:
        clipped = jnp.minimum(pre_values, c)
        return _bernstein_bound(clipped.mean(), clipped.var(ddof=1), c, delta, num_post)

    return pre_values[jnp.argmax(jax.vmap(predicted)(pre_values))]


def hcope_lower_bound(returns_normalized: jax.Array, log_weights: jax.Array, key: jax.Array, delta: float = 0.05,
                      pre_fraction: float = HCOPE_PRE_FRACTION) -> jax.Array:
    """A 1-δ lower bound on the target policy's normalized expected return, from returns in [0, 1] [E] and log ρ [E].

    HCOPE (Thomas et al. 2015): X_i = ρ_i G_i ≥ 0 has mean E_π[G]; a random `pre_fraction` of the episodes chooses c,
    the rest gives the bound. Map returns with `normalize_returns` first and the bound back with `denormalize`.
    `pre_fraction` is static; the bound can be negative (below the trivial bound 0) when data are few.
    """
    num_episodes = returns_normalized.shape[0]
    num_pre = max(2, int(pre_fraction * num_episodes))
    if num_episodes - num_pre < 2:
        raise ValueError(f"HCOPE needs at least 2 episodes after holding out {num_pre} to choose c; got {num_episodes}")
    log_values = log_weights + jnp.log(returns_normalized)  # log ρG: a huge ρ overflows to inf, never to inf * 0
    values = jnp.exp(jax.random.permutation(key, log_values))
    c = choose_clip(values[:num_pre], delta, num_episodes - num_pre)
    return hcope_bound(values[num_pre:], c, delta)
