"""End-to-end runs of the `jaxrl` command: run directory, W&B offline, evaluate, resume after kill -9, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxrl.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]  # configs are found from here, not from the working directory
SHIPPED_PPO_CONFIGS = sorted((REPO_ROOT / "experiments" / "ppo").glob("*.yaml"))
SMALL_RUN = ["--set", "num_envs=16", "unroll_length=16", "num_minibatches=4", "eval_every=2048", "eval_episodes=4"]


def jaxrl(*args, **kwargs):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "jaxrl.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def test_train_writes_the_run_directory_and_evaluate_reads_it(tmp_path):
    run_dir = tmp_path / "run"
    config = REPO_ROOT / "experiments/ppo/pointmass.yaml"
    finish(jaxrl("train", "ppo", "--env", "pointmass", "--config", str(config), "--seeds", "2",
                 "--run-dir", str(run_dir), "--wandb", "offline", "--no-progress", *SMALL_RUN, "total_steps=4096"))
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ["agent", "env", "env_steps", "seeds", "eval_return_mean", "eval_return_per_seed", "wall_seconds",
                "compile_seconds", "steps_per_second", "final_params_sha256"]:
        assert key in summary, key
    assert summary["agent"] == "ppo" and summary["env"] == "pointmass" and summary["seeds"] == [0, 1]
    assert summary["env_steps"] == 4096 and len(summary["eval_return_per_seed"]) == 2
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in records} == {0, 1} and max(r["step"] for r in records) == 4096
    assert "num_envs: 16" in (run_dir / "config.yaml").read_text()
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2  # one W&B run per seed
    assert (run_dir / "checkpoints").is_dir()

    finish(jaxrl("evaluate", str(run_dir), "--episodes", "3"))
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["episodes"] == 3 and len(evaluation["eval_return_per_seed"]) == 2


def test_resume_after_kill_is_bit_exact(tmp_path):
    args = ["train", "ppo", "--env", "pointmass", "--wandb", "disabled", "--no-progress", *SMALL_RUN,
            "total_steps=61440"]  # 30 chunks
    reference = tmp_path / "reference"
    finish(jaxrl(*args, "--run-dir", str(reference)))

    killed = tmp_path / "killed"
    process = jaxrl(*args, "--run-dir", str(killed))
    deadline = time.time() + 240
    while not any(p.name.isdigit() and int(p.name) >= 2 for p in (killed / "checkpoints").glob("*")):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "summary.json").exists()

    finish(jaxrl("resume", str(killed), "--wandb", "disabled", "--no-progress"))
    resumed = json.loads((killed / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert resumed["resumed_from_chunk"] >= 2
    assert resumed["final_params_sha256"] == expected["final_params_sha256"]
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) == 31  # no record lost or repeated


def test_unknown_env_lists_the_available_ones(capsys, tmp_path):
    assert main(["train", "ppo", "--env", "pointmas", "--no-progress", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "pointmas" in err and "pointmass" in err and "halfcheetah" in err
    assert not (tmp_path / "r").exists()  # nothing written for a run that could not start


def test_bad_config_key_is_named(capsys, tmp_path):
    assert main(["train", "ppo", "--env", "pointmass", "--set", "num_env=3", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "num_env" in err and "valid keys" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", ["--seeds", "--seed-batch"])
def test_seed_counts_below_one_are_refused(capsys, tmp_path, flag):
    assert main(["train", "ppo", "--env", "pointmass", flag, "0", "--run-dir", str(tmp_path / "r")]) == 2
    assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_agent_and_missing_dataset_are_explained(capsys):
    assert main(["train", "dqn", "--env", "pointmass"]) == 2
    assert "unknown agent 'dqn'; available: ppo, ppo_lag, sac, rlpd, iql, cql, calql, bc" in capsys.readouterr().err
    assert main(["train", "iql"]) == 2
    assert "a dataset is required (--dataset DIR" in capsys.readouterr().err


def test_resume_of_a_folder_without_a_run_fails_clearly(capsys, tmp_path):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_shipped_ppo_configs_are_found():
    # An empty parametrization below would be skipped, not failed.
    assert SHIPPED_PPO_CONFIGS, f"no *.yaml in {REPO_ROOT / 'experiments/ppo'}"


@pytest.mark.parametrize("path", SHIPPED_PPO_CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_load(path):
    from jaxrl.agents import ppo
    from jaxrl.config import resolve_config

    resolve_config(ppo.Config, path, [])
