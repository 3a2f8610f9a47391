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
    spec, experiment, [(state, chunk)] = load_run_checkpoints(run_dir, [chunk], eval_episodes)
    return spec, experiment, state, chunk


def load_run_checkpoints(run_dir: Path, chunks: list[int | None], eval_episodes: int | None = None
                         ) -> tuple[RunSpec, Experiment, list[tuple[Any, int]]]:
    """`load_run` for several checkpoints of one run, its experiment built once: (agent states, chunk) for each of
    `chunks` (None: the newest)."""
    spec = load_spec(run_dir)
    experiment = build(spec, eval_episodes)
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints", max_to_keep=None)
    saved = checkpointer.all_chunks()
    if not saved:
        raise ConfigError(f"{run_dir}: no checkpoint yet (checkpoints/ is empty)")
    chunks = [saved[-1] if chunk is None else chunk for chunk in chunks]
    for chunk in chunks:
        if chunk not in saved:
            raise ConfigError(f"{run_dir}: no checkpoint for chunk {chunk}; saved: {saved}")
    train_keys, _ = seed_keys(list(spec.seeds))
    trainer = experiment.trainer
    like = jax.eval_shape(jax.vmap(trainer.init), train_keys, repeat_hyperparams(trainer.hyperparams, len(spec.seeds)))
    restored = [(checkpointer.restore(chunk, like).agent, chunk) for chunk in chunks]
    checkpointer.close()
    return spec, experiment, restored


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


def evaluate_policy(policy, episodes: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Returns and costs of a deployable policy (jaxrl/deploy/bundle.py) over `episodes` (default: its
    config's), with its deterministic action; the episodes `evaluate_run` plays for `seed` (default: the seed the
    policy was trained with), so a version and the run it came from are evaluated alike."""
    from jaxrl.evaluate import make_evaluator
    from jaxrl.experiment import make_eval_env

    episodes = episodes or policy.config.eval_episodes
    eval_env, _, max_steps = make_eval_env(policy.env, policy.config, episodes)
    if seed is None:
        seed = policy.provenance.get("seed") or 0
    _, eval_keys = seed_keys([seed])
    metrics = jax.jit(make_evaluator(policy.learner, eval_env, max_steps))(policy.state, eval_keys[0])
    return {"episodes": episodes, "eval_return": float(metrics["eval/return"]),
            "eval_cost": float(metrics["eval/cost"]), "params_sha256": policy.params_sha256}


def evaluate_deployed(path: Path, version: str | None = None, episodes: int | None = None) -> dict[str, Any]:
    """`jaxrl evaluate` of a registry (its live version, or `version`) or of one policy folder; the result in
    the shape `evaluate_run` gives, with the version evaluated."""
    from jaxrl.deploy.registry import resolve

    if episodes is not None and episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    policy, version = resolve(path, version)
    result = evaluate_policy(policy, episodes)
    return {"version": version, "episodes": result["episodes"], "seeds": [policy.provenance.get("seed")],
            "eval_return_mean": result["eval_return"], "eval_return_per_seed": [result["eval_return"]],
            "eval_cost_per_seed": [result["eval_cost"]]}
