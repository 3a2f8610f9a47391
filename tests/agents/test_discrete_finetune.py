"""Discrete agents continued online on the replay loop (`jaxrl finetune` of a recsys IQL or CQL run): it runs its
online steps and episodes, and the cost constraint runs with its discrete cost critic."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrl.config import build_config
from jaxrl.experiment import RunOptions, RunSpec, execute
from jaxrl.finetune import finetune_spec
from tests.helpers import recsys_logs

ENV = "recsys"
TINY = {"hidden_sizes": (16, 16), "num_updates": 50, "eval_every": 50, "eval_episodes": 4, "batch_size": 64}


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> str:
    return recsys_logs(tmp_path_factory.mktemp("recsys-logs") / "production", 4096, 64)


# CQL's discrete fine-tuning (its own learner, under the constraint) by default; IQL's is its offline learner's
# losses on the same loop: slow suite.
@pytest.mark.parametrize(("agent", "overrides"), [pytest.param("iql", {}, marks=pytest.mark.slow),
                                                  ("cql", {"cost_budget": 5.0})])
def test_a_discrete_run_fine_tunes_online(agent, overrides, logs, tmp_path):
    from jaxrl import agents

    offline = tmp_path / "offline"
    execute(RunSpec(agent, ENV, (0,), build_config(agents.get(agent).Config, TINY), logs), offline,
            RunOptions(progress=False))
    spec = finetune_spec(offline, steps=512, overrides={"eval_every": 512, "eval_episodes": 4, "batch_size": 64,
                                                        **overrides})
    _, summary = execute(spec, tmp_path / "online", RunOptions(progress=False))
    assert summary["online_env_steps"] == 512 and summary["online_episodes"] > 0
    assert np.isfinite(summary["eval_return_mean"])
    metrics = (tmp_path / "online" / "metrics.jsonl").read_text()
    if "cost_budget" in overrides:  # the constraint's own figures are logged
        assert "lagrange_multiplier" in metrics and "cost_critic_loss" in metrics
