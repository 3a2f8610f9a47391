"""Research at scale, measured side by side in one invocation (a benchmark, not a test).

Parts (`--parts`, default all):
  sweep      experiments/sweeps/ppo-pendulum.yaml (6 PPO members on pendulum) as one `jaxrl sweep` process (one
             vmapped program) against its 6 members as 6 `jaxrl train` processes, one after another; wall seconds
             of each whole process, start-up and compilation included, cache off; and each member's final return
             both ways (equal only to float rounding, which 600k PPO steps amplify: a member alone is a one-run
             program, not vmapped; tests/test_sweep.py checks together = alone on short runs).
  num_envs   PPO on pendulum: env steps/s of training (compilation excluded) against num_envs, 64 to 4096.
  members    IQL (256x256 networks, batch 256) on a random pointmass dataset: updates/s against vmapped runs
             (1 to 32; runs of one program are seeds or sweep members alike), and each against one run.
  precision  the same IQL update, one run: fp32 against `precision=bf16`, updates/s.
  cache      the compile-cache saving: `jaxrl train` PPO on pendulum twice, the first into an empty cache
             (scripts/bench_compile_cache.py, one repetition).

Usage: python scripts/bench_scale.py [--parts sweep,num_envs,members,precision,cache] [--work DIR] [--json FILE]
Run it alone on the machine: the numbers are wall-clock. Record the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SWEEP_FILE = "experiments/sweeps/ppo-pendulum.yaml"
QUIET = ["--wandb", "disabled", "--no-progress", "--no-compile-cache"]
NUM_ENVS = (64, 256, 1024, 4096)
MEMBERS = (1, 2, 4, 8, 16, 32)
PARTS = ("sweep", "num_envs", "members", "precision", "cache")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def jaxrl(*args: str) -> float:
    """Run `jaxrl ARGS` as its own process from the repository root; its wall seconds."""
    command = [sys.executable, "-m", "jaxrl.cli", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"`{' '.join(command)}` failed with exit code {done.returncode}")
    return seconds


def bench_sweep(work: Path) -> dict:
    from jaxrl.sweep.file import RUN_PARAMETERS, read_sweep
    from jaxrl.sweep.run import expand

    members = expand(read_sweep(REPO / SWEEP_FILE), seed=0)
    log(f"sweep: {len(members)} members as one `jaxrl sweep` ...")
    together = jaxrl("sweep", SWEEP_FILE, "--run-dir", str(work / "sweep"), *QUIET)
    swept = json.loads((work / "sweep" / "sweep_summary.json").read_text())
    separate, returns = [], []
    for member, row in zip(members, sorted(swept["members"], key=lambda r: r["name"]), strict=True):
        parameters = member.parameters
        overrides = [f"{key}={value}" for key, value in parameters.items() if key not in RUN_PARAMETERS]
        run_dir = work / "separate" / member.name
        log(f"  {member.name} alone: --set {' '.join(overrides)}")
        separate.append(jaxrl("train", parameters["agent"], "--env", parameters["env"], "--config",
                              parameters["config"], "--set", *overrides, "--run-dir", str(run_dir), *QUIET))
        alone = json.loads((run_dir / "summary.json").read_text())["eval_return_mean"]
        returns.append({"member": member.name, "together": row["metric"], "alone": alone})
    result = {"members": len(members), "one_program_seconds": together, "separate_seconds": sum(separate),
              "separate_each": separate, "ratio": sum(separate) / together, "returns": returns}
    log(f"sweep: one program {together:.1f} s, {len(members)} processes {sum(separate):.1f} s "
        f"({result['ratio']:.2f}x)")
    return result


def _train(agent: str, env: str, seeds: int, dataset: str | None = None, **overrides) -> dict:
    """One run in this process through the library (cache off: JAX's default); its summary."""
    from jaxrl import agents
    from jaxrl.config import build_config
    from jaxrl.experiment import RunOptions, RunSpec, execute

    config = build_config(agents.get(agent).Config, overrides)
    spec = RunSpec(agent, env, tuple(range(seeds)), config, dataset)
    _, summary = execute(spec, Path(tempfile.mkdtemp(prefix="jaxrl-bench-scale-")), RunOptions(progress=False))
    return summary


def bench_num_envs(counts=NUM_ENVS) -> list[dict]:
    import yaml

    base = yaml.safe_load((REPO / "experiments/ppo/pendulum.yaml").read_text())
    rows = []
    for num_envs in counts:
        # 8 iterations per chunk, 2 chunks: the timed chunk is long enough to measure, compilation excluded.
        steps = num_envs * base["unroll_length"] * 8
        summary = _train("ppo", "pendulum", 1, **{**base, "num_envs": num_envs, "total_steps": 2 * steps,
                                                   "eval_every": steps, "eval_episodes": 4})
        rows.append({"num_envs": num_envs, "steps_per_second": summary["steps_per_second"],
                     "compile_seconds": summary["compile_seconds"]})
        log(f"num_envs {num_envs:5d}: {summary['steps_per_second']:,.0f} env steps/s "
            f"(compile {summary['compile_seconds']:.1f} s)")
    return rows


def _pointmass_dataset(work: Path) -> str:
    path = work / "pointmass-random"
    if not path.is_dir():
        jaxrl("collect", "--env", "pointmass", "--policy", "random", "--steps", "100000", "--out", str(path),
              "--no-compile-cache")
    return str(path)


IQL = {"num_updates": 2000, "eval_every": 1000, "eval_episodes": 2, "batch_size": 256, "hidden_sizes": (256, 256)}
IQL_MEMBERS = {**IQL, "num_updates": 500, "eval_every": 250}  # 32 runs of 500 updates: about 80 s at 200/s


def bench_members(work: Path, counts=MEMBERS) -> list[dict]:
    dataset = _pointmass_dataset(work)
    rows = []
    for count in counts:
        summary = _train("iql", "pointmass", count, dataset, **IQL_MEMBERS)
        rate = summary["updates_per_second"]  # updates of all runs together
        rows.append({"runs": count, "updates_per_second": rate})
        log(f"IQL {count:2d} vmapped run(s): {rate:,.0f} updates/s in all")
    one = rows[0]["updates_per_second"]
    for row in rows:
        row["time_vs_one_run"] = one * row["runs"] / row["updates_per_second"]
    return rows


def bench_precision(work: Path) -> dict:
    dataset = _pointmass_dataset(work)
    rates = {}
    for precision in ("fp32", "bf16"):
        rates[precision] = _train("iql", "pointmass", 1, dataset, **IQL, precision=precision)["updates_per_second"]
        log(f"IQL {precision}: {rates[precision]:,.0f} updates/s")
    return {**rates, "bf16_over_fp32": rates["bf16"] / rates["fp32"]}


def bench_cache(work: Path) -> dict:
    import bench_compile_cache  # beside this script: main() puts its folder on sys.path

    run = bench_compile_cache.measure("ppo", 0, work)
    return {which: run[which] for which in ("first", "second")}


def matmul_rate() -> float:
    """This machine's GFLOP/s on dense 256x256x256 float32 matmuls (its speed varies: a shared virtual machine)."""
    import jax
    import jax.numpy as jnp
    from bench_common import matmul_gflops

    x, w = jnp.ones((256, 256)), jnp.full((256, 256), 1e-3)
    chain = lambda x, w: jax.lax.fori_loop(0, 64, lambda _, y: y @ w, x)
    return matmul_gflops(chain, (x, w), 64 * 2 * 256**3, window=3.0)["gflops"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--work", type=Path, help="folder for datasets, runs and caches (default: a new temp one)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--num-envs", default=",".join(map(str, NUM_ENVS)), help="num_envs part: counts of envs")
    parser.add_argument("--members", default=",".join(map(str, MEMBERS)), help="members part: counts of runs")
    args = parser.parse_args(argv)
    num_envs = tuple(int(n) for n in args.num_envs.split(","))
    members = tuple(int(n) for n in args.members.split(","))
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}, got {', '.join(sorted(set(parts) - set(PARTS)))}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    work = (args.work or Path(tempfile.mkdtemp(prefix="jaxrl-bench-scale-"))).absolute()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_compile_cache import machine

    results = {"machine": machine(), "matmul_gflops": matmul_rate()}
    log(f"machine: {results['machine']}, {results['matmul_gflops']:.0f} GFLOP/s in fp32 matmuls; work folder {work}")
    runners = {"sweep": lambda: bench_sweep(work), "num_envs": lambda: bench_num_envs(num_envs),
               "members": lambda: bench_members(work, members),
               "precision": lambda: bench_precision(work), "cache": lambda: bench_cache(work)}
    for part in parts:
        results[part] = runners[part]()
    print(f"\n{results['machine']}, {results['matmul_gflops']:.0f} GFLOP/s in 256x256x256 fp32 matmuls")
    if "sweep" in results:
        s = results["sweep"]
        print(f"sweep of {s['members']} PPO members on pendulum: one program {s['one_program_seconds']:.1f} s, "
              f"separate processes {s['separate_seconds']:.1f} s: {s['ratio']:.2f}x shorter")
        for row in s["returns"]:
            print(f"  {row['member']}: final return together {row['together']:8.1f}, alone {row['alone']:8.1f}")
    for row in results.get("num_envs", []):
        print(f"PPO pendulum num_envs {row['num_envs']:5d}: {row['steps_per_second']:>10,.0f} env steps/s")
    for row in results.get("members", []):
        print(f"IQL {row['runs']:2d} vmapped runs: {row['updates_per_second']:>8,.0f} updates/s in all, "
              f"{row['time_vs_one_run']:.2f}x the time of one run")
    if "precision" in results:
        p = results["precision"]
        print(f"IQL one run: fp32 {p['fp32']:,.0f}, bf16 {p['bf16']:,.0f} updates/s: bf16/fp32 "
              f"{p['bf16_over_fp32']:.2f}")
    if "cache" in results:
        c = results["cache"]
        print(f"PPO pendulum compile: empty cache {c['first']['compile']:.1f} s, warm {c['second']['compile']:.1f} s; "
              f"process {c['first']['wall']:.1f} s -> {c['second']['wall']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
