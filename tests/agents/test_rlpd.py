"""RLPD: SAC's learner with a LayerNorm critic ensemble whose target is the min over a random subset, trained on
batches half from the dataset. The subset target is checked against the full ensemble evaluated independently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import rlpd, sac
from jaxrl.config import ConfigError, build_config
from jaxrl.experiment import make_spec
from tests.agents.conftest import SPEC, make_batch
from tests.helpers import train


def test_the_target_is_the_min_over_the_random_subset_of_target_critics():
    nets = sac.make_networks((16, 16), "fp32", SPEC, num_critics=5, target_critics=2, layer_norm=True)
    params, _ = jax.jit(lambda key: sac.init_params(nets, key, SPEC))(jax.random.key(0))
    batch = make_batch(jax.random.key(1))
    next_action = jnp.zeros_like(batch.action)
    subset_key = jax.random.key(7)
    targets, target_q = sac.soft_bellman_target(nets, params, batch, next_action, 0.5, 0.9, subset_key)
    every = np.asarray(nets.critic.apply(params, batch.next_obs, next_action))  # [5, B], all five critics
    chosen = np.asarray(jax.random.choice(subset_key, 5, (2,), replace=False))
    assert len(set(chosen.tolist())) == 2
    np.testing.assert_allclose(target_q, every[chosen].min(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(target_q, every.min(axis=0))  # not the min over the whole ensemble
    expected = np.asarray(batch.reward) + 0.9 * np.asarray(batch.discount) * (every[chosen].min(axis=0) + 0.5)
    np.testing.assert_allclose(targets, expected, rtol=1e-5, atol=1e-5)


def test_rlpd_defaults_are_the_papers_and_it_needs_a_dataset():
    config = rlpd.Config()
    assert (config.offline_fraction, config.updates_per_step, config.num_critics, config.target_critics) == (
        0.5, 20, 10, 2)
    assert config.critic_layer_norm and config.policy_q == "mean" and config.target_entropy_scale == 0.5
    with pytest.raises(ConfigError, match="offline_fraction > 0 mixes a dataset.*--dataset DIR"):
        make_spec("rlpd", "pendulum", None, None, {})
    with pytest.raises(ConfigError, match="target_critics.*<= num_critics"):
        build_config(rlpd.Config, {"target_critics": 12})


@pytest.mark.slow  # the mix itself is in the default suite (tests/agents/test_finetune.py)
def test_rlpd_trains_on_half_offline_batches_and_scores_against_the_dataset(pointmass_tiers):
    overrides = {"hidden_sizes": (32, 32), "total_steps": 600, "eval_every": 300, "learning_starts": 200,
                 "updates_per_step": 2, "batch_size": 64, "eval_episodes": 4, "num_critics": 4}
    _, summary, records = train("rlpd", "pointmass", dataset=pointmass_tiers["medium"], **overrides)
    trained = [r for r in records if r["step"] > 0]
    assert all(r["train/offline_fraction"] == 0.5 for r in trained)
    assert sum(r["updates"] for r in trained) == (600 - 200 + 1) * 2  # from the step that reaches learning_starts
    assert summary["online_env_steps"] == 600 and summary["normalized_score_mean"] is not None
    assert np.isfinite(summary["cumulative_regret"])
