"""`jaxrl dataset make`'s choice of the policies behind medium-replay."""

import warnings

import pytest

from jaxrl import tiers


def test_medium_replay_gathers_every_checkpoint_up_to_medium():
    returns = {3: 5.0, 1: -8.0, 2: 0.0, 4: 20.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tiers.replay_policies(returns, medium_chunk=3) == [1, 2, 3]


def test_a_medium_replay_of_the_medium_policy_alone_is_warned_about():
    with pytest.warns(UserWarning, match=r"medium-replay holds one checkpoint \(1\).*checkpoint more often"):
        assert tiers.replay_policies({1: 400.0, 2: 500.0, 3: 700.0}, medium_chunk=1) == [1]


def test_medium_replay_logs_whole_episodes_with_fewer_envs_when_its_share_is_short():
    # hopper, 100k steps over 34 checkpoints: 2942 each; 64 envs would run 46 of 1000 steps, 2 run 1471 each
    assert tiers.replay_envs(per_chunk=2942, num_envs=64, episode_length=1000) == 2
    # pointmass, 7 checkpoints: 14286 each, 223 steps an env of 64 already covers the 100-step limit: unchanged
    assert tiers.replay_envs(per_chunk=14286, num_envs=64, episode_length=100) == 64
    # fewer steps than one time limit: one env, its episode cut (nothing better exists)
    assert tiers.replay_envs(per_chunk=500, num_envs=64, episode_length=1000) == 1
