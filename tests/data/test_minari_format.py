import warnings

import numpy as np
import pytest

from jaxrl.data.formats import NarrowingWarning
from jaxrl.data.metadata import DatasetError
from jaxrl.data.minari_format import datasets_root, default_dataset_id, export_minari, import_minari
from jaxrl.data.storage import load, save
from jaxrl.dataset_commands import add_dataset_commands

from .synthetic import make_metadata, make_transition, with_row


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    """Minari's datasets folder, pointed at a temporary folder (never the real ~/.minari)."""
    root = tmp_path / "minari-datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def run_cli(*argv) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="jaxrl")
    add_dataset_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dataset", *map(str, argv)])
    return args.func(args)


def write_float64_dataset(dataset_id: str):
    """A one-episode Minari dataset whose observations, actions and rewards are float64, as Minari often
    stores them; return its rewards."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    rewards = np.array([0.1, 0.2, 0.5])  # 0.1 and 0.2 are not float32 numbers
    buffer = EpisodeBuffer(
        observations=np.linspace(0.0, 1.0, 12).reshape(4, 3) / 3,
        actions=np.array([[0.5], [-0.25], [0.0]]),  # float64 but exact in float32
        rewards=rewards,
        terminations=np.array([False, False, True]),
        truncations=np.zeros(3, bool),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minari warns about the optional fields left out
        minari.create_dataset_from_buffers(
            dataset_id,
            [buffer],
            observation_space=gym.spaces.Box(-np.inf, np.inf, (3,), np.float64),
            action_space=gym.spaces.Box(-1.0, 1.0, (1,), np.float64),
            algorithm_name="test",
            author="test",
            author_email="t@example.com",
            code_permalink="none",
            description="float64 fields",
            data_format="hdf5",
        )
    return rewards


def assert_exact(first, second):
    for name, a, b in zip(first._fields, first, second, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


@pytest.mark.parametrize("discrete", [False, True])
def test_minari_round_trip_keeps_arrays_exact(tmp_path, discrete):
    transition = with_row(make_transition(discrete=discrete, first_episode_id=3), "behavior_log_prob", 0, np.nan)
    metadata = make_metadata(discrete=discrete, random_return=0.0, expert_return=30.0)
    folder = export_minari(tmp_path / "root", transition, metadata, dataset_id="jaxrl/toy-v1")
    assert folder == tmp_path / "root" / "jaxrl" / "toy-v1"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NarrowingWarning)
        imported, imported_metadata = import_minari(folder, "toy")
    assert_exact(transition, imported)
    assert "narrowed_on_import" not in imported_metadata.extra
    assert imported_metadata.discrete == discrete and imported_metadata.expert_return == 30.0
    assert imported_metadata.provenance.parent.derivation == {"import": "minari"}


def test_minari_exports_are_readable_by_minari_itself(tmp_path, monkeypatch):
    import minari

    export_minari(
        tmp_path, make_transition(terminated=(True, False, True)), make_metadata(random_return=0.0, expert_return=10.0)
    )
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset(default_dataset_id("toy"))
    assert dataset.total_episodes == 3 and dataset.total_steps == 12
    episode = dataset[1]
    assert not episode.terminations[-1] and episode.truncations[-1]
    np.testing.assert_array_equal(episode.rewards, [2.0] * 4)
    assert minari.get_normalized_score(dataset, np.array([5.0])) == pytest.approx(0.5)


def test_minari_export_refuses_broken_observation_sequences(tmp_path):
    transition = with_row(make_transition(), "next_obs", 1, 9.0)
    with pytest.raises(DatasetError, match="field 'next_obs': row 1 differs from 'obs' of row 2"):
        export_minari(tmp_path, transition, make_metadata())
    assert list(tmp_path.iterdir()) == []


def test_minari_export_refuses_an_existing_dataset(tmp_path):
    export_minari(tmp_path, make_transition(), make_metadata())
    with pytest.raises(DatasetError, match="already exists"):
        export_minari(tmp_path, make_transition(), make_metadata())


def test_minari_import_names_a_folder_without_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no Minari dataset here"):
        import_minari(tmp_path, "toy")


def test_minari_native_dataset_from_data_collector_imports_with_rescaled_actions(tmp_path, monkeypatch):
    import gymnasium as gym
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=5))  # actions in [-2, 2]
    env.action_space.seed(0)
    for seed in (0, 1):
        env.reset(seed=seed)
        truncated = False
        while not truncated:
            _, _, _, truncated, _ = env.step(env.action_space.sample())
    env.create_dataset(
        "pendulum/random-v0",
        algorithm_name="random",
        author="test",
        author_email="t@example.com",
        code_permalink="none",
        description="test",
    )
    transition, metadata = import_minari(tmp_path / "pendulum" / "random-v0", "pendulum")
    assert len(transition.obs) == 10 and metadata.obs_size == 3 and metadata.action_size == 1
    np.testing.assert_array_equal(transition.episode_id, [0] * 5 + [1] * 5)
    np.testing.assert_array_equal(transition.next_obs[:4], transition.obs[1:5])
    assert np.abs(transition.action).max() <= 1.0 and metadata.extra["action_rescaled_from"]["high"] == [2.0]
    assert transition.discount.all() and np.isnan(transition.behavior_log_prob).all()


def test_minari_export_names_a_malformed_dataset_id(tmp_path):
    with pytest.raises(DatasetError, match="expected \\(namespace/\\)name-v<version>"):
        export_minari(tmp_path, make_transition(), make_metadata(), dataset_id="no version!")


@pytest.mark.parametrize("dataset_id", ["toy-v0", "jaxrl/toy/medium-v2"])
def test_minari_import_finds_a_dataset_id_under_minari_datasets_path(tmp_path, minari_root, dataset_id):
    transition = make_transition()
    export_minari(minari_root, transition, make_metadata(), dataset_id=dataset_id)
    imported, metadata = import_minari(dataset_id, "toy")
    assert_exact(transition, imported)
    assert metadata.extra["minari_dataset_id"] == dataset_id
    assert metadata.provenance.parent.path == str((minari_root / dataset_id).resolve())


def test_minari_datasets_root_defaults_to_minaris_folder_in_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets_root() == tmp_path / ".minari" / "datasets"


def test_minari_import_of_an_unknown_id_names_the_id_the_folder_searched_and_the_local_ids(minari_root):
    export_minari(minari_root, make_transition(), make_metadata(), dataset_id="jaxrl/toy/medium-v1")
    with pytest.raises(DatasetError) as raised:
        import_minari("jaxrl/toy/medium-v2", "toy")
    message = str(raised.value)
    assert message.startswith("Minari dataset 'jaxrl/toy/medium-v2': no such folder, and no dataset at ")
    assert str(minari_root / "jaxrl" / "toy" / "medium-v2" / "data") in message
    assert "from MINARI_DATASETS_PATH" in message and "local datasets: jaxrl/toy/medium-v1" in message
    assert "minari download jaxrl/toy/medium-v2" in message


def test_minari_import_of_an_id_without_version_lists_the_local_versions(minari_root):
    export_minari(minari_root, make_transition(), make_metadata(), dataset_id="jaxrl/toy/medium-v1")
    with pytest.raises(DatasetError, match="'jaxrl/toy/medium' has no version; .* versions: jaxrl/toy/medium-v1 "):
        import_minari("jaxrl/toy/medium", "toy")


def test_minari_import_names_a_malformed_id(minari_root):
    with pytest.raises(DatasetError, match="'no id!': no such folder, and not a Minari dataset id"):
        import_minari("no id!", "toy")


def test_dataset_export_defaults_to_minaris_folder_and_import_takes_the_id(tmp_path, minari_root, capsys):
    import minari

    save(tmp_path / "ds", make_transition(), make_metadata())
    assert run_cli("export", tmp_path / "ds", "--format", "minari") == 0
    assert minari.load_dataset("toy-v0").total_steps == 12
    assert "minari.load_dataset('toy-v0')" in capsys.readouterr().out
    assert run_cli("import", "toy-v0", "--format", "minari", "--env", "toy", "--out", tmp_path / "back") == 0
    assert_exact(make_transition(), load(tmp_path / "back")[0])


def test_dataset_export_d4rl_names_the_missing_out(tmp_path):
    save(tmp_path / "ds", make_transition(), make_metadata())
    with pytest.raises(ValueError, match="--format d4rl: --out FILE.hdf5 is required"):
        run_cli("export", tmp_path / "ds", "--format", "d4rl")


def test_minari_import_of_float64_fields_warns_and_records_the_largest_change(minari_root):
    rewards = write_float64_dataset("wide/toy-v0")
    with pytest.warns(NarrowingWarning) as caught:
        transition, metadata = import_minari("wide/toy-v0", "toy")
    messages = {str(warning.message).split("'")[1]: str(warning.message) for warning in caught}  # by field
    change = float(np.abs(rewards.astype(np.float32) - rewards).max())
    expected = f"field 'reward' narrowed from float64 to float32 on import (largest absolute change {change:.3g})"
    assert messages["reward"].startswith(expected)
    narrowed = metadata.extra["narrowed_on_import"]
    assert narrowed["reward"] == {"from": "float64", "to": "float32", "max_abs_change": change} and change > 0
    assert narrowed["action"]["max_abs_change"] == 0.0 and set(narrowed) == {"obs", "next_obs", "action", "reward"}
    assert transition.reward.dtype == np.float32


def test_minari_float64_round_trip_changes_rewards_by_the_recorded_amount(tmp_path, minari_root):
    import minari

    rewards = write_float64_dataset("wide/toy-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NarrowingWarning)
        transition, metadata = import_minari("wide/toy-v0", "toy")
    export_minari(minari_root, transition, metadata, dataset_id="wide/toy-v1")
    back = minari.load_dataset("wide/toy-v1")[0].rewards
    assert back.dtype == np.float32
    assert np.abs(back - rewards).max() == metadata.extra["narrowed_on_import"]["reward"]["max_abs_change"]


def test_dataset_import_prints_the_narrowing_as_one_line(tmp_path, minari_root, capsys):
    write_float64_dataset("wide/toy-v0")
    assert run_cli("import", "wide/toy-v0", "--format", "minari", "--env", "toy", "--out", tmp_path / "ds") == 0
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("warning: field 'reward' narrowed from float64 to float32") for line in lines)
    assert load(tmp_path / "ds")[1].extra["narrowed_on_import"]["reward"]["from"] == "float64"
