import argparse

import numpy as np
import pytest

from jaxrl.data.formats import export_d4rl
from jaxrl.data.metadata import DatasetError
from jaxrl.data.storage import load, save
from jaxrl.dataset_commands import add_dataset_commands
from tests.data.synthetic import make_metadata, make_transition, with_row


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jaxrl")
    add_dataset_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dataset", *map(str, argv)])
    return args.func(args)


def test_inspect_prints_the_report_and_keeps_the_dataset_valid(tmp_path, capsys):
    written = save(tmp_path / "ds", make_transition(), make_metadata())
    assert run("inspect", tmp_path / "ds") == 0
    output = capsys.readouterr().out
    assert "# Dataset quality: toy" in output and "| return | 8.667 |" in output
    assert {"quality.json", "quality.md", "returns.png"} <= {path.name for path in (tmp_path / "ds").iterdir()}
    assert load(tmp_path / "ds")[1] == written  # reports beside the arrays do not break the checksums


def test_inspect_raises_a_dataset_error_for_a_changed_file(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    arrays = dict(np.load(tmp_path / "ds" / "arrays.npz"))
    arrays["obs"][0, 0] = 5.0
    np.savez(tmp_path / "ds" / "arrays.npz", **arrays)
    with pytest.raises(DatasetError, match="field 'obs' does not match its sha256"):
        run("inspect", tmp_path / "ds")


def test_filter_writes_a_child_dataset_with_its_report(tmp_path, capsys):
    parent = save(tmp_path / "ds", make_transition(), make_metadata())
    assert run("filter", tmp_path / "ds", "--top-fraction", "0.34", "--out", tmp_path / "best") == 0
    transition, metadata = load(tmp_path / "best")
    assert set(transition.episode_id.tolist()) == {1, 2}
    assert metadata.provenance.parent.fingerprint == parent.fingerprint
    assert (tmp_path / "best" / "quality.md").is_file()
    assert "kept 2 of 3 episodes" in capsys.readouterr().out


def test_filter_refuses_to_overwrite_without_the_flag(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    with pytest.raises(DatasetError, match="already exists"):
        run("filter", tmp_path / "ds", "--top-fraction", "0.5", "--out", tmp_path / "ds")


def test_import_d4rl_with_drop_invalid_records_the_count(tmp_path, capsys):
    export_d4rl(tmp_path / "data.hdf5", with_row(make_transition(), "obs", 3, np.nan), make_metadata())
    with pytest.raises(DatasetError, match="field 'obs': NaN or inf at row 3"):
        run("import", tmp_path / "data.hdf5", "--format", "d4rl", "--env", "toy", "--out", tmp_path / "ds")
    argv = ["import", tmp_path / "data.hdf5", "--format", "d4rl", "--env", "toy", "--out", tmp_path / "ds"]
    assert run(*argv, "--drop-invalid", "--expert-return", "20") == 0
    transition, metadata = load(tmp_path / "ds")
    assert len(transition.obs) == 11 and metadata.dropped_invalid_rows == 1 and metadata.expert_return == 20.0
    assert "dropped 1 invalid rows" in capsys.readouterr().out


def test_export_then_import_minari_through_the_cli(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    assert run("export", tmp_path / "ds", "--format", "minari", "--out", tmp_path / "root") == 0
    argv = ["import", tmp_path / "root" / "toy-v0", "--format", "minari", "--env", "toy", "--out", tmp_path / "back"]
    assert run(*argv) == 0
    for name, a, b in zip(make_transition()._fields, make_transition(), load(tmp_path / "back")[0], strict=True):
        assert np.array_equal(a, b), name
