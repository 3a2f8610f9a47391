"""Training on several devices (`--devices N`): where a run's arrays live and how its work is split.

The runs of one program (seeds, a sweep's members) are independent, so the cheapest way to use N devices is to
give each device whole runs: when the runs are vmapped and their count is a multiple of N, the leading (run) axis
of the state is split over the devices and no device ever waits for another ("runs" placement).

Otherwise (one run, or a run count N does not divide) every run is split: data parallel ("data" placement). The
parameters and optimizer state are replicated, each device takes its share of every batch (offline: the sampled
transitions; online: the environments and their trajectories), and since every loss is a mean over the batch, XLA
turns the gradient of the sharded batch into per-device gradients averaged across devices (an all-reduce):
the same update as on one device, up to the order of float additions. The loops mark the batch axes with
`shard_batch`; with one device, or in "runs" placement, it changes nothing.

A mesh of the first N devices of `jax.devices()`, with one axis, DATA_AXIS. On a CPU,
XLA_FLAGS=--xla_force_host_platform_device_count=N splits the host into N devices (for tests).
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxrl.infra import distributed

DATA_AXIS = "data"


class Placement(NamedTuple):
    """How a program's runs use the devices: `mesh` None is one device; `split` is "runs" or "data"."""

    mesh: Mesh | None
    split: str | None

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def state_sharding(self) -> NamedSharding | None:
        """Where the run state lives: its leading (run) axis split ("runs") or replicated ("data")."""
        if self.mesh is None:
            return None
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS) if self.split == "runs" else PartitionSpec())

    def replicated(self) -> NamedSharding | None:
        """Where shared data (the dataset) lives: on every device."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec())

    def put(self, tree: Any, sharding: NamedSharding | None) -> Any:
        """`tree` placed by `sharding` (unchanged with one device), across processes in a multi-host run."""
        return tree if sharding is None or tree is None else distributed.put(tree, sharding)


ONE_DEVICE = Placement(None, None)


def named_sharding(x: Any) -> NamedSharding | None:
    """`x`'s sharding when it is placed over a mesh; None for an array on one device (or no array)."""
    sharding = getattr(x, "sharding", None)
    return sharding if isinstance(sharding, NamedSharding) else None


def check_device_count(num_devices: int) -> None:
    """`num_devices` is at least 1 and at most what this process sees, or a ValueError saying how to get more."""
    available = jax.devices()  # of every process, in a multi-host run
    if num_devices < 1:
        raise ValueError(f"--devices must be at least 1, got {num_devices}")
    if num_devices > len(available):
        hint = (" (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N splits the host into N devices)"
                if available[0].platform == "cpu" else "")
        raise ValueError(f"--devices {num_devices}: this process sees {len(available)} "
                         f"{available[0].platform} device(s){hint}")


def placement(num_devices: int, num_runs: int, vmapped: bool, batch_sizes: dict[str, int]) -> Placement:
    """Where the runs of one program go on `num_devices` devices (see the module docstring).

    `batch_sizes` names the config keys whose sizes "data" placement splits (batch_size, num_envs): each must be
    a multiple of the device count.
    """
    check_device_count(num_devices)
    if jax.process_count() > 1 and num_devices != jax.device_count():
        raise ValueError(f"--devices {num_devices}: a multi-host run trains on every device of every process, so "
                         f"--devices must be {jax.device_count()} ({jax.process_count()} processes)")
    if num_devices == 1:
        return ONE_DEVICE
    mesh = Mesh(np.array(jax.devices()[:num_devices]), (DATA_AXIS,), axis_types=(AxisType.Auto,))
    if vmapped and num_runs % num_devices == 0:
        return Placement(mesh, "runs")
    for key, size in batch_sizes.items():
        if size % num_devices:
            raise ValueError(f"--devices {num_devices}: {num_runs} run(s) cannot be spread evenly, so each run's "
                             f"batch is split over the devices, and config key '{key}' ({size}) must be a "
                             f"multiple of {num_devices}")
    return Placement(mesh, "data")


_data_mesh: Mesh | None = None  # set while the programs of a "data" placement are traced


@contextlib.contextmanager
def tracing_for(where: Placement):
    """Trace (compile) programs for `where`: inside, `shard_batch` splits batches when the placement is "data"."""
    global _data_mesh
    previous, _data_mesh = _data_mesh, where.mesh if where.split == "data" else None
    try:
        yield
    finally:
        _data_mesh = previous


def shard_batch(tree: Any, axis: int = 0) -> Any:
    """Mark axis `axis` of every array in `tree` as split over the devices (data parallel); identity otherwise.

    Called by the loops on what they batch: inside `vmap` over runs, `axis` counts the axes of one run."""
    if _data_mesh is None:
        return tree
    spec = PartitionSpec(*([None] * axis), DATA_AXIS)
    sharding = NamedSharding(_data_mesh, spec)
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding) if x.ndim > axis else x, tree)
