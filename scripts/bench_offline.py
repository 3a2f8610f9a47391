"""Offline update throughput: our IQL, CQL and BC against the machine's matmul limit and against d3rlpy.

One invocation measures, on one halfcheetah-shaped synthetic dataset (obs 17, action 6, actions in [-1, 1])
with batch 256 and 2x256 networks everywhere:

  * the limit: dense matmul throughput at the networks' shapes (GFLOP/s), and each agent's FLOPs per
    update from XLA's cost_analysis() of one jitted update, so limit = GFLOP/s / GFLOP per update;
  * d3rlpy's IQL, CQL and BC (PyTorch CPU, optional: see docs/benchmarks.md), steady-state updates/s,
    in a child process (PyTorch having run in this process slowed our JAX updates by a third);
  * ours through `make_offline_trainer`'s `run_chunk` (a jitted loop of sample + update whose length is an
    argument), jitted as jaxrl/infra/runner.py jits it, with one seed and with several seeds vmapped.

Every rate is the best of many short timed calls spread over `--window` seconds: on shared (virtual)
machines the speed of the whole machine changes from second to second, and the best call is the one
least disturbed. The median is kept in the JSON output.

Usage: python scripts/bench_offline.py [--agents iql,cql,bc] [--seeds 8] [--skip-d3rlpy] [--json out.json]
Run it alone on the machine (e.g. under `flock /tmp/jaxrl-bench.lock`): the numbers are wall-clock.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import best_rate, compile_timed, matmul_gflops, noise, ratio, xla_flops

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaxrl.agents import OFFLINE, get  # noqa: E402
from jaxrl.data.dataset import Dataset  # noqa: E402
from jaxrl.infra.runner import chunk_over_seeds, init_seeds, repeat_hyperparams  # noqa: E402
from jaxrl.train import make_offline_trainer  # noqa: E402
from jaxrl.types import EnvSpec, Transition  # noqa: E402

OBS_SIZE, ACTION_SIZE = 17, 6  # halfcheetah
BATCH_SIZE = 256
HIDDEN_SIZES = (256, 256)
CQL_SAMPLED_ACTIONS = 10
EPISODE_LENGTH = 1000
# Updates per timed call (one seed), about a third of a second each at the speeds measured on 2 cores.
UPDATES_PER_CALL = {"iql": 200, "cql": 10, "bc": 600}
D3RLPY_UPDATES_PER_CALL = {"iql": 40, "cql": 6, "bc": 100}


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


def agent_config(name: str, updates_per_chunk: int):
    """The agent's default config at the benchmark's shapes."""
    overrides = {"batch_size": BATCH_SIZE, "hidden_sizes": HIDDEN_SIZES, "eval_every": updates_per_chunk,
                 "num_updates": 10**6}
    if name == "cql":
        overrides["num_sampled_actions"] = CQL_SAMPLED_ACTIONS
    return get(name).Config(**overrides)


# ---------------------------------------------------------------------------------------- the limit


def matmul_throughput(rows: int, width: int, steps: int, window: float) -> dict:
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

    def chain(x, grad_sum):
        return jax.lax.scan(body, (x, grad_sum), None, steps)[0]

    flops = 3 * 2 * rows * width * width * steps
    return {"rows": rows, "width": width, **matmul_gflops(chain, (x, jnp.zeros((width, width))), flops, window)}


def update_flops(name: str, spec: EnvSpec, data: Transition) -> float:
    """XLA's FLOP count of one jitted `learner.update` on a batch (a scan's body would not be counted).

    CQL is counted with its critic scoring all rows at once (critic_chunks=1): its default slices are a
    `lax.map`, whose body XLA would count once. The slices do the same FLOPs.
    """
    config = agent_config(name, 1)
    if name == "cql":
        config = dataclasses.replace(config, critic_chunks=1)
    learner = get(name).make_learner(config, spec)
    state = learner.init(jax.random.PRNGKey(0), learner.hyperparams)
    batch = jax.tree.map(lambda field: jnp.asarray(field[:BATCH_SIZE]), data)
    return xla_flops(learner.update, state, batch, jax.random.PRNGKey(1))


# -------------------------------------------------------------------------------------------- ours


def ours(name: str, spec: EnvSpec, dataset: Dataset, seeds: int, updates: int, window: float,
         seed_batch: int | None = None) -> dict:
    """Total updates/s (over all seeds) of `run_chunk` with `updates` per seed per call.

    One seed is jitted plainly; several go through the runner's `chunk_over_seeds` (all vmapped, or `seed_batch`
    at a time) with their state donated, as the runner does.
    """
    config = agent_config(name, updates)
    trainer = make_offline_trainer(get(name).make_learner(config, spec), None, config, max_eval_steps=1)  # no eval
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    iterations = jnp.int32(updates)
    if seeds == 1:
        state = jax.jit(trainer.init)(keys[0], trainer.hyperparams)
        run_chunk = trainer.run_chunk
    else:
        state = init_seeds(trainer, keys, repeat_hyperparams(trainer.hyperparams, seeds))  # as the runner does
        run_chunk = chunk_over_seeds(trainer, seed_batch, seeds)  # as runner.compile_programs wraps it
    run_chunk, compile_seconds = compile_timed(run_chunk, state, dataset, iterations, donate_argnums=0)
    holder = [state]

    def run():
        holder[0], metrics = run_chunk(holder[0], dataset, iterations)
        jax.block_until_ready((holder[0], metrics))

    return {**best_rate(run, seeds * updates, window), "updates_per_call": seeds * updates,
            "compile_seconds": compile_seconds}


# ------------------------------------------------------------------------------------------ d3rlpy


def d3rlpy_config(name: str):
    """d3rlpy's config at our shapes: batch 256, 2x256 encoders, twin critics, 10 sampled actions for CQL."""
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
    # Deterministic tanh policy regressed with MSE, as ours.
    return d3rlpy.algos.BCConfig(batch_size=BATCH_SIZE, learning_rate=3e-4, policy_type="deterministic",
                                 encoder_factory=encoder)


