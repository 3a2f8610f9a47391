"""PPO at identical work: raw env stepping, brax's own trainer and jaxrl's, with FLOP counts; see docs/benchmarks.md.

    .venv/bin/python scripts/bench_ppo.py --env inverted_pendulum            # both trainers, seed 0
    .venv/bin/python scripts/bench_ppo.py --env halfcheetah --seeds 2 --skip-brax

The work is the same for both trainers: 256 envs x 80 steps = 20480 env steps per iteration, 4 epochs of
16 minibatches of 1280 transitions, brax's default networks (policy 4x32, value 5x256, swish), and
`num_evals` evaluations of 128 deterministic episodes (one at step 0, then one every total/(num_evals-1)
steps). Every measurement runs in a fresh subprocess of this script, so neither trainer inherits the
other's compiled programs, caches or memory. Timings start after the imports (jax, brax) and include
environment construction, compilation, evaluation and (ours) per-chunk checkpoints.

brax 0.14's trainer calls `jax.device_put_replicated`, which this JAX removed; `_patch_brax` puts it back
for the brax subprocess only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import compile_timed, jaxpr_matmul_flops, matmul_gflops, median_seconds, ratio, xla_flops

REPO = Path(__file__).resolve().parent.parent
BASE_CONFIG = REPO / "experiments/ppo/inverted_pendulum.yaml"  # encodes the work shape below
RESULT_PREFIX = "BENCH_RESULT "
# Learning hyperparameters per env (the work shape is the same for all): brax's published settings.
HYPERPARAMETERS = {
    "inverted_pendulum": {"discount": 0.97, "reward_scale": 10.0, "entropy": 1e-2},
    "halfcheetah": {"discount": 0.95, "reward_scale": 1.0, "entropy": 1e-3},
}
DEFAULT_STEPS = {"inverted_pendulum": 307_200, "halfcheetah": 307_200}


@dataclasses.dataclass(frozen=True)
class Workload:
    env: str
    total_steps: int
    num_envs: int = 256
    unroll_length: int = 80  # steps per env per iteration
    num_minibatches: int = 16
    num_epochs: int = 4
    num_evals: int = 6  # the one at step 0 included
    eval_episodes: int = 128
    episode_length: int = 1000
    learning_rate: float = 3e-4

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def minibatch_size(self) -> int:
        return self.steps_per_iteration // self.num_minibatches

    @property
    def eval_every(self) -> int:
        return self.total_steps // (self.num_evals - 1)

    @property
    def hyper(self) -> dict[str, float]:
        return HYPERPARAMETERS[self.env]

    def check(self) -> None:
        segment = self.steps_per_iteration * (self.num_evals - 1)
        if self.total_steps % segment:
            raise SystemExit(f"--total-steps must be a multiple of {segment} (20480 steps per iteration x "
                             f"{self.num_evals - 1} evaluation intervals), got {self.total_steps}")


# ----------------------------------------------------------------------------------------------- workers


def worker_env(work: Workload, seed: int) -> dict:
    """(a) steps/s of 256 vmapped envs under jit + lax.scan with zero actions, bare and wrapped."""
    import jax
    import jax.numpy as jnp
    from brax import envs as brax_envs

    import envs

    raw = brax_envs.get_environment(work.env)
    batch, length = work.num_envs, work.unroll_length
    zeros = jnp.zeros((batch, raw.action_size))
    candidates = {
        "raw brax env (vmap)": (jax.vmap(raw.reset), jax.vmap(raw.step), True),
        "brax training wrappers": (*_reset_step(brax_envs.training.wrap(raw, episode_length=work.episode_length)),
                                   True),
        "jaxrl training_env": (*_reset_step(envs.training_env(envs.make(work.env), batch, work.episode_length)),
                               False),
    }
    result = {}
    for name, (reset, step, split_keys) in candidates.items():
        def steps(key, reset=reset, step=step, split_keys=split_keys):
            state = reset(jax.random.split(key, batch) if split_keys else key)
            state, _ = jax.lax.scan(lambda s, _: (step(s, zeros), None), state, None, length)
            return state.obs.sum()

        key = jax.random.PRNGKey(seed)
        compiled, compile_seconds = compile_timed(steps, key)
        seconds = median_seconds(compiled, (key,), calls=3)
        result[name] = {"steps_per_second": batch * length / seconds, "compile_seconds": compile_seconds}
    return result


def _reset_step(env):
    return env.reset, env.step


def _matmul_rates() -> dict[str, float]:
    """fp32 GFLOP/s of this machine on a square matmul and on the update's shapes."""
    import jax

    key = jax.random.PRNGKey(0)
    square = jax.random.normal(key, (2048, 2048))
    activations = jax.random.normal(key, (1280, 256))
    weights = jax.random.normal(key, (256, 256)) / 16

    def mlp_chain(x, w):  # 64 dependent [1280,256] @ [256,256] products: the value net's layers in the update
        return jax.lax.fori_loop(0, 64, lambda _, x: x @ w, x)

    rates = {}
    for name, fn, args, flops in [("2048x2048 @ 2048x2048", lambda a: a @ a, (square,), 2 * 2048**3),
                                  ("[1280,256] @ [256,256], 64 in a loop", mlp_chain, (activations, weights),
                                   64 * 2 * 1280 * 256 * 256)]:
        rates[name] = matmul_gflops(fn, args, flops, min_calls=5)["gflops_median"]
    return rates


