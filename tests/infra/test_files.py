"""Atomic writes of files and folders: readers see the old content or the new, files get the umask's mode."""

import json
import os
import stat

import numpy as np
import pytest

from jaxrl.infra import files
from jaxrl.infra.files import atomic_write_dir, atomic_write_file, atomic_write_json, atomic_write_text


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("write", [atomic_write_text, atomic_write_json])
def test_written_files_get_the_mode_the_umask_gives_like_open(tmp_path, umask_022, write):
    write(tmp_path / "summary.json", "{}")
    (tmp_path / "plain").write_text("{}")
    assert mode(tmp_path / "summary.json") == mode(tmp_path / "plain") == 0o644


def test_files_inside_a_written_folder_get_the_mode_the_umask_gives(tmp_path, umask_022):
    atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "metadata.json").write_text("{}"))
    assert mode(tmp_path / "ds" / "metadata.json") == 0o644
    assert mode(tmp_path / "ds") == 0o755


def test_json_writer_turns_arrays_into_lists_and_ends_with_a_newline(tmp_path):
    atomic_write_json(tmp_path / "summary.json", {"b": np.float32(1.5), "a": np.arange(3)})
    text = (tmp_path / "summary.json").read_text()
    assert json.loads(text) == {"a": [0, 1, 2], "b": 1.5} and text.endswith("}\n")


def test_an_error_while_writing_a_file_leaves_the_old_file_and_no_temporary_file(tmp_path):
    atomic_write_text(tmp_path / "config.yaml", "old\n")

    def half_then_fail(handle):
        handle.write(b"new, half")
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="simulated"):
        atomic_write_file(tmp_path / "config.yaml", half_then_fail)
    assert (tmp_path / "config.yaml").read_text() == "old\n"
    assert names(tmp_path) == ["config.yaml"]


def test_writing_a_file_replaces_it_and_makes_missing_parent_folders(tmp_path):
    atomic_write_text(tmp_path / "run" / "summary.json", "old")
    atomic_write_text(tmp_path / "run" / "summary.json", "new")
    assert (tmp_path / "run" / "summary.json").read_text() == "new"
    assert names(tmp_path / "run") == ["summary.json"]


def test_a_folder_is_not_replaced_without_overwrite(tmp_path):
    atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "a").write_text("old"))
    with pytest.raises(FileExistsError, match="ds: already exists; choose another path or pass overwrite=True"):
        atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "a").write_text("new"))
    assert (tmp_path / "ds" / "a").read_text() == "old"


@pytest.mark.parametrize("exchange_available", [True, False])
def test_overwrite_replaces_a_folder_and_leaves_no_temporary_or_old_folder(tmp_path, monkeypatch, exchange_available):
    if not exchange_available:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "old").write_text("old"))
    atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "new").write_text("new"), overwrite=True)
    assert names(tmp_path / "ds") == ["new"]
    assert names(tmp_path) == ["ds"]


@pytest.mark.parametrize("existing", [False, True])
def test_an_error_while_filling_a_folder_leaves_the_destination_as_it_was(tmp_path, existing):
    if existing:
        atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "a").write_text("old"))

    def half_then_fail(folder):
        (folder / "a").write_text("new")
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="simulated"):
        atomic_write_dir(tmp_path / "ds", half_then_fail, overwrite=True)
    assert names(tmp_path) == (["ds"] if existing else [])
    if existing:
        assert (tmp_path / "ds" / "a").read_text() == "old"


def test_an_error_while_moving_a_folder_into_place_leaves_the_destination_as_it_was(tmp_path, monkeypatch):
    atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "a").write_text("old"))

    def fail(new, destination, overwrite):
        assert (new / "a").read_text() == "new"
        raise OSError("power cut (simulated)")

    monkeypatch.setattr(files, "_move_into_place", fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_dir(tmp_path / "ds", lambda folder: (folder / "a").write_text("new"), overwrite=True)
    assert (tmp_path / "ds" / "a").read_text() == "old"
    assert names(tmp_path) == ["ds"]


def test_a_folder_that_appears_while_filling_is_not_replaced(tmp_path):
    def fill_while_another_writer_finishes(folder):
        (folder / "a").write_text("mine")
        (tmp_path / "ds").mkdir()

    with pytest.raises(FileExistsError, match="appeared while writing; not replaced"):
        atomic_write_dir(tmp_path / "ds", fill_while_another_writer_finishes)
    assert names(tmp_path / "ds") == [] and names(tmp_path) == ["ds"]
