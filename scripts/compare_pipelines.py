"""The same pipelines run on two machines, side by side: each stage's figures and verdict, what the OPE gate
passed against the candidates' true returns, and where each run ended; writes docs/results.md ("The pipeline on a
second machine") unless --no-doc.

The runs are made beforehand: on this machine with `jaxrl pipeline experiments/pipeline/<env>.yaml --set seed=K
--run-dir DIR`, on the other with scripts/pipeline_gpu.sh (which packs each run's decisions and figures).

Usage: .venv/bin/python scripts/compare_pipelines.py --machines "our CPU" H200 RUN_A RUN_B [RUN_A RUN_B ...]
       [--command "how the runs were made" ...] [--no-doc]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.offline_results import publish  # noqa: E402
from scripts.pipeline_summary import load_stages, stage_text, words_for  # noqa: E402

GROUP = "pipeline-machines"
STAGES = ("data", "offline", "ope", "shadow", "canary", "finetune", "promote")


def gate_against_truth(ope: dict) -> str:
    """Which candidates the OPE gate passed and stopped, each with its true (rolled-out, discounted) return."""
    figures = ope["figures"]
    incumbent = figures["incumbent"].get("true_return")
    if incumbent is None:
        return "–"

    def listed(passed: bool) -> str:
        return ", ".join(f"{row['name']} ({row['true_return']:.1f})" for row in figures["policies"]
                         if row["passed"] == passed) or "none"

    return f"incumbent {incumbent:.1f}; passed {listed(True)}; stopped {listed(False)}"


def cell(name: str, stage: dict, words) -> str:
    """The stage's figures and verdict; a stop also says why (the stage's decision)."""
    text = stage_text(name, stage, words)
    return text if stage["passed"] else f"{text} ({stage['decision'].removeprefix('stopped: ')})"


def outcome(summary: dict, stages: dict[str, dict]) -> str:
    if not summary:
        finished = [name for name in STAGES if name in stages]
        return f"cut off after {finished[-1]}" if finished else "no stage finished"
    ended = f"promoted {summary['live_version']}" if summary["promoted"] else (
        f"stopped at {summary['stopped_at']}; {summary['live_version']} stays live")
    return f"{ended} ({sum(summary['seconds_per_stage'].values()):.0f} s of stages)"


def pair_rows(first: Path, second: Path) -> list[str]:
    config = yaml.safe_load((first / "pipeline.yaml").read_text())["config"]
    label = f"{config['env']} seed {config.get('seed', 0)}"
    words = words_for(config.get("live_env") or config["env"])
    runs = [load_stages(folder) for folder in (first, second)]
    rows = []
    for name in STAGES:
        if not any(name in stages for _, stages in runs):
            continue
        cells = [cell(name, stages[name], words) if name in stages else "–" for _, stages in runs]
        rows.append(f"| {label} | {name} | {' | '.join(cells)} |")
        if name == "ope":
            cells = [gate_against_truth(stages[name]) if name in stages else "–" for _, stages in runs]
            rows.append(f"| {label} | ope vs rollouts | {' | '.join(cells)} |")
    rows.append(f"| {label} | outcome | {' | '.join(outcome(summary, stages) for summary, stages in runs)} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", nargs=2, default=["first", "second"], metavar=("THIS", "OTHER"),
                        help="the two machines' names, as the table's column headings")
    parser.add_argument("--command", action="append", default=[], help="a command behind the runs, for the doc")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/results.md alone")
    parser.add_argument("runs", nargs="+", type=Path, help="pairs of run folders: this machine's, the other's")
    args = parser.parse_args(argv)
    if len(args.runs) % 2:
        parser.error(f"runs come in pairs (one per machine); got {len(args.runs)} folders")
    machines = args.machines
    for folder in args.runs:
        if not (folder / "pipeline.yaml").is_file():
            parser.error(f"{folder}: no pipeline.yaml; expected a pipeline's run folder")
    rows = [row for first, second in zip(args.runs[::2], args.runs[1::2], strict=True)
            for row in pair_rows(first, second)]
    body = "\n".join([*(["```bash", *args.command, "```", ""] if args.command else []),
                      f"| run | stage | {machines[0]} | {machines[1]} |", "|---|---|---|---|", *rows, ""])
    return publish(GROUP, body, args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
