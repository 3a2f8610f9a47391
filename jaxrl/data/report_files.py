"""The human-readable faces of a quality report: `quality.md` text and the `returns.png` histogram."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.infra.files import atomic_write_file


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_number(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _per_dim_table(stats: dict[str, list[float]]) -> list[str]:
    rows = [[d, *(stats[name][d] for name in ("min", "max", "mean", "std"))] for d in range(len(stats["min"]))]
    return _table(["dim", "min", "max", "mean", "std"], rows)


MAX_ACTION_ROWS = 20  # discrete actions listed in quality.md; beyond it, the most and least frequent


def _coverage_lines(coverage: dict[str, Any]) -> list[str]:
    if "frequencies" in coverage:
        frequencies = coverage["frequencies"]
        head = [f"Fraction of actions taken: {_number(coverage['fraction_taken'])}"]
        if "effective_actions" in coverage:
            head.append(f"Effective number of actions (exp of the frequencies' entropy): "
                        f"{_number(coverage['effective_actions'])} of {len(frequencies)}")
        order = sorted(range(len(frequencies)), key=lambda action: -frequencies[action])
        if len(frequencies) > MAX_ACTION_ROWS:  # the most and the least frequent only
            half = MAX_ACTION_ROWS // 2
            head.append(f"The {half} most and {half} least frequent actions (all of them: quality.json)")
            order = order[:half] + order[-half:]
        rows = [[action, frequencies[action]] for action in order]
        return [*("- " + line for line in head), ""] + _table(["action", "frequency"], rows)
    bins = coverage["bins"]
    per_dim = ", ".join(_number(value) for value in coverage["per_dim"])
    return [
        f"Grid of {bins} bins per dimension over [-1, 1]; a cell is covered when an action falls in it.",
        "",
        f"- per dimension: {per_dim}",
        f"- pairs of dimensions ({bins}x{bins} cells): mean {_number(coverage['pairwise_mean'])}, "
        f"worst {_number(coverage['pairwise_min'])} (dims {coverage['pairwise_min_dims']})",
        f"- joint grid, occupied / min(N, cells): {_number(coverage['joint'])}",
        "",
    ]


def _provenance_lines(provenance: dict[str, Any]) -> list[str]:
    lines = [f"- {name.replace('_', ' ')}: {value}" for name, value in provenance.items() if name != "parent"]
    parent = provenance.get("parent")
    if parent:
        lines.append(f"- parent: {parent['path']} (fingerprint `{parent['fingerprint'][:16]}`), {parent['derivation']}")
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """`quality.md`: the report as headed tables."""
    returns, costs = report["returns"], report["costs"]
    stats = list(returns)
    lines = [
        f"# Dataset quality: {report['env_name']}",
        "",
        f"Fingerprint: `{report['fingerprint'] or 'not saved yet'}`",
        "",
        *_table(
            ["transitions", "episodes", "mean length", "terminated", "truncated", "of which cut by logging",
             "duplicates", "invalid", "dropped"],
            [
                [
                    report["transitions"],
                    report["episodes"],
                    report["episode_length"]["mean"],
                    report["episodes_terminated"],
                    report["episodes_truncated"],
                    _number(report.get("episodes_cut")),
                    report["duplicate_transitions"],
                    report["invalid_rows"],
                    report["dropped_invalid_rows"],
                ]
            ],
        ),
        "## Per-episode returns and costs",
        "",
        f"Over {report.get('returns_over', 'every episode')}.",
        "",
        *_table(["", *stats], [["return", *returns.values()], ["cost", *costs.values()]]),
        f"Reference returns: random {_number(report['random_return'])}, expert {_number(report['expert_return'])}; "
        f"normalized mean return {_number(report['normalized_return_mean'])}",
        "",
        "## Observations",
        "",
        *_per_dim_table(report["observations"]),
    ]
    if "actions" in report:
        lines += ["## Actions", "", *_per_dim_table(report["actions"])]
    lines += ["## Action coverage", "", *_coverage_lines(report["action_coverage"])]
    lines += ["## Provenance", "", *_provenance_lines(report["provenance"])]
    return "\n".join(lines)


def write_returns_histogram(file: str | Path, returns: np.ndarray, title: str) -> None:
    """Write a PNG histogram of per-episode returns (Agg canvas, no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.hist(returns, bins=min(50, max(5, returns.size // 5)), color="tab:blue", edgecolor="white")
    axes.set_xlabel("episode return")
    axes.set_ylabel("episodes")
    axes.set_title(f"{title}: {returns.size} episodes")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_file(file, lambda handle: handle.write(buffer.getvalue()))
