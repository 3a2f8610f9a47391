"""Offline learning end to end: IQL and CQL beat BC on a small pointmass medium-replay dataset.

The dataset is built in the test from the pieces of `jaxrl dataset make` (a short PPO run, its checkpoints'
evaluations, the medium pick, one collection per checkpoint up to medium), so it is the same kind of data
the results in docs/results.md come from, only smaller. Every seed is fixed, so the numbers below repeat.
"""

from __future__ import annotations

import numpy as np
import pytest

import envs
from jaxrl.data import collect as collect_lib
from jaxrl.data import make, storage
from jaxrl.data.metadata import Metadata
from tests.helpers import train

ENV = "pointmass"
PPO_OVERRIDES = ["total_steps=0", "eval_every=0"]  # placeholder, set below
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def medium_replay(tmp_path_factory) -> str:
    """A pointmass medium-replay dataset folder, built as `jaxrl dataset make` builds its tier."""
    out = tmp_path_factory.mktemp("offline")
    run_dir = make.train_ppo(ENV, out / "ppo_run", PPO_OVERRIDES, seed=0, wandb_mode="disabled")
    returns = make.checkpoint_returns(run_dir)
    medium, _ = make.pick_policies(returns, make.evaluate_random(ENV, 32, seed=0))
    spec = envs.spec(ENV, envs.make(ENV))
    parts = []
    for chunk in sorted(c for c in returns if c <= medium):
        behavior, _ = collect_lib.behavior_from_run(run_dir, chunk=chunk)
        parts.append(collect_lib.collect(behavior, ENV, 2048, 16, seed=chunk))
    metadata = Metadata(env_name=ENV, obs_size=spec.obs_size, action_size=spec.action_size, discrete=False)
    storage.save(out / "medium-replay", make.concatenate(parts), metadata)
    return str(out / "medium-replay")
