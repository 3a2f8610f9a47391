"""scripts/offline_results.py rewrites only its group's block of docs/results.md."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "offline_results.py"


@pytest.fixture
def results(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("offline_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DOC", tmp_path / "results.md")
    return module


def test_each_group_of_envs_has_its_own_block(results):
    assert results.group_of("pendulum") == results.group_of("pointmass") == "fast"
    assert results.group_of("halfcheetah") == results.group_of("hopper") == "brax"
    results.DOC.write_text("# Results\n\nintro\n")
    results.write_doc("fast", "fast table v1\n")
    results.write_doc("brax", "brax table v1\n")
    results.DOC.write_text(results.DOC.read_text() + "\nclosing prose\n")
    results.write_doc("brax", "brax table v2\n")  # replaces the brax block only
    text = results.DOC.read_text()
    fast_begin, fast_end = results.markers("fast")
    brax_begin, brax_end = results.markers("brax")
    assert f"{fast_begin}\nfast table v1\n{fast_end}" in text
    assert f"{brax_begin}\nbrax table v2\n{brax_end}" in text
    assert "brax table v1" not in text
    assert text.startswith("# Results\n\nintro\n") and text.endswith("closing prose\n")


def test_a_longer_training_variant_has_its_own_runs_and_settings(results):
    variant = results.Variant(100_000, ("medium-expert",))
    command = results.train_command("hopper", "medium-expert", "cql", variant)
    assert command[command.index("--run-dir") + 1] == "runs/offline-100k/hopper/medium-expert/cql"
    assert command[command.index("--set") + 1:] == ["num_updates=100000", "eval_every=50000"]
    assert command[command.index("--config") + 1] == "experiments/offline/cql-locomotion.yaml"
    assert results.tiers_of("hopper", variant) == ("medium-expert",)
    standard = results.train_command("pendulum", "medium", "iql")
    assert "--set" not in standard and standard[standard.index("--run-dir") + 1] == "runs/offline/pendulum/medium/iql"
    assert results.tiers_of("pendulum") == results.TIERS


def test_a_dataset_seed_variant_has_its_own_data_runs_and_block(results):
    variant = results.Variant(dataset_seed=1)
    make = results.dataset_command("pointmass", variant)
    assert make[make.index("--out") + 1] == "data/pointmass-dseed1" and make[make.index("--seed") + 1] == "1"
    command = results.train_command("pointmass", "medium", "iql", variant)
    assert command[command.index("--dataset") + 1] == "data/pointmass-dseed1/medium"
    assert command[command.index("--run-dir") + 1] == "runs/offline-dseed1/pointmass/medium/iql"
    assert command[command.index("--config") + 1] == "experiments/offline/iql.yaml"
    assert "--seed" not in results.dataset_command("pointmass")


def test_the_aggregates_block_gives_each_agents_iqm_over_every_task(results, tmp_path, monkeypatch):
    import numpy as np
    import scipy.stats

    from tests.test_report import write_run

    monkeypatch.setattr(results, "ROOT", tmp_path)
    rng = np.random.default_rng(0)
    scores = {}
    for tier in results.tiers_of("pendulum"):
        for agent in results.AGENTS:
            final = list(rng.uniform(-100.0, 0.0, 3))  # returns; the reference returns make score = return + 100
            scores.setdefault(agent, []).extend(r + 100 for r in final)
            write_run(tmp_path / results.run_dir("pendulum", tier, agent), agent, {0: [-100.0] * 3, 10: final},
                      dataset=f"data/pendulum/{tier}")
    lines = results.aggregates(["pendulum"])
    assert "Over all 5 tasks above" in lines[0] and "`jaxrl report runs/offline/pendulum`" in lines[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ") and "---" not in line}
    for agent in results.AGENTS:
        iqm_cell = rows[agent].split(" | ")[3]  # agent | tasks | runs | IQM [low, high] | ...
        assert iqm_cell.startswith(f"{scipy.stats.trim_mean(scores[agent], 0.25):.1f} ["), (agent, iqm_cell)
        assert rows[agent].split(" | ")[1:3] == ["5", "15"]
