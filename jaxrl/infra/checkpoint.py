"""Checkpoints of the whole training state with orbax: written to a temporary folder, then renamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxrl.infra.devices import named_sharding


class Checkpointer:
    """Saves `{"run_state": ..., "chunk": ...}` under `run_dir/checkpoints/<chunk>`, keeping the newest few."""

    def __init__(self, directory: str | Path, max_to_keep: int | None = 2, read_only: bool = False):
        # max_to_keep None keeps every checkpoint; read_only reads another run's checkpoints and changes nothing.
        options = ocp.CheckpointManagerOptions(max_to_keep=None if read_only else max_to_keep, read_only=read_only,
                                               enable_async_checkpointing=False, create=not read_only)
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def save(self, chunk: int, run_state: Any) -> None:
        self._manager.save(chunk, args=ocp.args.StandardSave({"run_state": run_state}), force=True)
        self._manager.wait_until_finished()

    def latest_chunk(self) -> int | None:
        return self._manager.latest_step()

    def all_chunks(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, chunk: int, like: Any) -> Any:
        """Restore the run state saved at `chunk`, shaped like the pytree `like` (arrays or ShapeDtypeStructs)."""
        # Across devices, each process restores its shards where `like` has them.
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=named_sharding(x)),
                                {"run_state": like})
        return self._manager.restore(chunk, args=ocp.args.StandardRestore(abstract))["run_state"]

    def close(self) -> None:
        self._manager.close()
