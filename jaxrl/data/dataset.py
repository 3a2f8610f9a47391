"""A logged dataset resident on the accelerator, and the jittable uniform sampler the offline loops use."""

from __future__ import annotations

import flax.struct
import jax
import numpy as np

from jaxrl.types import PRNGKey, Transition


@flax.struct.dataclass
class Dataset:
    """Device arrays of N transitions; `size` is static, so shapes inside jit depend on it only at trace time."""

    data: Transition  # each field [N, ...] (an MCTransition for agents that read returns-to-go)
    size: int = flax.struct.field(pytree_node=False)

    @classmethod
    def from_numpy(cls, transition: Transition, device: jax.Device | None = None) -> Dataset:
        """Copy a numpy Transition (e.g. from `storage.load`) to `device` (default: the first device)."""
        sizes = {name: len(value) for name, value in transition._asdict().items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"Transition fields have different lengths {sizes}; validate the data first")
        data = jax.device_put(type(transition)(*(np.asarray(value) for value in transition)), device)
        return cls(data=data, size=len(transition.obs))


def sample(dataset: Dataset, key: PRNGKey, batch_size: int) -> Transition:
    """Draw `batch_size` transitions uniformly with replacement: one gather per field, no host sync.

    Pure and jittable; `batch_size` must be static (`jax.jit(sample, static_argnames="batch_size")`, or a
    Python int closed over inside a jitted training chunk).
    """
    indices = jax.random.randint(key, (batch_size,), 0, dataset.size)  # [B]
    # randint keeps indices in bounds, so the gather can skip clamping.
    return jax.tree.map(lambda field: field.at[indices].get(mode="promise_in_bounds"), dataset.data)
