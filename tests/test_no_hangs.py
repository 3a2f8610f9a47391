"""Slow: every agent x {1 seed, 3 seeds, --seed-batch 1} x {a fast env, a Brax env} runs to the end.

Each run is a `jaxrl train` subprocess with tiny budgets but the agents' default network sizes (the IQL hang of
jaxlib's LAPACK kernels needed 256-wide layers), under a timeout that fails the test, and with the runner's
watchdog set shorter than that timeout, so a hang fails with the watchdog's report of the stuck program.
Run: ./scripts/test.sh -m slow tests/test_no_hangs.py   (about 15 minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl import agents

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENVS = ("pendulum", "halfcheetah")
SEED_MODES = {"1 seed": ["--seeds", "1"], "3 seeds": ["--seeds", "3"], "seed-batch 1": ["--seeds", "3",
                                                                                          "--seed-batch", "1"]}
BUDGETS = {
    "ppo": ["num_envs=8", "unroll_length=8", "num_minibatches=2", "total_steps=128", "eval_every=64",
            "eval_episodes=2", "episode_length=50"],
    "iql": ["num_updates=20", "eval_every=10", "eval_episodes=2"],
    "cql": ["num_updates=20", "eval_every=10", "eval_episodes=2"],
    "bc": ["num_updates=20", "eval_every=10", "eval_episodes=2"],
    "sac": ["num_envs=2", "total_steps=64", "eval_every=32", "learning_starts=16", "batch_size=16",
            "buffer_size=64", "eval_episodes=2", "episode_length=50"],
    "rlpd": ["num_envs=2", "total_steps=64", "eval_every=32", "learning_starts=16", "batch_size=16",
             "buffer_size=64", "eval_episodes=2", "episode_length=50", "updates_per_step=2"],
}
NEEDS_DATASET = agents.OFFLINE + ("rlpd",)  # rlpd mixes a dataset into its batches
TIMEOUT = 420  # seconds per run: Brax compiles take 10-45 s on 2 cores, more with the suite's other work
WATCHDOG = 180  # shorter than TIMEOUT, so a hang ends with the watchdog's report


def jaxrl(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "jaxrl.cli", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as expired:
        stderr = (expired.stderr or b"")[-3000:]
        pytest.fail(f"`jaxrl {' '.join(args)}` did not finish in {timeout} s (hung?): {stderr!r}")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """A small random-policy dataset of each env."""
    folders = {}
    for env in ENVS:
        folders[env] = tmp_path_factory.mktemp("data") / env
        done = jaxrl("collect", "--env", env, "--policy", "random", "--steps", "2048", "--num-envs", "8",
                     "--out", str(folders[env]))
        assert done.returncode == 0, done.stderr[-3000:]
    return folders


@pytest.mark.parametrize("mode", SEED_MODES)
@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("agent", BUDGETS)
def test_run_finishes(agent, env, mode, datasets, tmp_path):
    source = ["--dataset", str(datasets[env])] if agent in NEEDS_DATASET else ["--env", env]
    run_dir = tmp_path / "run"
    done = jaxrl("train", agent, *source, *SEED_MODES[mode], "--run-dir", str(run_dir), "--no-progress",
                 "--wandb", "disabled", "--watchdog", str(WATCHDOG), "--set", *BUDGETS[agent])
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["eval_return_per_seed"]) == int(SEED_MODES[mode][1])
