"""Shared test helpers: train a small run in-process and read its curve."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from jaxrl import agents
from jaxrl.config import build_config
from jaxrl.experiment import RunOptions, RunSpec, execute


def train(agent: str, env: str, seeds=(0,), dataset: str | None = None, seed_batch: int | None = None, **overrides):
    """Train in a temporary run dir; returns (final run state, summary, metric records)."""
    config = build_config(agents.get(agent).Config, overrides)
    run_dir = Path(tempfile.mkdtemp(prefix="jaxrl-test-"))
    spec = RunSpec(agent, env, tuple(seeds), config, dataset, seed_batch)
    state, summary = execute(spec, run_dir, RunOptions(progress=False))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state, summary, records
