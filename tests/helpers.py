"""Shared test helpers: train a small run in-process and read its curve."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from jaxrl import agents
from jaxrl.config import build_config
from jaxrl.experiment import RunSpec, build
from jaxrl.infra.logging import RunLogger
from jaxrl.infra.runner import run


def train(agent: str, env: str, seeds=(0,), dataset: str | None = None, seed_batch: int | None = None, **overrides):
    """Train in a temporary run dir; returns (final run state, summary, metric records)."""
    config = build_config(agents.get(agent).Config, overrides)
    experiment = build(RunSpec(agent, env, tuple(seeds), config, dataset))
    run_dir = Path(tempfile.mkdtemp(prefix="jaxrl-test-"))
    logger = RunLogger(run_dir, "test", list(seeds), {}, "disabled")
    state, summary = run(experiment.trainer, list(seeds), run_dir, logger, experiment.data, progress=False,
                         seed_batch=seed_batch)
    logger.close()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state, summary, records
