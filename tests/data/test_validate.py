import numpy as np
import pytest

from jaxrl.data.metadata import DatasetError
from jaxrl.data.storage import load, save
from jaxrl.data.validate import validate

from .synthetic import make_metadata, make_transition, with_row, write_raw

FILE = "ds/arrays.npz"


def check(transition, metadata=None):
    return validate(transition._asdict(), metadata or make_metadata(), FILE)


@pytest.mark.parametrize(
    ("field", "row", "value", "reason"),
    [
        ("obs", 4, np.nan, "NaN or inf"),
        ("next_obs", 2, np.inf, "NaN or inf"),
        ("action", 5, 1.5, "outside \\[-1, 1\\]"),
        ("action", 1, np.nan, "NaN or inf"),
        ("reward", 3, -np.inf, "NaN or inf"),
        ("cost", 0, np.nan, "NaN or inf"),
        ("discount", 6, 0.99, "discount not 0 or 1"),
        ("discount", 3, 0.0, "not the last row of its episode"),
        ("behavior_log_prob", 7, -np.inf, "inf"),
    ],
)
def test_invalid_row_error_names_file_field_and_first_row(field, row, value, reason):
    transition = with_row(make_transition(), field, row, value)
    with pytest.raises(
        DatasetError, match=f"{FILE}: field '{field}': .*{reason}.* at row {row} \\(1 of 12 rows bad\\)"
    ):
        check(transition)


def test_error_counts_every_bad_row_and_reports_the_first():
    transition = make_transition()
    obs = transition.obs.copy()
    obs[[7, 2, 9], 1] = np.nan
    with pytest.raises(DatasetError, match="field 'obs': NaN or inf at row 2 \\(3 of 12 rows bad\\)"):
        check(transition._replace(obs=obs))


def test_unknown_behavior_log_prob_nan_is_valid():
    transition = make_transition()
    transition = transition._replace(behavior_log_prob=np.full_like(transition.behavior_log_prob, np.nan))
    assert check(transition)[1] == 0


def test_discrete_action_outside_range_is_invalid():
    transition = with_row(make_transition(discrete=True), "action", 3, 2)
    with pytest.raises(DatasetError, match="field 'action': discrete action outside \\[0, 2\\) at row 3"):
        check(transition, make_metadata(discrete=True))


def test_float_action_in_a_discrete_dataset_names_file_field_and_row():
    transition = make_transition(discrete=True)
    floats = with_row(transition._replace(action=transition.action.astype(np.float32)), "action", 4, 0.5)
    with pytest.raises(DatasetError, match="field 'action' has dtype float32, expected int32 .*row 4 holds 0.5"):
        check(floats, make_metadata(discrete=True))
    whole = transition._replace(action=transition.action.astype(np.float64))
    with pytest.raises(DatasetError, match="whole numbers, so cast them"):
        check(whole, make_metadata(discrete=True))


def test_episode_rows_must_be_contiguous():
    transition = make_transition(episode_lengths=(2, 2, 2), terminated=(False, False, False))
    transition = transition._replace(episode_id=np.array([0, 0, 1, 1, 0, 0], np.int32))
    with pytest.raises(DatasetError, match="field 'episode_id': .*not contiguous.* at row 4 \\(2 of 6 rows bad\\)"):
        check(transition)


def test_wrong_width_names_field_and_expected_shape():
    transition = make_transition()
    with pytest.raises(DatasetError, match=f"{FILE}: field 'next_obs' has shape \\(12, 2\\), expected \\(12, 3\\)"):
        check(transition._replace(next_obs=transition.next_obs[:, :2]))


def test_wrong_length_names_field():
    transition = make_transition()
    with pytest.raises(DatasetError, match="field 'reward' has shape \\(11,\\), expected \\(12,\\)"):
        check(transition._replace(reward=transition.reward[:-1]))


def test_wrong_dtype_names_field():
    transition = make_transition()
    with pytest.raises(DatasetError, match="field 'episode_id' has dtype int64, expected int32"):
        check(transition._replace(episode_id=transition.episode_id.astype(np.int64)))


def test_missing_field_is_named(tmp_path):
    transition, metadata = make_transition(), make_metadata()
    save(tmp_path / "ds", transition, metadata)
    arrays = dict(np.load(tmp_path / "ds" / "arrays.npz"))
    del arrays["cost"]
    np.savez(tmp_path / "ds" / "arrays.npz", **arrays)
    with pytest.raises(DatasetError, match="arrays.npz: missing fields \\['cost'\\]"):
        load(tmp_path / "ds")


def test_changed_file_is_refused_naming_file_and_field_even_with_drop_invalid(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    arrays = dict(np.load(tmp_path / "ds" / "arrays.npz"))
    arrays["reward"][5] += 1.0
    np.savez(tmp_path / "ds" / "arrays.npz", **arrays)
    pattern = f"{tmp_path / 'ds' / 'arrays.npz'}: field 'reward' does not match its sha256"
    with pytest.raises(DatasetError, match=pattern):
        load(tmp_path / "ds")
    with pytest.raises(DatasetError, match=pattern):
        load(tmp_path / "ds", drop_invalid=True)


def test_load_refuses_invalid_rows_naming_the_file(tmp_path):
    write_raw(tmp_path / "ds", with_row(make_transition(), "obs", 4, np.nan), make_metadata())
    with pytest.raises(DatasetError, match=f"{tmp_path / 'ds' / 'arrays.npz'}: field 'obs': NaN or inf at row 4"):
        load(tmp_path / "ds")


def test_drop_invalid_drops_rows_and_records_the_count(tmp_path):
    transition = with_row(make_transition(), "obs", 4, np.nan)
    transition = with_row(transition, "action", 9, -3.0)
    write_raw(tmp_path / "ds", transition, make_metadata(dropped_invalid_rows=1))
    kept, metadata = load(tmp_path / "ds", drop_invalid=True)
    assert len(kept.obs) == 10
    assert metadata.dropped_invalid_rows == 3  # 1 dropped earlier + 2 now
    np.testing.assert_array_equal(kept.reward, np.delete(transition.reward, [4, 9]))
    assert metadata.provenance.parent.path == str(tmp_path / "ds")
    assert metadata.provenance.parent.derivation == {"drop_invalid": True, "rows_dropped": 2}
    assert check(kept, metadata)[1] == 0  # what is left is valid
    save(tmp_path / "clean", kept, metadata)
    assert load(tmp_path / "clean")[1].dropped_invalid_rows == 3


def test_save_refuses_invalid_rows(tmp_path):
    with pytest.raises(DatasetError, match="being saved.*field 'discount': discount not 0 or 1 at row 1"):
        save(tmp_path / "ds", with_row(make_transition(), "discount", 1, 0.5), make_metadata())
    assert not (tmp_path / "ds").exists()