def _ours_update_flops(work: Workload) -> dict[str, float]:
    import jax
    import jax.numpy as jnp

    import envs
    from jaxrl.agents import ppo
    from jaxrl.types import Trajectory

    spec = envs.spec(work.env, envs.make(work.env))
    config = _our_config(work, seed=0)
    key = jax.random.PRNGKey(0)

    def trajectory(steps, envs_):
        normal = lambda *shape: jax.random.normal(key, shape)
        act_info = {"log_prob": normal(steps, envs_), "raw_action": normal(steps, envs_, spec.action_size)}
        return Trajectory(normal(steps, envs_, spec.obs_size), jnp.tanh(normal(steps, envs_, spec.action_size)),
                          normal(steps, envs_), jnp.zeros((steps, envs_)), jnp.ones((steps, envs_)),
                          jnp.zeros((steps, envs_)), act_info, normal(envs_, spec.obs_size), jnp.zeros((steps, envs_)))

    # One SGD step = update(1 epoch of 1 minibatch of 1280) minus its value pre-pass over the 1280 + 16 observations.
    envs_per_minibatch = work.minibatch_size // work.unroll_length
    single = dataclasses.replace(config, num_envs=envs_per_minibatch, num_minibatches=1, num_epochs=1)
    learner = ppo.make_learner(single, spec)
    state = learner.init(key, learner.hyperparams)
    value_net = ppo.make_networks(config, spec).value
    prepass = functools.partial(value_net.apply, state.params["value"])
    sgd_step = (xla_flops(learner.update, state, trajectory(work.unroll_length, envs_per_minibatch), key)
                - xla_flops(prepass, jnp.zeros((work.minibatch_size + envs_per_minibatch, spec.obs_size))))

    learner = ppo.make_learner(config, spec)
    state = learner.init(key, learner.hyperparams)
    batch = trajectory(work.unroll_length, work.num_envs)
    obs = jnp.zeros((work.num_envs, spec.obs_size))
    update_seconds = median_seconds(compile_timed(learner.update, state, batch, key)[0], (state, batch, key), calls=3)
    return {
        "sgd_step_xla": sgd_step,
        "update_matmul": jaxpr_matmul_flops(learner.update, state, batch, key),
        "act_matmul": jaxpr_matmul_flops(lambda s, o, k: learner.act(s, o, k, False), state, obs, key) / work.num_envs,
        "update_seconds": update_seconds,
    }


