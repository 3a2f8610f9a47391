"""PPO-Lagrangian (jaxrl/agents/ppo_lag.py): the rollout's episode costs it measures, and that on pointmass it
pushes the cost of plain PPO's unsafe shortcut (about 2.8 hazard steps per episode) under its budget while
keeping most of the return."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

import envs
from jaxrl.agents import ppo
from jaxrl.config import build_config
from jaxrl.train import rollout
from tests.helpers import train

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "ppo_lag" / "pointmass.yaml"


def test_rollout_episode_cost_is_the_sum_of_the_episode_step_costs():
    spec = envs.spec("pointmass", envs.make("pointmass"))
    config = build_config(ppo.Config, {"num_envs": 8})
    learner = ppo.make_learner(config, spec)
    env = envs.training_env(envs.make("pointmass"), 8, spec.episode_length, 1)
    agent = learner.init(jax.random.PRNGKey(0), learner.hyperparams)
    _, trajectory, _ = rollout(learner, env, agent, env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2), 250)
    cost, done, totals = (np.asarray(x) for x in (trajectory.cost, trajectory.done, trajectory.episode_cost))
    assert done.sum() >= 8  # every env ended at least one 100-step episode
    for env_index in range(8):
        running = 0.0
        for t in range(250):
            running += cost[t, env_index]
            assert totals[t, env_index] == np.float32(running)
            running = 0.0 if done[t, env_index] else running


@pytest.mark.slow
def test_ppo_lag_keeps_pointmass_cost_under_budget():
    overrides = yaml.safe_load(CONFIG.read_text())
    _, summary, records = train("ppo_lag", "pointmass", seeds=(0,), **overrides)
    last = [record for record in records if record["chunk"] == max(r["chunk"] for r in records)][0]
    # Measured by scripts/safety_results.py (5 seeds, this config): training cost 0.54 ± 0.05 (seed 0: 0.51), return
    # 22.79 ± 0.03, deterministic eval cost 0.49 ± 0.16; plain PPO 2.95 ± 0.02, 22.80 and 3.18 at the same steps.
    assert last["train/episode_cost"] < 1.0
    assert last["train/episode_return"] > 21.0
    assert summary["eval_cost_mean"] < 1.0
