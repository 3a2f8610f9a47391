"""How episodes end: terminated, at the time limit, or cut by the logging budget (jaxrl/data/episodes.py), and
what the quality report and the metadata make of it."""

from __future__ import annotations

import json

import numpy as np

from jaxrl.data.episodes import episode_ends
from jaxrl.data.metadata import Metadata
from jaxrl.data.quality import quality_report

from .synthetic import make_metadata, make_transition


def test_episodes_are_terminated_at_the_time_limit_or_cut():
    # episode 4: 3 steps, terminated; 9: 5 steps, no termination (time limit 5); 2: 2 steps, no termination (cut)
    episode_id = np.array([4, 4, 4, 9, 9, 9, 9, 9, 2, 2])
    discount = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1], np.float32)
    ends = episode_ends(episode_id, discount, time_limit=5)
    np.testing.assert_array_equal(ends.first_row, [0, 3, 8])
    np.testing.assert_array_equal(ends.length, [3, 5, 2])
    np.testing.assert_array_equal(ends.terminated, [True, False, False])
    np.testing.assert_array_equal(ends.cut, [False, False, True])
    np.testing.assert_array_equal(ends.at_time_limit, [False, True, False])
    np.testing.assert_array_equal(ends.complete, [True, True, False])


def test_without_a_time_limit_every_non_terminal_end_counts_as_one():
    ends = episode_ends(np.array([0, 0, 1]), np.ones(3, np.float32), time_limit=None)
    assert not ends.time_limit_known
    np.testing.assert_array_equal(ends.complete, [True, True])


def test_the_quality_report_leaves_cut_episodes_out_of_its_return_statistics():
    # make_transition: episodes of 3, 4 and 5 steps with rewards e + 1 per step; the middle one not terminated
    transition = make_transition(terminated=(True, False, True))
    report = quality_report(transition, make_metadata(time_limit=10))  # the 4-step episode was cut
    assert report["episodes_cut"] == 1 and report["episodes_at_time_limit"] == 0
    assert report["episode_returns"] == [3.0, 15.0]
    assert report["returns"]["mean"] == 9.0
    assert "1 cut by the logging budget" in report["returns_over"]
    at_limit = quality_report(transition, make_metadata(time_limit=4))  # the same episode ended at the limit
    assert at_limit["episodes_cut"] == 0 and at_limit["episode_returns"] == [3.0, 8.0, 15.0]
    unknown = quality_report(transition, make_metadata())
    assert unknown["episodes_cut"] is None and len(unknown["episode_returns"]) == 3


def test_a_version_1_metadata_file_reads_with_an_unknown_time_limit():
    content = json.loads(make_metadata(time_limit=200).to_json())
    content.pop("time_limit")
    content["schema_version"] = 1
    metadata = Metadata.from_json(json.dumps(content))
    assert metadata.time_limit is None and metadata.schema_version == 2


def test_collect_records_the_time_limit_and_the_report_counts_the_cut_episodes(tmp_path):
    from jaxrl.cli import main

    out = tmp_path / "random"
    # 4 envs x 150 steps on pendulum (time limit 200): every episode is cut by the logging budget
    command = ["collect", "--env", "pendulum", "--policy", "random", "--steps", "600", "--num-envs", "4"]
    assert main([*command, "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["time_limit"] == 200
    assert metadata["quality"]["episodes_cut"] == 4
    assert "none is whole" in metadata["quality"]["returns_over"]
