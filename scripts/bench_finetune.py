"""Online SAC, whole runs side by side: d3rlpy's `fit_online` on gymnasium's Pendulum-v1 against `jaxrl train sac` on
our `pendulum` (the same dynamics), and our replay loop's updates/s against the offline loop's for the same agent.

1. Whole runs, each in a child process timed from its start (imports and compilation included): 2x256 networks,
   batch 256, one environment, one update per env step, STEPS env steps of which the first WARMUP act uniformly at
   random and update nothing, the same evaluation (10 deterministic episodes) at the end. Printed: wall seconds,
   env steps/s over the run, final return, and the ratio of wall times.
2. Loops, in this process: SAC's replay-loop iteration (step the env, add to the buffer, sample, update) and its
   offline-loop iteration (sample a dataset, update), both one compiled loop of ITERATIONS, best of timed calls.
   The difference is what the buffer and the environment cost beyond the update.
3. The floor: FLOPs of one SAC update (XLA's cost_analysis) and this machine's matmul rate at the networks' layer
   shape (batch x width x width, forward and both gradients), so the least time the run's updates can take here;
   printed beside a fifth of d3rlpy's wall time (a 5x target).

Usage: .venv/bin/python scripts/bench_finetune.py [--steps 5000] [--skip-d3rlpy]
d3rlpy is optional (`.venv/bin/pip install torch==2.13.0 d3rlpy==2.8.1`, see docs/benchmarks.md). Run it alone
on the machine (e.g. under `flock /tmp/jaxrl-bench.lock`): the numbers are wall-clock.
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

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = 256
BATCH_SIZE = 256
WARMUP = 1000
EVAL_EPISODES = 10


def d3rlpy_worker(steps: int) -> None:
    """d3rlpy's SAC on Pendulum-v1; prints one JSON line (env steps/s, final return)."""
    import d3rlpy
    import gymnasium

    began = time.perf_counter()
    env, eval_env = gymnasium.make("Pendulum-v1"), gymnasium.make("Pendulum-v1")
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=[HIDDEN, HIDDEN])
    sac = d3rlpy.algos.SACConfig(batch_size=BATCH_SIZE, actor_encoder_factory=encoder, critic_encoder_factory=encoder,
                                 n_critics=2, actor_learning_rate=3e-4, critic_learning_rate=3e-4,
                                 temp_learning_rate=3e-4, initial_temperature=1.0).create(device="cpu:0")
    buffer = d3rlpy.dataset.create_fifo_replay_buffer(limit=steps, env=env)
    with tempfile.TemporaryDirectory() as logs:
        trained = time.perf_counter()
        sac.fit_online(env, buffer, n_steps=steps, n_steps_per_epoch=steps, update_interval=1, n_updates=1,
                       update_start_step=WARMUP, random_steps=WARMUP, save_interval=10 ** 9, show_progress=False,
                       logger_adapter=d3rlpy.logging.FileAdapterFactory(root_dir=logs))
        trained = time.perf_counter() - trained
    final = d3rlpy.metrics.evaluate_qlearning_with_environment(sac, eval_env, n_trials=EVAL_EPISODES)
    print(json.dumps({"steps_per_second": steps / trained, "eval_return": float(final),
                      "seconds_in_process": time.perf_counter() - began}))


