"""The run folders `jaxrl report` reads: find them, read each one's scores and learning curve, group them.

A run folder is what `jaxrl train` writes (config.yaml, summary.json, metrics.jsonl); a folder given on the
command line is either one, or holds some anywhere beneath it. A run's score is each seed's final evaluation:
the D4RL-style normalized score where the dataset has reference returns, the raw return otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from jaxrl.data.metadata import normalized_score

NORMALIZED = "normalized_score"
RETURN = "return"


class ReportError(ValueError):
    """Runs that cannot be reported (together); the message names the folder and what was expected."""


class Run(NamedTuple):
    """One run folder: one agent, one task, one or more seeds."""

    folder: Path
    agent: str
    task: str  # the env (online runs) or env/dataset folder name (offline runs), e.g. "pendulum/medium-replay"
    config: dict[str, Any]  # the agent's config as config.yaml holds it
    score_kind: str  # NORMALIZED or RETURN
    scores: np.ndarray  # [seeds]: each seed's final evaluation
    unit: str  # what the curve's steps count: "updates" (offline) or "env_steps" (online)
    steps: np.ndarray  # [evaluations]
    curve: np.ndarray  # [seeds, evaluations]: the score of each seed at each step


def find_run_folders(paths: list[str | Path]) -> list[Path]:
    """Every run folder given or beneath a folder given, each once, in sorted order."""
    folders: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such folder; expected a run folder of `jaxrl train` "
                                    "or a folder holding some")
        found = _runs_beneath(path)
        if not found:
            raise ReportError(f"{path}: no runs in it or beneath it (expected folders with the config.yaml and "
                              "summary.json of `jaxrl train`)")
        for folder in found:
            folders.setdefault(folder.resolve(), folder)
    return [folders[key] for key in sorted(folders)]


def _runs_beneath(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        if "config.yaml" in files:
            found.append(Path(root))
            dirs.clear()  # a run's own folders hold no runs, and W&B writes config.yaml files of its own there
        else:
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
    return found


def load_run(folder: Path) -> Run:
    """Read one run folder; a ReportError names the folder and the file that is missing or wrong."""
    document = _read_config(folder)
    summary = _read_summary(folder)
    seeds = list(document["seeds"])
    if summary.get("normalized_score_per_seed") is not None:
        references = summary.get("reference_returns") or {}
        if "random" not in references or "expert" not in references:
            raise ReportError(f"{folder}/summary.json: normalized scores without reference_returns "
                              "(random, expert) to normalize its learning curve with")
        kind, scores = NORMALIZED, summary["normalized_score_per_seed"]
        normalize = lambda returns: normalized_score(returns, references["random"], references["expert"])
    else:
        kind, scores, normalize = RETURN, summary["eval_return_per_seed"], lambda returns: returns
    if len(scores) != len(seeds):
        raise ReportError(f"{folder}: summary.json has {len(scores)} scores for the {len(seeds)} seeds of config.yaml")
    steps, returns = read_curve(folder / "metrics.jsonl", seeds)
    dataset = document.get("dataset")
    task = document["env"] if dataset is None else f"{document['env']}/{Path(dataset).name}"
    unit = "updates" if "updates" in summary else "env_steps"
    return Run(folder, document["agent"], task, document["config"], kind, np.asarray(scores, dtype=float), unit,
               steps, normalize(returns))


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ReportError(f"{path}: not valid YAML ({error})") from None
    missing = {"agent", "env", "seeds", "config"} - set(document if isinstance(document, dict) else {})
    if missing:
        raise ReportError(f"{path}: not the config.yaml of a `jaxrl train` run (missing {', '.join(sorted(missing))})")
    return document


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.is_file():
        raise ReportError(f"{folder}: no summary.json, so the run has not finished; finish it with "
                          f"`jaxrl resume {folder}` or leave it out of the report")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict) or not summary.get("eval_return_per_seed"):
        raise ReportError(f"{path}: no eval_return_per_seed; expected the summary.json of a `jaxrl train` run")
    return summary


def read_curve(path: Path, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation returns logged in metrics.jsonl: steps [K] where every seed was evaluated, returns [seeds, K]."""
    if not path.is_file():
        raise ReportError(f"{path.parent}: no metrics.jsonl (expected the evaluations logged over training)")
    by_step: dict[int, dict[int, float]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ReportError(f"{path}:{number}: not a JSON record") from None
        if record.get("eval/return") is not None:
            by_step.setdefault(int(record["step"]), {})[record["seed"]] = float(record["eval/return"])
    steps = [step for step in sorted(by_step) if all(seed in by_step[step] for seed in seeds)]
    returns = np.array([[by_step[step][seed] for step in steps] for seed in seeds]).reshape(len(seeds), len(steps))
    return np.asarray(steps, dtype=np.int64), returns


def group_runs(runs: list[Run]) -> dict[str, dict[str, list[Run]]]:
    """{agent: {task: runs}}, both sorted by name, after checking the runs can be aggregated together."""
    _check_score_kinds(runs)
    groups: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        groups.setdefault(run.agent, {}).setdefault(run.task, []).append(run)
    for agent, tasks in groups.items():
        for task, task_runs in tasks.items():
            _check_same_config(agent, task, task_runs)
    return {agent: dict(sorted(groups[agent].items())) for agent in sorted(groups)}


def _check_score_kinds(runs: list[Run]) -> None:
    normalized = [run for run in runs if run.score_kind == NORMALIZED]
    raw = [run for run in runs if run.score_kind == RETURN]
    if normalized and raw:
        raise ReportError(f"the runs mix normalized scores ({normalized[0].folder}, ...) with raw returns "
                          f"({raw[0].folder}: an online run, or a dataset without reference returns); "
                          "report them separately")
    tasks = sorted({run.task for run in raw})
    if len(tasks) > 1:
        raise ReportError(f"raw returns of different tasks cannot be aggregated (their scales differ): "
                          f"{', '.join(tasks)}; report one task at a time, or train on datasets with reference "
                          "returns, whose runs have normalized scores")


def _check_same_config(agent: str, task: str, runs: list[Run]) -> None:
    first = runs[0]
    for run in runs[1:]:
        keys = sorted(key for key in {*first.config, *run.config} - {"seed"}
                      if first.config.get(key) != run.config.get(key))
        if keys:
            raise ReportError(f"{agent} on {task}: {first.folder} and {run.folder} were trained with different "
                              f"configs ({', '.join(keys)}); report them separately")
