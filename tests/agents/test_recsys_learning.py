"""Discrete offline learning end to end (slow): on the production policy's recsys logs, IQL and CQL recommend
better than BC, which imitates the logging policy's most likely item; IQL fine-tuned online under a cost budget
stops recommending the unsafe items it learned to push.

The logs are collected in the test as `jaxrl collect --env recsys --policy production` collects them; the agents
train with experiments/offline/<agent>-recsys.yaml's networks and batch, fewer updates. Every seed is fixed.
Run: ./scripts/test.sh -m slow tests/agents/test_recsys_learning.py   (about 7 minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxrl.experiment import RunOptions, execute
from jaxrl.finetune import finetune_spec
from jaxrl.infra.logging import read_metrics
from tests.helpers import recsys_logs, train

pytestmark = pytest.mark.slow

ENV = "recsys"
SEEDS = (0, 1, 2)  # trained at once, vmapped
COMMON = {"hidden_sizes": (128, 128), "batch_size": 256, "eval_episodes": 200}
CONFIGS = {
    "bc": {**COMMON, "num_updates": 5000, "eval_every": 5000},
    "iql": {**COMMON, "num_updates": 10000, "eval_every": 10000},
    "cql": {**COMMON, "num_updates": 10000, "eval_every": 10000, "cql_alpha": 5.0},
}
# Thresholds from measured runs (these seeds, 2 CPU cores, jax 0.10.2), mean final engagement per session over
# SEEDS and 200 sessions each: BC 18.05, IQL 26.91, CQL 19.93. Each margin is half the measured gap over BC, rounded
# down. CQL's lead is small at 10k updates (its greedy policy's evaluations swing by 2-4 between checkpoints; at
# 20k updates, docs/results.md, it leads BC by 2.8 over 6 runs): the fragile one of the two.
IQL_MARGIN = 4.0
CQL_MARGIN = 0.9
ROOT = Path(__file__).resolve().parents[2]
FINETUNE_STEPS = 3000
# Measured: 1.43 unsafe per session over steps 2000-3000 (from 27.5 in the offline policy's evaluation); the limit
# is the budget (2) doubled, still a seventh of where it starts.
LATE_LIMIT = 4.0


def mean_return(agent: str, dataset: str) -> float:
    _, summary, _ = train(agent, ENV, seeds=SEEDS, dataset=dataset, **CONFIGS[agent])
    return summary["eval_return_mean"]


@pytest.fixture(scope="module")
def iql_run(production_logs, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("recsys-iql") / "iql"
    train("iql", ENV, seeds=SEEDS, dataset=production_logs, run_dir=run_dir, **CONFIGS["iql"])
    return run_dir


@pytest.fixture(scope="module")
def production_logs(tmp_path_factory) -> str:
    return recsys_logs(tmp_path_factory.mktemp("recsys") / "production", 100_000, 256)


@pytest.fixture(scope="module")
def bc_return(production_logs) -> float:
    return mean_return("bc", production_logs)


def test_iql_recommends_better_than_bc(iql_run, bc_return):
    iql_return = json.loads((iql_run / "summary.json").read_text())["eval_return_mean"]
    assert iql_return > bc_return + IQL_MARGIN, f"IQL {iql_return:.2f} vs BC {bc_return:.2f}"


def test_cql_recommends_better_than_bc(production_logs, bc_return):
    cql_return = mean_return("cql", production_logs)
    assert cql_return > bc_return + CQL_MARGIN, f"CQL {cql_return:.2f} vs BC {bc_return:.2f}"


def test_the_cost_constraint_stops_unsafe_recommendations_online(iql_run, tmp_path):
    # IQL trained for engagement alone recommends the tempting unsafe items (about 30 of the 38 recommendations of
    # a session, in its evaluation); online under cost_budget=2 its multiplier must take that to the budget's
    # neighbourhood within the run: unsafe per finished session over the last 1000 of FINETUNE_STEPS, all SEEDS.
    spec = finetune_spec(iql_run, steps=FINETUNE_STEPS, config_file=str(ROOT / "experiments/finetune/iql.yaml"),
                         overrides={"cost_budget": 2.0, "eval_every": 1000, "eval_episodes": 20})
    execute(spec, tmp_path / "online", RunOptions(progress=False))
    records = read_metrics(tmp_path / "online")
    start = np.mean([r["eval/cost"] for r in records if r["step"] == 0 and "eval/cost" in r])
    late = [r for r in records if r["step"] > FINETUNE_STEPS - 1000 and "train/cost_total" in r]
    unsafe_late = sum(r["train/cost_total"] for r in late) / sum(r["train/episodes"] for r in late)
    assert start > 20.0, f"the offline policy recommends {start:.1f} unsafe items per session"
    assert unsafe_late < LATE_LIMIT, f"{unsafe_late:.2f} unsafe per session late in fine-tuning (from {start:.1f})"
