"""A run trains as long as configured, in chunks that end where evaluations fall, at the learning rates its
schedules were built for: the loop and every schedule read one run length."""


import numpy as np
import optax
import pytest

import envs
from jaxrl import collect as collect_lib
from jaxrl.agents import iql, ppo
from jaxrl.config import build_config
from jaxrl.data import storage
from jaxrl.data.metadata import Metadata
from jaxrl.experiment import RunOptions, RunSpec, execute
from jaxrl.train import RunPlan
from tests.helpers import train


def schedule_counts(opt_state) -> list[int]:
    """The step counts of every learning-rate schedule inside an optimizer state."""
    found = []

    def visit(node):
        if isinstance(node, optax.ScaleByScheduleState):
            found.append(int(np.asarray(node.count).reshape(-1)[0]))
        elif isinstance(node, (tuple, list)):
            for child in node:
                visit(child)

    visit(opt_state)
    return found


def test_run_plan_cuts_the_run_into_chunks_with_a_short_last_one():
    plan = RunPlan(iterations=10, iterations_per_chunk=4, units_per_iteration=32, unit="env_steps")
    assert plan.num_chunks == 3
    assert [plan.chunk_iterations(c) for c in (1, 2, 3)] == [4, 4, 2]
    assert [plan.units_done(c) for c in (0, 1, 2, 3)] == [0, 128, 256, 320]
    assert plan.total_units == 320
    exact = RunPlan(8, 4, 1, "updates")
    assert exact.num_chunks == 2 and exact.chunk_iterations(2) == 4


def test_ppo_runs_its_total_steps_and_its_schedule_ends_with_the_run():
    # 32 env steps per iteration: 200 steps need 7 iterations (224 steps); 2 iterations per chunk -> 2, 2, 2, 1.
    overrides = {"num_envs": 4, "unroll_length": 8, "num_minibatches": 2, "num_epochs": 2, "total_steps": 200,
                 "eval_every": 64, "eval_episodes": 2, "policy_hidden_sizes": (8,), "value_hidden_sizes": (8,)}
    config = build_config(ppo.Config, overrides)
    state, summary, records = train("ppo", "pendulum", **overrides)
    assert summary["env_steps"] == 224 and 0 <= summary["env_steps"] - 200 < config.steps_per_iteration
    assert sorted({r["step"] for r in records}) == [0, 64, 128, 192, 224]
    assert int(state.agent.step[0]) == config.num_iterations == 7
    (count,) = schedule_counts(state.agent.opt_state)
    assert count == 7 * 2 * 2  # SGD steps the loop ran
    schedule = ppo.learning_rate_schedule(config, config.learning_rate)
    assert schedule(count - 1) > 0  # the last update still learned ...
    assert schedule(count) == 0  # ... and it was the last one the schedule planned


@pytest.fixture(scope="module")
def random_pendulum(tmp_path_factory) -> str:
    spec = envs.spec("pendulum", envs.make("pendulum"))
    data = collect_lib.collect(collect_lib.random_behavior(spec), "pendulum", 800, 4, seed=0)
    folder = tmp_path_factory.mktemp("data") / "random"
    metadata = Metadata(env_name="pendulum", obs_size=spec.obs_size, action_size=spec.action_size, discrete=False)
    storage.save(folder, data, metadata)
    return str(folder)


def test_offline_run_does_exactly_num_updates_and_iqls_cosine_ends_with_it(random_pendulum):
    overrides = {"num_updates": 25, "eval_every": 10, "batch_size": 16, "eval_episodes": 2, "hidden_sizes": (8,)}
    state, summary, records = train("iql", "pendulum", dataset=random_pendulum, **overrides)
    assert summary["updates"] == 25
    assert sorted({r["step"] for r in records}) == [0, 10, 20, 25]
    assert int(state.agent.step[0]) == 25
    (count,) = schedule_counts(state.agent.policy.opt_state)
    config = build_config(iql.Config, overrides)
    schedule = iql.policy_lr_schedule(config, config.policy_lr)
    assert count == 25 and schedule(count - 1) > 0 and schedule(count) == 0


@pytest.mark.slow  # 15 s; resume after kill -9 is checked bit-exact in the default suite (tests/test_cli.py)
def test_resuming_a_finished_run_changes_nothing(tmp_path):
    overrides = {"num_envs": 4, "unroll_length": 8, "num_minibatches": 2, "total_steps": 96, "eval_every": 64,
                 "eval_episodes": 2, "policy_hidden_sizes": (8,), "value_hidden_sizes": (8,)}
    spec = RunSpec("ppo", "pendulum", (0, 1), build_config(ppo.Config, overrides))
    _, first = execute(spec, tmp_path, RunOptions(progress=False))
    metrics = (tmp_path / "metrics.jsonl").read_text()
    _, again = execute(spec, tmp_path, RunOptions(progress=False), resume=True)
    assert again["resumed_from_chunk"] == 2 and again["env_steps"] == first["env_steps"] == 96
    assert again["final_params_sha256"] == first["final_params_sha256"]
    assert again["eval_return_per_seed"] == first["eval_return_per_seed"]
    assert (tmp_path / "metrics.jsonl").read_text() == metrics
