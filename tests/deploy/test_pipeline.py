"""`jaxrl pipeline` end to end on pointmass, small: it promotes a candidate that beats the incumbent, and each
fault drill stops at its gate or rolls back with the previous live version intact; a pipeline killed with SIGKILL
mid-stage and resumed reaches the decisions of one that was not.

One stand-in incumbent and its logs (made by the bad-data drill's run, which trains and logs them before its
data gate refuses the corrupted copy) serve every test: each copies that registry and reads those logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxrl.cli import main
from jaxrl.deploy.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["incumbent_agent=ppo", f"incumbent_config={ROOT}/experiments/ppo/pointmass.yaml", "incumbent_steps=40000",
         "candidates=[iql]", "candidate_seeds=1", f"candidate_config={ROOT}/experiments/offline/{{agent}}.yaml",
         f"finetune_config={ROOT}/experiments/finetune/{{agent}}.yaml", "ope_resamples=200",
         "ope_true_returns=0", "shadow_envs=16", "shadow_steps=100", "canary_envs=32",
         "canary_fraction=0.25", "canary_steps=200", "incident_cost=8", "finetune_steps=1000",
         "finetune_chunk_steps=500"]
CONFIG = str(ROOT / "experiments" / "pipeline" / "pointmass.yaml")


def pipeline(run_dir: Path, *keys: str, inject: str | None = None) -> dict:
    drill = ["--inject", inject] if inject else []
    assert main(["pipeline", CONFIG, "--run-dir", str(run_dir), "--wandb", "disabled", "--no-progress", *drill,
                 "--set", *SMALL, *keys]) == 0
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def bad_data_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pipeline") / "bad-data"
    pipeline(run_dir, inject="bad-data")
    return run_dir


def from_incumbent(bad_data_run: Path, tmp_path: Path) -> list[str]:
    """--set keys that start a pipeline from the shared incumbent (a copy of its registry) and its logs."""
    shutil.copytree(bad_data_run / "registry", tmp_path / "registry")
    return [f"registry={tmp_path / 'registry'}", f"dataset={bad_data_run / 'data'}"]


def test_bad_data_drill_stops_at_the_data_gate(bad_data_run):
    summary = json.loads((bad_data_run / "summary.json").read_text())
    assert summary["stopped_at"] == "data" and not summary["promoted"] and summary["live_version"] == "v1"
    decision = summary["stages"][0]["decision"]
    assert "the logs are invalid" in decision and "data-corrupted" in decision and "reward" in decision
    assert Registry(bad_data_run / "registry").versions() == ["v1"]  # nothing but the incumbent was registered
    assert "Nothing promoted: stopped at the data stage" in (bad_data_run / "report.md").read_text()


def test_a_better_candidate_is_promoted(bad_data_run, tmp_path):
    summary = pipeline(tmp_path / "run", *from_incumbent(bad_data_run, tmp_path))
    assert [stage["stage"] for stage in summary["stages"]] == ["data", "offline", "ope", "shadow", "canary",
                                                               "finetune", "promote"]
    assert all(stage["passed"] for stage in summary["stages"]), summary["stages"]
    # v2: the candidate; v3: it fine-tuned; the promotion keeps v3 unless it got significantly worse
    live = "v3" if summary["stages"][-1]["figures"]["fine_tuning_kept"] else "v2"
    assert summary["promoted"] and summary["live_version"] == live
    registry = Registry(tmp_path / "registry")
    assert registry.live == live and set(registry.gates(live)) == {"data", "ope", "shadow", "canary", "finetune"}
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"**Promoted {live}.**" in report and (tmp_path / "run" / "pipeline.png").is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["stage"] for record in records] == [stage["stage"] for stage in summary["stages"]]


@pytest.mark.slow
def test_unsafe_candidate_drill_never_reaches_production(bad_data_run, tmp_path):
    # The drill's candidates seek the hazards (measured: 62.7 hazard steps per episode against 2.75 for the normal
    # candidate). FQE cannot see it (it estimates their cost like the normal one's: they act where the logs never
    # went), so which gate stops them depends on the run: OPE on their return, shadow on their actions, canary on
    # incidents. None may promote them.
    summary = pipeline(tmp_path / "run", *from_incumbent(bad_data_run, tmp_path), inject="unsafe-candidate")
    assert summary["stopped_at"] in ("ope", "shadow", "canary") and not summary["promoted"]
    assert summary["live_version"] == "v1" and Registry(tmp_path / "registry").live == "v1"


@pytest.mark.slow
def test_incident_spike_drill_rolls_back_and_keeps_the_incumbent_live(bad_data_run, tmp_path):
    summary = pipeline(tmp_path / "run", *from_incumbent(bad_data_run, tmp_path), inject="incident-spike")
    assert summary["stopped_at"] == "finetune" and summary["rolled_back"] and not summary["promoted"]
    assert summary["live_version"] == "v1"
    assert "incident rate" in summary["stages"][-1]["decision"]


@pytest.mark.slow
def test_a_pipeline_killed_mid_stage_resumes_to_the_same_decisions(bad_data_run, tmp_path):
    reference = pipeline(tmp_path / "reference", *from_incumbent(bad_data_run, tmp_path / "a"))
    args = [sys.executable, "-m", "jaxrl.cli", "pipeline", CONFIG, "--run-dir", str(tmp_path / "killed"),
            "--wandb", "disabled", "--no-progress", "--set", *SMALL, *from_incumbent(bad_data_run, tmp_path / "b")]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "candidates" / "iql" / "checkpoints"
    deadline = time.monotonic() + 300
    while not any(checkpoints.glob("[0-9]*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid offline stage: one checkpoint of two written
    process.wait(timeout=60)
    assert main(["pipeline", "--resume", str(tmp_path / "killed"), "--wandb", "disabled", "--no-progress"]) == 0
    resumed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    decisions = lambda summary: [(s["stage"], s["passed"], s["decision"]) for s in summary["stages"]]
    assert decisions(resumed) == decisions(reference)


@pytest.mark.slow
def test_recsys_pipeline_replaces_the_env_policy_in_the_shifted_world(tmp_path):
    # experiments/pipeline/recsys.yaml, small; the OPE and canary limits opened so a weak candidate (300 updates)
    # goes through every stage: what is checked is where each stage ran and what it reported.
    config = str(ROOT / "experiments" / "pipeline" / "recsys.yaml")
    keys = ["data_steps=8192", "data_envs=64", "data_min_episodes=100", "candidates=[iql]", "candidate_seeds=1",
            "candidate_updates=300", f"candidate_config={ROOT}/experiments/pipeline/recsys-{{agent}}.yaml",
            f"finetune_config={ROOT}/experiments/finetune/{{agent}}.yaml", "ope_fqe_updates=300",
            "ope_resamples=100", "ope_true_returns=0", "ope_margin=-1000", "ope_max_cost_ratio=100",
            "shadow_envs=16", "canary_envs=64", "canary_alpha=1e-9", "finetune_steps=400", "finetune_chunk_steps=200",
            "finetune_keep=best"]
    assert main(["pipeline", config, "--run-dir", str(tmp_path / "run"), "--wandb", "disabled", "--no-progress",
                 "--set", *keys]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    stages = {stage["stage"]: stage for stage in summary["stages"]}
    assert summary["promoted"] and list(stages) == ["data", "offline", "ope", "shadow", "canary", "finetune",
                                                    "promote"]
    registry = Registry(tmp_path / "run" / "registry")
    assert stages["data"]["outputs"]["incumbent_version"] == "v1" and registry.load("v1").agent == "env-policy"
    assert registry.live != "v1" and registry.load(registry.live).agent == "iql"
    shadow = stages["shadow"]["figures"]
    assert (shadow["live_env"], shadow["logged_env"]) == ("recsys-shifted", "recsys") and shadow["feature_shift"]
    assert 0.0 <= shadow["disagreement"] <= 1.0  # discrete: the share of states where the two choose differently
    assert stages["finetune"]["figures"]["env"] == "recsys-shifted"
    kept = stages["finetune"]["figures"]["kept_chunk"]  # the better evaluated of its two checkpoints
    assert kept in (1, 2) and f"its checkpoint {kept} (the best evaluation)" in stages["finetune"]["decision"]
    ope = {row["agent"]: row for row in stages["ope"]["figures"]["policies"]}
    assert set(ope) == {"iql"} and stages["ope"]["figures"]["incumbent"]["estimate"] > 0
