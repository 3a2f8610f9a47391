"""What the persistent compilation cache saves: the same `jaxrl train` twice, the first run with an empty cache.

For each workload and repetition, a fresh empty cache folder (JAXRL_COMPILE_CACHE); the first run compiles
and fills it, the second, identical but for its run folder, loads from it. Printed per workload: the medians
over repetitions of the first and second run's `compile_seconds` (from summary.json: compiling or loading
the training chunk and the evaluation) and wall seconds (the whole process, imports included), and
second/first.

  ppo: jaxrl train ppo --env pendulum --config experiments/ppo/pendulum.yaml --set total_steps=50000
  iql: jaxrl train iql --dataset WORK/pointmass/medium --config experiments/offline/iql.yaml
       --set num_updates=2000 eval_every=1000
       (the dataset made once by `jaxrl dataset make --env pointmass --steps 20000 --set total_steps=50000`)

Usage: python scripts/bench_compile_cache.py [--workloads ppo,iql] [--repeats 3] [--work DIR] [--json out.json]
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
COMMON = ["--wandb", "disabled", "--no-progress"]
WORKLOADS = {
    "ppo": ["train", "ppo", "--env", "pendulum", "--config", "experiments/ppo/pendulum.yaml",
            "--set", "total_steps=50000"],
    "iql": ["train", "iql", "--dataset", "{work}/pointmass/medium", "--config", "experiments/offline/iql.yaml",
            "--set", "num_updates=2000", "eval_every=1000"],
}
MAKE_DATASET = ["dataset", "make", "--env", "pointmass", "--out", "{work}/pointmass", "--steps", "20000",
                "--set", "total_steps=50000"]


def jaxrl(args: list[str], cache: str, work: Path) -> float:
    """Run `jaxrl ARGS` from the repository root with JAXRL_COMPILE_CACHE=cache; its wall seconds."""
    command = [sys.executable, "-m", "jaxrl.cli", *(arg.format(work=work) for arg in args)]
    env = {**os.environ, "JAXRL_COMPILE_CACHE": cache}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"`{' '.join(command)}` failed with exit code {done.returncode}")
    return seconds


def measure(name: str, repeat: int, work: Path) -> dict[str, dict[str, float]]:
    """The first (empty cache) and second run of one repetition: compile and wall seconds of each."""
    cache = work / f"cache-{name}-{repeat}"
    result = {}
    for which in ("first", "second"):
        run_dir = work / f"run-{name}-{repeat}-{which}"
        wall = jaxrl([*WORKLOADS[name], *COMMON, "--run-dir", str(run_dir)], str(cache), work)
        summary = json.loads((run_dir / "summary.json").read_text())
        result[which] = {"compile": summary["compile_seconds"], "wall": wall}
        print(f"  {name} repetition {repeat} {which}: compile {summary['compile_seconds']:.1f} s, "
              f"wall {wall:.1f} s", file=sys.stderr, flush=True)
    return result


def medians(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per figure (compile, wall): the median first, the median second, and their ratio second/first."""
    table = {}
    for figure in ("compile", "wall"):
        first = statistics.median(run["first"][figure] for run in runs)
        second = statistics.median(run["second"][figure] for run in runs)
        table[figure] = {"first": first, "second": second, "ratio": second / first}
    return table


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    import jax

    device = jax.devices()[0]
    accelerator = "" if device.platform == "cpu" else f"{device.device_kind} ({device.platform}), "
    return f"{accelerator}{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="ppo,iql", help="comma-separated subset of ppo,iql")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per workload (each a fresh cache)")
    parser.add_argument("--work", type=Path, help="folder for datasets, runs and caches (default: a new temp one)")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = set(names) - set(WORKLOADS)
    if unknown or args.repeats < 1:
        parser.error(f"--workloads takes {', '.join(WORKLOADS)} (got {', '.join(sorted(unknown))}), "
                     f"--repeats at least 1 (got {args.repeats})")
    work = (args.work or Path(tempfile.mkdtemp(prefix="jaxrl-bench-cache-"))).absolute()
    print(f"machine: {machine()}; work folder {work}", file=sys.stderr, flush=True)
    if "iql" in names and not (work / "pointmass" / "medium").is_dir():
        print("  making the pointmass dataset (no cache) ...", file=sys.stderr, flush=True)
        jaxrl(MAKE_DATASET, "0", work)
    results = {name: [measure(name, repeat, work) for repeat in range(args.repeats)] for name in names}
    print(f"medians of {args.repeats} repetitions ({machine()}):")
    print(f"{'workload':8s} {'figure':8s} {'first s':>8s} {'second s':>9s} {'second/first':>13s}")
    for name, runs in results.items():
        for figure, row in medians(runs).items():
            print(f"{name:8s} {figure:8s} {row['first']:8.1f} {row['second']:9.1f} {row['ratio']:13.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "runs": results,
                                         "medians": {name: medians(runs) for name, runs in results.items()}},
                                        indent=2))


if __name__ == "__main__":
    main()
