"""OPE estimators against hand-computed values, exact expectations over every action sequence of a small MDP, and
sampled episodes whose true value is known in closed form; the bootstrap, ESS and the HCOPE bound likewise."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.ope import estimators as ope
from jaxrl.ope.estimators import ESTIMATORS, Episodes

IS_FAMILY = ("is", "wis", "pdis", "wpdis")
UNBIASED_OR_CONSISTENT = ("is", "wis", "pdis", "wpdis", "dr", "wdr")

# A two-state MDP whose action picks the next state: s_{t+1} = a_t, start in state 0, horizon 4.
REWARD = np.array([[1.0, 0.0], [2.0, -1.0]])  # r(s, a)
TARGET = np.array([[0.3, 0.7], [0.6, 0.4]])  # π(a | s)
BEHAVIOR = np.array([[0.5, 0.5], [0.8, 0.2]])  # b(a | s)
HORIZON = 4
GAMMA = 0.9
PADDING = 2  # steps of nan after the horizon: every estimator must read them through the mask


def episodes_of(reward, mask, log_ratio, q=None, v=None) -> Episodes:
    """Episodes from numpy arrays, with nan wherever mask is 0."""
    mask = np.asarray(mask, dtype=np.float32)
    pad = lambda x: jnp.asarray(np.where(mask > 0, np.asarray(x, dtype=np.float32), np.nan))
    zeros = np.zeros_like(mask)
    return Episodes(pad(reward), jnp.asarray(mask), pad(log_ratio), pad(zeros if q is None else q),
                    pad(zeros if v is None else v))


def estimate(name: str, episodes: Episodes, gamma: float, weight=None) -> float:
    weight = jnp.ones(episodes.reward.shape[0]) if weight is None else jnp.asarray(weight, dtype=jnp.float32)
    return float(ESTIMATORS[name](episodes, gamma, weight))


def mdp_values(policy: np.ndarray, reward: np.ndarray = REWARD) -> tuple[np.ndarray, np.ndarray]:
    """Backward induction of the finite-horizon MDP: V [H+1, S] (V[H] = 0) and Q [H, S, A]."""
    values = np.zeros((HORIZON + 1, 2))
    q_values = np.zeros((HORIZON, 2, 2))
    for t in reversed(range(HORIZON)):
        q_values[t] = reward + GAMMA * values[t + 1][None, :]  # the next state is the action
        values[t] = np.sum(policy * q_values[t], axis=1)
    return values, q_values


def mdp_episodes(actions: np.ndarray, target: np.ndarray, behavior: np.ndarray, q_model: np.ndarray,
                 v_model: np.ndarray) -> Episodes:
    """The episodes that take `actions` [E, H] from state 0, padded with PADDING nan steps."""
    num_episodes = actions.shape[0]
    states = np.concatenate([np.zeros((num_episodes, 1), dtype=int), actions[:, :-1]], axis=1)  # [E, H]
    steps = np.arange(HORIZON)[None, :]
    full = lambda x: np.pad(x, ((0, 0), (0, PADDING)))
    return episodes_of(full(REWARD[states, actions]), full(np.ones_like(actions)),
                       full(np.log(target[states, actions]) - np.log(behavior[states, actions])),
                       full(q_model[steps, states, actions]), full(v_model[steps, states]))


def sample_actions(rng: np.random.Generator, num_episodes: int) -> np.ndarray:
    """Actions [E, H] of episodes run by the behavior policy."""
    actions = np.zeros((num_episodes, HORIZON), dtype=int)
    state = np.zeros(num_episodes, dtype=int)
    for t in range(HORIZON):
        actions[:, t] = rng.random(num_episodes) < BEHAVIOR[state, 1]
        state = actions[:, t]
    return actions


def test_one_step_bandit_estimates_equal_hand_computed_values():
    # b = (0.8, 0.2), π = (0.4, 0.6): ρ(a0) = 0.5, ρ(a1) = 3; r(a0) = 1, r(a1) = 2. Actions 0, 0, 1, 0.
    episodes = episodes_of([[1.0], [1.0], [2.0], [1.0]], np.ones((4, 1)), np.log([[0.5], [0.5], [3.0], [0.5]]))
    # Σ ρG = 0.5 + 0.5 + 6 + 0.5 = 7.5 and Σ ρ = 4.5; one step, so per-decision equals trajectory-wise.
    for name, expected in {"is": 7.5 / 4, "wis": 7.5 / 4.5, "pdis": 7.5 / 4, "wpdis": 7.5 / 4.5}.items():
        assert estimate(name, episodes, 0.9) == pytest.approx(expected, rel=1e-6), name
    # Multiplicities (1, 0, 2, 1): Σ wρG = 0.5 + 12 + 0.5 = 13, Σ w = 4, Σ wρ = 0.5 + 6 + 0.5 = 7.
    weight = [1.0, 0.0, 2.0, 1.0]
    for name, expected in {"is": 13 / 4, "wis": 13 / 7, "pdis": 13 / 4, "wpdis": 13 / 7}.items():
        assert estimate(name, episodes, 0.9, weight) == pytest.approx(expected, rel=1e-6), name


def two_step_ragged_episodes() -> Episodes:
    """The bandit above played twice (γ = 0.5): A takes (a1, a0), B (a0, a0), C takes a1 and ends after one step.

    Model: q(a0) = 0.8, q(a1) = 2.5 at every step, v = π·q = 0.4·0.8 + 0.6·2.5 = 1.82.
    """
    return episodes_of(reward=[[2.0, 1.0], [1.0, 1.0], [2.0, 0.0]], mask=[[1, 1], [1, 1], [1, 0]],
                       log_ratio=np.log([[3.0, 0.5], [0.5, 0.5], [3.0, 1.0]]),
                       q=[[2.5, 0.8], [0.8, 0.8], [2.5, 0.0]], v=np.full((3, 2), 1.82))


def test_two_step_ragged_estimates_equal_hand_computed_values():
    episodes = two_step_ragged_episodes()
    # ρ_{0:t}: A (3, 1.5), B (0.5, 0.25), C (3, 3 in the absorbing step). G: A 2 + 0.5 = 2.5, B 1.5, C 2.
    # IS: Σ ρG = 1.5·2.5 + 0.25·1.5 + 3·2 = 10.125 over 3 episodes; WIS: over Σ ρ = 1.5 + 0.25 + 3 = 4.75.
    # PDIS: A 3·2 + 0.5·1.5·1 = 6.75, B 0.5 + 0.5·0.25 = 0.625, C 6: 13.375 / 3.
    # WPDIS: t=0 (6 + 0.5 + 6) / (3 + 0.5 + 3) = 12.5/6.5; t=1 (1.5 + 0.25 + 0) / (1.5 + 0.25 + 3): C's final weight
    # stays in the normalizer.
    # DR: A t0 3(2 - 2.5) + 1.82 = 0.32, t1 0.5 (1.5·0.2 + 3·1.82) = 2.88; B t0 0.5·0.2 + 1.82 = 1.92,
    # t1 0.5 (0.25·0.2 + 0.5·1.82) = 0.48; C 0.32. (3.2 + 2.4 + 0.32) / 3.
    # WDR: t0 (3(-0.5) + 0.5·0.2 + 3(-0.5)) / 6.5 + 1.82; t1 0.5 ((1.5·0.2 + 0.25·0.2) / 4.75 + (3 + 0.5)·1.82 / 6.5).
    expected = {"is": 10.125 / 3, "wis": 10.125 / 4.75, "pdis": 13.375 / 3, "wpdis": 12.5 / 6.5 + 0.5 * 1.75 / 4.75,
                "dr": 5.92 / 3, "wdr": -2.9 / 6.5 + 1.82 + 0.5 * (0.35 / 4.75 + 6.37 / 6.5), "dm": 1.82}
    for name, value in expected.items():
        assert estimate(name, episodes, 0.5) == pytest.approx(value, rel=1e-5), name


def test_direct_method_is_the_weighted_mean_of_the_first_step_values():
    episodes = episodes_of(np.zeros((3, 2)), np.ones((3, 2)), np.zeros((3, 2)), v=[[1.0, 9.0], [2.0, 9.0], [4.0, 9.0]])
    assert estimate("dm", episodes, 0.9, [1.0, 0.0, 3.0]) == pytest.approx((1 + 3 * 4) / 4)


def test_on_policy_ratios_reproduce_the_mean_discounted_return_of_ragged_episodes():
    rng = np.random.default_rng(0)
    lengths = np.array([1, 5, 3, 7, 2, 7])
    mask = (np.arange(7)[None, :] < lengths[:, None]).astype(np.float32)
    reward = rng.normal(size=mask.shape)
    episodes = episodes_of(reward, mask, np.zeros_like(reward))
    on_policy = np.mean([np.sum(0.8 ** np.arange(n) * reward[i, :n]) for i, n in enumerate(lengths)])
    for name in IS_FAMILY:
        assert estimate(name, episodes, 0.8) == pytest.approx(on_policy, rel=1e-5), name


@pytest.mark.parametrize("target", [TARGET, BEHAVIOR], ids=["off-policy", "on-policy"])
def test_estimators_are_exact_in_expectation_over_every_action_sequence(target):
    # Weighting each of the 2^H action sequences by its behavior probability makes every sample average an exact
    # expectation: IS, PDIS and DR (with any model whose v is the π-average of its q) are unbiased, and the normalizers
    # of WIS, WPDIS and WDR have expectation 1, so all equal V^π(s_0). With π = b, DR's ratios are all 1.
    actions = np.array(list(itertools.product([0, 1], repeat=HORIZON)))  # [16, H]
    states = np.concatenate([np.zeros((len(actions), 1), dtype=int), actions[:, :-1]], axis=1)
    probability = np.prod(BEHAVIOR[states, actions], axis=1)
    q_model = np.random.default_rng(1).normal(size=(HORIZON, 2, 2))  # a wrong model
    v_model = np.sum(target[None] * q_model, axis=2)
    episodes = mdp_episodes(actions, target, BEHAVIOR, q_model, v_model)
    true_value = mdp_values(target)[0][0, 0]
    for name in UNBIASED_OR_CONSISTENT:
        assert estimate(name, episodes, GAMMA, probability) == pytest.approx(true_value, abs=1e-5), name


def test_doubly_robust_with_the_true_model_has_zero_error_per_episode_whatever_the_weights():
    values, q_values = mdp_values(TARGET)
    actions = sample_actions(np.random.default_rng(2), 32)
    episodes = mdp_episodes(actions, TARGET, BEHAVIOR, q_values, values[:HORIZON])
    noisy = np.random.default_rng(3).normal(size=episodes.log_ratio.shape).astype(np.float32)
    episodes = episodes._replace(log_ratio=jnp.where(episodes.mask > 0, jnp.asarray(noisy), jnp.nan))
    one_episode_each = jnp.eye(32)  # weight vectors that pick out a single episode
    for name in ("dr", "wdr"):
        per_episode = jax.vmap(lambda weight, f=ESTIMATORS[name]: f(episodes, GAMMA, weight))(one_episode_each)
        np.testing.assert_allclose(per_episode, values[0, 0], rtol=1e-5, err_msg=name)


def test_estimators_recover_the_true_value_and_it_lies_in_their_bootstrap_intervals():
    values, q_values = mdp_values(TARGET)
    q_model = q_values + 0.1 * np.random.default_rng(4).normal(size=q_values.shape)  # an imperfect FQE
    v_model = np.sum(TARGET[None] * q_model, axis=2)
    episodes = mdp_episodes(sample_actions(np.random.default_rng(5), 2000), TARGET, BEHAVIOR, q_model, v_model)
    true_value = values[0, 0]
    assert estimate("dm", episodes, GAMMA) == pytest.approx(v_model[0, 0], rel=1e-5)  # the model's own, biased, value
    keys = jax.random.split(jax.random.key(0), len(UNBIASED_OR_CONSISTENT))
    for name, key in zip(UNBIASED_OR_CONSISTENT, keys, strict=True):
        interval = ope.bootstrap(ESTIMATORS[name], episodes, GAMMA, key, num_resamples=500)
        assert float(interval.estimate) == pytest.approx(true_value, abs=0.15), name
        assert float(interval.low) <= true_value <= float(interval.high), (name, interval)


def test_effective_sample_size_of_equal_weights_is_the_number_of_episodes():
    ess = ope.effective_sample_size(jnp.full(8, 3.7), jnp.ones(8))
    assert float(ess) == pytest.approx(8.0, rel=1e-5)


def test_effective_sample_size_of_one_dominating_weight_is_one():
    ess = ope.effective_sample_size(jnp.array([80.0, 0.0, 1.0, -2.0]), jnp.ones(4))  # exp(80) alone would overflow
    assert float(ess) == pytest.approx(1.0, rel=1e-5)


def test_effective_sample_size_matches_kish_in_numpy():
    rng = np.random.default_rng(6)
    log_weights, counts = rng.normal(size=50), rng.integers(0, 3, size=50).astype(np.float64)
    weights = counts * np.exp(log_weights)
    expected = weights.sum() ** 2 / (counts * np.exp(log_weights) ** 2).sum()
    ess = ope.effective_sample_size(jnp.asarray(log_weights, dtype=jnp.float32), jnp.asarray(counts, jnp.float32))
    assert float(ess) == pytest.approx(expected, rel=1e-5)


def test_trajectory_log_weights_sum_the_log_ratios_of_real_steps():
    episodes = two_step_ragged_episodes()
    np.testing.assert_allclose(ope.trajectory_log_weights(episodes), np.log([1.5, 0.25, 3.0]), rtol=1e-6)


def test_hcope_bound_matches_theorem_1_by_hand():
    # X = (0.2, 0.5, 1.5, 0.1), c = 1: Y = (0.2, 0.5, 1, 0.1), n = 4, ΣY = 1.8, ΣY² = 1.3, nΣY² - (ΣY)² = 5.2 - 3.24.
    bound = ope.hcope_bound(jnp.array([0.2, 0.5, 1.5, 0.1]), 1.0, delta=0.05)
    expected = 1.8 / 4 - 7 * 1.0 * math.log(40) / (3 * 3) - math.sqrt(2 * math.log(40) / 3 * 1.96 / 16)
    assert float(bound) == pytest.approx(expected, rel=1e-5)


BANDIT_BEHAVIOR = np.array([0.5, 0.3, 0.2])
BANDIT_TARGET = np.array([0.2, 0.3, 0.5])
BANDIT_SUCCESS = np.array([0.2, 0.5, 0.9])  # Bernoulli rewards: G ∈ {0, 1} is already normalized
BANDIT_VALUE = float(BANDIT_TARGET @ BANDIT_SUCCESS)  # 0.04 + 0.15 + 0.45 = 0.64


def hcope_on_bandit(num_episodes: int, seed: int) -> tuple[float, float]:
    """HCOPE's bound and the IS mean of ρG on `num_episodes` bandit pulls by the behavior policy."""
    rng = np.random.default_rng(seed)
    actions = rng.choice(3, size=num_episodes, p=BANDIT_BEHAVIOR)
    returns = (rng.random(num_episodes) < BANDIT_SUCCESS[actions]).astype(np.float32)
    log_weights = np.log(BANDIT_TARGET[actions] / BANDIT_BEHAVIOR[actions]).astype(np.float32)
    bound = ope.hcope_lower_bound(jnp.asarray(returns), jnp.asarray(log_weights), jax.random.key(seed))
    return float(bound), float(np.mean(np.exp(log_weights) * returns))


