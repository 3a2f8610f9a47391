"""The pipeline's `report.md` and `pipeline.png`: what each stage decided and why, with its figures and limits,
the learning curves, OPE estimates against true returns, shadow disagreement, the canary comparison, the
fine-tuning's cost and incident timeline, and the registry's history."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from jaxrl.deploy.registry import Registry
from jaxrl.infra.files import atomic_write_file, atomic_write_text
from jaxrl.infra.logging import read_metrics


def write(run_dir: Path, summary: dict[str, Any], registry: Registry) -> None:
    panels = _panels(run_dir, summary)
    if panels:
        atomic_write_file(run_dir / "pipeline.png", lambda handle: handle.write(_plot(panels)))
    atomic_write_text(run_dir / "report.md", markdown(summary, registry, bool(panels), run_dir))


def markdown(summary: dict[str, Any], registry: Registry, plots: bool, run_dir: Path) -> str:
    outcome = (f"**Promoted {summary['live_version']}.**" if summary["promoted"] else
               f"**Nothing promoted: stopped at the {summary['stopped_at']} stage"
               f"{' (rolled back)' if summary['rolled_back'] else ''}.** Live version: {summary['live_version']}.")
    lines = ["# Pipeline report", "", outcome + (f" Fault drill: `{summary['inject']}`." if summary["inject"] else ""),
             "", "| stage | verdict | decision | seconds |", "|---|---|---|---|"]
    for stage in summary["stages"]:
        verdict = "passed" if stage["passed"] else ("rolled back" if stage.get("rolled_back") else "stopped")
        lines.append(f"| {stage['stage']} | {verdict} | {stage['decision']} | {stage['seconds']:.1f} |")
    if plots:
        lines += ["", "![pipeline](pipeline.png)"]
    for stage in summary["stages"]:
        lines += ["", f"## {stage['stage']}", "", stage["decision"], ""]
        if stage["thresholds"]:
            lines.append("Limits: " + ", ".join(f"`{k}` {_fmt(v)}" for k, v in stage["thresholds"].items()))
            lines.append("")
        rows = stage["figures"].get("policies")
        if rows:
            lines += ["| policy | return estimate | lower bound | cost estimate | upper bound | true return | "
                      "true cost | verdict |", "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {r['name']} | {_fmt(r.get('return_estimate'))} | {_fmt(r.get('return_low'))} | "
                      f"{_fmt(r.get('cost_estimate'))} | {_fmt(r.get('cost_high'))} | {_fmt(r.get('true_return'))} | "
                      f"{_fmt(r.get('true_cost'))} | {r['reason']} |" for r in rows]
        scalars = {k: v for k, v in stage["figures"].items() if k not in ("policies", "disagreement_histogram")}
        if scalars:
            lines += ["", "```json", json.dumps(scalars, indent=1, sort_keys=True, default=str), "```"]
    lines += ["", "## Registry", "", f"`{registry.path}`; live: {registry.live}", "",
              "| time | event | version | previous | reason |", "|---|---|---|---|---|"]
    lines += [f"| {e['time']} | {e['event']} | {e['version']} | {e.get('previous') or ''} | "
              f"{e.get('reason') or e.get('note') or ''} |" for e in registry.events]
    lines += ["", f"Folders: candidates in `{run_dir / 'candidates'}`, OPE in `{run_dir / 'ope'}`, fine-tuning in "
              f"`{run_dir / 'finetune'}`; every figure above is in `summary.json`.", ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _panels(run_dir: Path, summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, draw(axes)) for each plot the finished stages have data for."""
    stages = {stage["stage"]: stage for stage in summary["stages"]}
    panels = []
    curves = {agent: read_metrics(run_dir / "candidates" / agent) for agent in ("iql", "cql", "calql")}
    curves = {agent: records for agent, records in curves.items() if records}
    if curves:
        def offline_curves(axes):
            for agent, records in curves.items():
                for seed in sorted({r["seed"] for r in records}):
                    rows = [(r["step"], r["eval/return"]) for r in records if r["seed"] == seed and "eval/return" in r]
                    axes.plot(*zip(*rows, strict=True), marker="o", label=f"{agent} seed {seed}")
            axes.set_xlabel("offline updates")
            axes.set_ylabel("eval return")
            axes.legend(fontsize=6)
        panels.append(("candidates, offline", offline_curves))
    if "ope" in stages and stages["ope"]["figures"].get("policies"):
        rows = [r for r in stages["ope"]["figures"]["policies"] if r.get("return_low") is not None]
        incumbent = stages["ope"]["thresholds"]["incumbent_value"]

        def ope(axes):
            x = range(len(rows))
            axes.errorbar(x, [r["return_estimate"] for r in rows],
                          yerr=[[r["return_estimate"] - r["return_low"] for r in rows], [0] * len(rows)], fmt="o",
                          capsize=3, label="estimate, lower bound")
            if all(r.get("true_return") is not None for r in rows):
                axes.plot(x, [r["true_return"] for r in rows], "x", color="black", label="true (rollouts)")
            axes.axhline(incumbent, color="grey", linestyle="--", label="incumbent (logs)")
            axes.set_xticks(list(x), [r["name"] for r in rows], rotation=45, fontsize=6)
            axes.set_ylabel("discounted return")
            axes.legend(fontsize=6)
        panels.append(("OPE gate", ope))
    if "shadow" in stages:
        histogram = stages["shadow"]["figures"]["disagreement_histogram"]

        def shadow(axes):
            axes.bar(range(len(histogram)), histogram)
            axes.set_xlabel("action distance (bins of 0.1 x sqrt(d))")
            axes.set_ylabel("live states")
        panels.append(("shadow: candidate vs incumbent actions", shadow))
    if "canary" in stages:
        figures = stages["canary"]["figures"]

        def canary_bars(axes):
            names = ["return_mean", "cost_mean", "incident_rate"]
            width = 0.4
            for offset, group in ((-width / 2, "incumbent"), (width / 2, "candidate")):
                axes.bar([i + offset for i in range(3)], [figures[f"{group}_{n}"] or 0.0 for n in names], width,
                         label=group)
            axes.set_xticks(range(3), names, fontsize=7)
            axes.legend(fontsize=6)
        panels.append(("canary", canary_bars))
    finetune_records = [r for r in read_metrics(run_dir / "finetune") if r.get("chunk", 0) > 0]
    if finetune_records:
        def timeline(axes):
            steps = [r["step"] for r in finetune_records]
            axes.plot(steps, [r["eval/return"] for r in finetune_records], marker="o", label="eval return")
            axes.plot(steps, [r.get("train/cost_total") for r in finetune_records], marker="s", label="cost per chunk")
            rates = [(r.get("train/incidents") or 0) / max(r.get("train/episodes") or 0, 1) for r in finetune_records]
            axes.plot(steps, [10 * rate for rate in rates], marker="^", label="incident rate x 10")
            axes.set_xlabel("online env steps")
            axes.legend(fontsize=6)
        panels.append(("fine-tuning: return, cost, incidents", timeline))
    return panels


def _plot(panels: list[tuple[str, Any]]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.0 * len(panels), 3.4), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, draw) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), index)
        draw(axes)
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
