"""Offline to online: the replay loop's mix of dataset and buffer, `jaxrl finetune`'s refusals, and fine-tuning a
medium IQL run on pointmass (its normalized score rises within the online budget)."""

from __future__ import annotations

import json
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import cli
from jaxrl.agents import bc, iql, ppo
from jaxrl.config import ConfigError, build_config
from jaxrl.data.dataset import Dataset
from jaxrl.experiment import RunOptions, RunSpec, execute, load_spec, save_spec
from jaxrl.finetune import finetune_spec
from jaxrl.loop_config import ReplayLoop
from jaxrl.train import mixed_batch, offline_fraction
from jaxrl.types import Transition


def _rows(count: int, marker: float, start: int = 0) -> Transition:
    """`count` transitions whose reward is `marker` and whose obs holds the row's index."""
    index = jnp.arange(start, start + count, dtype=jnp.float32)
    zeros = jnp.zeros(count)
    return Transition(index[:, None], zeros[:, None], jnp.full(count, marker), zeros, jnp.ones(count), index[:, None],
                      jnp.full(count, jnp.nan), jnp.zeros(count, jnp.int32))


def test_the_batch_takes_exactly_the_offline_fraction_from_the_dataset_in_one_program():
    dataset = Dataset.from_numpy(jax.tree.map(np.asarray, _rows(100, 1.0, start=1000)))
    online = _rows(64, 0.0)
    mix = jax.jit(mixed_batch)
    for fraction, expected in [(0.0, 0), (0.25, 16), (0.5, 32), (0.7, 45), (1.0, 64)]:  # round(f * 64)
        batch = mix(online, dataset, jax.random.key(3), jnp.float32(fraction))
        from_dataset = np.asarray(batch.reward) == 1.0
        assert from_dataset.sum() == expected, fraction
        rows = np.asarray(batch.obs[:, 0])
        assert np.all((rows[from_dataset] >= 1000) & (rows[from_dataset] < 1100))  # the dataset's rows, whole
        np.testing.assert_array_equal(rows[~from_dataset], np.arange(64)[~from_dataset])  # online rows kept in place
        np.testing.assert_array_equal(np.asarray(batch.next_obs[:, 0]), rows)  # fields of one row stay together
    assert mix._cache_size() == 1  # the fraction is traced: every value ran the same compiled program


def test_the_offline_fraction_follows_its_linear_schedule():
    loop = ReplayLoop(total_steps=1000, offline_fraction=0.5, offline_fraction_end=0.1, batch_size=8, buffer_size=8)
    for steps, expected in [(0, 0.5), (250, 0.4), (500, 0.3), (1000, 0.1), (1500, 0.1)]:
        assert float(offline_fraction(loop, jnp.int32(steps))) == pytest.approx(expected)
    constant = ReplayLoop(offline_fraction=0.5, batch_size=8, buffer_size=8)
    assert float(offline_fraction(constant, jnp.int32(50_000))) == 0.5


def test_offline_fraction_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="offline_fraction_end"):
        ReplayLoop(offline_fraction_end=1.5)


def _fake_run(run_dir, agent, module, dataset="data/nowhere", finished=True):
    """A run folder as `jaxrl train` leaves it (config.yaml, summary.json), without training."""
    run_dir.mkdir(parents=True)
    spec = RunSpec(agent, "pointmass", (0,), build_config(module.Config, {}), dataset if agent != "ppo" else None)
    save_spec(run_dir, spec)
    if finished:
        (run_dir / "summary.json").write_text("{}")
    return run_dir


@pytest.mark.parametrize("agent,module,why", [("bc", bc, "a bc run .*cannot be fine-tuned.*iql, cql"),
                                              ("ppo", ppo, "a ppo run \\(an online agent\\) cannot be fine-tuned")])
