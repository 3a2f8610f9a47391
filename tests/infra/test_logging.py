"""RunLogger: per-seed records in metrics.jsonl, and which W&B runs get what (W&B replaced by a recorder)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from jaxrl.infra.logging import RunLogger


class FakeRun:
    def __init__(self, **kwargs):
        self.init = kwargs
        self.logged: list[tuple[int, dict]] = []
        self.finished = False

    def log(self, data, step):
        self.logged.append((step, data))

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    runs: list[FakeRun] = []

    def init(**kwargs):
        runs.append(FakeRun(**kwargs))
        return runs[-1]

    module = types.SimpleNamespace(init=init, Settings=lambda **kwargs: kwargs)
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    return runs


METRICS = {"eval/return": np.array([1.0, 2.0, 6.0]), "eval/length": np.array(100.0)}


def test_one_wandb_run_per_seed_each_with_its_own_values(tmp_path, fake_wandb):
    logger = RunLogger(tmp_path, "run", [0, 1, 2], {"lr": 0.1}, "offline")
    logger.log(10, METRICS, chunk=1)
    logger.close()
    assert [run.init["config"]["seed"] for run in fake_wandb] == [0, 1, 2]
    assert {run.init["group"] for run in fake_wandb} == {"run"}
    assert [run.logged for run in fake_wandb] == [
        [(10, {"eval/return": r, "eval/length": 100.0})] for r in (1.0, 2.0, 6.0)]
    assert all(run.finished for run in fake_wandb)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == [{"seed": s, "step": 10, "chunk": 1, "eval/return": r, "eval/length": 100.0}
                       for s, r in ((0, 1.0), (1, 2.0), (2, 6.0))]


def test_under_wandb_agent_the_agents_run_gets_the_seeds_mean(tmp_path, fake_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc123")
    logger = RunLogger(tmp_path, "run", [0, 1, 2], {"lr": 0.1}, "online")
    logger.log(10, METRICS, chunk=1)
    logger.close()
    (run,) = fake_wandb
    assert "id" not in run.init  # the agent's run, named by WANDB_RUN_ID, not one of ours
    assert run.init["config"] == {"lr": 0.1, "seeds": [0, 1, 2]}
    assert run.logged == [(10, {"eval/return": 3.0, "eval/length": 100.0})]
    # metrics.jsonl still has every seed
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_disabled_wandb_starts_nothing(tmp_path, fake_wandb):
    logger = RunLogger(tmp_path, "run", [0, 1], {}, "disabled")
    logger.log(0, {"eval/return": np.array([1.0, np.nan])})
    logger.close()
    assert fake_wandb == []
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[1]["eval/return"] is None  # NaN is written as null, not as invalid JSON