def _brax_update_flops(work: Workload) -> dict[str, float]:
    import jax
    import jax.numpy as jnp
    import optax
    from brax import envs as brax_envs
    from brax.training import types
    from brax.training.acme import running_statistics, specs
    from brax.training.agents.ppo import losses as ppo_losses
    from brax.training.agents.ppo import networks as ppo_networks

    env = brax_envs.get_environment(work.env)
    obs_size = int(jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs.shape[-1])
    action_size = env.action_size
    nets = ppo_networks.make_ppo_networks(obs_size, action_size,
                                          preprocess_observations_fn=running_statistics.normalize)
    key = jax.random.PRNGKey(0)
    params = ppo_losses.PPONetworkParams(nets.policy_network.init(key), nets.value_network.init(key))
    normalizer = running_statistics.init_state(specs.Array((obs_size,), jnp.dtype("float32")))
    optimizer = optax.adam(work.learning_rate)
    loss = functools.partial(ppo_losses.compute_ppo_loss, ppo_network=nets, entropy_cost=work.hyper["entropy"],
                             discounting=work.hyper["discount"], reward_scaling=work.hyper["reward_scale"])

    def minibatch(*leading):
        normal = lambda *shape: jax.random.normal(key, leading + shape)
        extras = {"policy_extras": {"log_prob": normal(), "raw_action": normal(action_size),
                                    "distribution_params": normal(2 * action_size)},
                  "state_extras": {"truncation": jnp.zeros(leading)}}
        return types.Transition(normal(obs_size), normal(action_size), normal(), jnp.ones(leading),
                                normal(obs_size), extras)

    def sgd_step(carry, data):
        params, opt_state = carry
        grads, _ = jax.grad(loss, has_aux=True)(params, normalizer, data, key)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), None

    sequences = work.minibatch_size // work.unroll_length  # brax's batch_size
    carry = (params, optimizer.init(params))
    steps = work.num_epochs * work.num_minibatches
    all_minibatches = minibatch(steps, sequences, work.unroll_length)
    sgd_steps = lambda carry, data: jax.lax.scan(sgd_step, carry, data)[0]
    seconds = median_seconds(compile_timed(sgd_steps, carry, all_minibatches)[0], (carry, all_minibatches), calls=3)
    policy = ppo_networks.make_inference_fn(nets)((normalizer, params.policy, params.value))
    return {
        "sgd_step_xla": xla_flops(lambda c, d: sgd_step(c, d)[0], carry, minibatch(sequences, work.unroll_length)),
        "update_matmul": jaxpr_matmul_flops(sgd_steps, carry, all_minibatches),
        "act_matmul": jaxpr_matmul_flops(policy, jnp.zeros((work.num_envs, obs_size)), key) / work.num_envs,
        "update_seconds": seconds,
    }


def worker_flops(work: Workload, seed: int) -> dict:
    """FLOPs of the update per env step (XLA cost_analysis of one SGD step, and counted matmuls), vs this CPU."""
    del seed
    return {"matmul_gflops": _matmul_rates(), "ours": _ours_update_flops(work), "brax": _brax_update_flops(work)}


def _our_config(work: Workload, seed: int):
    from jaxrl.agents import ppo
    from jaxrl.config import resolve_config

    overrides = {"num_envs": work.num_envs, "unroll_length": work.unroll_length,
                 "num_minibatches": work.num_minibatches, "num_epochs": work.num_epochs,
                 "learning_rate": work.learning_rate, "total_steps": work.total_steps, "eval_every": work.eval_every,
                 "eval_episodes": work.eval_episodes, "episode_length": work.episode_length,
                 "gamma": work.hyper["discount"], "reward_scale": work.hyper["reward_scale"],
                 "entropy_coef": work.hyper["entropy"], "seed": seed}
    return resolve_config(ppo.Config, str(BASE_CONFIG), [f"{k}={v}" for k, v in overrides.items()])


def worker_ours(work: Workload, seed: int) -> dict:
    """(c) jaxrl: `experiment.execute`, as `jaxrl train` does, with W&B disabled.

    Compilation time is the run summary's. The runner reports only the sums of its chunk and evaluation
    times, so its compiled programs are wrapped to time every call; steps and returns are its metrics.jsonl.
    """
    import jax

    from jaxrl.experiment import RunOptions, RunSpec, execute
    from jaxrl.infra import runner

    start = time.perf_counter()
    calls = {"chunk": [], "eval": []}  # (began, ended) of every call of each program, seconds since start
    compile_programs = runner.compile_programs

    def timed(kind, program):
        def call(*args):
            began = time.perf_counter() - start
            out = jax.block_until_ready(program(*args))
            calls[kind].append((began, time.perf_counter() - start))
            return out
        return call

    def timed_compile(*args):
        chunk, evaluate = compile_programs(*args)
        return timed("chunk", chunk), timed("eval", evaluate)

    runner.compile_programs = timed_compile
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            spec = RunSpec("ppo", work.env, (seed,), _our_config(work, seed))
            _, summary = execute(spec, run_dir, RunOptions(progress=False, wandb_mode="disabled"))
            logged = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    finally:
        runner.compile_programs = compile_programs
    total = time.perf_counter() - start
    # One seed: one logged row per evaluation, written as the evaluation returns.
    records = [{"step": row["step"], "time": ended, "return": row["eval/return"]}
               for row, (_, ended) in zip(logged, calls["eval"], strict=True)]
    return {"total": total, "records": records, "compile": summary["compile_seconds"],
            "eval_seconds": [ended - began for began, ended in calls["eval"]],
            "train_seconds": [ended - began for began, ended in calls["chunk"]]}


