"""Agents: each module has a frozen `Config` and `make_learner(config, spec) -> Learner`."""

from __future__ import annotations

import importlib
from types import ModuleType

ONLINE = ("ppo", "ppo_lag", "sac", "rlpd")  # trained on an environment (rlpd: with a dataset mixed in)
OFFLINE = ("iql", "cql", "calql", "bc")
FINETUNE = ("iql", "cql", "calql")  # offline agents `jaxrl finetune` continues online (each has a FinetuneConfig)


def get(name: str) -> ModuleType:
    """The agent module called `name`, with an error listing the known agents otherwise."""
    if name not in ONLINE + OFFLINE:
        raise ValueError(f"unknown agent {name!r}; available: {', '.join(ONLINE + OFFLINE)}")
    return importlib.import_module(f"jaxrl.agents.{name}")


# Agents whose batches carry the logged episodes' returns-to-go (types.MCTransition, jaxrl/data/returns.py).
MC_RETURNS = ("calql",)


def config_class(name: str, finetune: bool = False) -> type:
    """The Config of agent `name`, or its FinetuneConfig (the replay loop's keys) for a fine-tuning run."""
    module = get(name)
    if not finetune:
        return module.Config
    if name not in FINETUNE:
        raise ValueError(f"agent {name!r} cannot be fine-tuned online; agents that can: {', '.join(FINETUNE)}")
    return module.FinetuneConfig
