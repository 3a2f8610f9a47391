"""The gates' decisions from their figures, against hand-made inputs: the OPE gate passes the candidate whose
lower bound beats the incumbent and refuses on return or cost, the canary's one-sided Welch tests against scipy's
two-sided test (an independent computation), its incident rule, and the data gate's refusal of corrupted logs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from jaxrl.config import ConfigError, build_config
from jaxrl.deploy.config import PipelineConfig
from jaxrl.deploy.stages import canary, finetune, ope_gate, shadow
from jaxrl.deploy.stages.common import incidents_exceed


def policy(agent: str, seed: int, low: float, cost_high: float) -> dict:
    return {"agent": agent, "seed": seed, "run": f"runs/{agent}", "unavailable": {},
            "estimates": {"fqe": {"return": {"estimate": low + 1.0, "low": low, "high": low + 2.0},
                                  "cost": {"estimate": cost_high - 0.5, "low": 0.0, "high": cost_high}}}}


def test_ope_gate_passes_what_beats_the_incumbent_within_the_cost_limit():
    rows = ope_gate.judge([policy("iql", 0, 11.0, 0.5), policy("iql", 1, 9.0, 0.5), policy("cql", 0, 12.0, 3.0)],
                          incumbent_value=10.0, estimator="fqe", margin=0.5, max_cost=1.0)
    assert [row["passed"] for row in rows] == [True, False, False]
    assert "return lower bound 9.00 < incumbent 10.00 + 0.5" in rows[1]["reason"]
    assert rows[2]["reason"] == "cost upper bound 3.00 > 1.00"


def test_ope_gate_says_why_an_estimator_cannot_judge_a_policy():
    rows = ope_gate.judge([{**policy("bc", 0, 11.0, 0.5), "estimates": {}, "unavailable": {"wdr": "no density"}}],
                          10.0, "wdr", 0.0, 1.0)
    assert not rows[0]["passed"] and "wdr cannot estimate it (no density)" in rows[0]["reason"]


def test_canary_one_sided_tests_halve_the_two_sided_p_value():
    rng = np.random.default_rng(0)
    candidate = (rng.normal(9.0, 2.0, 60), rng.normal(1.5, 0.5, 60))
    incumbent = (rng.normal(10.0, 2.0, 400), rng.normal(1.0, 0.5, 400))
    figures = canary.compare(candidate, incumbent, incident_cost=2.0)
    two_sided = stats.ttest_ind(candidate[0], incumbent[0], equal_var=False).pvalue
    assert figures["return_worse_p"] == pytest.approx(two_sided / 2)  # the candidate's mean is the lower one
    assert figures["candidate_incident_rate"] == pytest.approx((candidate[1] > 2.0).mean())
    failures, rolled_back = canary.verdict(figures, alpha=0.05, max_incident_rate=0.5)
    assert any("return" in failure for failure in failures) and any("cost" in failure for failure in failures)
    assert not rolled_back


def test_canary_rolls_back_on_incidents_and_passes_an_equal_candidate():
    same = (np.full(50, 10.0), np.zeros(50))
    figures = canary.compare(same, same, incident_cost=1.0)
    assert canary.verdict(figures, 0.05, 0.1) == ([], False)
    spiky = (np.full(50, 10.0), np.where(np.arange(50) < 12, 5.0, 0.0))  # 24% of episodes cost 5
    failures, rolled_back = canary.verdict(canary.compare(spiky, same, incident_cost=1.0), 0.05, 0.1)
    assert rolled_back and "incident rate 24.0% over max_incident_rate 10.0%" in failures[-1]
    # P(X >= 12 | Binomial(50, 0.1)), summed from the binomial terms:
    expected = sum(math.comb(50, k) * 0.1**k * 0.9 ** (50 - k) for k in range(12, 51))
    figures = canary.compare(spiky, same, 1.0)
    canary.verdict(figures, 0.05, 0.1)
    assert figures["incident_p"] == pytest.approx(expected)


def test_a_few_incidents_in_a_small_sample_are_not_evidence():
    assert incidents_exceed(2, 12, 0.1, 0.05) == (False, pytest.approx(1 - 0.9**12 - 12 * 0.1 * 0.9**11))
    exceeded, p_value = incidents_exceed(8, 12, 0.1, 0.05)
    assert exceeded and p_value < 1e-5
    assert incidents_exceed(0, 0, 0.1, 0.05) == (False, 1.0)


def test_canary_with_too_few_episodes_says_what_to_raise():
    figures = canary.compare((np.ones(1), np.zeros(1)), (np.ones(30), np.zeros(30)), 1.0)
    failures, _ = canary.verdict(figures, 0.05, 0.1)
    assert "raise canary_steps or canary_fraction" in failures[0]


def test_shadow_disagreement_is_l2_for_continuous_and_mismatch_for_discrete_actions():
    continuous = shadow.action_distance(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.3, 0.4], [1.0, 1.0]]))
    np.testing.assert_allclose(continuous, [0.5, 0.0])  # a 3-4-5 triangle, then the same action
    items = shadow.action_distance(np.array([[3, 7, 7, 1]], np.int32), np.array([[3, 7, 2, 0]], np.int32))
    np.testing.assert_array_equal(items, [[0.0, 0.0, 1.0, 1.0]])  # item 7 vs 2 is as different as 1 vs 0
    assert items.mean() == 0.5  # the share of states on which they disagree


def test_pipeline_config_refuses_what_cannot_run():
    with pytest.raises(ConfigError, match="candidates"):
        build_config(PipelineConfig, {"candidates": ["bc"]})
    with pytest.raises(ConfigError, match="canary_fraction"):
        build_config(PipelineConfig, {"canary_envs": 8, "canary_fraction": 0.01})
    with pytest.raises(ConfigError, match="ope_estimator"):
        build_config(PipelineConfig, {"ope_estimator": "magic"})
    with pytest.raises(ConfigError, match="finetune_keep.*last or best"):
        build_config(PipelineConfig, {"finetune_keep": "first"})
    # the live stages' world must take the logged world's observations and actions
    with pytest.raises(ConfigError, match=r"live_env.*recsys's observations and actions \(size 21, 200 choices\)"):
        build_config(PipelineConfig, {"env": "recsys", "live_env": "pointmass-drift"})
    with pytest.raises(ConfigError, match="live_env.*an environment name"):
        build_config(PipelineConfig, {"env": "recsys", "live_env": "recsys-elsewhere"})
    assert build_config(PipelineConfig, {"env": "recsys", "live_env": "recsys-shifted"}).deploy_env == "recsys-shifted"
    assert build_config(PipelineConfig, {"env": "recsys"}).deploy_env == "recsys"


def test_feature_shift_is_the_live_mean_move_in_logged_standard_deviations():
    logged = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0]])  # per feature: mean 1, 5, 2; std 1, 0, 1
    live = np.array([[3.0, 9.0, 2.5], [5.0, 9.0, 1.5]])  # means 4, 9, 2
    # feature 0 moved 3 std, feature 2 none; feature 1 is constant in the logs, so it has no scale: skipped
    assert shadow.feature_shift(logged, live, top=2) == {"obs[0]": 3.0, "obs[2]": 0.0}
    assert shadow.feature_shift(logged, -live, top=1) == {"obs[0]": -5.0}


def test_shadow_stops_on_a_feature_shift_only_when_its_limit_is_set():
    figures = {"ood_rate": 0.01, "disagreement": 0.1, "feature_shift": {"obs[4]": -1.92, "obs[3]": 1.41, "obs[1]": 0.2}}
    assert shadow.gate_failures(figures, PipelineConfig()) == []  # default: reported, not gated
    assert shadow.gate_failures(figures, PipelineConfig(shadow_max_feature_shift=2.0)) == []
    assert shadow.gate_failures(figures, PipelineConfig(shadow_max_feature_shift=1.5)) == [
        "live feature means moved (obs[4] by -1.92 logged standard deviations), over shadow_max_feature_shift 1.5"]
    both = shadow.gate_failures(figures, PipelineConfig(shadow_max_feature_shift=1.0))
    assert both == ["live feature means moved (obs[4] by -1.92, obs[3] by +1.41 logged standard deviations), over "
                    "shadow_max_feature_shift 1.0"]
    with pytest.raises(ConfigError, match="shadow_max_feature_shift"):
        build_config(PipelineConfig, {"shadow_max_feature_shift": 0.0})


def test_fine_tuning_keeps_the_best_evaluated_checkpoint_within_the_cost_budget():
    records = [{"chunk": 0, "eval/return": 99.0, "eval/cost": 0.0},  # before fine-tuning: not a checkpoint of it
               {"chunk": 1, "eval/return": 5.0, "eval/cost": 1.0},
               {"chunk": 2, "eval/return": 9.0, "eval/cost": 4.0},  # the best return, over a budget of 2
               {"chunk": 2, "train/cost_total": 3.0},  # a record without an evaluation
               {"chunk": 3, "eval/return": 7.0, "eval/cost": 2.0},
               {"chunk": 4, "eval/return": 7.0, "eval/cost": 0.5}]
    assert finetune.best_chunk(records, 2.0) == 4  # 7.0 twice within the budget: the later one
    assert finetune.best_chunk(records, None) == 2
    assert finetune.best_chunk(records, 0.1) is None  # none qualifies: the last checkpoint is kept