def _patch_brax() -> None:
    """brax.training 0.14 calls jax.device_put_replicated (removed from JAX): stack one copy per device and pmap it.

    The pmap carries brax's axis name ("i"): JAX 0.10 types pmap outputs by their axis name, and a state typed
    differently from what brax's own pmap returns makes its first two training epochs compile twice.
    """
    import jax
    import jax.numpy as jnp

    if hasattr(jax, "device_put_replicated"):
        return

    def device_put_replicated(tree, devices):
        stacked = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * len(devices)), tree)
        return jax.pmap(lambda x: x, axis_name="i", devices=devices)(stacked)

    jax.device_put_replicated = device_put_replicated


def worker_brax(work: Workload, seed: int) -> dict:
    """(b) brax.training.agents.ppo.train configured to the same work."""
    _patch_brax()
    from brax import envs as brax_envs
    from brax.training.agents.ppo import train as brax_ppo

    start = time.perf_counter()
    records = []

    def progress(step, metrics):
        records.append({"step": int(step), "time": time.perf_counter() - start,
                        "return": float(metrics["eval/episode_reward"]),
                        "eval_seconds": float(metrics["eval/epoch_eval_time"]),
                        "train_walltime": float(metrics.get("training/walltime", 0.0))})

    sequences = work.minibatch_size // work.unroll_length
    # brax: env steps per training step = batch_size * unroll_length * num_minibatches; each rollout is
    # batch_size * num_minibatches / num_envs = 1 unroll of 80 steps in every env; a minibatch is batch_size
    # sequences of unroll_length steps (16 x 80 = 1280 transitions); GAE runs over each 80-step sequence.
    brax_ppo.train(
        brax_envs.get_environment(work.env), num_timesteps=work.total_steps, num_evals=work.num_evals,
        num_envs=work.num_envs, batch_size=sequences, unroll_length=work.unroll_length,
        num_minibatches=work.num_minibatches, num_updates_per_batch=work.num_epochs,
        num_eval_envs=work.eval_episodes, episode_length=work.episode_length, deterministic_eval=True,
        reward_scaling=work.hyper["reward_scale"], discounting=work.hyper["discount"],
        entropy_cost=work.hyper["entropy"], learning_rate=work.learning_rate, normalize_observations=True,
        seed=seed, progress_fn=progress)
    total = time.perf_counter() - start
    walltimes = [0.0] + [r["train_walltime"] for r in records[1:]]
    return {"total": total, "records": records, "eval_seconds": [r["eval_seconds"] for r in records],
            "train_seconds": [b - a for a, b in zip(walltimes[:-1], walltimes[1:], strict=True)]}


WORKERS = {"env": worker_env, "flops": worker_flops, "ours": worker_ours, "brax": worker_brax}


# ------------------------------------------------------------------------------------------ orchestration


