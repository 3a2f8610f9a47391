"""Trained policies read back from run directories: for `jaxrl evaluate`, data collection and deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.experiment import Experiment, RunSpec, build, load_spec
from jaxrl.infra.checkpoint import Checkpointer
from jaxrl.infra.files import atomic_write_json
from jaxrl.infra.runner import repeat_hyperparams, seed_keys


def load_run(run_dir: Path, eval_episodes: int | None = None, chunk: int | None = None
             ) -> tuple[RunSpec, Experiment, Any, int]:
    """The run's spec, its rebuilt experiment, its agent states [seeds, ...] at checkpoint `chunk` (default:
    the newest) and that chunk."""
    spec = load_spec(run_dir)
    experiment = build(spec, eval_episodes)
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints", max_to_keep=None)
    saved = checkpointer.all_chunks()
    if not saved:
        raise ConfigError(f"{run_dir}: no checkpoint yet (checkpoints/ is empty)")
    chunk = saved[-1] if chunk is None else chunk
    if chunk not in saved:
        raise ConfigError(f"{run_dir}: no checkpoint for chunk {chunk}; saved: {saved}")
    train_keys, _ = seed_keys(list(spec.seeds))
    trainer = experiment.trainer
    like = jax.eval_shape(jax.vmap(trainer.init), train_keys, repeat_hyperparams(trainer.hyperparams, len(spec.seeds)))
    state = checkpointer.restore(chunk, like)
    checkpointer.close()
    return spec, experiment, state.agent, chunk


def evaluate_run(run_dir: Path, episodes: int | None = None) -> dict[str, Any]:
    """Evaluate every seed of a run's newest checkpoint; also written to `run_dir/evaluation.json`."""
    if episodes is not None and episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    spec, experiment, agent_state, chunk = load_run(run_dir, episodes)
    _, eval_keys = seed_keys(list(spec.seeds))
    metrics = jax.jit(jax.vmap(experiment.trainer.evaluate))(agent_state, eval_keys)
    returns = np.asarray(metrics["eval/return"], dtype=float)
    result = {"chunk": chunk, "episodes": episodes or spec.config.eval_episodes, "seeds": list(spec.seeds),
              "eval_return_mean": float(returns.mean()), "eval_return_per_seed": returns.tolist(),
              "eval_cost_per_seed": np.asarray(metrics["eval/cost"], dtype=float).tolist()}
    atomic_write_json(Path(run_dir) / "evaluation.json", result)
    return result
