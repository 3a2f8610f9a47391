"""Sweeps: the W&B file format, expansion into members, grouping into programs, members trained together as each
alone, the ranking, W&B runs per member, `jaxrl train --sweep-member`, and resume after kill -9 (slow)."""

import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaxrl.cli import main
from jaxrl.config import ConfigError
from jaxrl.experiment import RunOptions, execute
from jaxrl.sweep import file as sweep_file
from jaxrl.sweep.run import expand, member_spec, programs, run_sweep
from tests.test_cli import finish, jaxrl

OPTIONS = RunOptions(progress=False)
TINY_PPO = {"agent": {"value": "ppo"}, "env": {"value": "pendulum"}, "num_envs": {"value": 8},
            "unroll_length": {"value": 8}, "num_minibatches": {"value": 2}, "num_epochs": {"value": 2},
            "total_steps": {"value": 256}, "eval_every": {"value": 128}, "eval_episodes": {"value": 2},
            "policy_hidden_sizes": {"value": [8]}, "value_hidden_sizes": {"value": [8]}}


def write_sweep(tmp_path: Path, parameters: dict, **top) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"method": "grid", **top, "parameters": parameters}, sort_keys=False))
    return path


def test_grid_is_the_product_of_the_values_in_order(tmp_path):
    sweep = sweep_file.read_sweep(write_sweep(tmp_path, {"agent": {"value": "ppo"}, "gamma": {"values": [0.9, 0.99]},
                                                         "learning_rate": {"values": [1e-4, 3e-4, 1e-3]}}))
    members = sweep.members()
    assert len(members) == 6
    assert members[0] == {"agent": "ppo", "gamma": 0.9, "learning_rate": 1e-4}
    assert members[1] == {"agent": "ppo", "gamma": 0.9, "learning_rate": 3e-4}
    assert members[5] == {"agent": "ppo", "gamma": 0.99, "learning_rate": 1e-3}
    capped = sweep_file.read_sweep(write_sweep(tmp_path, {"gamma": {"values": [0.9, 0.95, 0.99]}}, run_cap=2))
    assert [m["gamma"] for m in capped.members()] == [0.9, 0.95]


def test_random_draws_follow_each_distribution_and_the_seed(tmp_path):
    parameters = {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-2},
                  "unit": {"min": 0.0, "max": 1.0}, "count": {"min": 2, "max": 4},
                  "choice": {"values": ["a", "b"]}, "ln": {"distribution": "log_uniform", "min": -2.0, "max": 0.0},
                  "step": {"distribution": "q_uniform", "min": 0.0, "max": 10.0, "q": 2.5}}
    sweep = sweep_file.read_sweep(write_sweep(tmp_path, parameters, method="random", run_cap=400))
    members = sweep.members(seed=1)
    assert len(members) == 400 and members == sweep.members(seed=1) and members != sweep.members(seed=2)
    lrs = np.array([m["lr"] for m in members])
    assert lrs.min() >= 1e-5 and lrs.max() <= 1e-2
    # Log-uniform over three decades: about a third of the draws in each decade.
    decades = np.histogram(np.log10(lrs), bins=[-5, -4, -3, -2])[0] / len(lrs)
    np.testing.assert_allclose(decades, 1 / 3, atol=0.08)
    assert all(0.0 <= m["unit"] <= 1.0 for m in members)
    assert {m["count"] for m in members} == {2, 3, 4} and all(isinstance(m["count"], int) for m in members)
    assert {m["choice"] for m in members} == {"a", "b"}
    assert all(math.exp(-2.0) <= m["ln"] <= 1.0 for m in members)
    assert {m["step"] for m in members} <= {0.0, 2.5, 5.0, 7.5, 10.0}


