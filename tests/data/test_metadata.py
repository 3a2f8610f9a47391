import dataclasses
import json

import pytest

from jaxrl.data.metadata import DatasetError, Metadata, Parent, code_version

from .synthetic import make_metadata


def test_metadata_round_trips_through_json_with_a_parent():
    metadata = make_metadata(random_return=1.0, expert_return=9.0, extra={"note": "x"})
    parent = Parent("/data/parent", "f" * 64, {"filter": "top_fraction", "fraction": 0.5})
    metadata = dataclasses.replace(metadata, provenance=dataclasses.replace(metadata.provenance, parent=parent))
    assert Metadata.from_json(metadata.to_json()) == metadata


def test_metadata_refuses_another_schema_version():
    content = json.loads(make_metadata().to_json())
    content["schema_version"] = 99
    with pytest.raises(DatasetError, match="schema_version 99"):
        Metadata.from_json(json.dumps(content), "ds/metadata.json")


def test_metadata_names_unknown_keys():
    content = json.loads(make_metadata().to_json())
    content["env_nmae"] = "typo"
    with pytest.raises(DatasetError, match="unknown keys \\['env_nmae'\\]"):
        Metadata.from_json(json.dumps(content))


def test_normalized_score_is_d4rl_style():
    assert make_metadata(random_return=10.0, expert_return=110.0).normalized_score(60.0) == 50.0
    assert make_metadata().normalized_score(60.0) is None


def test_code_version_names_jaxrl():
    assert code_version().startswith("jaxrl ")


def test_metadata_names_a_value_of_the_wrong_type():
    content = json.loads(make_metadata().to_json())
    content["obs_size"] = "3"
    with pytest.raises(DatasetError, match="'obs_size' is '3', expected int"):
        Metadata.from_json(json.dumps(content))


def test_metadata_names_missing_keys():
    content = json.loads(make_metadata().to_json())
    del content["provenance"]["seed"]
    with pytest.raises(DatasetError, match="provenance: unknown keys \\[\\], missing keys \\['seed'\\]"):
        Metadata.from_json(json.dumps(content))
