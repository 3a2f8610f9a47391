"""The figures of `jaxrl report`: performance profiles and learning curves, each agent with its bootstrap band.

Built with matplotlib's object-oriented `Figure` (no pyplot, no display backend); importing this module imports
matplotlib, so `jaxrl.report.build` imports it only when it writes a report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxrl.report.runs import NORMALIZED

SCORE_LABELS = {NORMALIZED: "normalized score", "return": "return"}


def performance_profile_figure(report: dict[str, Any]) -> Figure:
    """The fraction of runs scoring above each threshold, one line and band per agent."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    thresholds = np.asarray(report["performance_profile"]["thresholds"])
    for agent, profile in report["performance_profile"]["agents"].items():
        (line,) = axes.plot(thresholds, profile["estimate"], label=agent)
        axes.fill_between(thresholds, *profile["ci"], color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel(f"{SCORE_LABELS[report['score']]} τ")
    axes.set_ylabel("fraction of runs with score > τ")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(f"Performance profile ({_tasks(report)})")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def learning_curves_figure(report: dict[str, Any]) -> Figure:
    """IQM over each agent's runs at each evaluation, with its band; agents without common steps are left out."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    curves = report["learning_curves"]
    for agent, curve in curves["agents"].items():
        if len(curve["steps"]):
            (line,) = axes.plot(curve["steps"], curve["iqm"], marker="o", markersize=3, label=agent)
            axes.fill_between(curve["steps"], *curve["ci"], color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel(curves["unit"].replace("_", " "))
    axes.set_ylabel(f"IQM {SCORE_LABELS[report['score']]}")
    axes.set_title(f"Learning curves ({_tasks(report)})")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def _tasks(report: dict[str, Any]) -> str:
    count = len(report["tasks"])
    return f"{count} task" if count == 1 else f"{count} tasks"