def test_hcope_bound_lies_below_the_sample_and_true_means_and_tightens_with_more_episodes():
    small_bound, small_mean = hcope_on_bandit(400, seed=0)
    large_bound, large_mean = hcope_on_bandit(20000, seed=1)
    assert small_bound < small_mean and small_bound < BANDIT_VALUE
    assert large_bound < large_mean and large_bound < BANDIT_VALUE
    assert small_bound < large_bound
    assert large_bound > 0.8 * BANDIT_VALUE  # not vacuous with plenty of data


def test_hcope_refuses_too_few_episodes():
    with pytest.raises(ValueError, match="at least 2 episodes"):
        ope.hcope_lower_bound(jnp.ones(3), jnp.zeros(3), jax.random.key(0))


def test_return_normalization_maps_the_reward_range_to_the_unit_interval_and_back():
    # Rewards in [-1, 2] for up to 3 steps, γ = 0.5: Σγ^t = 1.75, G ∈ [-1.75, 3.5]; G = 0 sits at 1.75 / 5.25 = 1/3.
    g_min, g_max = ope.return_range(-1.0, 2.0, horizon=3, gamma=0.5)
    assert (g_min, g_max) == pytest.approx((-1.75, 3.5))
    assert float(ope.normalize_returns(jnp.array(0.0), g_min, g_max)) == pytest.approx(1 / 3)
    assert float(ope.denormalize(jnp.array(1 / 3), g_min, g_max)) == pytest.approx(0.0, abs=1e-6)
    # An episode may end after one step: positive rewards bound its return below by 0 only.
    assert ope.return_range(1.0, 2.0, horizon=3, gamma=0.5)[0] == 0.0


