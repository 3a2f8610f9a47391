"""The policy registry (jaxrl/deploy): a version acts exactly as the run's seed it came from, promotion and
rollback keep the live history, a damaged version is refused, and a promotion killed with SIGKILL at any moment
leaves the registry readable with either the old or the new live version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrl.cli import main
from jaxrl.config import ConfigError
from jaxrl.deploy import bundle
from jaxrl.deploy.registry import Registry
from jaxrl.policy import evaluate_policy, evaluate_run, load_run


@pytest.fixture(scope="module")
def registry(pointmass_logged, tmp_path_factory) -> Registry:
    """Versions v1 (checkpoint 2, a poor policy) and v2 (the run's last checkpoint) of the shared PPO run."""
    path = tmp_path_factory.mktemp("registry") / "reg"
    registry = Registry(path, create=True)
    registry.add(bundle.from_run(pointmass_logged["run"], chunk=2), note="early")
    registry.add(bundle.from_run(pointmass_logged["run"]), note="final")
    return registry


def test_a_version_acts_exactly_as_the_run_seed_it_came_from(registry, pointmass_logged):
    policy = registry.load("v2")
    _, _, states, chunk = load_run(Path(pointmass_logged["run"]))
    original = jax.tree.map(lambda x: x[0], states)
    obs = jax.random.normal(jax.random.PRNGKey(0), (32, policy.env_spec.obs_size))
    for deterministic in (True, False):
        expected, _ = policy.learner.act(original, obs, jax.random.PRNGKey(1), deterministic)
        actual, _ = policy.learner.act(policy.state, obs, jax.random.PRNGKey(1), deterministic)
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))
    assert policy.provenance["chunk"] == chunk and policy.provenance["seed"] == 0


def test_evaluating_a_version_matches_evaluating_its_run(registry, pointmass_logged):
    run = evaluate_run(Path(pointmass_logged["run"]), episodes=16)
    deployed = evaluate_policy(registry.load("v2"), episodes=16)
    assert deployed["eval_return"] == pytest.approx(run["eval_return_per_seed"][0], rel=1e-5)


def test_promote_and_rollback_keep_the_live_history(tmp_path, registry):
    import shutil

    path = tmp_path / "reg"
    shutil.copytree(registry.path, path)
    own = Registry(path)
    assert own.live is None
    with pytest.raises(ConfigError, match="nothing to roll back to"):
        own.rollback()
    own.promote("v1", "first")
    own.promote("v2", "better")
    assert own.live == "v2"
    assert own.rollback("incident") == "v1" and own.live == "v1"
    assert [event["event"] for event in own.events] == ["add", "add", "promote", "promote", "rollback"]
    assert own.events[-1]["previous"] == "v2" and own.events[-1]["reason"] == "incident"
    with pytest.raises(ConfigError, match="no version 'v9'"):
        own.promote("v9")


def test_a_damaged_version_is_refused_with_the_file_named(tmp_path, registry):
    import shutil

    version = tmp_path / "v1"
    shutil.copytree(registry.version_dir("v1"), version)
    with np.load(version / bundle.STATE_FILE) as arrays:
        leaves = dict(arrays)
    name = sorted(leaves)[0]
    leaves[name] = leaves[name] + 1
    np.savez(version / bundle.STATE_FILE, **leaves)
    with pytest.raises(ConfigError, match="policy.npz: parameters do not match params_sha256"):
        bundle.load(version)
    del leaves[name]
    np.savez(version / bundle.STATE_FILE, **leaves)
    with pytest.raises(ConfigError, match="no array for state leaf"):
        bundle.load(version)
    document = json.loads((version / bundle.POLICY_FILE).read_text())
    del document["agent"]
    (version / bundle.POLICY_FILE).write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="policy.json: missing field\\(s\\) agent"):
        bundle.load(version)


PROMOTER = """
import sys
from jaxrl.deploy.registry import Registry
registry = Registry(sys.argv[1])
print("ready", flush=True)
for i in range(100000):
    registry.promote("v1" if i % 2 else "v2", f"flip {i}")
"""


def test_a_promotion_killed_at_any_moment_leaves_a_whole_registry(tmp_path, registry):
    import shutil

    path = tmp_path / "reg"
    shutil.copytree(registry.path, path)
    for delay in (0.05, 0.13, 0.31, 0.47):
        process = subprocess.Popen([sys.executable, "-c", PROMOTER, str(path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        record = json.loads((path / "registry.json").read_text())  # whole JSON, never half a file
        assert record["live"] in ("v1", "v2") and record["live_history"][-1] == record["live"]
        assert len(record["events"]) > 2  # it was killed while promoting, not before its first promotion
        assert record["events"][-1]["version"] == record["live"]
        assert Registry(path).load().params_sha256 == Registry(path).load(record["live"]).params_sha256


def test_registry_commands_end_to_end(tmp_path, pointmass_logged, capsys):
    path = str(tmp_path / "reg")
    assert main(["registry", "add", path, pointmass_logged["run"], "--chunk", "2"]) == 0
    assert main(["registry", "add", path, pointmass_logged["run"], "--note", "final"]) == 0
    assert main(["registry", "promote", path, "v2"]) == 0
    capsys.readouterr()
    assert main(["registry", "list", path]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:2] == ["v1", "ppo"] and listing[1].split()[:2] == ["*", "v2"]
    assert "chunk 2" in listing[0]
    assert main(["registry", "show", path]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "v2" and shown["live"] and shown["agent"] == "ppo"
    assert main(["evaluate", path, "--episodes", "4"]) == 0
    assert "return" in capsys.readouterr().out
    assert main(["registry", "rollback", path]) == 2  # v2 was the first live version: nothing before it
    assert "nothing to roll back to" in capsys.readouterr().err
    assert main(["registry", "promote", path, "v3"]) == 2
    assert "no version 'v3' (versions: v1, v2)" in capsys.readouterr().err
    assert main(["registry", "list", str(tmp_path)]) == 2
    assert "not a policy registry" in capsys.readouterr().err
