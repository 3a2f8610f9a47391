import dataclasses
import json

import numpy as np
import pytest

from jaxrl.data.quality import episode_sums, quality_report, summary, write_report
from jaxrl.types import Transition

from .synthetic import make_metadata, make_transition


def test_report_counts_episodes_returns_and_endings():
    report = quality_report(make_transition(terminated=(True, False, True)), make_metadata())
    assert report["transitions"] == 12 and report["episodes"] == 3
    assert report["episode_returns"] == [3.0, 8.0, 15.0]  # (e + 1) * length for lengths 3, 4, 5
    assert report["returns"]["mean"] == pytest.approx(26 / 3)
    assert report["returns"]["min"] == 3.0 and report["returns"]["max"] == 15.0
    assert report["returns"]["p50"] == 8.0
    assert report["costs"]["mean"] == pytest.approx(2.0)  # 0.5 per step, mean length 4
    assert report["episode_length"] == {"mean": 4.0, "min": 3, "max": 5}
    assert report["terminal_transitions"] == 2
    assert report["episodes_terminated"] == 2 and report["episodes_truncated"] == 1
    assert report["duplicate_transitions"] == 0 and report["invalid_rows"] == 0


def test_episode_returns_follow_episode_ids_in_order_of_appearance():
    returns, episode_index = episode_sums(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([7, 7, 2, 2, 2]))
    np.testing.assert_array_equal(returns, [3.0, 12.0])
    np.testing.assert_array_equal(episode_index, [0, 0, 1, 1, 1])


def test_duplicates_count_rows_repeated_in_any_episode():
    transition = make_transition()
    repeated = Transition(*(field[:2] for field in transition))._replace(episode_id=np.full(2, 3, np.int32))
    both = Transition(*(np.concatenate(pair) for pair in zip(transition, repeated, strict=True)))  # a 4th episode
    assert quality_report(both, make_metadata())["duplicate_transitions"] == 2


def test_continuous_coverage_on_hand_placed_actions():
    transition = make_transition(episode_lengths=(4,))
    action = np.array(
        [[-1.0, -1.0], [-0.95, 0.95], [0.05, 0.05], [1.0, 1.0]], np.float32
    )  # bins (0,0) (0,9) (5,5) (9,9)
    coverage = quality_report(transition._replace(action=action), make_metadata())["action_coverage"]
    assert coverage["per_dim"] == [0.3, 0.3]
    assert coverage["pairwise_mean"] == pytest.approx(0.04) and coverage["pairwise_min_dims"] == [0, 1]
    assert coverage["joint"] == 1.0  # 4 distinct cells out of at most min(N=4, 100)


def test_discrete_coverage_reports_frequencies():
    transition = make_transition(episode_lengths=(4,), discrete=True)
    transition = transition._replace(action=np.array([0, 0, 1, 0], np.int32))
    metadata = dataclasses.replace(make_metadata(discrete=True), action_size=3)
    coverage = quality_report(transition, metadata)["action_coverage"]
    assert coverage["frequencies"] == [0.75, 0.25, 0.0]
    assert coverage["fraction_taken"] == pytest.approx(2 / 3)
    # exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = exp(0.5623) by hand
    assert coverage["effective_actions"] == pytest.approx(1.7548, abs=1e-4)


def test_normalized_return_uses_reference_returns():
    report = quality_report(make_transition(), make_metadata(random_return=0.0, expert_return=26 / 3 * 2))
    assert report["normalized_return_mean"] == pytest.approx(50.0)


def test_write_report_writes_json_markdown_and_png(tmp_path):
    report = quality_report(make_transition(), make_metadata())
    paths = write_report(tmp_path, report)
    assert [path.name for path in paths] == ["quality.json", "quality.md", "returns.png"]
    assert json.loads(paths[0].read_text())["episode_returns"] == [3.0, 8.0, 15.0]
    assert "| return | 8.667 |" in paths[1].read_text()
    assert paths[2].read_bytes().startswith(b"\x89PNG")


def test_summary_is_json_scalars():
    brief = summary(quality_report(make_transition(), make_metadata()))
    assert brief["episodes"] == 3 and brief["action_coverage_joint"] is not None
    json.dumps(brief)
