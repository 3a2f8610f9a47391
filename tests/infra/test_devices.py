"""`--devices N`: runs on several devices give what they give on one, to float tolerance.

The host CPU is split into 2 XLA devices (XLA_FLAGS=--xla_force_host_platform_device_count=2), which must be set
before JAX starts, so each comparison runs in a subprocess: this file run as a script trains one case on 1 and on
2 devices in one process and prints how far apart they end. Data parallel (one run split over the devices, the
gradient all-reduced) adds floats in another order, so it matches to a tolerance; "runs" placement (whole runs
per device) computes each run as one device does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TIMEOUT = 600  # seconds per subprocess: two tiny runs, compile included, take about a minute on 2 busy cores
REPO = Path(__file__).resolve().parents[2]

# Tiny runs; IQL on a random pointmass dataset the subprocess collects itself.
CASES = {
    "iql-1-seed": dict(agent="iql", seeds=(0,), num_updates=200, eval_every=100, eval_episodes=4, batch_size=64,
                       hidden_sizes=(32, 32)),
    "ppo-1-seed": dict(agent="ppo", seeds=(0,), total_steps=4096, eval_every=2048, eval_episodes=4, num_envs=16,
                       unroll_length=16, num_minibatches=4),
    "ppo-2-seeds": dict(agent="ppo", seeds=(0, 1), total_steps=4096, eval_every=2048, eval_episodes=4, num_envs=16,
                        unroll_length=16, num_minibatches=4),
}


SWEEP = {"method": "grid", "parameters": {
    "agent": {"value": "ppo"}, "env": {"value": "pointmass"}, "num_envs": {"value": 16}, "unroll_length": {"value": 16},
    "num_minibatches": {"value": 4}, "total_steps": {"value": 4096}, "eval_every": {"value": 2048},
    "eval_episodes": {"value": 4}, "learning_rate": {"values": [3e-4, 1e-3]}}}


def compare_sweep() -> dict:
    """A 2-member sweep on 1 and on 2 devices: each device takes a member ("runs" placement)."""
    import yaml

    from jaxrl.experiment import RunOptions
    from jaxrl.sweep.run import run_sweep

    work = Path(tempfile.mkdtemp(prefix="jaxrl-devices-"))
    (work / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    members = {}
    for count in (1, 2):
        result = run_sweep(work / "sweep.yaml", work / f"devices-{count}", RunOptions(progress=False, devices=count))
        members[count] = [json.loads((work / f"devices-{count}" / row["name"] / "summary.json").read_text())
                          for row in sorted(result["members"], key=lambda row: row["name"])]
    two = members[2][0]
    return {"split": two["device_split"], "devices": two["devices"], "param_gap": 0.0,
            "returns": [[m["eval_return_mean"] for m in members[count]] for count in (1, 2)]}


def compare(case: str) -> dict:
    """Train `case` on 1 and on 2 devices in this process; how far apart the final parameters and returns are."""
    import jax
    import numpy as np

    from jaxrl import agents, cli
    from jaxrl.config import build_config
    from jaxrl.experiment import RunOptions, RunSpec, execute

    overrides = dict(CASES[case])
    agent, seeds = overrides.pop("agent"), overrides.pop("seeds")
    work = Path(tempfile.mkdtemp(prefix="jaxrl-devices-"))
    dataset = None
    if agent in agents.OFFLINE:
        dataset = str(work / "data")
        assert cli.main(["collect", "--env", "pointmass", "--policy", "random", "--steps", "4096", "--out",
                         dataset]) == 0
    spec = RunSpec(agent, "pointmass", seeds, build_config(agents.get(agent).Config, overrides), dataset)
    results = {}
    for count in (1, 2):
        state, summary = execute(spec, work / f"devices-{count}", RunOptions(progress=False, devices=count))
        results[count] = (jax.tree.map(np.asarray, state.agent), summary)
    (one, one_summary), (two, two_summary) = results[1], results[2]
    param_gap = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two),
                                                                 strict=True) if a.dtype.kind == "f")
    return {"split": two_summary["device_split"], "devices": two_summary["devices"], "param_gap": param_gap,
            "returns": [one_summary["eval_return_per_seed"], two_summary["eval_return_per_seed"]]}


def run_case(case: str) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, __file__, case], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case, split, tolerance", [
    pytest.param("iql-1-seed", "data", 1e-5, marks=pytest.mark.slow),  # measured 2e-7
    pytest.param("ppo-1-seed", "data", 1e-5, marks=pytest.mark.slow),  # measured 4e-7; IQL checks "data"
    pytest.param("sweep", "runs", None, marks=pytest.mark.slow),  # members over the devices; by their returns
    pytest.param("ppo-2-seeds", "runs", 1e-5, marks=pytest.mark.slow),  # measured 6e-7
])
def test_two_devices_match_one(case, split, tolerance):
    result = run_case(case)
    assert result["devices"] == 2 and result["split"] == split, result
    assert tolerance is None or result["param_gap"] < tolerance, result
    one, two = result["returns"]
    assert all(abs(a - b) < 0.05 * (1 + abs(a)) for a, b in zip(one, two, strict=True)), result


def test_more_devices_than_there_are_is_an_error_that_says_how_to_get_more():
    from jaxrl.infra.devices import placement

    with pytest.raises(ValueError, match=r"--devices 4: this process sees 1 cpu device\(s\) \(on a CPU, "
                                         r"XLA_FLAGS=--xla_force_host_platform_device_count=N"):
        placement(4, 1, False, {})
    with pytest.raises(ValueError, match="--devices must be at least 1, got 0"):
        placement(0, 1, False, {})


if __name__ == "__main__":
    print(json.dumps(compare_sweep() if sys.argv[1] == "sweep" else compare(sys.argv[1])))
