"""Offline update throughput: our IQL, CQL and BC against the machine's matmul limit and against d3rlpy.

One invocation measures, on one halfcheetah-shaped synthetic dataset (obs 17, action 6, actions in [-1, 1])
with batch 256 and 2x256 networks everywhere:

  * the limit: dense matmul throughput at the networks' shapes (GFLOP/s), and each agent's FLOPs per
    update from XLA's cost_analysis() of one jitted update, so limit = GFLOP/s / GFLOP per update;
  * d3rlpy's IQL, CQL and BC (PyTorch CPU; optional, see docs/benchmarks.md), steady-state updates/s;
  * ours through `make_offline_trainer`'s `run_chunk` (a jitted lax.scan of sample + update), jitted as
    the runner jits it, with one seed and with several seeds vmapped.

Usage: python scripts/bench_offline.py [--agents iql,cql,bc] [--seeds 8] [--skip-d3rlpy]
Run timings alone on the machine (e.g. under `flock /tmp/jaxrl-bench.lock`): the numbers are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaxrl.agents import OFFLINE, get  # noqa: E402
from jaxrl.data.dataset import Dataset  # noqa: E402
from jaxrl.train import make_offline_trainer  # noqa: E402
from jaxrl.types import EnvSpec, Transition  # noqa: E402

OBS_SIZE, ACTION_SIZE = 17, 6  # halfcheetah
BATCH_SIZE = 256
HIDDEN_SIZES = (256, 256)
CQL_SAMPLED_ACTIONS = 10
EPISODE_LENGTH = 1000
# Updates per scanned chunk (one seed); chosen so a chunk takes a few seconds at the expected speed.
DEFAULT_CHUNK = {"iql": 1000, "cql": 100, "bc": 4000}
D3RLPY_UPDATES = {"iql": 300, "cql": 60, "bc": 1000}


# ---------------------------------------------------------------------------------------------- data


def synthetic_dataset(size: int, seed: int) -> tuple[Transition, np.ndarray]:
    """Random halfcheetah-shaped transitions (numpy) and the [N] bool mask of each episode's last step."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((size, OBS_SIZE), dtype=np.float32)
    last_step = (np.arange(size) % EPISODE_LENGTH) == EPISODE_LENGTH - 1
    return Transition(
        obs=obs,
        action=rng.uniform(-1.0, 1.0, (size, ACTION_SIZE)).astype(np.float32),
        reward=rng.standard_normal(size, dtype=np.float32),
        cost=np.zeros(size, np.float32),
        discount=np.ones(size, np.float32),  # halfcheetah never terminates; episodes end by time limit
        next_obs=np.concatenate([obs[1:], rng.standard_normal((1, OBS_SIZE), dtype=np.float32)]),
        behavior_log_prob=np.full(size, np.nan, np.float32),
        episode_id=(np.arange(size) // EPISODE_LENGTH).astype(np.int32),
    ), last_step


def agent_config(name: str, chunk: int):
    """The agent's default config at the benchmark's shapes; `chunk` updates per scanned chunk."""
    overrides = {"batch_size": BATCH_SIZE, "hidden_sizes": HIDDEN_SIZES, "eval_every": chunk, "num_updates": 10**6}
    if name == "cql":
        overrides["num_sampled_actions"] = CQL_SAMPLED_ACTIONS
    return get(name).Config(**overrides)


# ------------------------------------------------------------------------------------------ timing


def cpu_seconds() -> tuple[float, float] | None:
    """Busy CPU-seconds so far of the whole machine and of this process (with its finished children).

    None where /proc/stat is missing (not Linux).
    """
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    times = os.times()
    return machine, times.user + times.system + times.children_user + times.children_system


def median_rate(run: Callable[[], None], work: float, repeats: int) -> tuple[float, dict]:
    """`work` units per second of `run()`, median over `repeats` timed calls (after one untimed call).

    Also reports how many cores other processes kept busy meanwhile: anything well above 0 spoils the timing.
    """
    run()
    seconds = []
    before = cpu_seconds()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    after = cpu_seconds()
    other = None
    if before and after:
        other = ((after[0] - before[0]) - (after[1] - before[1])) / sum(seconds)
    return work / statistics.median(seconds), {"seconds": seconds, "other_cores_busy": other}


def flops_of(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax returned one dict per computation
        analysis = analysis[0]
    return float(analysis["flops"])


# ---------------------------------------------------------------------------------------- the limit


def matmul_throughput(rows: int, width: int, steps: int, repeats: int) -> dict[str, float]:
    """GFLOP/s of the three matmuls of a dense layer's forward and backward, rows x width x width each.

    A jitted scan of `steps` iterations of y = x W, dW = xᵀ y, x ← y Wᵀ, with W orthogonal so values
    neither vanish (denormals) nor overflow.
    """
    key_x, key_w = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(key_x, (rows, width))
    weight = jnp.linalg.qr(jax.random.normal(key_w, (width, width)))[0]

    def body(carry, _):
        x, grad_sum = carry
        y = x @ weight  # forward
        grad_sum = grad_sum + x.T @ y  # weight gradient
        return (y @ weight.T, grad_sum), None  # input gradient

    @jax.jit
    def chain(x, grad_sum):
        return jax.lax.scan(body, (x, grad_sum), None, steps)[0]

    args = (x, jnp.zeros((width, width)))
    compiled = chain.lower(*args).compile()
    flops = 3 * 2 * rows * width * width * steps
    rate, timing = median_rate(lambda: jax.block_until_ready(compiled(*args)), flops, repeats)
    return {"rows": rows, "width": width, "gflops": rate / 1e9, "xla_flops_per_step": flops_of(compiled) / steps,
            "other_cores_busy": timing["other_cores_busy"]}


def update_flops(name: str, spec: EnvSpec, data: Transition) -> float:
    """XLA's FLOP count of one jitted `learner.update` on a batch (a scan's body would not be counted)."""
    learner = get(name).make_learner(agent_config(name, 1), spec)
    state = learner.init(jax.random.PRNGKey(0))
    batch = jax.tree.map(lambda field: jnp.asarray(field[:BATCH_SIZE]), data)
    return flops_of(jax.jit(learner.update).lower(state, batch, jax.random.PRNGKey(1)).compile())


# -------------------------------------------------------------------------------------------- ours


def ours(name: str, spec: EnvSpec, dataset: Dataset, seeds: int, chunk: int, repeats: int) -> dict[str, float]:
    """Total updates/s (over all seeds) of `run_chunk`, jitted plainly for one seed, vmapped as the runner does."""
    learner = get(name).make_learner(agent_config(name, chunk), spec)
    trainer = make_offline_trainer(learner, None, agent_config(name, chunk), max_eval_steps=1)  # never evaluated
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    if seeds == 1:
        state = [jax.jit(trainer.init)(keys[0])]
        run_chunk = jax.jit(trainer.run_chunk, donate_argnums=0)
    else:
        # Not jax.vmap(trainer.init): on 2 CPU cores its batched QRs (orthogonal init) deadlock XLA's thread
        # pool from 4 seeds on (jax 0.10.2); lax.map builds the same per-seed states one after another.
        state = [jax.jit(lambda keys: jax.lax.map(trainer.init, keys))(keys)]
        run_chunk = jax.jit(jax.vmap(trainer.run_chunk, in_axes=(0, None)), donate_argnums=0)

    start = time.perf_counter()
    run_chunk = run_chunk.lower(state[0], dataset).compile()
    compile_seconds = time.perf_counter() - start

    def run():
        state[0], metrics = run_chunk(state[0], dataset)
        jax.block_until_ready((state[0], metrics))

    rate, timing = median_rate(run, seeds * chunk, repeats)
    return {"updates_per_s": rate, "chunk": chunk, "compile_seconds": compile_seconds, **timing}


# ------------------------------------------------------------------------------------------ d3rlpy


def d3rlpy_config(name: str):
    """d3rlpy's config at our shapes: batch 256, 2x256 encoders (its default), twin critics, 10 CQL samples."""
    import d3rlpy

    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(HIDDEN_SIZES))
    if name == "iql":
        return d3rlpy.algos.IQLConfig(
            batch_size=BATCH_SIZE, n_critics=2, actor_encoder_factory=encoder, critic_encoder_factory=encoder,
            value_encoder_factory=encoder,
        )
    if name == "cql":
        # alpha_learning_rate=0 keeps the penalty weight fixed, as our CQL without `lagrange`.
        return d3rlpy.algos.CQLConfig(
            batch_size=BATCH_SIZE, n_critics=2, n_action_samples=CQL_SAMPLED_ACTIONS, alpha_learning_rate=0.0,
            actor_encoder_factory=encoder, critic_encoder_factory=encoder,
        )
    return d3rlpy.algos.BCConfig(batch_size=BATCH_SIZE, learning_rate=3e-4, encoder_factory=encoder)


def d3rlpy_rates(name: str, data: Transition, last_step: np.ndarray, updates: int, repeats: int) -> dict[str, float]:
    """Steady-state updates/s of d3rlpy: `fit`'s loop (sample a batch, update) and `update` on ready batches."""
    import d3rlpy

    dataset = d3rlpy.dataset.MDPDataset(
        observations=data.obs, actions=data.action, rewards=data.reward,
        terminals=np.zeros_like(data.reward), timeouts=last_step.astype(np.float32),
    )
    algo = d3rlpy_config(name).create(device="cpu:0")
    algo.build_with_dataset(dataset)

    def fit_loop():
        for _ in range(updates):
            algo.update(dataset.sample_transition_batch(BATCH_SIZE))

    batches = [dataset.sample_transition_batch(BATCH_SIZE) for _ in range(32)]

    def update_loop():
        for step in range(updates):
            algo.update(batches[step % len(batches)])

    fit_rate, fit_timing = median_rate(fit_loop, updates, repeats)
    update_rate, update_timing = median_rate(update_loop, updates, repeats)
    return {"fit_updates_per_s": fit_rate, "update_only_per_s": update_rate,
            "other_cores_busy": max(fit_timing["other_cores_busy"] or 0.0, update_timing["other_cores_busy"] or 0.0)}


# -------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default=",".join(OFFLINE), help="comma-separated subset of iql,cql,bc")
    parser.add_argument("--dataset-size", type=int, default=1_000_000, help="synthetic transitions")
    parser.add_argument("--seeds", type=int, default=8, help="seeds vmapped in the multi-seed measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is reported")
    parser.add_argument("--chunk-scale", type=float, default=1.0, help="scale the updates per timed chunk")
    parser.add_argument("--skip-d3rlpy", action="store_true", help="do not measure d3rlpy (optional extra)")
    parser.add_argument("--json", type=Path, help="also write all measurements to this file")
    parser.add_argument("--d3rlpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    unknown = [name for name in agents if name not in OFFLINE]
    if unknown or not agents:
        parser.error(f"--agents must be a comma-separated subset of {','.join(OFFLINE)}, got {args.agents!r}")
    if args.dataset_size < BATCH_SIZE or args.seeds < 2 or args.repeats < 1 or args.chunk_scale <= 0:
        parser.error("need --dataset-size >= 256, --seeds >= 2, --repeats >= 1 and --chunk-scale > 0")
    args.agents = agents
    return args


def d3rlpy_worker(args: argparse.Namespace) -> None:
    """Measure d3rlpy for every agent and print the results as one JSON line (run in a child process)."""
    data, last_step = synthetic_dataset(args.dataset_size, seed=0)
    results = {}
    for name in args.agents:
        updates = max(1, round(D3RLPY_UPDATES[name] * args.chunk_scale))
        results[name] = d3rlpy_rates(name, data, last_step, updates, args.repeats)
        print(f"[{name}] d3rlpy {json.dumps(results[name])}", file=sys.stderr, flush=True)  # stdout: JSON
    print(json.dumps(results))


def measure_d3rlpy(args: argparse.Namespace) -> tuple[dict | None, str | None]:
    """d3rlpy's rates per agent, or None and why not.

    d3rlpy runs in a child process: once PyTorch has run in a process, our JAX updates in the same process
    were measured 35% slower (BC, 2041 -> 1355 updates/s), which would flatter neither side honestly.
    """
    try:
        import d3rlpy  # noqa: F401
    except Exception as error:  # ImportError, or a broken torch install
        return None, f"d3rlpy does not import: {type(error).__name__}: {error}"
    command = [sys.executable, __file__, "--d3rlpy-worker", "--agents", ",".join(args.agents),
               "--dataset-size", str(args.dataset_size), "--repeats", str(args.repeats),
               "--chunk-scale", str(args.chunk_scale)]
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if child.returncode != 0:
        return None, f"the d3rlpy child process failed with exit code {child.returncode} (its stderr is above)"
    return json.loads(child.stdout.strip().splitlines()[-1]), None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.d3rlpy_worker:
        d3rlpy_worker(args)
        return {}
    load = os.getloadavg()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpus, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    results: dict = {"load_before": load, "dataset_size": args.dataset_size, "seeds": args.seeds, "agents": {}}

    d3rlpy_results, skip_reason = (None, "--skip-d3rlpy") if args.skip_d3rlpy else measure_d3rlpy(args)
    if skip_reason:
        print(f"d3rlpy not measured ({skip_reason})", flush=True)

    matmul = matmul_throughput(BATCH_SIZE, HIDDEN_SIZES[0], steps=200, repeats=5)
    cql_rows = BATCH_SIZE * (1 + 3 * CQL_SAMPLED_ACTIONS)
    matmul_cql = matmul_throughput(cql_rows, HIDDEN_SIZES[0], steps=10, repeats=5)
    results["matmul"] = [matmul, matmul_cql]
    print(f"dense matmul {BATCH_SIZE}x256x256: {matmul['gflops']:.0f} GFLOP/s{noise(matmul)} "
          f"({cql_rows}x256x256, CQL's critic rows: {matmul_cql['gflops']:.0f} GFLOP/s)", flush=True)
    peak = matmul["gflops"] * 1e9

    data, _ = synthetic_dataset(args.dataset_size, seed=0)
    dataset = Dataset.from_numpy(data)
    spec = EnvSpec("halfcheetah-synthetic", OBS_SIZE, ACTION_SIZE, False, EPISODE_LENGTH)
    for name in args.agents:
        chunk = max(1, round(DEFAULT_CHUNK[name] * args.chunk_scale))
        flops = update_flops(name, spec, data)
        row = {"gflop_per_update": flops / 1e9, "limit_per_s": peak / flops}
        print(f"[{name}] {flops / 1e9:.3f} GFLOP/update -> limit {row['limit_per_s']:.0f} updates/s", flush=True)
        if d3rlpy_results:
            row["d3rlpy"] = d3rlpy_results[name]
        row["ours_1"] = ours(name, spec, dataset, 1, chunk, args.repeats)
        print(f"[{name}] ours 1 seed {row['ours_1']['updates_per_s']:.0f}/s{noise(row['ours_1'])}", flush=True)
        # The vmapped chunk does `seeds` times the work per call; fewer scan steps keep its duration similar.
        multi_chunk = max(1, chunk // args.seeds)
        row["ours_n"] = ours(name, spec, dataset, args.seeds, multi_chunk, args.repeats)
        print(f"[{name}] ours {args.seeds} seeds {row['ours_n']['updates_per_s']:.0f}/s in total{noise(row['ours_n'])}",
              flush=True)
        results["agents"][name] = row

    results["load_after"] = os.getloadavg()
    print_table(results, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def noise(timing: dict) -> str:
    """A note when other processes used the CPU during a measurement."""
    other = timing.get("other_cores_busy")
    return f" (other processes kept {other:.2f} of the cores busy)" if other is not None and other > 0.05 else ""


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def print_table(results: dict, seeds: int) -> None:
    """The markdown table of docs/benchmarks.md."""
    header = ("agent", "GFLOP/update", "limit/s", "d3rlpy fit/s", "d3rlpy update/s", "ours 1 seed/s", "% limit",
              "x d3rlpy fit", "x d3rlpy update", f"ours {seeds} seeds/s (total)", "% limit", f"{seeds} seeds / 1")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, row in results["agents"].items():
        one, many, limit = row["ours_1"]["updates_per_s"], row["ours_n"]["updates_per_s"], row["limit_per_s"]
        fit, update = row.get("d3rlpy", {}).get("fit_updates_per_s"), row.get("d3rlpy", {}).get("update_only_per_s")
        cells = (
            name, f"{row['gflop_per_update']:.3f}", f"{limit:.0f}",
            f"{fit:.0f}" if fit else "-", f"{update:.0f}" if update else "-",
            f"{one:.0f}", f"{100 * one / limit:.0f}%", ratio(one, fit), ratio(one, update),
            f"{many:.0f}", f"{100 * many / limit:.0f}%", ratio(many, one),
        )
        print("| " + " | ".join(cells) + " |")
    matmul = results["matmul"][0]
    shape = f"{matmul['rows']}x{matmul['width']}x{matmul['width']}"
    print(f"\nlimit = {matmul['gflops']:.0f} GFLOP/s (dense {shape} matmuls) "
          "/ XLA's FLOPs of one update. d3rlpy fit: its fit loop (sample a batch, update); update: update() alone on "
          f"ready batches. {seeds} seeds: total updates/s of {seeds} vmapped seeds.")


if __name__ == "__main__":
    main()
