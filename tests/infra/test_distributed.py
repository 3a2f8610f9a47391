"""Multi-host runs (jaxrl/infra/distributed.py): two local processes joined by `jax.distributed.initialize` train
one run over both processes' devices, as one process on one device does, and only process 0 writes the folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from jaxrl import cli

TIMEOUT = 600  # seconds for each process: a tiny PPO run, compile and the processes' handshake included
TINY_RUN = ["train", "ppo", "--env", "pointmass", "--wandb", "disabled", "--no-progress", "--no-compile-cache",
            "--set", "num_envs=16", "unroll_length=16", "num_minibatches=4", "eval_every=2048", "eval_episodes=4",
            "total_steps=4096"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    return subprocess.Popen([sys.executable, "-m", "jaxrl.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr[-4000:]
    return stderr


@pytest.mark.slow  # about 70 s: three runs, two of them two processes each
def test_two_processes_train_one_run_as_one_process_does(tmp_path):
    alone = tmp_path / "alone"
    finish(start(*TINY_RUN, "--run-dir", str(alone)))
    shared = tmp_path / "two-hosts"
    coordinator = f"localhost:{free_port()}"
    processes = [start(*TINY_RUN, "--run-dir", str(shared), "--devices", "2", "--coordinator", coordinator,
                       "--num-processes", "2", "--process-id", str(index)) for index in (0, 1)]
    for process in processes:
        finish(process)
    one, two = (json.loads((folder / "summary.json").read_text()) for folder in (alone, shared))
    assert two["devices"] == 2 and two["device_split"] == "data"  # one run: its environments split over hosts
    assert two["env_steps"] == one["env_steps"] == 4096
    assert two["eval_return_mean"] == pytest.approx(one["eval_return_mean"], rel=1e-3, abs=1e-3)
    records = (shared / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len((alone / "metrics.jsonl").read_text().splitlines())  # logged once, by process 0
    assert sorted(path.name for path in (shared / "checkpoints").iterdir()) == ["1", "2"]
    # Both processes restore their shards of the last checkpoint; the finished run re-evaluates as it ended.
    coordinator = f"localhost:{free_port()}"
    processes = [start("resume", str(shared), "--wandb", "disabled", "--no-progress", "--no-compile-cache",
                       "--devices", "2", "--coordinator", coordinator, "--num-processes", "2", "--process-id",
                       str(index)) for index in (0, 1)]
    for process in processes:
        finish(process)
    again = json.loads((shared / "summary.json").read_text())
    assert again["resumed_from_chunk"] == 2 and again["eval_return_mean"] == two["eval_return_mean"]
    assert again["final_params_sha256"] == two["final_params_sha256"]


@pytest.mark.parametrize("options, message", [
    (["--coordinator", "localhost:1"], "missing --num-processes, --process-id"),
    (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"],
     "--process-id in 0..1, got 2 and 2"),
])
def test_multi_host_options_go_together(tmp_path, capsys, options, message):
    assert cli.main([*TINY_RUN, "--run-dir", str(tmp_path / "run"), *options]) == 2
    assert message in capsys.readouterr().err
