"""`jaxrl ope` end to end on pointmass: a short PPO run's checkpoints are the policies, one of them logged the data.
With the logging policy as the target, the weighted estimators reproduce the on-policy average; the estimators
rank checkpoints of clearly different quality in the order of their true returns; bad input is refused with one
clear line and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxrl.cli import main
from jaxrl.data import storage
from jaxrl.ope.run import Options, run_ope

LOGGER = 4  # the checkpoint that logged the dataset (tests/conftest.py, pointmass_logged)
FAST_FQE = {"num_updates": 2000, "hidden_sizes": [64, 64], "batch_size": 256}
TINY_FQE = {"num_updates": 100, "hidden_sizes": [16, 16], "batch_size": 64}  # where only availability is checked


@pytest.fixture(scope="module")
def logged(pointmass_logged) -> dict:
    return pointmass_logged


def test_with_the_logging_policy_as_target_the_weighted_estimators_give_the_on_policy_average(logged):
    options = Options(estimators=("is", "wis", "pdis", "wpdis"), num_resamples=50, fqe_overrides=FAST_FQE)
    result = run_ope(logged["data"], [f"{logged['run']}@{LOGGER}"], options)
    assert result["episodes"]["whole"] == 64 and result["episodes"]["cut"] == 0
    policy = result["policies"][0]
    for name in options.estimators:
        assert policy["estimates"][name]["return"]["estimate"] == pytest.approx(result["behavior_value"], rel=1e-3)
    assert policy["effective_sample_size"] == pytest.approx(64, rel=1e-3)  # every weight is 1


def test_fqe_members_put_their_fitting_spread_into_the_intervals(logged):
    """Four short FQE fits of one policy (100 updates: they disagree): the FQE estimate is the fits' mean, and its
    90% interval, drawing one fit per resample of the episodes, reaches past the lowest and the highest fit."""
    options = Options(estimators=("fqe",), num_resamples=200, level=0.9, fqe_overrides=TINY_FQE, fqe_members=4)
    result = run_ope(logged["data"], [f"{logged['run']}@{LOGGER}"], options)
    found = result["policies"][0]["estimates"]["fqe"]["return"]
    assert len(set(found["members"])) == 4  # fits of their own
    assert found["estimate"] == pytest.approx(np.mean(found["members"]), rel=1e-6)
    assert found["low"] < min(found["members"]) and found["high"] > max(found["members"]), found


def test_the_command_ranks_checkpoints_of_different_quality_by_their_true_returns(logged):
    out = logged["out"] / "cli"
    chunks = (1, 6, 12)  # near random, halfway, the last
    argv = ["ope", "--dataset", str(logged["data"]), *(f"{logged['run']}@{chunk}" for chunk in chunks),
            "--estimators", "fqe,wis,dr", "--true-returns", "32", "--resamples", "100", "--out", str(out),
            "--set", "num_updates=2000", "hidden_sizes=[64,64]"]
    assert main(argv) == 0
    assert {path.name for path in out.iterdir()} == {"ope.json", "ope.md", "ope.png"}
    result = json.loads((out / "ope.json").read_text())
    assert result["estimators"] == ["fqe", "wis", "dr"]
    assert result["gamma"] == pytest.approx(0.01 ** (1 / 100))  # pointmass's time limit 100: γ^100 = 0.01
    assert "| ppo_run@12 (ppo, seed 0) |" in (out / "ope.md").read_text()
    truth = [policy["true_return"] for policy in result["policies"]]
    assert truth == sorted(truth), f"the checkpoints' true returns are not increasing: {truth}"
    for name in ("fqe", "dr"):
        estimates = [policy["estimates"][name]["return"]["estimate"] for policy in result["policies"]]
        assert result["selection"][name]["spearman"] == pytest.approx(1.0), (name, estimates, truth)
        assert result["selection"][name]["regret@1"] == 0.0
        low, high = result["selection"][name]["intervals"]["spearman"]
        assert -1.0 <= low <= high <= 1.0
    for policy in result["policies"]:
        interval = policy["estimates"]["wis"]["return"]
        assert interval["low"] <= interval["estimate"] <= interval["high"]


def test_a_deterministic_policy_gets_fqe_only_with_the_reason(logged):
    options = Options(estimators=("fqe", "wis"), policy="deterministic", num_resamples=20, fqe_overrides=TINY_FQE)
    policy = run_ope(logged["data"], [f"{logged['run']}@{LOGGER}"], options)["policies"][0]
    assert "fqe" in policy["estimates"] and "wis" not in policy["estimates"]
    assert "no density" in policy["unavailable"]["wis"]


def refused(argv: list[str], capsys, out: Path) -> str:
    assert main([*argv, "--out", str(out)]) == 2
    assert not out.exists()
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def test_bad_input_is_refused_with_one_line_and_nothing_written(logged, tmp_path, capsys):
    data, run = str(logged["data"]), logged["run"]
    assert "unknown nope" in refused(["ope", "--dataset", data, run, "--estimators", "fqe,nope"], capsys,
                                     tmp_path / "a")
    assert "not a run directory" in refused(["ope", "--dataset", data, str(tmp_path)], capsys, tmp_path / "b")
    no_checkpoints = tmp_path / "empty_run"
    (no_checkpoints / "checkpoints").mkdir(parents=True)
    (no_checkpoints / "config.yaml").write_text((Path(run) / "config.yaml").read_text())
    assert "no checkpoint" in refused(["ope", "--dataset", data, str(no_checkpoints)], capsys, tmp_path / "c")
    other = tmp_path / "pendulum_data"
    assert main(["collect", "--env", "pendulum", "--policy", "random", "--steps", "400", "--num-envs", "2",
                 "--out", str(other)]) == 0
    capsys.readouterr()
    error = refused(["ope", "--dataset", str(other), run], capsys, tmp_path / "d")
    assert "pointmass" in error and "pendulum" in error


def test_imported_data_without_behavior_log_probs_gets_fqe_only(logged, tmp_path):
    transition, metadata = storage.load(logged["data"])
    storage.save(tmp_path / "no_log_probs", transition._replace(
        behavior_log_prob=np.full_like(transition.behavior_log_prob, np.nan)), metadata)
    options = Options(estimators=("fqe", "pdis"), num_resamples=20, fqe_overrides=TINY_FQE)
    policy = run_ope(tmp_path / "no_log_probs", [f"{logged['run']}@{LOGGER}"], options)["policies"][0]
    assert "no behavior log-probs" in policy["unavailable"]["pdis"] and "fqe" in policy["estimates"]
