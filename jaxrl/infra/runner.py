"""The host side of a run: compile, loop over chunks, evaluate, log, checkpoint, summarize.

Everything numeric happens inside the two compiled programs (a chunk of training and an evaluation,
both vmapped over seeds); the host only sees metrics between chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxrl.infra import devices, distributed
from jaxrl.infra.checkpoint import Checkpointer
from jaxrl.infra.files import atomic_write_json, tree_sha256
from jaxrl.infra.logging import RunLogger
from jaxrl.infra.watchdog import DEFAULT_TIMEOUT, Watchdog
from jaxrl.train import Trainer


def seed_keys(seeds: list[int]) -> tuple[jax.Array, jax.Array]:
    """Per-seed training and evaluation keys, both derived from the seed alone."""
    keys = jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])
    split = jax.vmap(jax.random.split)(keys)
    return split[:, 0], split[:, 1]


Monitor = Callable[[int, dict[str, Any]], str | None]  # (chunk, metrics) -> why the run stops now, or None


def over_seeds(fn, seed_batch: int | None = None, num_seeds: int | None = None):
    """`fn(per_seed, shared)` over the leading (seed) axis of its first argument, in one program.

    All seeds are vmapped at once (`seed_batch` None), or `seed_batch` at a time with the groups one after
    another (`lax.map`). One seed at a time (and a run of one seed) is not vmapped at all: under `vmap`,
    every `lax.cond` inside (our auto-reset, Brax's physics) becomes a select that pays for both branches,
    which made a single halfcheetah seed 1.6x slower than unbatched stepping.
    """
    if seed_batch is None and num_seeds != 1:
        return jax.vmap(fn, in_axes=(0, None))
    if seed_batch is None or seed_batch == 1:
        return lambda per_seed, shared: jax.lax.map(lambda one: fn(one, shared), per_seed)
    return lambda per_seed, shared: jax.lax.map(lambda one: fn(one, shared), per_seed, batch_size=seed_batch)


def repeat_hyperparams(hyperparams: Any, count: int) -> Any:
    """One copy of `hyperparams` per run, stacked along a leading axis."""
    return jax.tree.map(lambda value: jnp.broadcast_to(value, (count, *jnp.shape(value))), hyperparams)


def init_seeds(trainer: Trainer, keys: jax.Array, hyperparams: Any) -> Any:
    """The run state of every run (a key and its hyperparameters each, stacked along the leading axis).

    Each run is initialized on its own (lax.map), so its initial state is bit-identical to a run of it alone
    whatever the run count; init runs once, so the loop costs nothing.
    """
    return jax.jit(lambda keys, hyperparams: jax.lax.map(lambda pair: trainer.init(*pair), (keys, hyperparams)))(
        keys, hyperparams)


def chunk_over_seeds(trainer: Trainer, seed_batch: int | None, num_seeds: int | None):
    """`(states, data, iterations) -> (states, metrics)`: a training chunk of every seed, data and count shared."""
    chunk_seeds = over_seeds(lambda one, shared: trainer.run_chunk(one, *shared), seed_batch, num_seeds)
    return lambda state, data, iterations: chunk_seeds(state, (data, iterations))


def evaluate_over_seeds(trainer: Trainer, seed_batch: int | None, num_seeds: int | None):
    """`(agent states, eval keys) -> metrics`: the evaluation of every seed, each with its own key."""
    evaluate_seeds = over_seeds(lambda pair, _: trainer.evaluate(*pair), seed_batch, num_seeds)
    return lambda agent, keys: evaluate_seeds((agent, keys), None)


def _shapes(tree: Any) -> Any:
    """The abstract values of a pytree of arrays: shapes, dtypes and, across devices, their sharding.

    On one device, arrays restored from a checkpoint are committed to it, which puts sharding annotations into a
    program lowered for them; lowered for shapes alone, a resume compiles the very program a fresh run did, and
    finds it in the persistent compilation cache (jaxrl/infra/compile_cache.py).
    """
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type,
                                                       sharding=devices.named_sharding(x)), tree)


def compile_programs(trainer: Trainer, state: Any, eval_keys: jax.Array, data: Any, seed_batch: int | None = None,
                     where: devices.Placement = devices.ONE_DEVICE):
    """AOT-compile the chunk and the evaluation at once (XLA compiles them on separate threads), for the arrays'
    placement `where` (jaxrl/infra/devices.py)."""
    num_seeds = jax.tree.leaves(state)[0].shape[0]
    # Across devices, a chunk hands its state back placed as it came in (the next chunk's input), metrics alike.
    placed = {} if where.mesh is None else {"out_shardings": where.state_sharding()}
    chunk_fn = jax.jit(chunk_over_seeds(trainer, seed_batch, num_seeds), donate_argnums=0, **placed)
    eval_fn = jax.jit(evaluate_over_seeds(trainer, seed_batch, num_seeds))
    state, eval_keys, data = _shapes((state, eval_keys, data))
    with ThreadPoolExecutor(2) as pool, devices.tracing_for(where):
        chunk = pool.submit(lambda: chunk_fn.lower(state, data, jnp.int32(0)).compile())
        evaluate = pool.submit(lambda: eval_fn.lower(state.agent, eval_keys).compile())
        return chunk.result(), evaluate.result()


def _eval_keys_at(eval_keys: jax.Array, chunk: int) -> jax.Array:
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(eval_keys, chunk)


class _Clock:
    """Times the blocking calls of a run by kind, each under the watchdog with the program's name."""

    def __init__(self, watchdog: Watchdog):
        self.watchdog = watchdog
        self.seconds = {"train": 0.0, "eval": 0.0}

    def __call__(self, kind: str, program: str, fn, *args):
        began = time.perf_counter()
        with self.watchdog.watch(program):
            out = jax.block_until_ready(fn(*args))
        self.seconds[kind] += time.perf_counter() - began
        return out


def run(trainer: Trainer, seeds: list[int], run_dir: Path, logger: RunLogger, data: Any = None,
        resume: bool = False, checkpoint_every: int = 1, progress: bool = True,
        keep_checkpoints: int | None = 2, seed_batch: int | None = None,
        watchdog_seconds: float | None = DEFAULT_TIMEOUT, hyperparams: Any = None,
        num_devices: int = 1, init_from: Path | None = None, monitor: Monitor | None = None
        ) -> tuple[Any, dict[str, Any]]:
    """Train every run to the end (from the newest checkpoint when `resume`); returns (state, summary).

    A run is a seed and its hyperparameters: `hyperparams` stacked one per seed (None: the trainer's, the config's
    values, for all), so a sweep's members and their seeds are one batch of runs.

    Every blocking call runs under a `Watchdog` that ends the process when it stops making progress for
    `watchdog_seconds` (None or 0: never).

    On `num_devices` devices, each device trains whole runs or a share of every batch (jaxrl/infra/devices.py).

    `init_from`, the folder of an earlier run of the same seeds (fine-tuning an offline run), gives every run its
    final agent state to start from, with this run's hyperparameters; that folder is only read.

    `monitor(chunk, metrics)`, called after each chunk is logged and checkpointed with its metrics (host arrays,
    a leading seed axis), ends the run there when it returns a reason; the summary's `stopped` says where and why
    (None: the run went to its end).
    """
    start = time.perf_counter()
    plan = trainer.plan
    vmapped = seed_batch is None and len(seeds) > 1  # as `over_seeds` runs them
    layout = devices.placement(num_devices, len(seeds), vmapped, trainer.split_sizes)
    with Watchdog(watchdog_seconds, cpu_progress=jax.default_backend() == "cpu") as watchdog:
        clock = _Clock(watchdog)
        train_keys, eval_keys = seed_keys(seeds)
        with watchdog.watch(f"initialization of {len(seeds)} seed(s)"):
            if hyperparams is None:
                hyperparams = repeat_hyperparams(trainer.hyperparams, len(seeds))
            state = jax.block_until_ready(init_seeds(trainer, train_keys, hyperparams))
        state = layout.put(state, layout.state_sharding())
        data = layout.put(data, layout.replicated())
        checkpointer = Checkpointer(Path(run_dir) / "checkpoints", keep_checkpoints)
        first_chunk = 0
        latest = checkpointer.latest_chunk() if resume else None
        if latest is not None:
            first_chunk = latest
            state = checkpointer.restore(first_chunk, state)
            logger.drop_after(plan.units_done(first_chunk))
        elif resume:  # killed before its first checkpoint: it starts over, so what it logged goes
            logger.drop_after(-1)
        if latest is None and init_from is not None:
            state = state._replace(agent=final_agents(init_from, state, seeds))
        compile_start = time.perf_counter()
        with watchdog.watch("compilation of the training chunk and the evaluation", cpu_progress=True):
            run_chunk, evaluate = compile_programs(trainer, state, layout.put(eval_keys, layout.state_sharding()),
                                                   data, seed_batch, layout)
        compile_seconds = time.perf_counter() - compile_start

        def evaluate_at(program: str, chunk: int):
            keys = layout.put(_eval_keys_at(eval_keys, chunk), layout.state_sharding())
            return distributed.to_host(clock("eval", program, evaluate, state.agent, keys))

        eval_metrics = None
        if first_chunk == 0:
            eval_metrics = evaluate_at("evaluation before training", 0)
            logger.log(0, eval_metrics, chunk=0)
        elif first_chunk == plan.num_chunks:  # resuming a finished run: its final evaluation again, unlogged
            eval_metrics = evaluate_at("final evaluation", first_chunk)
        bar = tqdm(total=plan.total_units, initial=plan.units_done(first_chunk),
                   unit=" " + plan.unit.replace("_", " "), unit_scale=True,
                   disable=not (progress and distributed.is_primary()), dynamic_ncols=True)
        stopped, last_chunk = None, first_chunk
        for chunk in range(first_chunk + 1, plan.num_chunks + 1):
            where = f"chunk {chunk} of {plan.num_chunks}"
            iterations = jnp.int32(plan.chunk_iterations(chunk))
            state, metrics = clock("train", f"training {where}", run_chunk, state, data, iterations)
            metrics = distributed.to_host(metrics)
            eval_metrics = evaluate_at(f"evaluation after {where}", chunk)
            logger.log(plan.units_done(chunk), {**metrics, **eval_metrics}, chunk=chunk)
            if chunk % checkpoint_every == 0 or chunk == plan.num_chunks:
                checkpointer.save(chunk, state)
            bar.set_postfix_str(f"eval return {np.mean(eval_metrics['eval/return']):.1f}")
            bar.update(plan.units_done(chunk) - plan.units_done(chunk - 1))
            last_chunk = chunk
            reason = monitor(chunk, {**metrics, **eval_metrics}) if monitor is not None else None
            if reason:
                if chunk % checkpoint_every != 0:
                    checkpointer.save(chunk, state)
                stopped = {"chunk": chunk, plan.unit: plan.units_done(chunk), "reason": reason}
                break
        bar.close()
        checkpointer.close()
    trained = (plan.units_done(last_chunk) - plan.units_done(first_chunk)) * len(seeds)
    summary = {**_final_figures(plan, seeds, state, eval_metrics), plan.unit: plan.units_done(last_chunk),
               "stopped": stopped, "wall_seconds": time.perf_counter() - start,
               "compile_seconds": compile_seconds, "eval_seconds": clock.seconds["eval"],
               ("steps_per_second" if plan.unit == "env_steps" else "updates_per_second"):
                   trained / clock.seconds["train"] if clock.seconds["train"] else None,
               "resumed_from_chunk": first_chunk, "devices": layout.num_devices, "device_split": layout.split}
    return state, summary


def final_agents(run_dir: Path, like: Any, seeds: list[int] | None = None) -> Any:
    """The agent states of `run_dir`'s newest checkpoint (its final ones, for a finished run), restored into the
    structure of `like.agent` (a run state of `seeds`, all of that run's seeds or some of them) and given `like`'s
    hyperparameters."""
    import yaml

    saved_seeds = list(yaml.safe_load((Path(run_dir) / "config.yaml").read_text())["seeds"])
    seeds = saved_seeds if seeds is None else list(seeds)
    missing = [seed for seed in seeds if seed not in saved_seeds]
    if missing:
        raise ValueError(f"{run_dir}: has no seed(s) {missing} to start from (its seeds: {saved_seeds})")
    wrapped = hasattr(like.agent, "inner")  # a constrained learner (jaxrl/safety/constrained.py) around the agent
    target = like._replace(env_state=None, agent=like.agent.inner if wrapped else like.agent)
    whole = jax.tree.map(lambda x: jax.ShapeDtypeStruct((len(saved_seeds), *x.shape[1:]), x.dtype), target)
    absl_logger = logging.getLogger("absl")  # orbax warns that a read-only manager will not save: it will not
    level, _ = absl_logger.level, absl_logger.setLevel(logging.ERROR)
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints", read_only=True)
    try:
        chunk = checkpointer.latest_chunk()
        if chunk is None:
            raise ValueError(f"{run_dir}: no checkpoint to start from")
        saved = checkpointer.restore(chunk, whole if seeds != saved_seeds else target)
    finally:
        checkpointer.close()
        absl_logger.setLevel(level)
    agent = saved.agent
    if seeds != saved_seeds:
        rows = jnp.asarray([saved_seeds.index(seed) for seed in seeds])
        agent = jax.tree.map(lambda x: x[rows], agent)
    agent = agent._replace(hyperparams=target.agent.hyperparams)
    return like.agent._replace(inner=agent) if wrapped else agent


def _final_figures(plan, seeds: list[int], state: Any, eval_metrics: dict[str, Any]) -> dict[str, Any]:
    returns = np.asarray(eval_metrics["eval/return"], dtype=float)
    return {plan.unit: plan.total_units, "seeds": seeds, "eval_return_mean": float(returns.mean()),
            "eval_return_per_seed": returns.tolist(), "eval_cost_mean": float(np.mean(eval_metrics["eval/cost"])),
            "eval_cost_per_seed": np.asarray(eval_metrics["eval/cost"], dtype=float).tolist(),
            "final_params_sha256": tree_sha256(distributed.to_host(state.agent))}


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(Path(run_dir) / "summary.json", summary)
