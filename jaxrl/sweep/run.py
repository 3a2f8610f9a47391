"""A sweep as few programs as possible: members that differ only in hyperparameters' values train side by side in
one vmapped program (their runs stacked as rows, each with its own hyperparameters in its state); members that
change shapes or switches run as separate programs, one after another.

A sweep folder holds `sweep.yaml` (the file and its expanded members), one folder per member with the run
contract (`config.yaml`, `metrics.jsonl`, `summary.json`, W&B runs grouped by the sweep), `programs/<n>/checkpoints`
(the stacked state of each program), and at the end `sweep_summary.json` and `ranking.md`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jax
import yaml

from jaxrl import agents, hyperparams
from jaxrl.config import ConfigError, load_yaml, to_dict
from jaxrl.experiment import RunOptions, RunSpec, build, make_spec, normalized_scores, save_spec, static_part
from jaxrl.infra.files import atomic_write_json, atomic_write_text, tree_sha256
from jaxrl.infra.logging import RunLogger, SplitLogger
from jaxrl.infra.runner import run, write_summary
from jaxrl.sweep.file import METRICS, RUN_PARAMETERS, SweepFile, parse_sweep, read_sweep


@dataclasses.dataclass(frozen=True)
class Member:
    name: str  # member-000, ...: its folder under the sweep folder
    parameters: dict[str, Any]  # the sweep's values for it (run parameters and config keys)
    spec: RunSpec


def member_spec(parameters: dict[str, Any], source: str) -> RunSpec:
    """The run one assignment of sweep parameters describes; also what `jaxrl train --sweep-member` trains."""
    if "agent" not in parameters:
        known = ", ".join(agents.ONLINE + agents.OFFLINE)
        raise ConfigError(f"{source}: the parameter 'agent' is required (one of {known})")
    overrides = {k: v for k, v in parameters.items() if k not in RUN_PARAMETERS}
    return make_spec(parameters["agent"], parameters.get("env"), parameters.get("dataset"), parameters.get("config"),
                     overrides, parameters.get("seeds", 1), parameters.get("seed_batch"), source=source)


def expand(sweep: SweepFile, seed: int) -> list[Member]:
    """Every member of the sweep, each checked (config keys and values) before anything runs."""
    members = []
    for index, parameters in enumerate(sweep.members(seed)):
        shown = ", ".join(f"{k}={v}" for k, v in parameters.items())
        spec = member_spec(parameters, f"{sweep.path}: member {index} ({shown})")
        members.append(Member(f"member-{index:03d}", parameters, spec))
    return members


def programs(members: list[Member]) -> list[list[Member]]:
    """Members grouped by everything that fixes the compiled program, in the sweep's order."""
    groups: dict[tuple, list[Member]] = {}
    for member in members:
        groups.setdefault(static_part(member.spec), []).append(member)
    return list(groups.values())


def run_sweep(path: str | Path | None, sweep_dir: Path, options: RunOptions, seed: int = 0,
              resume: bool = False) -> dict[str, Any]:
    """Train every member of the sweep file at `path` (or, when `resume`, of the sweep already in `sweep_dir`),
    then rank them; returns the sweep summary."""
    sweep_dir = Path(sweep_dir)
    if jax.process_count() > 1:
        raise ConfigError("a sweep runs in one process (its members spread over that process's --devices); "
                          "across hosts, run one `wandb agent` per host (README, Sweeps)")
    if resume:
        saved = load_yaml(sweep_dir / "sweep.yaml")
        sweep, seed = parse_sweep(saved["document"], saved["file"]), saved["seed"]
        members = [Member(name, parameters, member_spec(parameters, f"{sweep_dir}/sweep.yaml: {name}"))
                   for name, parameters in saved["members"].items()]
    else:
        sweep = read_sweep(path)
        members = expand(sweep, seed)
        if (sweep_dir / "sweep.yaml").exists():
            raise ConfigError(f"{sweep_dir} already holds a sweep: continue it with `jaxrl resume {sweep_dir}` or "
                              "pick another --run-dir")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        document = {"file": sweep.path, "seed": seed, "document": load_yaml(path),
                    "members": {m.name: m.parameters for m in members}}
        atomic_write_text(sweep_dir / "sweep.yaml", yaml.safe_dump(document, sort_keys=False))
    groups = programs(members)
    for number, group in enumerate(groups):
        if not all((sweep_dir / m.name / "summary.json").is_file() for m in group):
            run_program(group, sweep_dir, number, sweep_dir.name, options, resume)
    return rank(sweep, members, groups, sweep_dir)


