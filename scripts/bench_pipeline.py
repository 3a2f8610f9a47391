"""How long the quickstart's pipeline takes: `jaxrl pipeline experiments/pipeline/pointmass.yaml` from a fresh
folder and registry (so its stand-in incumbent is trained too), timed as a whole process, with the seconds of each
stage from its summary.json and the share of the 5-minute budget (docs/benchmarks.md). The reference is that
budget: no other codebase runs this workflow to compare with.

Usage: python scripts/bench_pipeline.py [--repeats 2] [--work DIR]
Run it alone on the machine (e.g. under `flock /tmp/jaxrl-bench.lock`): the numbers are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 300.0
COMMAND = ["pipeline", "experiments/pipeline/pointmass.yaml", "--wandb", "disabled", "--no-progress"]


def run_once(work: Path, index: int) -> dict:
    run_dir = work / f"pipeline-{index}"
    began = time.perf_counter()
    subprocess.run([str(REPO / ".venv" / "bin" / "jaxrl"), *COMMAND, "--run-dir", str(run_dir)], cwd=REPO,
                   check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "JAXRL_COMPILE_CACHE": "0", "WANDB_SILENT": "true"})
    wall = time.perf_counter() - began
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"wall_seconds": wall, "stages": summary["seconds_per_stage"], "promoted": summary["promoted"],
            "live_version": summary["live_version"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="jaxrl-bench-pipeline-"))
    runs = [run_once(work, index) for index in range(args.repeats)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; compile cache off")
    print(f"{'stage':<10}" + "".join(f"{f'run {i + 1} (s)':>12}" for i in range(len(runs))))
    for stage in runs[0]["stages"]:
        print(f"{stage:<10}" + "".join(f"{run['stages'][stage]:>12.1f}" for run in runs))
    print(f"{'process':<10}" + "".join(f"{run['wall_seconds']:>12.1f}" for run in runs))
    median = statistics.median(run["wall_seconds"] for run in runs)
    outcomes = [f"promoted {run['live_version']}" if run["promoted"] else "not promoted" for run in runs]
    print(f"median process time {median:.1f} s = {median / BUDGET_SECONDS:.2f} of the {BUDGET_SECONDS:.0f} s budget; "
          f"outcomes: {', '.join(outcomes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
