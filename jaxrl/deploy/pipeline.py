"""`jaxrl pipeline`: from an incumbent's logs to a deployed policy, stage by stage (jaxrl/deploy/stages/), each
stage deciding from its figures whether the next one runs.

A pipeline's folder: `pipeline.yaml` (the resolved config and the drill), `pipeline_state.json` (every finished
stage's result, rewritten atomically after each), `metrics.jsonl` (a record per stage), `summary.json`,
`report.md` with its plots, the folders of the runs the stages start, and the policy registry (unless the config
names one elsewhere). Killed at any point, `jaxrl pipeline --resume RUN_DIR` skips the finished stages and runs
the interrupted one again: every stage derives its randomness from the config's seed and resumes the training
runs it started from their checkpoints, so it reaches the decisions an uninterrupted pipeline reaches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from jaxrl.config import ConfigError, build_config, load_json, to_dict
from jaxrl.deploy.config import INJECTIONS, PipelineConfig
from jaxrl.deploy.registry import Registry
from jaxrl.deploy.stages import canary, data, finetune, offline, ope_gate, promote, shadow
from jaxrl.deploy.stages.common import Context
from jaxrl.experiment import RunOptions
from jaxrl.infra.files import atomic_write_json, atomic_write_text
from jaxrl.infra.logging import RunLogger

STAGES = (("data", data.run), ("offline", offline.run), ("ope", ope_gate.run), ("shadow", shadow.run),
          ("canary", canary.run), ("finetune", finetune.run), ("promote", promote.run))
CONFIG_FILE = "pipeline.yaml"
STATE_FILE = "pipeline_state.json"


def start(config: PipelineConfig, run_dir: Path, inject: str | None) -> None:
    """Write a new pipeline folder's config; refuses a folder that already holds anything."""
    if inject is not None and inject not in INJECTIONS:
        raise ConfigError(f"--inject: unknown fault {inject!r}; known: {', '.join(INJECTIONS)}")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir}: exists and is not empty; choose a new --run-dir, or continue a killed "
                          f"pipeline with jaxrl pipeline --resume {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump({"inject": inject, "config": to_dict(config)},
                                                            sort_keys=False))


def load(run_dir: Path) -> tuple[PipelineConfig, str | None]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a pipeline folder (no {CONFIG_FILE})")
    document = yaml.safe_load(path.read_text())
    return build_config(PipelineConfig, document["config"], str(path)), document.get("inject")


def run(run_dir: Path, run_options: RunOptions) -> dict[str, Any]:
    """Run (or continue) the pipeline in `run_dir` (made by `start`) to its end or its first failed gate."""
    config, inject = load(run_dir)
    state_path = run_dir / STATE_FILE
    results: dict[str, dict[str, Any]] = load_json(state_path)["results"] if state_path.is_file() else {}
    registry = Registry(Path(config.registry) if config.registry else run_dir / "registry", create=True)
    logger = RunLogger(run_dir, run_dir.name, [config.seed], {"inject": inject, **to_dict(config)},
                       run_options.wandb_mode)
    logger.drop_after(len(results))  # the records of a stage that was killed before it finished
    began = time.perf_counter()
    try:
        for index, (name, stage) in enumerate(STAGES, start=1):
            if name in results:
                if not results[name]["passed"]:
                    break
                continue
            context = Context(config, run_dir, registry, inject, results, run_options)
            stage_began = time.perf_counter()
            result = {**stage(context)._asdict(), "seconds": time.perf_counter() - stage_began}
            results[name] = result
            atomic_write_json(state_path, {"results": results})
            logger.log(index, _numbers(result["figures"]), stage=name, passed=result["passed"])
            print(f"[{name}] {result['decision']}", flush=True)
            if not result["passed"]:
                break
    finally:
        logger.close()
    summary = summarize(results, registry, inject, time.perf_counter() - began)
    atomic_write_json(run_dir / "summary.json", summary)
    from jaxrl.deploy import report

    report.write(run_dir, summary, registry)
    return summary


def _numbers(figures: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric figures, nested ones flattened with '/' (what metrics.jsonl and W&B take)."""
    flat = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def summarize(results: dict[str, dict[str, Any]], registry: Registry, inject: str | None, seconds: float
              ) -> dict[str, Any]:
    stopped = next((name for name, result in results.items() if not result["passed"]), None)
    return {"stages": [{"stage": name, **result} for name, result in results.items()],
            "stopped_at": stopped, "promoted": "promote" in results and results["promote"]["passed"],
            "rolled_back": any(result.get("rolled_back") for result in results.values()),
            "live_version": registry.live, "registry": str(registry.path), "inject": inject,
            "seconds_this_invocation": seconds,
            "seconds_per_stage": {name: result["seconds"] for name, result in results.items()}}