def d3rlpy_rates(name: str, data: Transition, last_step: np.ndarray, window: float) -> dict:
    """d3rlpy's updates/s: its `fit` loop (sample a batch, update) and `update` alone on ready batches."""
    import d3rlpy

    dataset = d3rlpy.dataset.MDPDataset(
        observations=data.obs, actions=data.action, rewards=data.reward,
        terminals=np.zeros_like(data.reward), timeouts=last_step.astype(np.float32),
    )
    algo = d3rlpy_config(name).create(device="cpu:0")
    algo.build_with_dataset(dataset)
    updates = D3RLPY_UPDATES_PER_CALL[name]

    def fit_loop():  # what fit() does per step, without its logging
        for _ in range(updates):
            algo.update(dataset.sample_transition_batch(BATCH_SIZE))

    batches = [dataset.sample_transition_batch(BATCH_SIZE) for _ in range(32)]

    def update_loop():
        for step in range(updates):
            algo.update(batches[step % len(batches)])

    return {"fit": best_rate(fit_loop, updates, window), "update": best_rate(update_loop, updates, window)}


def d3rlpy_worker(args: argparse.Namespace) -> None:
    """Measure d3rlpy for every agent and print the results as one JSON line (run in a child process)."""
    data, last_step = synthetic_dataset(args.dataset_size, seed=0)
    results = {}
    for name in args.agents:
        results[name] = d3rlpy_rates(name, data, last_step, args.window)
        print(f"[{name}] d3rlpy fit {results[name]['fit']['best']:.0f}/s{noise(results[name]['fit'])}, "
              f"update alone {results[name]['update']['best']:.0f}/s{noise(results[name]['update'])}",
              file=sys.stderr, flush=True)  # stdout carries the JSON
    print(json.dumps(results))


def measure_d3rlpy(args: argparse.Namespace) -> tuple[dict | None, str | None]:
    """d3rlpy's rates per agent from a child process, or None and why not."""
    try:
        import d3rlpy  # noqa: F401
    except Exception as error:  # ImportError, or a broken torch install
        return None, f"d3rlpy does not import: {type(error).__name__}: {error}"
    command = [sys.executable, __file__, "--d3rlpy-worker", "--agents", ",".join(args.agents),
               "--dataset-size", str(args.dataset_size), "--window", str(args.window)]
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if child.returncode != 0:
        return None, f"the d3rlpy child process failed with exit code {child.returncode} (its stderr is above)"
    return json.loads(child.stdout.strip().splitlines()[-1]), None


