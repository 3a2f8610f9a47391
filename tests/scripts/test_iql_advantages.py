"""scripts/iql_advantages.py: the effective sample size and steps within episodes against hand-computed values, and
the report of a short IQL run (slow: it trains one)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import iql_advantages  # noqa: E402


def test_effective_sample_fraction_by_hand():
    assert iql_advantages.effective_sample_fraction(np.ones(4)) == pytest.approx(1.0)
    assert iql_advantages.effective_sample_fraction(np.array([1.0, 0, 0, 0])) == pytest.approx(0.25)
    # (1 + 3)^2 / (2 * (1 + 9)) = 16 / 20
    assert iql_advantages.effective_sample_fraction(np.array([1.0, 3.0])) == pytest.approx(0.8)


def test_steps_count_from_each_episodes_first_row():
    np.testing.assert_array_equal(iql_advantages.steps_within_episode(np.array([0, 0, 0, 1, 2, 2])),
                                  [0, 1, 2, 0, 0, 1])


def test_report_weights_rows_by_their_advantage():
    advantage = np.array([0.0, 0.0, np.log(3.0)])  # weights 1, 1, 3 at β 1
    action = np.array([[0.0], [0.0], [1.0]])
    step = np.array([0, 1, 2])
    lines = iql_advantages.report(advantage, advantage, action, step, [1.0], max_weight=100.0)
    # effective sample (1+1+3)^2 / (3 * 11) = 75.8%; weighted mean step (0 + 1 + 6) / 5 = 1.4; action 3/5 = 0.6
    assert lines[-1] == "| 1 | 75.8% | 1.4 | [0.6] |"


@pytest.mark.slow
def test_the_report_of_a_short_iql_run(pointmass_logged, tmp_path, capsys, monkeypatch):
    from jaxrl.cli import main

    run_dir = tmp_path / "iql"
    assert main(["train", "iql", "--dataset", str(pointmass_logged["data"]), "--run-dir", str(run_dir), "--wandb",
                 "disabled", "--no-progress", "--set", "num_updates=200", "eval_every=200", "eval_episodes=2"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["iql_advantages.py", str(run_dir), "--betas", "0,1"])
    assert iql_advantages.main() == 0
    out = capsys.readouterr().out
    assert "| advantage Q - V |" in out and "| 0 | 100.0% |" in out  # β 0: equal weights, the whole sample