def test_finetune_refuses_agents_it_cannot_continue_and_writes_nothing(tmp_path, capsys, agent, module, why):
    run = _fake_run(tmp_path / agent, agent, module)
    out = tmp_path / "out"
    assert cli.main(["finetune", str(run), "--run-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(run) in err
    assert re.search(why, err), err
    assert not out.exists()


def test_finetune_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert cli.main(["finetune", str(tmp_path / "notes"), "--run-dir", str(tmp_path / "out")]) == 2
    assert "not a run directory (no config.yaml)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_finetune_refuses_a_run_whose_dataset_has_moved(tmp_path):
    run = _fake_run(tmp_path / "iql", "iql", iql, dataset=str(tmp_path / "moved-away"))
    with pytest.raises(ConfigError, match="field 'dataset' names .*moved-away.*put it back"):
        finetune_spec(run)


def test_finetune_refuses_an_unfinished_run(tmp_path):
    run = _fake_run(tmp_path / "iql", "iql", iql, finished=False)
    with pytest.raises(ConfigError, match="has not finished.*jaxrl resume"):
        finetune_spec(run)


# Measured (seeds 0 and 1, 2 CPU cores, jax 0.10.2; 100 evaluation episodes, as 20 left a policy's score +-10
# points apart from one evaluation to the next): 3k offline updates of IQL on the fixture's medium data score 68.7
# (normalized, mean of the seeds) before the first online step and 85.1 after 8k online steps (evaluated every 1k
# steps; the test evaluates every 2k, with other evaluation keys), 16.4 above. The
# margin is half the measured gain.
FINETUNE_MARGIN = 8.0


@pytest.fixture(scope="module")
def offline_iql(pointmass_tiers, tmp_path_factory):
    """A finished 2-seed IQL run on the pointmass medium fixture (the results config, fewer updates)."""
    config = build_config(iql.Config, {"hidden_sizes": (64, 64), "num_updates": 3000, "eval_every": 3000,
                                       "eval_episodes": 20})
    run_dir = tmp_path_factory.mktemp("offline-iql") / "run"
    execute(RunSpec("iql", "pointmass", (0, 1), config, pointmass_tiers["medium"]), run_dir,
            RunOptions(progress=False))
    return run_dir


# The two tests on a trained offline run (a module fixture of about 50 s) run in the slow suite, with the fine-tuning
# resume below; the default suite keeps the mixing, the schedule and the refusals that need no training.
@pytest.mark.slow
def test_finetune_refuses_to_change_the_networks_of_the_offline_run(offline_iql):
    with pytest.raises(ConfigError, match="key 'hidden_sizes' is the offline run's"):
        finetune_spec(offline_iql, overrides={"hidden_sizes": [32, 32]})


@pytest.mark.slow
def test_finetuning_medium_iql_on_pointmass_raises_its_normalized_score(offline_iql, tmp_path):
    before = sorted(p.name for p in offline_iql.rglob("*"))
    spec = finetune_spec(offline_iql, steps=8000, overrides={"eval_every": 2000, "eval_episodes": 100})
    assert spec.config.hidden_sizes == (64, 64) and spec.config.offline_fraction == 0.5 and spec.seeds == (0, 1)
    _, summary = execute(spec, tmp_path / "ft", RunOptions(progress=False))
    gain = summary["normalized_score_mean"] - summary["offline_score"]
    assert gain > FINETUNE_MARGIN, summary
    assert summary["online_env_steps"] == 8000 and summary["online_episodes"] > 0
    assert sorted(p.name for p in offline_iql.rglob("*")) == before  # the offline run was only read
    saved = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert saved["init_from"] == str(offline_iql) and saved["min_score_first_10pct"] <= max(
        saved["normalized_score_per_seed"])


@pytest.mark.slow  # the buffer's exact resume is in the default suite (tests/agents/test_sac.py)
def test_a_finetuning_run_resumed_after_a_kill_ends_bit_exact(offline_iql, tmp_path):
    """Resumed, the run restores its own checkpoint (agents, buffer, environments), not the offline agents."""
    spec = finetune_spec(offline_iql, steps=600, overrides={"eval_every": 200, "eval_episodes": 2, "batch_size": 64})
    options = RunOptions(progress=False, keep_checkpoints=None)
    _, whole = execute(spec, tmp_path / "run", options)
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "3")  # as if killed after chunk 2 of 3
    (tmp_path / "run" / "summary.json").unlink()
    _, resumed = execute(load_spec(tmp_path / "run"), tmp_path / "run", options, resume=True)
    assert resumed["resumed_from_chunk"] == 2
    assert resumed["final_params_sha256"] == whole["final_params_sha256"]
    assert resumed["offline_score"] == whole["offline_score"]  # read back from the run's own metrics
