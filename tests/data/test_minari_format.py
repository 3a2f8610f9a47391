import numpy as np
import pytest

from jaxrl.data.metadata import DatasetError
from jaxrl.data.minari_format import default_dataset_id, export_minari, import_minari

from .synthetic import make_metadata, make_transition, with_row


def assert_exact(first, second):
    for name, a, b in zip(first._fields, first, second, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


@pytest.mark.parametrize("discrete", [False, True])
def test_minari_round_trip_keeps_arrays_exact(tmp_path, discrete):
    transition = with_row(make_transition(discrete=discrete, first_episode_id=3), "behavior_log_prob", 0, np.nan)
    metadata = make_metadata(discrete=discrete, random_return=0.0, expert_return=30.0)
    folder = export_minari(tmp_path / "root", transition, metadata, dataset_id="jaxrl/toy-v1")
    assert folder == tmp_path / "root" / "jaxrl" / "toy-v1"
    imported, imported_metadata = import_minari(folder, "toy")
    assert_exact(transition, imported)
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
