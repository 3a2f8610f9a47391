"""report.md: the aggregates table of `jaxrl report`, the per-task means, and the two plots."""

from __future__ import annotations

from typing import Any

from jaxrl.report.runs import NORMALIZED

METRIC_NAMES = {"iqm": "IQM", "mean": "mean", "median": "median", "optimality_gap": "optimality gap"}
SCORE_TEXT = {
    NORMALIZED: "normalized score, 100 · (return − random) / (expert − random) with the dataset's reference "
                "returns, of each seed's final evaluation (summary.json)",
    "return": "raw return of each seed's final evaluation (summary.json); these runs have no reference returns, "
              "so the report covers one task",
}


def render_markdown(report: dict[str, Any]) -> str:
    """The report.md text for the aggregates that `build_report` returns."""
    digits = 1 if report["score"] == NORMALIZED else 2
    tasks = report["tasks"]
    lines = ["# Aggregate report", "",
             f"Score: {SCORE_TEXT[report['score']]}. {len(tasks)} task(s): {', '.join(tasks)}.", "",
             f"Point estimates with {report['confidence']:.0%} stratified bootstrap confidence intervals "
             f"(percentile; {report['reps']} resamples, seed {report['seed']}): each resample draws every task's "
             "runs (seeds) with replacement from that task's own runs.", "",
             *aggregates_table(report, digits), "",
             *_definitions(report), *_unequal_runs(report), *_missing_tasks(report), "",
             "## Per task", "", "Mean score over runs (number of runs):", "",
             *_per_task_table(report, digits), "",
             "## Plots", "",
             "![performance profile](performance_profile.png)", "",
             "Performance profile: the fraction of runs (all tasks pooled) scoring above each threshold, "
             f"with {report['confidence']:.0%} bootstrap bands.", "",
             "![learning curves](learning_curves.png)", "",
             f"Learning curves: IQM over every run of an agent at each evaluation ({report['learning_curves']['unit']})"
             f" that all its runs logged, with {report['confidence']:.0%} bootstrap bands."]
    return "\n".join(lines) + "\n"


def aggregates_table(report: dict[str, Any], digits: int) -> list[str]:
    """The markdown rows of the aggregates table: per agent, each estimate with its interval."""
    metrics = [name for name in METRIC_NAMES if name in next(iter(report["agents"].values()))]
    rows = ["| agent | tasks | runs | " + " | ".join(METRIC_NAMES[name] for name in metrics) + " |",
            "|---|---|---|" + "---|" * len(metrics)]
    for agent, result in report["agents"].items():
        cells = [_with_interval(result[name], digits) for name in metrics]
        rows.append(f"| {agent} | {result['tasks']} | {result['runs']} | " + " | ".join(cells) + " |")
    return rows


def _with_interval(estimate: dict[str, Any], digits: int) -> str:
    low, high = estimate["ci"]
    return f"{estimate['estimate']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _definitions(report: dict[str, Any]) -> list[str]:
    lines = ["IQM: the mean of the middle 50% of all runs pooled over tasks (with fewer than 4 runs, their mean). "
             "Mean and median: over tasks, of each task's mean over its runs."]
    if report["optimality_gap_threshold"] is not None:
        lines.append(f"Optimality gap: {report['optimality_gap_threshold']:g} minus the mean over runs of "
                     f"min(score, {report['optimality_gap_threshold']:g}); lower is better.")
    return lines


def _unequal_runs(report: dict[str, Any]) -> list[str]:
    counts = {len(result["scores"]) for results in report["per_task"].values() for result in results.values()}
    if len(counts) == 1:
        return []
    return ["", f"Tasks hold different numbers of runs ({min(counts)} to {max(counts)}): IQM, optimality gap and the "
            "performance profile weight every run equally, so tasks with more runs count more; mean and median "
            "weight every task equally."]


def _missing_tasks(report: dict[str, Any]) -> list[str]:
    missing = {agent: result["missing_tasks"] for agent, result in report["agents"].items() if result["missing_tasks"]}
    if not missing:
        return []
    return ["", "**Not every agent ran every task, so their aggregates are not comparable:** "
            + "; ".join(f"{agent} lacks {', '.join(tasks)}" for agent, tasks in missing.items()) + "."]


def _per_task_table(report: dict[str, Any], digits: int) -> list[str]:
    agents = list(report["agents"])
    rows = ["| task | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
    for task, results in report["per_task"].items():
        cells = [f"{results[agent]['mean']:.{digits}f} ({len(results[agent]['scores'])})" if agent in results else "–"
                 for agent in agents]
        rows.append(f"| {task} | " + " | ".join(cells) + " |")
    return rows