def run_child(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled", "JAX_PLATFORMS": "cpu"})
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done


def whole_runs(steps: int, skip_d3rlpy: bool) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        ours = [str(ROOT / ".venv/bin/jaxrl"), "train", "sac", "--env", "pendulum", "--run-dir", f"{folder}/run",
                "--no-progress", "--wandb", "disabled", "--no-compile-cache", "--set", f"total_steps={steps}",
                "num_envs=1", "updates_per_step=1", f"batch_size={BATCH_SIZE}", f"buffer_size={steps}",
                f"learning_starts={WARMUP}", f"eval_every={steps}", f"eval_episodes={EVAL_EPISODES}",
                f"hidden_sizes=[{HIDDEN},{HIDDEN}]"]
        seconds, _ = run_child(ours)
        summary = json.loads(Path(f"{folder}/run/summary.json").read_text())
        results["jaxrl"] = {"wall_seconds": seconds, "steps_per_second": summary["steps_per_second"],
                            "eval_return": summary["eval_return_mean"], "compile_seconds": summary["compile_seconds"]}
    if not skip_d3rlpy:
        seconds, done = run_child([sys.executable, __file__, "--d3rlpy-worker", "--steps", str(steps)])
        results["d3rlpy"] = {"wall_seconds": seconds, **json.loads(done.stdout.strip().splitlines()[-1])}
    return results


def loop_rates(iterations: int, window: float) -> dict:
    """Updates/s of SAC's replay-loop and offline-loop iterations, one seed, the same config."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_common import best_rate

    from jaxrl.data.dataset import Dataset
    from jaxrl.experiment import build, example_transition, make_spec
    from jaxrl.loop_config import OfflineLoop
    from jaxrl.train import make_offline_trainer
    from jaxrl.types import Transition

    keys = {"num_envs": 1, "updates_per_step": 1, "batch_size": BATCH_SIZE, "buffer_size": 100_000,
            "learning_starts": 0, "hidden_sizes": [HIDDEN, HIDDEN]}
    replay = build(make_spec("sac", "pendulum", None, None, keys))
    state = jax.jit(replay.trainer.init)(jax.random.key(0), replay.trainer.hyperparams)
    chunk = jax.jit(lambda s, n: replay.trainer.run_chunk(s, None, n))
    state, _ = chunk(state, jnp.int32(2 * BATCH_SIZE))  # a buffer with data in it

    def replay_call():
        jax.block_until_ready(chunk(state, jnp.int32(iterations)))

    example = example_transition(replay.env_spec)
    rng = np.random.default_rng(0)
    rows = 100_000
    data = Transition(*(rng.normal(size=(rows, *np.shape(leaf))).astype(np.asarray(leaf).dtype) for leaf in example))
    data = data._replace(action=np.tanh(data.action), discount=np.ones(rows, np.float32))
    offline = make_offline_trainer(replay.learner, replay.trainer.evaluate, OfflineLoop(batch_size=BATCH_SIZE), 1)
    offline_state = jax.jit(offline.init)(jax.random.key(0), replay.trainer.hyperparams)
    dataset = Dataset.from_numpy(data)
    offline_chunk = jax.jit(lambda s, n: offline.run_chunk(s, dataset, n))
    offline_chunk(offline_state, jnp.int32(1))

    def offline_call():
        jax.block_until_ready(offline_chunk(offline_state, jnp.int32(iterations)))

    return {"replay": best_rate(replay_call, iterations, window),
            "offline": best_rate(offline_call, iterations, window)}


def update_floor(steps: int, window: float) -> dict:
    """GFLOP of one SAC update, this machine's matmul GFLOP/s at its layer shape, and the seconds the run's
    `steps - WARMUP` updates need at that rate (the floor no loop or fusion gets under)."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_common import xla_flops
    from bench_offline import matmul_throughput

    from jaxrl.experiment import build, example_transition, make_spec

    keys = {"num_envs": 1, "batch_size": BATCH_SIZE, "hidden_sizes": [HIDDEN, HIDDEN]}
    experiment = build(make_spec("sac", "pendulum", None, None, keys))
    agent = jax.jit(experiment.learner.init)(jax.random.key(0), experiment.learner.hyperparams)
    example = example_transition(experiment.env_spec)
    batch = jax.tree.map(lambda leaf: jnp.zeros((BATCH_SIZE, *jnp.shape(leaf)), jnp.asarray(leaf).dtype), example)
    gflop = xla_flops(lambda a, b, k: experiment.learner.update(a, b, k), agent, batch, jax.random.key(1)) / 1e9
    rate = matmul_throughput(BATCH_SIZE, HIDDEN, 64, window)["gflops"]
    return {"update_gflop": gflop, "matmul_gflops": rate, "floor_seconds": (steps - WARMUP) * gflop / rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="env steps of each whole run (default 5000)")
    parser.add_argument("--iterations", type=int, default=500, help="loop iterations per timed call (default 500)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of timed calls per loop rate")
    parser.add_argument("--skip-d3rlpy", action="store_true", help="do not run d3rlpy (optional extra)")
    parser.add_argument("--d3rlpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.d3rlpy_worker:
        d3rlpy_worker(args.steps)
        return 0
    load = os.getloadavg()
    print(f"{os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    runs = whole_runs(args.steps, args.skip_d3rlpy)
    print(f"\n| SAC, Pendulum, {args.steps} env steps | wall s (process) | env steps/s (training) | final return "
          f"({EVAL_EPISODES} episodes) | wall time / jaxrl's |\n|---|---|---|---|---|")
    for name, row in runs.items():
        print(f"| {name} | {row['wall_seconds']:.1f} | {row['steps_per_second']:.0f} | {row['eval_return']:.1f} | "
              f"{row['wall_seconds'] / runs['jaxrl']['wall_seconds']:.2f} |")
    loops = loop_rates(args.iterations, args.window)
    replay, offline = loops["replay"]["best"], loops["offline"]["best"]
    print(f"\nSAC updates/s, one seed, batch {BATCH_SIZE}, {HIDDEN}x{HIDDEN}: replay loop (env step + buffer add + "
          f"sample + update) {replay:.0f}/s, offline loop (sample + update) {offline:.0f}/s, "
          f"replay / offline {replay / offline:.2f}")
    floor = update_floor(args.steps, args.window)
    print(f"\nThe floor: one SAC update is {floor['update_gflop']:.3f} GFLOP (XLA cost_analysis); matmuls of "
          f"{BATCH_SIZE}x{HIDDEN}x{HIDDEN} (forward + gradients) run at {floor['matmul_gflops']:.0f} GFLOP/s here, so "
          f"the run's {args.steps - WARMUP} updates need at least {floor['floor_seconds']:.1f} s of matmuls "
          f"(measured: {(args.steps - WARMUP) / replay:.1f} s at the replay loop's rate)")
    if "d3rlpy" in runs:
        print(f"5x d3rlpy's wall time would be {runs['d3rlpy']['wall_seconds'] / 5:.1f} s for the whole run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
