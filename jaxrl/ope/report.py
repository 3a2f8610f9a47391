"""What `jaxrl ope` writes: `ope.json` (everything), `ope.md` (the tables) and `ope.png` (estimates with intervals
against the true returns), into one folder written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from jaxrl.infra.files import atomic_write_dir

SELECTION_COLUMNS = ("policies", "spearman", "regret@1", "regret@3", "mse", "coverage", "sharpe@3")


def _value(number: float | None, digits: int = 1) -> str:
    return "n/a" if number is None else f"{number:.{digits}f}"


def _policy_name(policy: dict[str, Any]) -> str:
    return f"{Path(policy['run']).name}@{policy['checkpoint']} ({policy['agent']}, seed {policy['seed']})"


def policy_table(result: dict[str, Any]) -> list[str]:
    """One row per policy: the true value (where measured), each estimator's estimate [interval], ESS, HCOPE."""
    names = [name for name in result["estimators"]]
    truth = result["true_return_episodes"] > 0
    header = ["policy", *(["true return ± s.e."] if truth else []), *names, "ESS", "HCOPE lower bound"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for policy in result["policies"]:
        cells = [_policy_name(policy)]
        if truth:
            cells.append(f"{policy['true_return']:.1f} ± {policy['true_return_stderr']:.1f}")
        for name in names:
            found = policy["estimates"].get(name, {}).get("return")
            cells.append(f"{found['estimate']:.1f} [{found['low']:.1f}, {found['high']:.1f}]" if found else "n/a")
        cells += [_value(policy.get("effective_sample_size")), _value(policy.get("hcope_lower_bound"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def selection_table(result: dict[str, Any]) -> list[str]:
    lines = ["| estimator | " + " | ".join(SELECTION_COLUMNS) + " |", "|" + "---|" * (len(SELECTION_COLUMNS) + 1)]
    for name, metrics in result["selection"].items():
        cells = [str(metrics["policies"]), *(_with_interval(metrics, key) for key in SELECTION_COLUMNS[1:])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _with_interval(metrics: dict[str, Any], key: str) -> str:
    """The metric, and its interval over the bootstrap resamples where there is one."""
    if key not in metrics:
        return "n/a"
    interval = metrics.get("intervals", {}).get(key)
    return _value(metrics[key], 2) + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def markdown(result: dict[str, Any]) -> str:
    episodes = result["episodes"]
    unavailable = {reason for policy in result["policies"] for reason in policy["unavailable"].values()}
    lines = [
        f"# Off-policy evaluation on {result['dataset']} ({result['env']})",
        "",
        f"Estimated: each policy's expected discounted return (γ = {result['gamma']:.4g}) of its {result['policy']} "
        f"policy; intervals: {result['level']:.0%} percentile bootstrap over episodes ({result['num_resamples']} "
        f"resamples). Episodes: {episodes['total']} ({episodes['whole']} whole, {episodes['cut']} cut by the logging "
        "budget); FQE reads every row and every episode's first state, the weighted estimators whole episodes only. "
        f"Behavior policy's value (mean discounted return of the whole episodes): {_value(result['behavior_value'])}.",
        "",
        *policy_table(result),
        "",
        *(["Not available: " + "; ".join(sorted(unavailable)) + ".", ""] if unavailable else []),
    ]
    if result["selection"]:
        lines += ["## Policy selection", "", f"Against rollouts of {result['true_return_episodes']} episodes per "
                  "policy. regret@k: best true value minus the best true value among the k highest estimates; "
                  "sharpe@k: SharpeRatio@k (SCOPE-RL); coverage: share of true values inside the intervals. In "
                  "brackets: each metric's interval over the bootstrap resamples of the dataset.", "",
                  *selection_table(result), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any]) -> bytes:
    """Estimates with their intervals against the true returns, one panel per estimator (PNG bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [name for name in result["estimators"] if any(name in p["estimates"] for p in result["policies"])]
    figure = Figure(figsize=(3.2 * len(names), 3.2), dpi=100)
    FigureCanvasAgg(figure)
    truth = [p["true_return"] for p in result["policies"]]
    for panel, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), panel)
        rows = [(t, p["estimates"][name]["return"]) for t, p in zip(truth, result["policies"], strict=True)
                if name in p["estimates"]]
        x = [t for t, _ in rows]
        y = [r["estimate"] for _, r in rows]
        error = [[r["estimate"] - r["low"] for _, r in rows], [r["high"] - r["estimate"] for _, r in rows]]
        axes.errorbar(x, y, yerr=error, fmt="o", capsize=3)
        bounds = [min(x + [r["low"] for _, r in rows]), max(x + [r["high"] for _, r in rows])]
        axes.plot(bounds, bounds, color="grey", linewidth=0.8)
        axes.set_title(name)
        axes.set_xlabel("true return")
        if panel == 1:
            axes.set_ylabel("estimate")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write(out_dir: Path, result: dict[str, Any]) -> None:
    """`ope.json`, `ope.md` and, with true returns, `ope.png`, as one folder that appears whole or not at all."""

    def fill(folder: Path) -> None:
        (folder / "ope.json").write_text(json.dumps(result, indent=2))
        (folder / "ope.md").write_text(markdown(result))
        if result["true_return_episodes"]:
            (folder / "ope.png").write_bytes(plot(result))

    atomic_write_dir(out_dir, fill)
