"""scripts/compare_pipelines.py on run folders written by hand: a finished run against one cut off after its OPE
stage, and the folders it refuses."""

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import compare_pipelines  # noqa: E402

DATA = {"stage": "data", "passed": True, "figures": {"whole_episodes": 12, "return_mean": 20.0, "cost_mean": 3.5}}
NARROW = {**DATA, "passed": False, "decision": "stopped: action coverage 0.030 under 0.2"}
OPE = {"stage": "ope", "passed": True, "figures": {
    "passing": 1, "chosen": "iql seed 0", "incumbent": {"estimate": 5.0, "true_return": 8.0},
    "policies": [{"name": "iql seed 0", "passed": True, "true_return": 9.0},
                 {"name": "cql seed 0", "passed": False, "true_return": 7.0}]}}
PROMOTE = {"stage": "promote", "passed": True, "figures": {
    "candidate_return_mean": 21.5, "incumbent_return_mean": 21.0, "candidate_cost_mean": 3.0,
    "incumbent_cost_mean": 3.25, "live_version": "v3"}}


def run_folder(path: Path, env: str, stages: list[dict], finished: bool) -> Path:
    path.mkdir()
    (path / "pipeline.yaml").write_text(yaml.safe_dump({"config": {"env": env, "seed": 4, "live_env": ""}}))
    if finished:
        summary = {"stages": stages, "promoted": True, "live_version": "v3", "stopped_at": None,
                   "seconds_per_stage": {stage["stage"]: 10.0 for stage in stages}}
        (path / "summary.json").write_text(json.dumps(summary))
    else:
        (path / "pipeline_state.json").write_text(json.dumps({"results": {s["stage"]: s for s in stages}}))
    return path


def test_a_finished_run_against_one_cut_off(tmp_path, capsys):
    finished = run_folder(tmp_path / "a", "pointmass", [DATA, OPE, PROMOTE], finished=True)
    cut_off = run_folder(tmp_path / "b", "pointmass", [DATA, OPE], finished=False)
    assert compare_pipelines.main(["--machines", "here", "there", "--no-doc", str(finished), str(cut_off)]) == 0
    rows = {line.split(" | ")[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith("| pointm")}
    assert rows["data"] == ("| pointmass seed 4 | data | 12 whole episodes, return 20.00 and 3.50 cost per episode; "
                            "passed | 12 whole episodes, return 20.00 and 3.50 cost per episode; passed |")
    assert "incumbent 8.0; passed iql seed 0 (9.0); stopped cql seed 0 (7.0)" in rows["ope vs rollouts"]
    assert rows["promote"].endswith("return 21.50 vs 21.00, cost 3.00 vs 3.25; v3 live; passed | – |")
    assert rows["outcome"] == "| pointmass seed 4 | outcome | promoted v3 (30 s of stages) | cut off after ope |"


def test_a_stop_says_why_and_the_stages_after_it_are_empty(tmp_path, capsys):
    finished = run_folder(tmp_path / "a", "pointmass", [DATA, OPE, PROMOTE], finished=True)
    stopped = run_folder(tmp_path / "b", "pointmass", [NARROW], finished=True)
    compare_pipelines.main(["--no-doc", str(finished), str(stopped)])
    rows = {line.split(" | ")[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith("| pointm")}
    assert rows["data"].endswith("cost per episode; stopped (action coverage 0.030 under 0.2) |")
    assert rows["ope"].endswith(" | – |")


def test_an_env_without_cost_leaves_cost_out(tmp_path, capsys):
    hopper = run_folder(tmp_path / "a", "hopper", [DATA], finished=True)
    compare_pipelines.main(["--no-doc", str(hopper), str(hopper)])
    assert "12 whole episodes, return 20.00 per episode; passed" in capsys.readouterr().out


def test_refuses_an_odd_count_and_a_folder_that_is_no_pipeline_run(tmp_path, capsys):
    run = run_folder(tmp_path / "a", "pointmass", [DATA], finished=True)
    with pytest.raises(SystemExit):
        compare_pipelines.main(["--no-doc", str(run)])
    assert "runs come in pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare_pipelines.main(["--no-doc", str(run), str(tmp_path)])
    assert f"{tmp_path}: no pipeline.yaml" in capsys.readouterr().err