# -------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default=",".join(OFFLINE), help="comma-separated subset of iql,cql,bc")
    parser.add_argument("--dataset-size", type=int, default=1_000_000, help="synthetic transitions")
    parser.add_argument("--seeds", type=int, default=8, help="seeds vmapped in the multi-seed measurement")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of timed calls per measurement")
    parser.add_argument("--skip-d3rlpy", action="store_true", help="do not measure d3rlpy (optional extra)")
    parser.add_argument("--json", type=Path, help="also write all measurements to this file")
    parser.add_argument("--d3rlpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    if not agents or any(name not in OFFLINE for name in agents):
        parser.error(f"--agents must be a comma-separated subset of {','.join(OFFLINE)}, got {args.agents!r}")
    if args.dataset_size < BATCH_SIZE:
        parser.error(f"--dataset-size must be at least the batch size {BATCH_SIZE}, got {args.dataset_size}")
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 (one seed is always measured), got {args.seeds}")
    if args.window <= 0:
        parser.error(f"--window must be > 0 seconds, got {args.window}")
    args.agents = agents
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.d3rlpy_worker:
        d3rlpy_worker(args)
        return {}
    load = os.getloadavg()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpus, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    results: dict = {"load_before": load, "dataset_size": args.dataset_size, "seeds": args.seeds,
                     "window": args.window, "agents": {}}

    d3rlpy_results, skip_reason = (None, "--skip-d3rlpy") if args.skip_d3rlpy else measure_d3rlpy(args)
    if skip_reason:
        print(f"d3rlpy not measured ({skip_reason})", flush=True)

    matmul = matmul_throughput(BATCH_SIZE, HIDDEN_SIZES[0], steps=100, window=args.window)
    cql_rows = BATCH_SIZE * (1 + 3 * CQL_SAMPLED_ACTIONS)
    matmul_cql = matmul_throughput(cql_rows, HIDDEN_SIZES[0], steps=4, window=args.window / 2)
    results["matmul"] = [matmul, matmul_cql]
    print(f"dense matmul {BATCH_SIZE}x256x256: {matmul['gflops']:.0f} GFLOP/s{noise(matmul)} "
          f"({cql_rows}x256x256, CQL's critic rows: {matmul_cql['gflops']:.0f} GFLOP/s)", flush=True)
    peak = matmul["gflops"] * 1e9

    data, _ = synthetic_dataset(args.dataset_size, seed=0)
    dataset = Dataset.from_numpy(data)
    spec = EnvSpec("halfcheetah-synthetic", OBS_SIZE, ACTION_SIZE, False, EPISODE_LENGTH)
    for name in args.agents:
        flops = update_flops(name, spec, data)
        row = {"gflop_per_update": flops / 1e9, "limit_per_s": peak / flops}
        print(f"[{name}] {flops / 1e9:.3f} GFLOP/update -> limit {row['limit_per_s']:.0f} updates/s", flush=True)
        if d3rlpy_results:
            row["d3rlpy"] = d3rlpy_results[name]
        updates = UPDATES_PER_CALL[name]
        row["ours_1"] = ours(name, spec, dataset, 1, updates, args.window)
        print(f"[{name}] ours 1 seed {row['ours_1']['best']:.0f}/s{noise(row['ours_1'])}", flush=True)
        # Vmapped calls do `seeds` times the work per update; fewer updates keep each call as short.
        row["ours_n"] = ours(name, spec, dataset, args.seeds, max(1, updates // args.seeds), args.window)
        print(f"[{name}] ours {args.seeds} seeds {row['ours_n']['best']:.0f}/s in total{noise(row['ours_n'])}",
              flush=True)
        row["ours_n_grouped"] = ours(name, spec, dataset, args.seeds, updates, args.window, seed_batch=1)
        print(f"[{name}] ours {args.seeds} seeds one at a time in one program (--seed-batch 1) "
              f"{row['ours_n_grouped']['best']:.0f}/s in total{noise(row['ours_n_grouped'])}", flush=True)
        results["agents"][name] = row

    results["load_after"] = os.getloadavg()
    print_table(results, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def print_table(results: dict, seeds: int) -> None:
    """The markdown table of docs/benchmarks.md."""
    header = ("agent", "GFLOP/update", "limit/s", "d3rlpy fit/s", "d3rlpy update/s", "ours 1 seed/s", "% limit",
              "x d3rlpy fit", "x d3rlpy update", f"ours {seeds} seeds/s (total)", "% limit", f"{seeds} seeds / 1",
              f"{seeds} seeds, --seed-batch 1", f"{seeds} seeds / 1")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, row in results["agents"].items():
        one, many, limit = row["ours_1"]["best"], row["ours_n"]["best"], row["limit_per_s"]
        grouped = row["ours_n_grouped"]["best"]
        d3rlpy = row.get("d3rlpy")
        fit, update = (d3rlpy["fit"]["best"], d3rlpy["update"]["best"]) if d3rlpy else (None, None)
        cells = (
            name, f"{row['gflop_per_update']:.3f}", f"{limit:.0f}",
            f"{fit:.0f}" if fit else "-", f"{update:.0f}" if update else "-",
            f"{one:.0f}", f"{100 * one / limit:.0f}%", ratio(one, fit), ratio(one, update),
            f"{many:.0f}", f"{100 * many / limit:.0f}%", ratio(many, one), f"{grouped:.0f}", ratio(grouped, one),
        )
        print("| " + " | ".join(cells) + " |")
    matmul = results["matmul"][0]
    shape = f"{matmul['rows']}x{matmul['width']}x{matmul['width']}"
    print(f"\nlimit = {matmul['gflops']:.0f} GFLOP/s (dense {shape} matmuls) / XLA's FLOPs of one update. "
          "d3rlpy fit: its fit loop (sample a batch, update); update: update() alone on ready batches. "
          f"{seeds} seeds: total updates/s of {seeds} vmapped seeds; --seed-batch 1: the {seeds} seeds one after "
          "another inside one program (lax.map). Every rate: best call in a "
          f"{results['window']:.0f} s window.")


if __name__ == "__main__":
    main()
