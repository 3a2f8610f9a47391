"""The persistent compilation cache: where it lives, that a second run and a resume load what the first run
compiled, that every compiling command turns it on (or off), and that an unwritable folder only warns."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl import cli
from jaxrl.infra import compile_cache
from jaxrl.infra.compile_cache import ENV_VAR, cache_folder

# Tiny PPO run (as in tests/test_cli.py): compiling takes most of its time.
TINY_RUN = ["train", "ppo", "--env", "pointmass", "--wandb", "disabled", "--no-progress", "--set", "num_envs=16",
            "unroll_length=16", "num_minibatches=4", "eval_every=2048", "eval_episodes=4", "total_steps=2048"]
TIMEOUT = 300  # seconds per subprocess; each takes under a minute on 2 busy cores


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """No cache setting from the developer's shell (tests/conftest.py turns the cache off); HOME in tmp_path."""
    for name in (ENV_VAR, "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_the_folder_is_under_xdg_cache_home_when_it_is_set(environment, tmp_path):
    environment.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "jaxrl" / "xla"


def test_the_folder_is_under_the_home_cache_without_xdg(environment, tmp_path):
    assert cache_folder() == tmp_path / "home" / ".cache" / "jaxrl" / "xla"
    environment.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    assert cache_folder() == tmp_path / "home" / ".cache" / "jaxrl" / "xla"
    environment.setenv(ENV_VAR, "1")
    assert cache_folder() == tmp_path / "home" / ".cache" / "jaxrl" / "xla"


def test_the_environment_variable_names_another_folder(environment, tmp_path):
    environment.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    environment.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert cache_folder() == tmp_path / "jax"  # JAX's own setting beats our default
    environment.setenv(ENV_VAR, "~/elsewhere")
    assert cache_folder() == tmp_path / "home" / "elsewhere"  # and ours beats JAX's


@pytest.mark.parametrize("flag_on, setting", [(False, None), (False, "/tmp/somewhere"), (True, "0")])
def test_the_flag_or_the_variable_turns_the_cache_off(environment, flag_on, setting):
    if setting is not None:
        environment.setenv(ENV_VAR, setting)
    assert cache_folder(flag_on) is None


@pytest.mark.parametrize("argv", [
    ["train", "ppo", "--env", "pointmas", "--run-dir", "{tmp}/r"],
    ["sweep", "{tmp}/missing.yaml"],
    ["resume", "{tmp}"],
    ["evaluate", "{tmp}"],
    ["collect", "--env", "pointmass", "--policy", "random", "--steps", "0", "--out", "{tmp}/d"],
    ["dataset", "make", "--env", "pointmass", "--steps", "0", "--out", "{tmp}/d"],
    ["ope", "--dataset", "{tmp}/missing", "{tmp}"],
    ["shift", "--dataset", "{tmp}/missing", "{tmp}"],
], ids=["train", "sweep", "resume", "evaluate", "collect", "dataset make", "ope", "shift"])
def test_every_compiling_command_configures_the_cache_and_takes_the_flag(monkeypatch, tmp_path, argv):
    calls = []
    monkeypatch.setattr(compile_cache, "configure", calls.append)
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert cli.main(argv) == 2  # each fails fast on its bad argument, after configuring
    assert cli.main([*argv, "--no-compile-cache"]) == 2
    assert calls == [True, False]


def test_a_command_that_compiles_nothing_leaves_the_cache_alone(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(compile_cache, "configure", calls.append)
    assert cli.main(["dataset", "inspect", str(tmp_path / "missing")]) == 2
    assert calls == []


def jaxrl(cache: Path, *args: str) -> str:
    """One `jaxrl` subprocess with JAXRL_COMPILE_CACHE=cache; returns its stderr."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", ENV_VAR: str(cache)}
    done = subprocess.run([sys.executable, "-m", "jaxrl.cli", *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.slow  # three jaxrl processes (32 s); the cache's configuration is checked in the default suite
def test_a_second_run_and_a_resume_load_their_programs_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    jaxrl(cache, *TINY_RUN, "--run-dir", str(tmp_path / "first"))
    entries = set(cache.iterdir())
    assert entries, "the first run wrote nothing into the cache"
    jaxrl(cache, *TINY_RUN, "--run-dir", str(tmp_path / "second"))
    assert set(cache.iterdir()) == entries  # nothing compiled afresh
    first, second = summary(tmp_path / "first"), summary(tmp_path / "second")
    # Loading takes about a tenth of compiling; half leaves room for a busy machine.
    assert second["compile_seconds"] < first["compile_seconds"] / 2, (first["compile_seconds"],
                                                                     second["compile_seconds"])
    assert second["final_params_sha256"] == first["final_params_sha256"]  # the loaded programs compute the same
    # A resume restores its state from a checkpoint, yet its programs are the ones a fresh run compiled.
    jaxrl(cache, "resume", str(tmp_path / "first"), "--wandb", "disabled", "--no-progress")
    assert set(cache.iterdir()) == entries


def test_an_unwritable_cache_folder_warns_and_turns_the_cache_off(environment, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file, not even by root
    environment.setenv(ENV_VAR, str(blocker / "cache"))
    assert compile_cache.configure(True) is None  # no exception: the run goes on, compiling as usual
    assert f"compilation cache off: cannot write to {blocker / 'cache'}" in capsys.readouterr().err


@pytest.mark.slow  # the same as above, through a whole `jaxrl train` process
def test_an_unwritable_cache_folder_warns_and_the_run_completes(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    stderr = jaxrl(blocker / "cache", *TINY_RUN, "--run-dir", str(tmp_path / "run"))
    assert f"compilation cache off: cannot write to {blocker / 'cache'}" in stderr
    assert summary(tmp_path / "run")["env_steps"] == 2048