def spawn(kind: str, work: Workload, seed: int) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--env", work.env, "--total-steps",
               str(work.total_steps), "--seed", str(seed)]
    print(f"  running {kind} (seed {seed}) ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"worker {kind} failed with exit code {done.returncode}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def _steady(values: list[float]) -> float:
    """Median of the last three: the state after compilation (and recompilation) is over."""
    return statistics.median(values[-3:])


def _excess(values: list[float]) -> list[float]:
    """Time each call took beyond the steady state: its (re)compilation."""
    return [max(0.0, value - _steady(values)) for value in values]


def derived(run: dict) -> dict:
    """Figures shared by both trainers, from (step, time, return) at every evaluation and per-part timings."""
    records, evals, trains = run["records"], run["eval_seconds"], run["train_seconds"]
    pairs = list(zip(records[:-1], records[1:], strict=True))
    segments = [(b["step"] - a["step"]) / (b["time"] - a["time"]) for a, b in pairs]
    train_rates = [(b["step"] - a["step"]) / t for (a, b), t in zip(pairs, trains, strict=True)]
    recompile = None
    if "compile" in run:  # ours: ahead-of-time compilation, timed by the runner; evaluations end early
        compile_seconds = run["compile"]
        setup = records[0]["time"] - compile_seconds - evals[0]
    else:  # brax: compiles inside its first calls; count what they took beyond the steady state
        compile_seconds = sum(_excess(trains)) + sum(_excess(evals))
        setup = records[0]["time"] - evals[0]
        recompile = sum(_excess(trains)[1:]) + sum(_excess(evals)[1:])
    return {"total": run["total"], "first_eval": records[0]["time"], "setup": setup, "compile": compile_seconds,
            "recompile": recompile, "total_without_recompile": run["total"] - (recompile or 0.0),
            "eval_total": sum(evals), "eval_steady": _steady(evals),
            "segment_rates": segments, "segment_steady": _steady(segments),
            "segment_all": (records[-1]["step"] - records[0]["step"]) / (records[-1]["time"] - records[0]["time"]),
            "train_steady": _steady(train_rates), "train_rates": train_rates,
            "returns": {r["step"]: r["return"] for r in records}}


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


RUN_ROWS = [  # label, key, which ratio reads "better than 1 when ours is better"
    ("total wall time to the same step count, s", "total", "brax/ours"),
    ("... brax without its recompilations (see notes), s", "total_without_recompile", "brax/ours"),
    ("time to the first evaluation result, s", "first_eval", "brax/ours"),
    ("compilation, s (see notes)", "compile", "brax/ours"),
    ("setup: env, init (incl. their compilation), s", "setup", "brax/ours"),
    ("evaluation, all, s", "eval_total", "brax/ours"),
    ("evaluation, steady (last 3), s", "eval_steady", "brax/ours"),
    ("steps/s between evaluations incl. evaluation, steady (last 3)", "segment_steady", "ours/brax"),
    ("steps/s between evaluations incl. evaluation, first to last", "segment_all", "ours/brax"),
    ("steps/s training only, steady (last 3)", "train_steady", "ours/brax"),
]


def print_runs(work: Workload, results: dict[str, list[dict]]) -> None:
    names = [n for n in ("brax", "ours") if results.get(n)]
    figures = {n: [derived(run) for run in results[n]] for n in names}
    seeds = len(figures[names[0]])
    print(f"\n{work.env}: {work.total_steps} env steps, {work.num_evals} evaluations x {work.eval_episodes} "
          f"episodes; mean over {seeds} seed(s)\n")
    both = len(names) == 2
    print("| | " + " | ".join(names) + (" | ratio |" if both else " |"))
    print("|---|" + "---:|" * (len(names) + both))
    for label, key, orientation in RUN_ROWS:
        if key == "total_without_recompile" and "brax" not in names:
            continue
        values = [_mean([f[key] for f in figures[n]]) for n in names]
        cells = [_fmt(v) for v in values]
        if both and all(values):
            brax, ours = values
            value, reference = (brax, ours) if orientation == "brax/ours" else (ours, brax)
            cells.append(f"{ratio(value, reference, unit='')} ({orientation})")
        elif both:
            cells.append("")
        print(f"| {label} | " + " | ".join(cells) + " |")
    segments = len(figures[names[0]][0]["segment_rates"])
    print("\n| steps/s in segment | " + " | ".join(str(i + 1) for i in range(segments)) + " |")
    print("|---|" + "---:|" * segments)
    for n in names:
        for label, key in [("incl. evaluation", "segment_rates"), ("training only", "train_rates")]:
            rates = [statistics.mean(r) for r in zip(*(f[key] for f in figures[n]), strict=True)]
            print(f"| {n}, {label} | " + " | ".join(_fmt(r) for r in rates) + " |")
    print("\n| evaluation return at step | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for step in sorted(figures[names[0]][0]["returns"]):
        returns = [_fmt(_mean([f["returns"].get(step) for f in figures[n]])) for n in names]
        print(f"| {step} | " + " | ".join(returns) + " |")


def print_env(work: Workload, env: dict) -> None:
    print(f"\n(a) {work.num_envs} envs x {work.unroll_length} steps under jit + lax.scan, zero actions\n")
    print("| env stepping | steps/s | compile, s |\n|---|---:|---:|")
    for name, figure in env.items():
        print(f"| {name} | {figure['steps_per_second']:,.0f} | {figure['compile_seconds']:.1f} |")


def print_flops(work: Workload, flops: dict, results: dict[str, list[dict]]) -> None:
    updates = work.num_epochs * work.num_minibatches
    peak = max(flops["matmul_gflops"].values())
    print("\nMachine fp32 matmul rate: " + "; ".join(f"{name}: {rate:.0f} GFLOP/s"
                                                   for name, rate in flops["matmul_gflops"].items()))
    print("\n| FLOPs per env step | brax | ours |\n|---|---:|---:|")
    rows = {n: {} for n in ("brax", "ours")}
    for n, row in rows.items():
        figure = flops[n]
        row["one SGD step (XLA cost_analysis), GFLOP"] = f"{figure['sgd_step_xla'] / 1e9:.3f}"
        row[f"SGD steps: one x {updates} / {work.steps_per_iteration}, MFLOP"] = (
            f"{figure['sgd_step_xla'] * updates / work.steps_per_iteration / 1e6:.2f}")
        per_step = figure["update_matmul"] / work.steps_per_iteration
        row["whole update, matmuls counted in the jaxpr (ours: + value pre-pass for GAE), MFLOP"] = (
            f"{per_step / 1e6:.2f}")
        row["rollout policy forward, matmuls, kFLOP"] = f"{figure['act_matmul'] / 1e3:.1f}"
        achieved = figure["update_matmul"] / figure["update_seconds"] / 1e9
        row["update alone (ours: learner.update; brax: its 64 SGD steps), ms per iteration"] = (
            f"{figure['update_seconds'] * 1e3:.0f}")
        row["... achieved GFLOP/s (share of the best matmul rate)"] = f"{achieved:.0f} ({achieved / peak:.0%})"
        row["update-bound limit at the best matmul rate, steps/s"] = f"{peak * 1e9 / per_step:,.0f}"
        runs = results.get(n)
        if runs:
            rate = _mean([derived(run)["train_steady"] for run in runs])
            row["update GFLOP/s averaged over a steady training chunk"] = f"{rate * per_step / 1e9:.0f}"
    for label in rows["ours"]:
        print(f"| {label} | {rows['brax'].get(label, '-')} | {rows['ours'][label]} |")


def orchestrate(args, work: Workload) -> None:
    import os

    print(f"PPO benchmark: {work}", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = {"env": spawn("env", work, 0), "flops": spawn("flops", work, 0), "brax": [], "ours": []}
    for seed in range(args.seed, args.seed + args.seeds):
        if not args.skip_brax:
            results["brax"].append(spawn("brax", work, seed))
        results["ours"].append(spawn("ours", work, seed))
    print(f"load average after: {os.getloadavg()}")
    print_env(work, results["env"])
    print_runs(work, {k: results[k] for k in ("brax", "ours")})
    print_flops(work, results["flops"], results)
    if args.json:
        Path(args.json).write_text(json.dumps({"workload": dataclasses.asdict(work), **results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=sorted(HYPERPARAMETERS), default="inverted_pendulum")
    parser.add_argument("--total-steps", type=int, default=None,
                        help="env steps per run (default 307200; a multiple of 102400)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds run one after another, for each trainer")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--skip-brax", action="store_true", help="do not run brax's trainer")
    parser.add_argument("--json", help="also write every raw measurement to this file")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Workload(args.env, args.total_steps or DEFAULT_STEPS[args.env])
    work.check()
    if args.worker:
        sys.path.insert(0, str(REPO))
        print(RESULT_PREFIX + json.dumps(WORKERS[args.worker](work, args.seed)), flush=True)
    else:
        orchestrate(args, work)


if __name__ == "__main__":
    main()
