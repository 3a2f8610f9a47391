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
