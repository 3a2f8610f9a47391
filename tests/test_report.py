"""`jaxrl report`: the estimators against hand-computed values, the stratified bootstrap against an independent
computation, the command end to end on synthetic run folders, and its errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

from jaxrl.cli import main
from jaxrl.report import stats
from jaxrl.report.build import OUTPUTS, build_report
from jaxrl.report.markdown import render_markdown
from jaxrl.report.runs import ReportError

REFERENCES = {"random": -100.0, "expert": 0.0}  # a return of -100 + x scores x


def write_run(folder: Path, agent: str, returns: dict[int, list[float]], env: str = "pendulum",
              dataset: str | None = "data/pendulum/medium", references: dict | None = REFERENCES,
              config: dict | None = None, finished: bool = True) -> Path:
    """A run folder as `jaxrl train` writes it: `returns` maps each evaluated step to every seed's return."""
    seeds = list(range(len(next(iter(returns.values())))))
    folder.mkdir(parents=True)
    document = {"agent": agent, "env": env, "dataset": dataset, "seeds": seeds, "seed_batch": None,
                "config": config or {"num_updates": max(returns), "seed": 0}}
    (folder / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    records = [{"seed": seed, "step": step, "chunk": chunk, "eval/return": step_returns[seed], "eval/cost": 0.0}
               for chunk, (step, step_returns) in enumerate(sorted(returns.items())) for seed in seeds]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    final = returns[max(returns)]
    summary = {"agent": agent, "env": env, "updates": max(returns), "seeds": seeds, "eval_return_per_seed": final,
               "eval_return_mean": float(np.mean(final))}
    if references is not None:
        normalized = [100 * (r - references["random"]) / (references["expert"] - references["random"]) for r in final]
        summary.update(normalized_score_per_seed=normalized, normalized_score_mean=float(np.mean(normalized)),
                       reference_returns=references)
    elif dataset is not None:
        summary.update(normalized_score_per_seed=None, normalized_score_mean=None)
    if finished:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def study(root: Path) -> Path:
    """Two agents on two tasks, three seeds each, evaluated at steps 0, 5 and 10; normalized score = return + 100."""
    finals = {("iql", "medium"): [-40.0, -30.0, -20.0], ("iql", "expert"): [-10.0, -5.0, 0.0],
              ("bc", "medium"): [-60.0, -60.0, -60.0], ("bc", "expert"): [-20.0, -10.0, 0.0]}
    for (agent, tier), final in finals.items():
        write_run(root / tier / agent, agent, {0: [-100.0] * 3, 5: [r - 10 for r in final], 10: final},
                  dataset=f"data/pendulum/{tier}")
    return root


# The estimators on a small matrix worked by hand: three tasks of four runs.
TASKS = [np.array([0.0, 10.0, 20.0, 30.0]), np.array([40.0, 50.0, 60.0, 200.0]), np.array([100.0] * 4)]


def test_estimators_match_hand_computed_values():
    # pooled and sorted: 0 10 20 30 | 40 50 60 100 100 100 | 100 200: IQM = (30+40+50+60+100+100) / 6
    assert stats.iqm(TASKS) == pytest.approx(380 / 6)
    assert stats.iqm(TASKS) == pytest.approx(scipy.stats.trim_mean(np.concatenate(TASKS), 0.25))
    assert stats.mean(TASKS) == pytest.approx((15 + 87.5 + 100) / 3)  # task means 15, 87.5, 100
    assert stats.median(TASKS) == pytest.approx(87.5)
    # clipped at 100: 0+10+20+30+40+50+60+100*5 = 710 over 12 runs
    assert stats.optimality_gap(TASKS, threshold=100.0) == pytest.approx(100 - 710 / 12)
    assert stats.iqm([np.array([1.0, 2.0, 6.0])]) == pytest.approx(3.0)  # under 4 runs nothing is trimmed
    profile = stats.performance_profile(TASKS, np.array([-1.0, 25.0, 100.0, 250.0]))
    np.testing.assert_allclose(profile, [1.0, 9 / 12, 1 / 12, 0.0])


def test_estimators_take_batch_axes():
    batch = [np.stack([scores, scores + 1]) for scores in TASKS]  # [2, runs] per task
    np.testing.assert_allclose(stats.iqm(batch), [stats.iqm(TASKS), stats.iqm(TASKS) + 1])
    np.testing.assert_allclose(stats.median(batch), [87.5, 88.5])


def test_resamples_draw_each_task_from_its_own_runs():
    tasks = [np.array([0.0, 1.0, 2.0]), np.array([100.0, 101.0]), np.array([7.0])]
    resamples = stats.stratified_resamples(tasks, reps=500, rng=np.random.default_rng(0))
    for scores, copies in zip(tasks, resamples, strict=True):
        assert copies.shape == (500, len(scores))
        assert set(np.unique(copies)) <= set(scores)
    assert set(np.unique(resamples[0])) == {0.0, 1.0, 2.0}  # with replacement: every run shows up somewhere


def test_interval_collapses_to_the_point_when_every_task_agrees_over_seeds():
    tasks = [np.array([50.0, 50.0, 50.0]), np.array([80.0, 80.0])]
    resamples = stats.stratified_resamples(tasks, reps=200, rng=np.random.default_rng(1))
    for metric in (stats.iqm, stats.mean, stats.median):
        np.testing.assert_allclose(stats.percentile_interval(metric(resamples)), [metric(tasks)] * 2)


def test_report_intervals_match_an_independent_stratified_bootstrap(tmp_path):
    study(tmp_path)
    reps, seed = 300, 3
    report = build_report([tmp_path], reps=reps, seed=seed)
    rng = stats.agent_rng(seed, "iql")  # the report's generator for this agent; tasks in sorted order
    tasks = [np.array([90.0, 95.0, 100.0]), np.array([60.0, 70.0, 80.0])]  # expert, medium
    draws = [rng.integers(0, len(scores), size=(reps, len(scores))) for scores in tasks]
    replicates = {"iqm": [], "mean": [], "median": [], "optimality_gap": []}
    for rep in range(reps):
        copies = [scores[draw[rep]] for scores, draw in zip(tasks, draws, strict=True)]
        replicates["iqm"].append(scipy.stats.trim_mean(np.concatenate(copies), 0.25))
        replicates["mean"].append(np.mean([copy.mean() for copy in copies]))
        replicates["median"].append(np.median([copy.mean() for copy in copies]))
        replicates["optimality_gap"].append(100 - np.minimum(np.concatenate(copies), 100).mean())
    for name, values in replicates.items():
        np.testing.assert_allclose(report["agents"]["iql"][name]["ci"], np.percentile(values, [2.5, 97.5]))
    assert report["agents"]["iql"]["iqm"]["estimate"] == pytest.approx((70 + 80 + 90 + 95) / 4)  # 60 and 100 cut
    medium_lows = [np.mean(tasks[1][draw]) for draw in draws[1]]  # a statistical check: the spread is real
    assert min(medium_lows) < 70 < max(medium_lows)


def test_report_command_writes_the_table_the_aggregates_and_the_plots(tmp_path):
    runs = study(tmp_path / "runs")
    (runs / "medium" / "iql" / "wandb" / "files").mkdir(parents=True)
    (runs / "medium" / "iql" / "wandb" / "files" / "config.yaml").write_text("not: a run\n")  # W&B's own file
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jaxrl.cli", "report", str(runs), "--out", str(out), "--reps", "200",
               "--seed", "1"]
    done = subprocess.run(command, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "iql: IQM normalized score 83.75" in done.stdout
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    for name in ("performance_profile.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "aggregates.json").read_text())
    assert report["score"] == "normalized_score" and report["reps"] == 200 and report["seed"] == 1
    assert report["tasks"] == ["pendulum/expert", "pendulum/medium"]
    assert report["agents"]["bc"]["runs"] == 6 and report["agents"]["bc"]["tasks"] == 2
    curve = report["learning_curves"]["agents"]["iql"]
    assert curve["steps"] == [0, 5, 10] and curve["iqm"] == pytest.approx([0.0, 73.75, 83.75])
    markdown = (out / "report.md").read_text()
    assert "| agent | tasks | runs | IQM | mean | median | optimality gap |" in markdown
    assert "| iql | 2 | 6 | 83.8 [" in markdown and "200 resamples, seed 1" in markdown

    assert main(["report", str(runs), "--out", str(tmp_path / "again"), "--reps", "200", "--seed", "1"]) == 0
    assert (tmp_path / "again" / "aggregates.json").read_text() == (out / "aggregates.json").read_text()


def test_raw_returns_of_one_task_are_reported_without_an_optimality_gap(tmp_path):
    for agent, final in (("ppo", [10.0, 12.0]), ("sac", [8.0, 9.0])):
        write_run(tmp_path / agent, agent, {0: [0.0, 0.0], 4096: final}, env="pointmass", dataset=None,
                  references=None)
    report = build_report([tmp_path], reps=50)
    assert report["score"] == "return" and report["optimality_gap_threshold"] is None
    assert "optimality_gap" not in report["agents"]["ppo"] and report["agents"]["ppo"]["mean"]["estimate"] == 11.0


def test_report_md_says_when_tasks_hold_different_run_counts_and_agents_miss_tasks(tmp_path):
    study(tmp_path)
    write_run(tmp_path / "random" / "iql", "iql", {0: [-90.0] * 4}, dataset="data/pendulum/random")
    markdown = render_markdown(build_report([tmp_path], reps=50))
    assert "Tasks hold different numbers of runs (3 to 4)" in markdown
    assert "bc lacks pendulum/random" in markdown
    assert "| pendulum/random | – | 10.0 (4) |" in markdown


def test_a_folder_without_runs_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=f"{tmp_path / 'empty'}: no runs in it or beneath it"):
        build_report([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        build_report([tmp_path / "missing"])


def test_an_unfinished_run_is_an_error_naming_it(tmp_path):
    study(tmp_path)
    write_run(tmp_path / "random" / "iql", "iql", {0: [-100.0], 5: [-50.0]}, finished=False)
    with pytest.raises(ReportError, match=f"{tmp_path / 'random' / 'iql'}: no summary.json, so the run has not"):
        build_report([tmp_path])


def test_mixed_score_kinds_are_an_error_naming_a_folder_of_each(tmp_path):
    study(tmp_path)
    write_run(tmp_path / "unreferenced" / "iql", "iql", {0: [1.0], 5: [2.0]}, dataset="data/pm", references=None)
    with pytest.raises(ReportError, match=r"mix normalized scores .* with raw returns \(.*unreferenced/iql"):
        build_report([tmp_path])


def test_raw_returns_across_tasks_are_refused(tmp_path):
    write_run(tmp_path / "a", "ppo", {0: [1.0], 5: [2.0]}, env="pointmass", dataset=None, references=None)
    write_run(tmp_path / "b", "ppo", {0: [1.0], 5: [2.0]}, env="pendulum", dataset=None, references=None)
    with pytest.raises(ReportError, match="raw returns of different tasks cannot be aggregated.*pendulum, pointmass"):
        build_report([tmp_path])


def test_runs_of_one_agent_and_task_with_different_configs_are_refused(tmp_path):
    write_run(tmp_path / "a", "iql", {0: [-50.0]}, config={"num_updates": 10, "expectile": 0.7})
    write_run(tmp_path / "b", "iql", {0: [-50.0]}, config={"num_updates": 10, "expectile": 0.9})
    with pytest.raises(ReportError, match=r"iql on pendulum/medium: .* different configs \(expectile\)"):
        build_report([tmp_path])


def test_the_command_prints_bad_input_as_one_line_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"jaxrl report: error: {tmp_path / 'empty'}: no runs")
    assert not (tmp_path / "out").exists()
    study(tmp_path / "runs")
    assert main(["report", str(tmp_path / "runs"), "--reps", "0", "--out", str(tmp_path / "out")]) == 2
    assert "(--reps) must be at least 1, got 0" in capsys.readouterr().err
