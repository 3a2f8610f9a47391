"""Distribution-shift scores (jaxrl/safety): nearest-neighbour novelty against a brute-force numpy computation,
the behavior model's density against the true density of synthetic logged actions, and `jaxrl shift` end to end:
the logging policy stays in distribution, a policy from elsewhere in training does not."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.cli import main
from jaxrl.data.dataset import Dataset
from jaxrl.data.statistics import dataset_statistics
from jaxrl.loop_config import OfflineLoop
from jaxrl.safety import behavior, shift
from jaxrl.safety.novelty import _nearest, fit_novelty, novelty
from jaxrl.train import make_offline_trainer
from jaxrl.types import EnvSpec, Transition


def test_nearest_distances_match_brute_force_numpy():
    rng = np.random.default_rng(0)
    reference, queries = rng.normal(size=(3000, 4)).astype(np.float32), rng.normal(size=(1500, 4)).astype(np.float32)
    expected = np.sqrt(((queries[:, None, :] - reference[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(_nearest(jnp.asarray(reference), queries), expected, rtol=1e-3, atol=1e-3)


def test_novelty_is_near_zero_on_dataset_states_and_large_far_from_them():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(4000, 3)).astype(np.float32)
    model = fit_novelty(states, np.arange(len(states)), jax.random.key(0))
    assert novelty(model, states[:100]).max() < 0.05  # each is its own nearest neighbour (float error)
    assert novelty(model, rng.normal(size=(200, 3))).mean() == pytest.approx(1.0, abs=0.35)  # as typical as the data
    assert novelty(model, states[:100] + 10.0).min() > 10.0  # ten standard deviations off


def fitted_log_probs(spec: EnvSpec, obs: np.ndarray, action: np.ndarray, num_updates: int) -> np.ndarray:
    """A behavior model fitted to (obs, action) rows (episodes of 10), read back at the same rows."""
    n = len(obs)
    data = Transition(obs, action, np.zeros(n, np.float32), np.zeros(n, np.float32), np.ones(n, np.float32), obs,
                      np.zeros(n, np.float32), np.arange(n, dtype=np.int32) // 10)
    config = behavior.Config(hidden_sizes=(32, 32), num_updates=num_updates, learning_rate=1e-3)
    learner = behavior.make_behavior_model(config, spec, dataset_statistics(data))
    trainer = make_offline_trainer(learner, None, OfflineLoop(batch_size=256), 1)
    state, _ = jax.jit(trainer.run_chunk)(trainer.init(jax.random.key(0), learner.hyperparams),
                                          Dataset.from_numpy(data), jnp.int32(config.num_updates))
    return np.asarray(learner.log_prob(state.agent, jnp.asarray(obs), jnp.asarray(action)))


def test_the_behavior_model_learns_the_density_of_logged_actions():
    rng = np.random.default_rng(2)
    n, spec = 20_000, EnvSpec(name="synthetic", obs_size=1, action_size=1, discrete=False, episode_length=10)
    obs = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    raw = 0.8 * obs + 0.3 * rng.normal(size=(n, 1))  # the logging policy: tanh(N(0.8 s, 0.3²))
    action = np.tanh(raw).astype(np.float32)
    true_log_prob = (-0.5 * ((raw - 0.8 * obs) / 0.3) ** 2 - math.log(0.3) - 0.5 * math.log(2 * math.pi)
                     - np.log(1 - action**2))[:, 0]
    fitted = fitted_log_probs(spec, obs, action, 3000)
    assert fitted.mean() == pytest.approx(true_log_prob.mean(), abs=0.05)  # the fit's likelihood is the truth's
    assert np.corrcoef(fitted, true_log_prob)[0, 1] > 0.95


def test_the_behavior_model_learns_a_categorical_logging_policy():
    rng = np.random.default_rng(3)
    n, spec = 20_000, EnvSpec(name="synthetic", obs_size=1, action_size=4, discrete=True, episode_length=10)
    obs = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    logits = np.concatenate([2 * obs, -obs, np.zeros_like(obs), obs], axis=1)  # the logging policy
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    action = (rng.uniform(size=(n, 1)) > probs.cumsum(axis=1)).sum(axis=1).astype(np.int32)
    true_log_prob = np.log(probs[np.arange(n), action])
    fitted = fitted_log_probs(spec, obs, action, 2000)
    assert fitted.mean() == pytest.approx(true_log_prob.mean(), abs=0.03)
    assert np.corrcoef(fitted, true_log_prob)[0, 1] > 0.95


def test_the_logging_policy_stays_in_distribution_and_a_later_one_strays(pointmass_logged):
    out = pointmass_logged["out"] / "shift"
    run = pointmass_logged["run"]
    options = shift.Options(episodes=8, ensemble_size=3, fqe_overrides={"num_updates": 300, "hidden_sizes": [32, 32]},
                            behavior_overrides={"num_updates": 3000, "hidden_sizes": [64, 64]})
    summary, arrays = shift.run_shift(pointmass_logged["data"], [f"{run}@4", f"{run}@12"], options)
    shift.write(out, summary, arrays)
    assert {path.name for path in out.iterdir()} == {"shift.json", "shift.md", "shift_states.npz"}
    logger, later = json.loads((out / "shift.json").read_text())["policies"]
    assert logger["unlikely_action_rate"] < 0.05  # its own actions: about the 1% the threshold lets through
    assert logger["novelty_mean"] < 1.5  # its states are as close to the data as the data's own (1)
    assert later["unlikely_action_rate"] > 2 * logger["unlikely_action_rate"]
    assert later["ood_rate"] > logger["ood_rate"]
    with np.load(out / "shift_states.npz") as saved:
        assert saved["ppo_run@4/seed0/novelty"].shape == (8 * 100,)  # 8 envs over pointmass's 100 steps


def test_shift_refuses_bad_input_with_one_line_and_writes_nothing(pointmass_logged, tmp_path, capsys):
    run, data = pointmass_logged["run"], str(pointmass_logged["data"])
    for argv, expected in ((["--ensemble", "1"], "--ensemble"), (["--likelihood-quantile", "2"], "quantile")):
        assert main(["shift", "--dataset", data, run, *argv, "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err.strip()
        assert expected in error and len(error.splitlines()) == 1 and not (tmp_path / "out").exists()