@pytest.mark.parametrize(("top", "parameters", "message"), [
    ({"method": "bayes"}, {"gamma": {"values": [0.9]}}, "method 'bayes' is not supported"),
    ({}, {"lr": {"min": 0.1, "max": 0.2}}, "method grid needs value or values for every parameter; lr"),
    ({"method": "random"}, {"lr": {"min": 0.1, "max": 0.2}}, "method random needs run_cap"),
    ({"method": "random", "run_cap": 2}, {"lr": {"min": 0.3, "max": 0.2}}, "parameters.lr: uniform needs numbers"),
    ({"method": "random", "run_cap": 2}, {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
     "needs min > 0"),
    ({}, {"net": {"parameters": {"width": {"value": 3}}}}, "nested parameters are not supported"),
    ({}, {"lr": {"distribution": "beta", "values": [1]}}, "distribution 'beta' is not supported"),
    ({"metric": {"name": "eval/return", "goal": "up"}}, {"gamma": {"value": 0.9}}, "metric.goal"),
    ({}, {}, "expected a 'parameters' mapping"),
])
def test_bad_sweep_files_are_explained(tmp_path, top, parameters, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        sweep_file.read_sweep(write_sweep(tmp_path, parameters, **top))
    assert str(tmp_path / "sweep.yaml") in str(error.value)


@pytest.mark.parametrize(("parameter", "message"), [
    ({"gamma_typo": {"values": [0.9]}}, "unknown key(s) gamma_typo"),
    ({"gamma": {"values": [0.9, 2.0]}}, "member 1 (agent=ppo, env=pendulum, gamma=2.0)"),
    ({"num_envs": {"values": ["many"]}}, "key 'num_envs': expected an integer"),
])
def test_bad_config_keys_and_values_name_the_member_before_anything_runs(tmp_path, parameter, message):
    path = write_sweep(tmp_path, {"agent": {"value": "ppo"}, "env": {"value": "pendulum"}, **parameter})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_sweep(path, tmp_path / "run", OPTIONS)
    assert not (tmp_path / "run").exists()


def test_members_differing_in_shapes_or_switches_are_separate_programs(tmp_path):
    path = write_sweep(tmp_path, {**TINY_PPO, "learning_rate": {"values": [1e-4, 1e-3]},
                                  "policy_hidden_sizes": {"values": [[8], [16]]}, "anneal_lr": {"values": [True]}})
    groups = programs(expand(sweep_file.read_sweep(path), seed=0))
    # policy_hidden_sizes comes first in the file, so it is the grid's outer loop.
    assert [[m.name for m in group] for group in groups] == [["member-000", "member-001"],
                                                             ["member-002", "member-003"]]


def test_members_trained_together_match_each_run_alone_and_are_ranked(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("wandb.init", lambda **kwargs: started.append(kwargs) or FakeWandbRun())
    parameters = {**TINY_PPO, "learning_rate": {"values": [3e-4, 3e-3]}, "clip_eps": {"values": [0.1, 0.3]},
                  "seeds": {"value": 2}}
    path = write_sweep(tmp_path, parameters, name="lr-clip")
    result = run_sweep(path, tmp_path / "sweep", RunOptions(progress=False, wandb_mode="offline"))
    assert result["programs"] == [["member-000", "member-001", "member-002", "member-003"]]  # one program
    ranked = sorted(result["members"], key=lambda row: row["rank"])
    assert [row["metric"] for row in ranked] == sorted((row["metric"] for row in ranked), reverse=True)
    assert (tmp_path / "sweep" / "ranking.md").read_text().count("| member-") == 4
    # Each member is its own W&B run per seed, all in the sweep's group, with its own parameters.
    assert len(started) == 8 and {run["group"] for run in started} == {"sweep"}
    assert sorted({(run["config"]["member"], run["config"]["learning_rate"]) for run in started})[1] == (
        "member-001", 3e-4)

    for member in ("member-001", "member-002"):  # alone, as `jaxrl train` would run it
        parameters_of_member = json.loads((tmp_path / "sweep" / member / "summary.json").read_text())["parameters"]
        spec = member_spec(parameters_of_member, member)
        _, alone = execute(spec, tmp_path / f"alone-{member}", OPTIONS)
        together = json.loads((tmp_path / "sweep" / member / "summary.json").read_text())
        assert together["seeds"] == alone["seeds"] == [0, 1]
        np.testing.assert_allclose(together["eval_return_per_seed"], alone["eval_return_per_seed"], rtol=1e-4)
        records = [(tmp_path / "sweep" / member, "policy_loss"), (tmp_path / f"alone-{member}", "policy_loss")]
        losses = [[r[key] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines()) if key in r]
                  for folder, key in records]
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-3, atol=1e-6)


class FakeWandbRun:
    def log(self, *args, **kwargs):
        pass

    def finish(self):
        pass


def test_train_sweep_member_reads_the_parameters_wandb_agent_writes(tmp_path):
    member = {key: entry["value"] for key, entry in TINY_PPO.items()} | {"learning_rate": 1e-3}
    parameters = tmp_path / "config-run.json"
    parameters.write_text(json.dumps(member))
    run_dir = tmp_path / "member"
    assert main(["train", "--sweep-member", str(parameters), "--run-dir", str(run_dir), "--wandb", "disabled",
                 "--no-progress"]) == 0
    document = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert document["agent"] == "ppo" and document["config"]["learning_rate"] == 1e-3
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 256


def test_train_sweep_member_errors_name_the_file(tmp_path, capsys):
    parameters = tmp_path / "bad.json"
    parameters.write_text(json.dumps({"env": "pendulum"}))
    assert main(["train", "--sweep-member", str(parameters)]) == 2
    assert f"--sweep-member {parameters}: the parameter 'agent' is required" in capsys.readouterr().err


def test_shipped_sweep_files_expand():
    folder = Path(__file__).resolve().parents[1] / "experiments" / "sweeps"
    paths = sorted(folder.glob("*.yaml"))
    assert paths, f"no sweep files in {folder}"
    for path in paths:
        sweep = sweep_file.read_sweep(path)
        document = yaml.safe_load(path.read_text())
        assert "${args_json_file}" in document["command"], f"{path}: wandb agent needs --sweep-member's command"
        members = [m | {"config": str(folder.parents[1] / m["config"])} if "config" in m else m
                   for m in sweep.members()]
        for index, member in enumerate(members):
            member_spec(member, f"{path} member {index}")


@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_to_the_same_results(tmp_path):
    parameters = {**TINY_PPO, "total_steps": {"value": 30 * 512}, "eval_every": {"value": 512},
                  "learning_rate": {"values": [3e-4, 1e-3]}}
    path = write_sweep(tmp_path, parameters)
    args = ["--wandb", "disabled", "--no-progress"]
    finish(jaxrl("sweep", str(path), "--run-dir", str(tmp_path / "reference"), *args))
    killed = tmp_path / "killed"
    process = jaxrl("sweep", str(path), "--run-dir", str(killed), *args)
    checkpoints = killed / "programs" / "00" / "checkpoints"
    deadline = time.time() + 240
    while not any(p.name.isdigit() and int(p.name) >= 2 for p in checkpoints.glob("*")):
        assert process.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finish(jaxrl("resume", str(killed), *args))
    for member in ("member-000", "member-001"):
        resumed = json.loads((killed / member / "summary.json").read_text())
        expected = json.loads((tmp_path / "reference" / member / "summary.json").read_text())
        assert resumed["resumed_from_chunk"] >= 2
        assert resumed["final_params_sha256"] == expected["final_params_sha256"]
        steps = [json.loads(line)["step"] for line in (killed / member / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(steps) and len(steps) == len(set(steps)) == 31
