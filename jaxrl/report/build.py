"""`jaxrl report`: from run folders to aggregates with bootstrap intervals, a markdown table and two plots."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.infra.files import atomic_write_file, atomic_write_json, atomic_write_text
from jaxrl.report import stats
from jaxrl.report.markdown import render_markdown
from jaxrl.report.runs import NORMALIZED, Run, find_run_folders, group_runs, load_run

OPTIMALITY_THRESHOLD = 100.0  # the expert's normalized score: the optimality gap is measured to it
PROFILE_POINTS = 101  # thresholds of the performance profile
OUTPUTS = ("report.md", "aggregates.json", "performance_profile.png", "learning_curves.png")


def write_report(paths: list[str | Path], out: str | Path, reps: int = stats.DEFAULT_REPS,
                 seed: int = 0) -> dict[str, Any]:
    """Aggregate the runs in or beneath `paths` and write OUTPUTS into `out`, each file atomically; returns the
    aggregates (the content of aggregates.json)."""
    from jaxrl.report import plots  # matplotlib only when a report is written

    report = build_report(paths, reps, seed)
    out = Path(out)
    atomic_write_json(out / "aggregates.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))
    for name, figure in (("performance_profile.png", plots.performance_profile_figure(report)),
                         ("learning_curves.png", plots.learning_curves_figure(report))):
        atomic_write_file(out / name, functools.partial(figure.savefig, format="png", dpi=120))
    return report


def build_report(paths: list[str | Path], reps: int = stats.DEFAULT_REPS, seed: int = 0) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data; the same paths, reps and seed give the same numbers."""
    if reps < 1:
        raise ValueError(f"the number of bootstrap resamples (--reps) must be at least 1, got {reps}")
    groups = group_runs([load_run(folder) for folder in find_run_folders(paths)])
    every_run = [run for tasks in groups.values() for runs in tasks.values() for run in runs]
    kind = every_run[0].score_kind
    threshold = OPTIMALITY_THRESHOLD if kind == NORMALIZED else None
    all_tasks = sorted({run.task for run in every_run})
    thresholds = _profile_thresholds(every_run, kind)
    agents, profiles, curves = {}, {}, {}
    for agent, tasks in groups.items():
        rng = stats.agent_rng(seed, agent)
        task_scores = [np.concatenate([run.scores for run in runs]) for runs in tasks.values()]
        resamples = stats.stratified_resamples(task_scores, reps, rng)
        agents[agent] = {"tasks": len(tasks), "runs": sum(len(scores) for scores in task_scores),
                         "missing_tasks": [task for task in all_tasks if task not in tasks],
                         **_aggregates(task_scores, resamples, threshold)}
        profiles[agent] = _estimate(functools.partial(stats.performance_profile, thresholds=thresholds),
                                    task_scores, resamples)
        curves[agent] = _learning_curve(tasks, reps, rng)
    return {"score": kind, "reps": reps, "seed": seed, "confidence": stats.CONFIDENCE,
            "optimality_gap_threshold": threshold, "tasks": all_tasks, "agents": agents,
            "per_task": _per_task(groups, all_tasks),
            "performance_profile": {"thresholds": thresholds, "agents": profiles},
            "learning_curves": {"unit": _unit(every_run), "agents": curves}}


def _aggregates(task_scores: list[np.ndarray], resamples: list[np.ndarray], threshold: float | None):
    metrics = {"iqm": stats.iqm, "mean": stats.mean, "median": stats.median}
    if threshold is not None:  # raw returns have no expert to measure a gap to
        metrics["optimality_gap"] = functools.partial(stats.optimality_gap, threshold=threshold)
    return {name: _estimate(metric, task_scores, resamples) for name, metric in metrics.items()}


def _estimate(metric, task_scores: list[np.ndarray], resamples: list[np.ndarray]) -> dict[str, Any]:
    """The metric on the scores, and the percentile interval of the metric over the resamples."""
    samples = np.moveaxis(metric(resamples), 0, -1)  # resamples on the last axis, for the interval
    return {"estimate": metric(task_scores), "ci": stats.percentile_interval(samples)}


def _learning_curve(tasks: dict[str, list[Run]], reps: int, rng: np.random.Generator) -> dict[str, Any]:
    """IQM over every run of the agent at each step all its runs evaluated, with a stratified bootstrap band."""
    runs = [run for task_runs in tasks.values() for run in task_runs]
    steps = functools.reduce(np.intersect1d, [run.steps for run in runs])
    if not len(steps):
        return {"steps": steps, "iqm": [], "ci": [[], []]}
    task_curves = [np.concatenate([run.curve[:, np.searchsorted(run.steps, steps)] for run in task_runs]).T
                   for task_runs in tasks.values()]  # each [steps, runs]
    resamples = stats.stratified_resamples(task_curves, reps, rng)  # each [steps, reps, runs]
    return {"steps": steps, "iqm": stats.iqm(task_curves), "ci": stats.percentile_interval(stats.iqm(resamples))}


def _per_task(groups: dict[str, dict[str, list[Run]]], all_tasks: list[str]) -> dict[str, Any]:
    """Each agent's scores on each task, with the folders they came from."""
    return {task: {agent: {"mean": float(np.mean(np.concatenate([run.scores for run in tasks[task]]))),
                           "scores": np.concatenate([run.scores for run in tasks[task]]),
                           "folders": [str(run.folder) for run in tasks[task]]}
                   for agent, tasks in groups.items() if task in tasks}
            for task in all_tasks}


def _profile_thresholds(runs: list[Run], kind: str) -> np.ndarray:
    scores = np.concatenate([run.scores for run in runs])
    low, high = scores.min(), scores.max()
    if kind == NORMALIZED:  # always show the span from random (0) to expert (100)
        low, high = min(low, 0.0), max(high, OPTIMALITY_THRESHOLD)
    return np.linspace(low, high, PROFILE_POINTS)


def _unit(runs: list[Run]) -> str:
    units = sorted({run.unit for run in runs})
    return units[0] if len(units) == 1 else " or ".join(units)
