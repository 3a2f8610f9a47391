import warnings

import h5py
import numpy as np
import pytest

from jaxrl.data.formats import NarrowingWarning, export_d4rl, import_d4rl
from jaxrl.data.metadata import DatasetError
from jaxrl.data.storage import save

from .synthetic import make_metadata, make_transition, with_row


def assert_exact(first, second):
    for name, a, b in zip(first._fields, first, second, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


def write_d4rl(path, **arrays):
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file.create_dataset(key, data=value)


@pytest.mark.parametrize("discrete", [False, True])
def test_d4rl_round_trip_keeps_arrays_exact(tmp_path, discrete):
    transition = make_transition(discrete=discrete, first_episode_id=40)
    transition = with_row(transition, "behavior_log_prob", 2, np.nan)
    metadata = make_metadata(discrete=discrete, random_return=1.0, expert_return=2.0)
    export_d4rl(tmp_path / "data.hdf5", transition, metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NarrowingWarning)
        imported, imported_metadata = import_d4rl(tmp_path / "data.hdf5", "toy")
    assert_exact(transition, imported)
    assert "narrowed_on_import" not in imported_metadata.extra
    assert imported_metadata.discrete == discrete and imported_metadata.action_size == metadata.action_size
    assert imported_metadata.expert_return == 2.0
    assert imported_metadata.provenance.behavior_policy == "uniform random"
    assert imported_metadata.provenance.parent.derivation == {"import": "d4rl"}


def test_d4rl_export_marks_terminals_and_timeouts(tmp_path):
    export_d4rl(tmp_path / "data.hdf5", make_transition(terminated=(True, False, True)), make_metadata())
    with h5py.File(tmp_path / "data.hdf5") as file:
        np.testing.assert_array_equal(np.flatnonzero(file["terminals"][()]), [2, 11])
        np.testing.assert_array_equal(np.flatnonzero(file["timeouts"][()]), [6])


def test_d4rl_export_refuses_an_existing_file(tmp_path):
    (tmp_path / "data.hdf5").write_bytes(b"keep me")
    with pytest.raises(DatasetError, match="already exists"):
        export_d4rl(tmp_path / "data.hdf5", make_transition(), make_metadata())
    assert (tmp_path / "data.hdf5").read_bytes() == b"keep me"


def test_d4rl_import_of_a_plain_file_derives_episodes_and_next_obs(tmp_path):
    obs = np.arange(16, dtype=np.float32).reshape(8, 2)
    # episodes: rows 0-2 end in a terminal, rows 3-5 in a timeout, rows 6-7 are cut off by the end of the file
    write_d4rl(
        tmp_path / "plain.hdf5",
        observations=obs,
        actions=np.zeros((8, 1), np.float32),
        rewards=np.arange(8, dtype=np.float32),
        terminals=np.array([0, 0, 1, 0, 0, 0, 0, 0], bool),
        timeouts=np.array([0, 0, 0, 0, 0, 1, 0, 0], bool),
    )
    transition, metadata = import_d4rl(tmp_path / "plain.hdf5", "plain")
    kept = [0, 1, 2, 3, 4, 6]  # the timeout row 5 and the final row 7 have no next observation
    np.testing.assert_array_equal(transition.obs, obs[kept])
    np.testing.assert_array_equal(transition.next_obs, obs[[1, 2, 2, 4, 5, 7]])  # the terminal keeps next_obs = obs
    np.testing.assert_array_equal(transition.episode_id, [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(transition.discount, [1, 1, 0, 1, 1, 1])
    assert np.isnan(transition.behavior_log_prob).all() and not transition.cost.any()
    assert metadata.extra["rows_without_next_obs_dropped"] == 2
    assert metadata.provenance.behavior_policy.startswith("unknown")
    save(tmp_path / "ds", transition, metadata)


def test_d4rl_import_of_float64_fields_warns_and_records_the_largest_change(tmp_path):
    obs = np.linspace(0.0, 1.0, 8, dtype=np.float64).reshape(4, 2) / 3  # not float32-representable
    rewards = np.array([0.1, 0.2, 0.5, 1.0])  # float64; 0.5 and 1.0 are exact in float32
    write_d4rl(
        tmp_path / "wide.hdf5",
        observations=obs,
        next_observations=obs + 1,
        actions=np.array([0, 1, 1, 0], np.int64),
        rewards=rewards,
        terminals=np.array([0, 0, 0, 1], bool),
        timeouts=np.zeros(4, bool),
    )
    with pytest.warns(NarrowingWarning) as caught:
        transition, metadata = import_d4rl(tmp_path / "wide.hdf5", "toy")
    messages = {str(warning.message).split("'")[1]: str(warning.message) for warning in caught}  # by field
    assert messages["reward"].startswith("field 'reward' narrowed from float64 to float32 on import (largest absolute")
    assert messages["action"].startswith("field 'action' narrowed from int64 to int32 on import (values unchanged)")
    narrowed = metadata.extra["narrowed_on_import"]
    assert set(narrowed) == {"obs", "next_obs", "action", "reward"}
    assert narrowed["reward"] == {
        "from": "float64", "to": "float32", "max_abs_change": float(np.abs(rewards.astype(np.float32) - rewards).max())
    }
    assert 0 < narrowed["reward"]["max_abs_change"] < 1e-8 and narrowed["action"]["max_abs_change"] == 0.0
    assert transition.reward.dtype == np.float32 and transition.action.dtype == np.int32
    assert save(tmp_path / "ds", transition, metadata).extra["narrowed_on_import"] == narrowed


def test_d4rl_import_names_a_missing_field(tmp_path):
    write_d4rl(tmp_path / "bad.hdf5", observations=np.zeros((3, 2), np.float32))
    with pytest.raises(DatasetError, match="bad.hdf5: field 'actions' is missing"):
        import_d4rl(tmp_path / "bad.hdf5", "toy")


def test_d4rl_import_refuses_or_drops_invalid_rows(tmp_path):
    export_d4rl(tmp_path / "data.hdf5", with_row(make_transition(), "action", 4, 2.0), make_metadata())
    with pytest.raises(DatasetError, match="data.hdf5: field 'action': action outside \\[-1, 1\\].* at row 4"):
        import_d4rl(tmp_path / "data.hdf5", "toy")
    transition, metadata = import_d4rl(tmp_path / "data.hdf5", "toy", drop_invalid=True)
    assert len(transition.obs) == 11 and metadata.dropped_invalid_rows == 1