def bandit_episodes(num_episodes: int, seed: int) -> Episodes:
    rng = np.random.default_rng(seed)
    actions = rng.choice(3, size=num_episodes, p=BANDIT_BEHAVIOR)
    returns = (rng.random(num_episodes) < BANDIT_SUCCESS[actions]).astype(np.float32)
    log_ratio = np.log(BANDIT_TARGET[actions] / BANDIT_BEHAVIOR[actions])
    return episodes_of(returns[:, None], np.ones((num_episodes, 1)), log_ratio[:, None])


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_episodes():
    key = jax.random.key(7)
    few = ope.bootstrap(ope.weighted_trajectory_is, bandit_episodes(100, seed=8), 1.0, key, num_resamples=400)
    many = ope.bootstrap(ope.weighted_trajectory_is, bandit_episodes(1600, seed=9), 1.0, key, num_resamples=400)
    for interval in (few, many):
        assert float(interval.low) <= float(interval.estimate) <= float(interval.high)
    # The width shrinks as 1/sqrt(E): 16x the episodes, about a quarter of the width.
    assert float(many.high - many.low) < 0.5 * float(few.high - few.low)


def test_bootstrap_is_deterministic_for_a_key_and_varies_with_it():
    episodes = bandit_episodes(200, seed=10)
    first = ope.bootstrap(ope.trajectory_is, episodes, 1.0, jax.random.key(11), num_resamples=200)
    again = ope.bootstrap(ope.trajectory_is, episodes, 1.0, jax.random.key(11), num_resamples=200)
    other = ope.bootstrap(ope.trajectory_is, episodes, 1.0, jax.random.key(12), num_resamples=200)
    assert first == again
    assert float(first.low) != float(other.low) or float(first.high) != float(other.high)


def test_every_estimator_is_jittable_with_a_traced_discount():
    episodes = two_step_ragged_episodes()
    for name, estimator in ESTIMATORS.items():
        jitted = jax.jit(estimator)(episodes, jnp.float32(0.5), jnp.ones(3))
        assert float(jitted) == pytest.approx(estimate(name, episodes, 0.5), rel=1e-6), name
