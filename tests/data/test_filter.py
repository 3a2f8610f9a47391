import numpy as np
import pytest

from jaxrl.data.filter import top_fraction
from jaxrl.data.metadata import DatasetError
from jaxrl.data.quality import quality_report
from jaxrl.data.storage import load, save

from .synthetic import make_metadata, make_transition


def test_top_fraction_keeps_the_best_episodes_in_order():
    transition = make_transition(episode_lengths=(5, 4, 3, 2), terminated=(True, False, True, False))
    kept, _ = top_fraction(transition, make_metadata(), 0.5)  # returns 5, 8, 9, 8: keep episodes 2, then 1 (tie)
    np.testing.assert_array_equal(np.unique(kept.episode_id), [1, 2])
    np.testing.assert_array_equal(kept.episode_id, [1] * 4 + [2] * 3)
    np.testing.assert_array_equal(kept.obs, transition.obs[5:12])


def test_top_fraction_rounds_up_to_keep_at_least_one_episode():
    kept, metadata = top_fraction(make_transition(), make_metadata(), 0.01)
    assert quality_report(kept, metadata)["episode_returns"] == [15.0]


def test_filtered_metadata_records_parent_and_filter(tmp_path):
    written = save(tmp_path / "parent", make_transition(), make_metadata())
    transition, metadata = load(tmp_path / "parent")
    kept, child = top_fraction(transition, metadata, 0.5, parent_path=tmp_path / "parent")
    parent = child.provenance.parent
    assert parent.path == str(tmp_path / "parent") and parent.fingerprint == written.fingerprint
    assert parent.derivation["filter"] == "top_fraction" and parent.derivation["fraction"] == 0.5
    assert parent.derivation["episodes_kept"] == 2 and parent.derivation["min_return_kept"] == 8.0
    assert child.provenance.behavior_policy == metadata.provenance.behavior_policy
    assert child.checksums == {}
    saved = save(tmp_path / "child", kept, child)
    assert load(tmp_path / "child")[1].provenance.parent == parent
    assert saved.fingerprint != written.fingerprint


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_top_fraction_refuses_fractions_outside_zero_one(fraction):
    with pytest.raises(DatasetError, match="expected a number in \\(0, 1\\]"):
        top_fraction(make_transition(), make_metadata(), fraction)
