"""What the benchmarks measure with: timed calls, compile time, FLOP counts, this machine's matmul rate, ratios.

Imported by scripts/bench_ppo.py and scripts/bench_offline.py, which run as scripts: their folder (this one)
is first on `sys.path`.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import jax
from jax.extend import core

# ------------------------------------------------------------------------------------------ timing


def cpu_seconds() -> tuple[float, float] | None:
    """Busy CPU-seconds so far of the whole machine and of this process; None without /proc/stat."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    times = os.times()
    return machine, times.user + times.system


def call_seconds(run: Callable[[], None], min_calls: int, window: float = 0.0) -> tuple[list[float], float | None]:
    """Seconds of each timed call of `run()`, made until they add up to `window` and number `min_calls`.

    One untimed call first (compilation, caches). Also returns how many cores other processes kept busy
    meanwhile (None without /proc/stat): anything well above 0 means the timing was shared with them.
    """
    run()
    seconds: list[float] = []
    before = cpu_seconds()
    while sum(seconds) < window or len(seconds) < min_calls:
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    after = cpu_seconds()
    other = None if not (before and after) else ((after[0] - before[0]) - (after[1] - before[1])) / sum(seconds)
    return seconds, other


def median_seconds(compiled, args: tuple, calls: int) -> float:
    """Median seconds of `calls` calls of `compiled(*args)`, after one untimed call."""
    seconds, _ = call_seconds(lambda: jax.block_until_ready(compiled(*args)), calls)
    return statistics.median(seconds)


def best_rate(run: Callable[[], None], work: float, window: float, min_calls: int = 5) -> dict:
    """`work` units per second of `run()`: best and median of timed calls made for `window` seconds.

    On shared (virtual) machines the speed of the whole machine changes from second to second; the best
    call is the one least disturbed.
    """
    seconds, other = call_seconds(run, min_calls, window)
    return {"best": work / min(seconds), "median": work / statistics.median(seconds), "calls": len(seconds),
            "other_cores_busy": other}


def noise(timing: dict) -> str:
    """A note when other processes used the CPU during a `best_rate` measurement."""
    other = timing.get("other_cores_busy")
    return f" (other processes kept {other:.2f} cores busy)" if other is not None and other > 0.05 else ""


def compile_timed(fn: Callable, *args, donate_argnums: int | tuple[int, ...] = ()):
    """`fn` jitted and compiled ahead of time for `args`, and the seconds that took."""
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - start


def matmul_gflops(fn: Callable, args: tuple, flops: float, window: float = 0.0, min_calls: int = 5) -> dict:
    """This machine's GFLOP/s on `fn(*args)`, a program of matmuls doing `flops` FLOPs a call.

    Best and median call, as `best_rate` times them (`window` 0: `min_calls` calls).
    """
    compiled, _ = compile_timed(fn, *args)
    timing = best_rate(lambda: jax.block_until_ready(compiled(*args)), flops, window, min_calls)
    return {"gflops": timing["best"] / 1e9, "gflops_median": timing["median"] / 1e9,
            "other_cores_busy": timing["other_cores_busy"]}


# ------------------------------------------------------------------------------------------- FLOPs


def xla_flops(fn: Callable, *args) -> float:
    """XLA's cost_analysis() FLOP count of `fn(*args)` jitted; NaN where XLA gives none.

    A loop's body (scan, fori_loop, while_loop) is counted once, however many times it runs.
    """
    analysis = compile_timed(fn, *args)[0].cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax returned one dict per computation
        analysis = analysis[0]
    return float(analysis.get("flops", math.nan))


def jaxpr_matmul_flops(fn: Callable, *args) -> float:
    """FLOPs of the matmuls in `fn(*args)`, counted in its jaxpr: a scan's body `length` times, a cond's
    costliest branch once."""
    return _matmul_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _matmul_flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
            lhs, rhs = (v.aval.shape for v in eqn.invars)
            rhs_free = math.prod(d for i, d in enumerate(rhs) if i not in rhs_contract and i not in rhs_batch)
            total += 2.0 * math.prod(lhs) * rhs_free
        inner = [_matmul_flops(sub) for sub in _sub_jaxprs(eqn.params)]
        if inner:
            repeat = eqn.params["length"] if eqn.primitive.name == "scan" else 1
            total += repeat * (max(inner) if eqn.primitive.name == "cond" else sum(inner))
    return total


def _sub_jaxprs(params):
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, core.Jaxpr):
                yield item


# ---------------------------------------------------------------------------------------- reporting


def ratio(value: float, reference: float | None, unit: str = "x") -> str:
    """`value / reference` to two decimals followed by `unit`; "-" without a reference."""
    return f"{value / reference:.2f}{unit}" if reference else "-"