def run_program(group: list[Member], sweep_dir: Path, number: int, sweep_name: str, options: RunOptions,
                resume: bool) -> None:
    """Train the members of one program together and write each member's summary."""
    experiment = build(group[0].spec)  # the members share everything that shapes the program
    module = agents.get(group[0].spec.agent)
    rows = [(member, seed) for member in group for seed in member.spec.seeds]
    stacked = hyperparams.stack([hyperparams.traced(module.Hyperparams, member.spec.config) for member, _ in rows])
    loggers = []
    for member in group:
        member_dir = sweep_dir / member.name
        member_dir.mkdir(parents=True, exist_ok=True)
        save_spec(member_dir, member.spec)
        wandb_config = {"agent": member.spec.agent, "env": member.spec.env, "sweep": sweep_name,
                        "member": member.name, **to_dict(member.spec.config)}
        loggers.append(RunLogger(member_dir, f"{sweep_name}-{member.name}", list(member.spec.seeds), wandb_config,
                                 options.wandb_mode, group=sweep_name))
    logger = SplitLogger(loggers)
    program_dir = sweep_dir / "programs" / f"{number:02d}"
    try:
        state, summary = run(experiment.trainer, [seed for _, seed in rows], program_dir, logger, experiment.data,
                             resume=resume,
                             checkpoint_every=options.checkpoint_every, progress=options.progress,
                             keep_checkpoints=options.keep_checkpoints, seed_batch=group[0].spec.seed_batch,
                             watchdog_seconds=options.watchdog_seconds, hyperparams=stacked,
                             num_devices=options.devices)
    finally:
        logger.close()
    for member, rows_of_member in zip(group, logger.slices, strict=True):
        write_summary(sweep_dir / member.name, member_summary(member, summary, state, rows_of_member, experiment,
                                                              number, len(group)))


def member_summary(member: Member, summary: dict[str, Any], state: Any, rows: slice, experiment, program: int,
                   program_size: int) -> dict[str, Any]:
    """A member's own summary.json, cut from its program's: its seeds' figures and parameters."""
    returns = summary["eval_return_per_seed"][rows]
    costs = summary["eval_cost_per_seed"][rows]
    unit = "env_steps" if "env_steps" in summary else "updates"
    own = {"agent": member.spec.agent, "env": member.spec.env, "member": member.name,
           "parameters": member.parameters, unit: summary[unit], "seeds": list(member.spec.seeds),
           "eval_return_mean": sum(returns) / len(returns), "eval_return_per_seed": returns,
           "eval_cost_mean": sum(costs) / len(costs), "eval_cost_per_seed": costs,
           "final_params_sha256": tree_sha256(jax.tree.map(lambda x: x[rows], state.agent)),
           "program": program, "members_in_program": program_size,
           **{key: summary[key] for key in ("wall_seconds", "compile_seconds", "resumed_from_chunk", "devices",
                                            "device_split")}}
    if experiment.dataset_metadata is not None:
        own.update(normalized_scores(own, experiment.dataset_metadata))
    return own


def rank(sweep: SweepFile, members: list[Member], groups: list[list[Member]], sweep_dir: Path) -> dict[str, Any]:
    """Rank the members by the sweep's metric; write sweep_summary.json and ranking.md."""
    key = sweep.summary_key
    rows = []
    for member in members:
        summary = json.loads((sweep_dir / member.name / "summary.json").read_text())
        if key not in summary or not isinstance(summary[key], (int, float)):
            known = ", ".join([*METRICS, *(k for k, v in summary.items() if isinstance(v, (int, float)))])
            raise ConfigError(f"{sweep.path}: metric {sweep.metric_name!r} is not a figure of a member's summary; "
                              f"use one of: {known}")
        rows.append({"name": member.name, "parameters": member.parameters, "metric": summary[key],
                     "eval_return_per_seed": summary["eval_return_per_seed"], "program": summary["program"]})
    best_first = sorted(rows, key=lambda row: _sort_key(row["metric"], sweep.metric_goal))
    for place, row in enumerate(best_first, start=1):
        row["rank"] = place
    result = {"sweep": sweep.path, "method": sweep.method,
              "metric": {"name": sweep.metric_name, "goal": sweep.metric_goal},
              "programs": [[m.name for m in group] for group in groups], "members": rows}
    atomic_write_json(sweep_dir / "sweep_summary.json", result)
    atomic_write_text(sweep_dir / "ranking.md", ranking_table(result, best_first))
    return result


def _sort_key(value: float, goal: str) -> tuple:
    missing = value is None or math.isnan(value)
    return (missing, 0.0 if missing else (-value if goal == "maximize" else value))


def ranking_table(result: dict[str, Any], best_first: list[dict[str, Any]]) -> str:
    """The members, best first, as a markdown table of their parameters and metric."""
    names = sorted({name for row in best_first for name in row["parameters"]})
    varying = [n for n in names if len({repr(row["parameters"].get(n)) for row in best_first}) > 1] or names
    metric = result["metric"]
    lines = [f"| rank | member | {' | '.join(varying)} | {metric['name']} ({metric['goal']}) | program |",
             "|" + "---|" * (len(varying) + 4)]
    for row in best_first:
        values = " | ".join(_short(row["parameters"].get(n)) for n in varying)
        lines.append(f"| {row['rank']} | {row['name']} | {values} | {row['metric']:.4g} | {row['program']} |")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
