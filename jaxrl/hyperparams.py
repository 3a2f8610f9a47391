"""Hyperparameters as data: an agent's numeric hyperparameters that keep array shapes travel as traced values in
its state, so one compiled program trains many values of them side by side (a sweep is a `vmap`, not a recompile).

An agent declares them in a `Hyperparams` dataclass made with `hyperparams`; its `Config` inherits those fields,
so a YAML file or `--set` names them like any other key, while its static keys (sizes, counts, switches) and the
loop's keys stay Python values that shape the program. `traced(Hyperparams, config)` is the one place the config's
values become arrays; from there on the agent reads them from its state, never from the config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

H = TypeVar("H")


def hyperparams(cls: type[H]) -> type[H]:
    """Make `cls` a frozen dataclass of float fields that is also a pytree of its values (all of them leaves).

    Its subclasses (the agent's `Config`) are plain dataclasses, not pytrees: only the values travel."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    bad = [f.name for f in dataclasses.fields(cls) if f.type not in ("float", float)]
    if bad:
        raise TypeError(f"{cls.__qualname__}: hyperparameters are floats (traced as float32); not: {', '.join(bad)}")
    return jax.tree_util.register_dataclass(cls, data_fields=names(cls), meta_fields=[])


def names(cls: type) -> list[str]:
    """The hyperparameter names `cls` declares, in order."""
    return [f.name for f in dataclasses.fields(cls)]


def traced(cls: type[H], config: Any) -> H:
    """`config`'s values of `cls`'s hyperparameters as float32 scalars, ready to live in an agent's state."""
    return cls(**{name: jnp.asarray(getattr(config, name), jnp.float32) for name in names(cls)})


def stack(values: list[H]) -> H:
    """Hyperparameters of several runs stacked along a new leading axis (one entry per run)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *values)
