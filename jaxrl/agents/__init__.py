"""Agents: each module has a frozen `Config` and `make_learner(config, spec) -> Learner`."""

from __future__ import annotations

import importlib
from types import ModuleType

ONLINE = ("ppo", "sac")  # trained on an environment (no dataset)
OFFLINE = ("iql", "cql", "bc")


def get(name: str) -> ModuleType:
    """The agent module called `name`, with an error listing the known agents otherwise."""
    if name not in ONLINE + OFFLINE:
        raise ValueError(f"unknown agent {name!r}; available: {', '.join(ONLINE + OFFLINE)}")
    return importlib.import_module(f"jaxrl.agents.{name}")
