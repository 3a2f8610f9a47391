import json

import numpy as np
import pytest

from jaxrl.data import storage
from jaxrl.data.metadata import DatasetError, Metadata
from jaxrl.data.storage import load, save

from .synthetic import make_metadata, make_transition


def assert_same(first, second):
    for name, a, b in zip(first._fields, first, second, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_save_then_load_gives_identical_arrays_and_metadata(tmp_path):
    transition = make_transition()
    written = save(tmp_path / "ds", transition, make_metadata())
    loaded, metadata = load(tmp_path / "ds")
    assert_same(transition, loaded)
    assert metadata == written
    assert set(metadata.checksums) == set(transition._fields)
    assert metadata.quality["episodes"] == 3
    assert json.loads((tmp_path / "ds" / "metadata.json").read_text())["fingerprint"] == metadata.fingerprint


def test_arrays_are_stored_uncompressed(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    import zipfile

    with zipfile.ZipFile(tmp_path / "ds" / "arrays.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_save_refuses_an_existing_destination(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    with pytest.raises(DatasetError, match="already exists.*overwrite=True"):
        save(tmp_path / "ds", make_transition(seed=1), make_metadata())
    assert_same(load(tmp_path / "ds")[0], make_transition())


def test_overwrite_replaces_the_dataset(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    save(tmp_path / "ds", make_transition(seed=1), make_metadata(), overwrite=True)
    assert_same(load(tmp_path / "ds")[0], make_transition(seed=1))
    assert [path.name for path in tmp_path.iterdir()] == ["ds"]  # no temporary or old folders left


def fail_after_arrays(self):
    raise OSError("disk full (simulated, after arrays.npz was written)")


@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_save_leaves_the_destination_untouched(tmp_path, monkeypatch, existing):
    if existing:
        save(tmp_path / "ds", make_transition(), make_metadata())
    before = {path.name: path.read_bytes() for path in (tmp_path / "ds").iterdir()} if existing else None
    monkeypatch.setattr(Metadata, "to_json", fail_after_arrays)
    with pytest.raises(OSError, match="simulated"):
        save(tmp_path / "ds", make_transition(seed=1), make_metadata(), overwrite=True)
    if existing:
        assert {path.name: path.read_bytes() for path in (tmp_path / "ds").iterdir()} == before
    else:
        assert not (tmp_path / "ds").exists()
    assert [path.name for path in tmp_path.iterdir()] == (["ds"] if existing else [])


def test_a_destination_made_while_saving_is_reported_as_a_dataset_error(tmp_path, monkeypatch):
    def made_by_another_writer(self):
        (tmp_path / "ds").mkdir()
        return "{}"

    monkeypatch.setattr(Metadata, "to_json", made_by_another_writer)
    with pytest.raises(DatasetError, match="ds: appeared while writing; not replaced"):
        save(tmp_path / "ds", make_transition(), make_metadata())
    assert [path.name for path in tmp_path.iterdir()] == ["ds"]


def test_load_names_a_missing_file(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    (tmp_path / "ds" / "metadata.json").unlink()
    with pytest.raises(DatasetError, match="metadata.json: not found"):
        load(tmp_path / "ds")


def test_load_names_a_corrupt_archive(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    (tmp_path / "ds" / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="arrays.npz: cannot be read"):
        load(tmp_path / "ds")


def test_load_metadata_reads_only_the_json(tmp_path):
    written = save(tmp_path / "ds", make_transition(), make_metadata())
    assert storage.load_metadata(tmp_path / "ds") == written
