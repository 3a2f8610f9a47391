"""Policy-selection metrics on a five-policy example worked by hand, with ties, against scipy, and under vmap."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxrl.ope import selection

# Five candidate policies. By estimate the order is 4 (5.0), 2 (4.0), 3 (3.0), 0 (2.0), 1 (1.0).
TRUE_VALUES = jnp.array([1.0, 3.0, 2.0, 5.0, 4.0])
ESTIMATES = jnp.array([2.0, 1.0, 4.0, 3.0, 5.0])
LOW, HIGH = ESTIMATES - 1.5, ESTIMATES + 1.5
BEHAVIOR_VALUE = jnp.array(1.5)


def test_spearman_of_the_worked_example():
    # Ranks: true (1, 3, 2, 5, 4), estimated (2, 1, 4, 3, 5); d = (-1, 2, -2, 2, -1), Σd² = 14;
    # ρ = 1 - 6 Σd² / (P (P² - 1)) = 1 - 84 / 120 = 0.3.
    assert float(selection.spearman(ESTIMATES, TRUE_VALUES)) == pytest.approx(0.3, rel=1e-6)


def test_regret_at_k_of_the_worked_example():
    # Top-1 is policy 4 (true 4.0): 5 - 4 = 1. Top-3 is {4, 2, 3} (true 4, 2, 5) and holds the best: 0.
    assert float(selection.regret_at_k(ESTIMATES, TRUE_VALUES, 1)) == pytest.approx(1.0)
    assert float(selection.regret_at_k(ESTIMATES, TRUE_VALUES, 3)) == pytest.approx(0.0)
    assert float(selection.regret_at_k(ESTIMATES, TRUE_VALUES, 5)) == pytest.approx(0.0)


def test_mean_squared_error_and_coverage_of_the_worked_example():
    # Errors (1, -2, 2, -2, 1): Σ² = 14 over 5. Intervals estimate ± 1.5 hold the true value for policies 0 and 4 only.
    assert float(selection.mean_squared_error(ESTIMATES, TRUE_VALUES)) == pytest.approx(2.8)
    assert float(selection.coverage(TRUE_VALUES, LOW, HIGH)) == pytest.approx(0.4)


def test_coverage_counts_a_true_value_on_an_end_of_its_interval():
    assert float(selection.coverage(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), jnp.array([3.0, 2.0]))) == 1.0


def test_sharpe_ratio_at_k_of_the_worked_example():
    # k=2: top {4, 2}, true (4, 2): best 4 - 1.5 = 2.5 over the population std 1.
    # k=3: top {4, 2, 3}, true (4, 2, 5): best 5 - 1.5 = 3.5; mean 11/3, variance (1/9 + 25/9 + 16/9) / 3 = 14/9.
    assert float(selection.sharpe_ratio_at_k(ESTIMATES, TRUE_VALUES, BEHAVIOR_VALUE, 2)) == pytest.approx(2.5)
    expected = 3.5 / (math.sqrt(14) / 3)
    assert float(selection.sharpe_ratio_at_k(ESTIMATES, TRUE_VALUES, BEHAVIOR_VALUE, 3)) == pytest.approx(expected)


def test_average_ranks_and_spearman_with_ties_match_scipy():
    rng = np.random.default_rng(0)
    estimates = rng.integers(0, 4, size=12).astype(np.float32)  # many ties
    true_values = rng.integers(0, 5, size=12).astype(np.float32)
    np.testing.assert_allclose(selection.average_ranks(jnp.asarray(estimates)), scipy.stats.rankdata(estimates))
    expected = scipy.stats.spearmanr(estimates, true_values).statistic
    assert float(selection.spearman(jnp.asarray(estimates), jnp.asarray(true_values))) == pytest.approx(expected,
                                                                                                      rel=1e-5)


def test_tied_ranks_share_their_average():
    np.testing.assert_allclose(selection.average_ranks(jnp.array([1.0, 2.0, 2.0, 3.0])), [1.0, 2.5, 2.5, 4.0])


def test_tied_estimates_enter_the_top_k_in_index_order():
    # Policies 0 and 1 tie at the top; top-1 takes policy 0 (true 1.0), so the regret is 2 - 1.
    estimates, true_values = jnp.array([3.0, 3.0, 1.0]), jnp.array([1.0, 2.0, 0.0])
    assert float(selection.regret_at_k(estimates, true_values, 1)) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [0, 6])
def test_k_outside_the_candidates_is_refused(k):
    with pytest.raises(ValueError, match=f"k={k} is outside"):
        selection.regret_at_k(ESTIMATES, TRUE_VALUES, k)
    with pytest.raises(ValueError, match=f"k={k} is outside"):
        selection.selection_metrics(ESTIMATES, TRUE_VALUES, LOW, HIGH, BEHAVIOR_VALUE, ks=(1, k))


def test_sharpe_ratio_at_one_is_refused():
    with pytest.raises(ValueError, match="k=1 is outside"):
        selection.sharpe_ratio_at_k(ESTIMATES, TRUE_VALUES, BEHAVIOR_VALUE, 1)


def test_selection_metrics_of_the_worked_example():
    metrics = selection.selection_metrics(ESTIMATES, TRUE_VALUES, LOW, HIGH, BEHAVIOR_VALUE, ks=(1, 3))
    assert set(metrics) == {"spearman", "mse", "coverage", "regret@1", "regret@3", "sharpe@3"}
    expected = {"spearman": 0.3, "mse": 2.8, "coverage": 0.4, "regret@1": 1.0, "regret@3": 0.0,
                "sharpe@3": 3.5 / (math.sqrt(14) / 3)}
    for name, value in expected.items():
        assert float(metrics[name]) == pytest.approx(value, rel=1e-6, abs=1e-7), name


def test_vmapped_selection_metrics_equal_a_loop_over_estimators():
    estimates = jnp.asarray(np.random.default_rng(1).normal(size=(4, 5)), dtype=jnp.float32)  # 4 estimators
    low, high = estimates - 1.0, estimates + 1.0
    batched = jax.vmap(selection.selection_metrics, in_axes=(0, None, 0, 0, None))(
        estimates, TRUE_VALUES, low, high, BEHAVIOR_VALUE)
    for row in range(estimates.shape[0]):
        single = selection.selection_metrics(estimates[row], TRUE_VALUES, low[row], high[row], BEHAVIOR_VALUE)
        for name, value in single.items():
            assert float(batched[name][row]) == pytest.approx(float(value), rel=1e-6), (name, row)
