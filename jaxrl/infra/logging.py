"""Run logging: every record goes to `metrics.jsonl`, and to one W&B run per seed (offline by default)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.infra.files import atomic_write_json, atomic_write_text

WANDB_MODES = ("offline", "online", "disabled")


def default_wandb_mode() -> str:
    """`WANDB_MODE` if set; online when the user has logged in (an API key is known); offline otherwise."""
    if os.environ.get("WANDB_MODE") in WANDB_MODES:
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def _clean(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


class RunLogger:
    """Writes per-seed metric records; `log(step, metrics)` takes arrays with a leading seed axis.

    W&B gets one run per seed, grouped by `group`, except under `wandb agent` (`WANDB_SWEEP_ID` set): the
    agent has made one run for this process and ranks it by what it logs, so that run gets the mean over the
    seeds of each metric, under the same names (`eval/return` is then the seeds' mean return).
    """

    def __init__(self, run_dir: Path, run_name: str, seeds: list[int], config: dict[str, Any], wandb_mode: str,
                 group: str | None = None):
        self.run_dir = Path(run_dir)
        self.seeds = seeds
        self.group = group or run_name  # the W&B group: the run's seeds, or a whole sweep
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a")  # noqa: SIM115 (kept open for the run)
        self._wandb_runs = self._start_wandb(run_name, config, wandb_mode) if wandb_mode != "disabled" else []

    def _start_wandb(self, run_name: str, config: dict[str, Any], mode: str) -> list[Any]:
        import wandb

        if os.environ.get("WANDB_SWEEP_ID"):
            return [wandb.init(mode=mode, dir=str(self.run_dir), config={**config, "seeds": self.seeds},
                               settings=wandb.Settings(silent=True, console="off"))]
        ids_file = self.run_dir / "wandb_ids.json"
        ids = json.loads(ids_file.read_text()) if ids_file.is_file() else {}
        runs = []
        for seed in self.seeds:
            run_id = ids.setdefault(str(seed), f"{run_name}-s{seed}-{os.urandom(3).hex()}")
            runs.append(wandb.init(project=os.environ.get("WANDB_PROJECT", "jaxrl"), group=self.group,
                                   name=f"{run_name}-seed{seed}", id=run_id, resume="allow", mode=mode,
                                   dir=str(self.run_dir), config={**config, "seed": seed}, reinit="create_new",
                                   settings=wandb.Settings(silent=True, console="off")))
        atomic_write_json(ids_file, ids)
        return runs

    def log(self, step: int, metrics: dict[str, Any], **fields: Any) -> None:
        """One record per seed: `{"seed", "step", **fields, **metrics[seed]}`."""
        host = {k: np.asarray(v) for k, v in metrics.items()}
        one_run = len(self._wandb_runs) == 1 and len(self.seeds) > 1  # the W&B agent's run, for all seeds
        for index, seed in enumerate(self.seeds):
            record = {k: _clean(v[index] if v.ndim else v) for k, v in host.items()}
            self._jsonl.write(json.dumps({"seed": seed, "step": step, **fields, **record}) + "\n")
            if self._wandb_runs and not one_run:
                self._wandb_runs[index].log({k: v for k, v in record.items() if v is not None}, step=step)
        if one_run:
            means = {k: _clean(np.nanmean(v.astype(np.float64))) for k, v in host.items()}
            self._wandb_runs[0].log({k: v for k, v in means.items() if v is not None}, step=step)
        self._jsonl.flush()

    def drop_after(self, last_step: int) -> None:
        """Forget records after `last_step`: those a killed run wrote past its last checkpoint."""
        self._jsonl.close()
        truncate_metrics(self.run_dir, last_step)
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a")  # noqa: SIM115

    def close(self) -> None:
        self._jsonl.close()
        for run in self._wandb_runs:
            run.finish()


class SplitLogger:
    """Hands each run its own rows of every record: a sweep's program trains several members (each a run with its
    folder, metrics.jsonl and W&B runs) as consecutive rows of one batch."""

    def __init__(self, loggers: list[RunLogger]):
        self.loggers = loggers
        bounds = np.cumsum([0] + [len(logger.seeds) for logger in loggers])
        self.slices = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]

    def log(self, step: int, metrics: dict[str, Any], **fields: Any) -> None:
        host = {k: np.asarray(v) for k, v in metrics.items()}
        for logger, rows in zip(self.loggers, self.slices, strict=True):
            logger.log(step, {k: v[rows] if v.ndim else v for k, v in host.items()}, **fields)

    def drop_after(self, last_step: int) -> None:
        for logger in self.loggers:
            logger.drop_after(last_step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of a run's `metrics.jsonl`, in the order written ([] before the run logged any)."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Rewrite `metrics.jsonl` without the records after `last_step`, atomically."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            break  # a line cut short by the kill: everything after it is suspect
    atomic_write_text(path, "".join(line + "\n" for line in kept))
