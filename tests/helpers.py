"""Shared test helpers: train a small run in-process and read its curve; log a recsys dataset."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from jaxrl import agents
from jaxrl.config import build_config
from jaxrl.experiment import RunOptions, RunSpec, execute


def train(agent: str, env: str, seeds=(0,), dataset: str | None = None, seed_batch: int | None = None,
          run_dir: Path | None = None, **overrides):
    """Train in `run_dir` (default: a temporary one); returns (final run state, summary, metric records)."""
    config = build_config(agents.get(agent).Config, overrides)
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="jaxrl-test-"))
    spec = RunSpec(agent, env, tuple(seeds), config, dataset, seed_batch)
    state, summary = execute(spec, run_dir, RunOptions(progress=False))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state, summary, records


def recsys_logs(folder: Path, steps: int, num_envs: int, env: str = "recsys") -> str:
    """`steps` recommendations of the production policy saved as a dataset in `folder` (as `jaxrl collect --policy
    production` logs them); its path."""
    import envs as env_registry
    from jaxrl import collect as collect_lib
    from jaxrl.data import storage
    from jaxrl.data.metadata import Metadata

    spec = env_registry.spec(env, env_registry.make(env))
    data = collect_lib.collect(collect_lib.env_behavior(env, "production"), env, steps, num_envs, seed=0)
    storage.save(folder, data, Metadata(env_name=env, obs_size=spec.obs_size, action_size=spec.action_size,
                                        discrete=True))
    return str(folder)
