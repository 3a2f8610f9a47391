"""Slow: every command of the README runs as written, ends with exit 0 and writes what the README says.

The commands run in order in a scratch folder that links the repository's .venv and experiments/, so the
relative paths (runs/..., data/...) mean what they mean to a reader in the repository root; the quickstart,
which changes to the repository root itself, runs there and its run folder is removed afterwards.
Run: ./scripts/test.sh -m slow tests/test_readme.py   (about 10 minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1200  # seconds per command


def readme_commands() -> list[str]:
    """The command lines of the README's bash blocks, in order, without their trailing comments."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def only(folder: Path, pattern: str) -> Path:
    matches = sorted(folder.glob(pattern))
    assert len(matches) == 1, f"expected one {pattern} in {folder}, found {matches}"
    return matches[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def check_train(seeds: int, pattern: str):
    def check(cwd: Path, out: str):
        assert len(summary(only(cwd, pattern))["eval_return_per_seed"]) == seeds

    return check


def check_offline(agent: str, pattern: str | None = None):
    def check(cwd: Path, out: str):
        result = summary(only(cwd, pattern or f"runs/{agent}-pendulum-*"))
        assert len(result["eval_return_per_seed"]) == 3 and result["normalized_score_mean"] is not None

    return check


def check_online(folder: str):
    def check(cwd: Path, out: str):
        result = summary(cwd / folder)
        assert result["online_env_steps"] == 5000 and result["offline_score"] is not None, result
        assert len(result["normalized_score_per_seed"]) == (3 if "iql" in folder else 1)

    return check


def check_files(*paths: str):
    def check(cwd: Path, out: str):
        for path in paths:
            assert (cwd / path).exists(), path

    return check


def check_evaluate(cwd: Path, out: str):
    assert json.loads((cwd / "runs/pointmass-ppo/evaluation.json").read_text())["episodes"] == 100


def check_resume(cwd: Path, out: str):
    result = summary(cwd / "runs/pointmass-ppo")
    assert result["resumed_from_chunk"] > 0 and result["env_steps"] >= 300_000


def check_sac(cwd: Path, out: str):
    result = summary(cwd / "runs/pendulum-sac")
    assert result["env_steps"] == 20_000 and result["eval_return_mean"] > -400, result  # random: about -1200


def check_ppo_lag(cwd: Path, out: str):
    result = summary(cwd / "runs/pointmass-ppo-lag")
    assert len(result["eval_cost_per_seed"]) == 2 and result["eval_cost_mean"] < 1.5, result  # PPO: about 3


def check_registry(live: str | None):
    def check(cwd: Path, out: str):
        assert json.loads((cwd / "runs/registry/registry.json").read_text())["live"] == live

    return check


def check_output(pattern: str):
    def check(cwd: Path, out: str):
        assert re.search(pattern, out, flags=re.M), out

    return check


def check_sweep(cwd: Path, out: str):
    result = json.loads((cwd / "runs/sweep-ppo-pendulum/sweep_summary.json").read_text())
    assert sorted(member["rank"] for member in result["members"]) == list(range(1, 7))
    assert (cwd / "runs/sweep-ppo-pendulum/ranking.md").is_file()


TIERS = ("random", "medium", "expert", "medium-replay", "medium-expert")
# What each README command must leave behind; a command the README gains or loses fails test_every_command_...
CHECKS = {
    "./scripts/test.sh": None,  # this suite itself
    "./scripts/quickstart.sh": None,  # checked on its own below: it runs in the repository root
    "train ppo --env pointmass": check_train(4, "runs/pointmass-ppo"),
    "train ppo --env gymnax/CartPole-v1": check_train(1, "runs/ppo-gymnax_CartPole-v1-*"),
    "train ppo --env inverted_pendulum": check_train(1, "runs/ppo-inverted_pendulum-*"),
    "evaluate runs/pointmass-ppo": check_evaluate,
    "resume runs/pointmass-ppo": check_resume,
    "report runs/pointmass-ppo": check_files(*(f"runs/pointmass-ppo-report/{name}" for name in
                                               ("report.md", "aggregates.json", "performance_profile.png",
                                                "learning_curves.png"))),
    "sweep experiments/sweeps/ppo-pendulum.yaml": check_sweep,
    "train sac --env pendulum": check_sac,
    "dataset make --env pendulum": check_files("data/pendulum/tiers.json",
                                               *(f"data/pendulum/{tier}/metadata.json" for tier in TIERS)),
    "dataset inspect data/pendulum/medium-replay": check_files("data/pendulum/medium-replay/quality.json",
                                                               "data/pendulum/medium-replay/quality.md"),
    "train iql --dataset data/pendulum/medium-replay": check_offline("iql", "runs/pendulum-iql"),
    "finetune runs/pendulum-iql": check_online("runs/pendulum-iql-online"),
    "train rlpd --dataset data/pendulum/medium-replay": check_online("runs/pendulum-rlpd"),
    "train bc --dataset data/pendulum/medium-replay": check_offline("bc"),
    "ope --dataset data/pendulum/medium-replay runs/pendulum-iql": check_files(
        *(f"runs/pendulum-ope/{name}" for name in ("ope.json", "ope.md", "ope.png"))),
    "shift --dataset data/pendulum/medium-replay runs/pendulum-iql": check_files(
        *(f"runs/pendulum-shift/{name}" for name in ("shift.json", "shift.md", "shift_states.npz"))),
    "train ppo_lag --env pointmass": check_ppo_lag,
    "registry add runs/registry runs/pointmass-ppo ": check_registry(None),
    "registry add runs/registry runs/pointmass-ppo-lag": check_files("runs/registry/versions/v2/policy.npz"),
    "registry promote runs/registry v1": check_registry("v1"),
    "registry promote runs/registry v2": check_registry("v2"),
    "registry list runs/registry": check_output(r"^\*\s+v2\s+ppo_lag"),
    "evaluate runs/registry": check_output(r"return -?\d"),
    "registry rollback runs/registry": check_registry("v1"),
    "collect --env pointmass --policy runs/pointmass-ppo": check_files("data/pm/metadata.json"),
    "collect --env recsys --policy production": check_files("data/recsys/metadata.json"),
    "train iql --dataset data/recsys": check_train(1, "runs/recsys-iql"),
    "dataset filter data/pm": check_files("data/pm-top10/metadata.json"),
    "dataset export data/pendulum/medium --format d4rl": check_files("data/pendulum-medium.hdf5"),
    "dataset import data/pendulum-medium.hdf5": check_files("data/pendulum-d4rl/metadata.json"),
}


def check_for(command: str):
    matches = [key for key in CHECKS if command.removeprefix(".venv/bin/jaxrl ").startswith(key)]
    assert len(matches) == 1, f"README command {command!r} has {len(matches)} entries in CHECKS"
    return CHECKS[matches[0]]


def run(command: str, cwd: Path) -> str:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "disabled"}
    try:
        done = subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README command `{command}` did not finish in {TIMEOUT} s")
    assert done.returncode == 0, f"`{command}` exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


def test_every_command_of_the_readme_is_checked():
    commands = readme_commands()
    assert commands[:2] == ["./scripts/quickstart.sh", "./scripts/test.sh"]  # the two set-up commands lead
    for command in commands:
        check_for(command)


def test_quickstart_runs_the_pipeline_to_a_promotion():
    out = run("./scripts/quickstart.sh", ROOT)
    run_dir = ROOT / re.search(r"(runs/pipeline-pointmass-[\d-]+): promoted v\d+; report: ", out).group(1)
    try:
        assert json.loads((run_dir / "summary.json").read_text())["promoted"]
        assert (run_dir / "report.md").is_file()
    finally:
        shutil.rmtree(run_dir)


def test_the_tour_runs_as_written(tmp_path):
    for name in (".venv", "experiments"):
        (tmp_path / name).symlink_to(ROOT / name)
    for command in readme_commands():
        check = check_for(command)
        if check is None:
            continue
        out = run(command, tmp_path)
        check(tmp_path, out)
