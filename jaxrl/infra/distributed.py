"""Multi-host runs: one `jaxrl train` process per host, the processes joined by `jax.distributed.initialize`.

Every process runs the same command with the same `--run-dir` (a shared file system) and its own
`--process-id`; `--devices` then counts the devices of all processes, and a run uses all of them (each process's
devices must take part in every program). The programs are the single-host ones: jaxrl/infra/devices.py places
the runs or the batches over a mesh that spans the processes, and XLA moves what crosses hosts (gloo on CPUs,
NCCL on GPUs). Process 0 alone writes the run folder, the metrics and W&B; every process writes its own shards of
each checkpoint (orbax), so a multi-host run resumes like any other, with the same processes.

    jaxrl train ppo --env pointmass --devices 2 --coordinator HOST:PORT --num-processes 2 --process-id 0
    jaxrl train ppo --env pointmass --devices 2 --coordinator HOST:PORT --num-processes 2 --process-id 1

A single process (the default) changes nothing here.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import numpy as np


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="multi-host: the address of process 0, where the processes meet (with --num-processes "
                             "and --process-id; see jaxrl/infra/distributed.py)")
    parser.add_argument("--num-processes", type=int, metavar="N", help="multi-host: how many processes take part")
    parser.add_argument("--process-id", type=int, metavar="I", help="multi-host: this process, 0 to N-1")


def initialize(args: argparse.Namespace) -> None:
    """Join the other processes when `--coordinator` is given; check the three options go together."""
    given = {name: getattr(args, name, None) for name in ("coordinator", "num_processes", "process_id")}
    if all(value is None for value in given.values()):
        return
    missing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is None]
    if missing:
        raise ValueError(f"a multi-host run needs --coordinator, --num-processes and --process-id together; "
                         f"missing {', '.join(missing)}")
    count, index = given["num_processes"], given["process_id"]
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--num-processes must be at least 1 and --process-id in 0..{count - 1}, got "
                         f"{count} and {index}")
    jax.distributed.initialize(given["coordinator"], count, index)


def is_primary() -> bool:
    """Whether this process writes the run's files (the only process of a single-host run)."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """`tree` as numpy arrays in every process, gathering the shards other processes hold."""
    def fetch(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(fetch, tree)


def put(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """`tree` (the same values in every process) placed by `sharding`, which may span processes."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x):
        value = to_host(x)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(one, tree)


class NullLogger:
    """What a process other than 0 logs: nothing (process 0 logs every run)."""

    def log(self, step: int, metrics: dict[str, Any], **fields: Any) -> None:
        pass

    def drop_after(self, last_step: int) -> None:
        pass

    def close(self) -> None:
        pass
