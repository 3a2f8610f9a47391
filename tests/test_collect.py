"""Collection of logged datasets: contiguous episodes, next observations, log-probs, and the CLI path."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl import collect as collect_lib
from jaxrl.cli import main
from jaxrl.data import storage


def test_episode_ids_number_each_env_then_the_next():
    done = np.array([[0, 1, 0, 0], [1, 0, 0, 1]])  # env 0: episodes of 2 and (cut) 2 steps; env 1: 1 and 3
    np.testing.assert_array_equal(collect_lib.episode_ids(done), [[0, 0, 1, 1], [2, 3, 3, 3]])


def test_random_collection_is_contiguous_with_exact_log_probs(tmp_path):
    spec = envs.spec("pointmass", envs.make("pointmass"))
    data = collect_lib.collect(collect_lib.random_behavior(spec), "pointmass", 1000, 8, seed=0)
    assert data.obs.shape == (1000, spec.obs_size) and data.action.shape == (1000, spec.action_size)
    np.testing.assert_allclose(data.behavior_log_prob, -spec.action_size * math.log(2.0), rtol=1e-6)
    same_episode = data.episode_id[1:] == data.episode_id[:-1]
    # equal up to float rounding: XLA may compute the observation in two fusions
    np.testing.assert_allclose(data.next_obs[:-1][same_episode], data.obs[1:][same_episode], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(data.episode_id) >= 0)
    metadata = storage.Metadata(env_name="pointmass", obs_size=spec.obs_size, action_size=spec.action_size,
                                discrete=False)
    storage.save(tmp_path / "d", data, metadata)  # validation accepts it
    loaded, _ = storage.load(tmp_path / "d")
    np.testing.assert_array_equal(loaded.obs, data.obs)


@pytest.mark.slow  # collect -> train also runs in the default suite: tests/agents/test_offline_learning.py
def test_collect_from_a_run_then_train_offline_on_it(tmp_path, capsys):
    run_dir, dataset = tmp_path / "ppo", tmp_path / "data"
    assert main(["train", "ppo", "--env", "pointmass", "--run-dir", str(run_dir), "--wandb", "disabled",
                 "--no-progress", "--set", "total_steps=4096", "eval_every=4096", "num_envs=16"]) == 0
    assert main(["collect", "--env", "pointmass", "--policy", str(run_dir), "--steps", "2000", "--out", str(dataset),
                 "--num-envs", "8", "--random-return", "-9", "--expert-return", "22"]) == 0
    metadata = storage.load_metadata(dataset)
    assert metadata.provenance.behavior_policy.startswith("ppo ppo seed 0 checkpoint 1")
    assert len(metadata.provenance.behavior_policy_fingerprint) == 64
    assert np.isfinite(storage.load(dataset)[0].behavior_log_prob).all()
    bc_dir = tmp_path / "bc"
    assert main(["train", "bc", "--dataset", str(dataset), "--run-dir", str(bc_dir), "--wandb", "disabled",
                 "--no-progress", "--seeds", "2", "--set", "num_updates=200", "eval_every=100",
                 "hidden_sizes=[32,32]", "eval_episodes=4"]) == 0
    summary = json.loads((bc_dir / "summary.json").read_text())
    assert summary["updates"] == 200 and len(summary["normalized_score_per_seed"]) == 2
    expected = [100 * (r + 9) / 31 for r in summary["eval_return_per_seed"]]
    np.testing.assert_allclose(summary["normalized_score_per_seed"], expected, rtol=1e-6)
    assert summary["updates_per_second"] > 0


def test_behaviors_sharing_a_policy_function_share_one_compiled_collection():
    traces = []

    def policy(state, obs, key):
        traces.append(1)  # runs once per trace, not per step
        batch = obs.shape[0]
        return jnp.full((batch, 2), state["action"]), {"log_prob": jnp.zeros((batch,))}

    first = collect_lib.Behavior(policy, "constant", None, {"action": jnp.float32(0.5)})
    second = first._replace(state={"action": jnp.float32(-0.25)})
    data_first = collect_lib.collect(first, "pointmass", 64, 4, seed=0)
    data_second = collect_lib.collect(second, "pointmass", 64, 4, seed=1)
    assert len(traces) == 1
    np.testing.assert_array_equal(data_first.action, 0.5)  # each behavior's own parameters, not the first's
    np.testing.assert_array_equal(data_second.action, -0.25)
