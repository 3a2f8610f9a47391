"""`jaxrl dataset make`: D4RL-style tiers (random, medium, expert, medium-replay, medium-expert) from a PPO run.

The PPO run keeps a checkpoint per chunk. Its best checkpoint is the expert; the medium policy is the
checkpoint before it whose evaluation return is closest to a third of the way from random to expert, as
D4RL's medium policies are; medium-replay is experience logged by every checkpoint up to medium (PPO keeps no
replay buffer, so this re-collects what training saw instead of storing it), in whole episodes as D4RL's are
(`replay_envs`); medium-expert joins the
medium and expert data. Every tier records the reference returns, so scores can be normalized.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import collect as collect_lib
from jaxrl.data import quality, storage
from jaxrl.data.metadata import Metadata, Provenance
from jaxrl.types import Transition

TIERS = ("random", "medium", "expert", "medium-replay", "medium-expert")
MEDIUM_FRACTION = 1.0 / 3.0  # medium policy: this far from the random to the expert return
CHECKPOINTS = 40  # evaluations (and checkpoints) over the PPO run, unless --set eval_every=... says otherwise
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments" / "ppo"


def train_ppo(env_name: str, run_dir: Path, overrides: list[str], seed: int, wandb_mode: str) -> Path:
    """Train PPO on `env_name` (experiments/ppo/<env>.yaml where it exists), keeping every checkpoint."""
    from jaxrl.agents import ppo
    from jaxrl.config import resolve_config
    from jaxrl.experiment import RunOptions, RunSpec, execute

    yaml_path = EXPERIMENTS / f"{env_name.replace('/', '_')}.yaml"
    config = resolve_config(ppo.Config, yaml_path if yaml_path.is_file() else None, [f"seed={seed}", *overrides])
    if not any(item.startswith("eval_every=") for item in overrides):  # fine checkpoints to find a medium policy
        config = dataclasses.replace(config, eval_every=max(config.steps_per_iteration,
                                                            config.total_steps // CHECKPOINTS))
    execute(RunSpec("ppo", env_name, (config.seed,), config), run_dir,
            RunOptions(wandb_mode=wandb_mode, keep_checkpoints=None))
    return run_dir


def checkpoint_returns(run_dir: Path) -> dict[int, float]:
    """Evaluation return (first seed) after each chunk, from the run's metrics.jsonl."""
    returns: dict[int, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("chunk", 0) > 0 and record.get("eval/return") is not None and record["chunk"] not in returns:
            returns[record["chunk"]] = record["eval/return"]
    return returns


def pick_policies(returns: dict[int, float], random_return: float) -> tuple[int, int]:
    """(medium chunk, expert chunk): expert = best; medium = closest to a third of the way, before expert."""
    expert = max(returns, key=lambda chunk: returns[chunk])
    target = random_return + MEDIUM_FRACTION * (returns[expert] - random_return)
    earlier = [chunk for chunk in returns if chunk < expert] or [expert]
    medium = min(earlier, key=lambda chunk: abs(returns[chunk] - target))
    return medium, expert


def evaluate_random(env_name: str, episodes: int, seed: int) -> float:
    """Mean return of the uniform random policy over `episodes` episodes."""
    import envs
    from jaxrl.evaluate import make_evaluator

    env = envs.make(env_name)
    spec = envs.spec(env_name, env)
    evaluator = make_evaluator(collect_lib.random_learner(spec), envs.eval_env(env, episodes, spec.episode_length),
                               spec.episode_length)
    return float(jax.jit(evaluator)((), jax.random.PRNGKey(seed))["eval/return"])


def concatenate(parts: list[Transition]) -> Transition:
    """Rows of several datasets one after another, episode ids renumbered to stay distinct."""
    shifted, offset = [], 0
    for part in parts:
        shifted.append(part._replace(episode_id=part.episode_id + offset))
        offset += int(part.episode_id.max()) + 1
    return Transition(*(np.concatenate(columns) for columns in zip(*shifted, strict=True)))


def save_tier(out: Path, tier: str, data: Transition, env_name: str, spec: Any, behavior: str, fingerprint: str | None,
              seed: int, references: dict[str, float], extra: dict[str, Any]) -> Metadata:
    metadata = Metadata(env_name=env_name, obs_size=spec.obs_size, action_size=spec.action_size,
                        discrete=spec.discrete,
                        provenance=Provenance(behavior_policy=behavior, behavior_policy_fingerprint=fingerprint,
                                              seed=seed),
                        random_return=references["random"], expert_return=references["expert"],
                        time_limit=spec.episode_length, extra={"tier": tier, **extra})
    metadata = storage.save(out / tier, data, metadata, overwrite=True)
    quality.write_report(out / tier, quality.quality_report(data, metadata))
    return metadata


def replay_policies(returns: dict[int, float], medium_chunk: int) -> list[int]:
    """The checkpoints whose experience makes medium-replay: every one up to the medium policy.

    Warns when that is the medium policy alone (PPO passed a third of the expert's return by its first
    checkpoint): medium-replay is then a second sample of medium, not a replay of earlier policies.
    """
    chunks = sorted(chunk for chunk in returns if chunk <= medium_chunk)
    if len(chunks) == 1:
        warnings.warn(f"medium-replay holds one checkpoint ({chunks[0]}), the medium policy itself: PPO passed a "
                      "third of the expert's return by its first checkpoint. To replay earlier policies, "
                      "checkpoint more often (e.g. --set eval_every=<fewer env steps>).", stacklevel=2)
    return chunks


def replay_envs(per_chunk: int, num_envs: int, episode_length: int) -> int:
    """Environments logging one medium-replay checkpoint's `per_chunk` steps: at most `num_envs`, and few enough that
    each env runs at least a whole time limit. D4RL's medium-replay holds the training run's episodes; 64 envs
    sharing a few thousand steps (hopper's 34 checkpoints: 46 steps each of 1000) would log only their first steps,
    a dataset of start states."""
    return max(1, min(num_envs, per_chunk // episode_length))


def make_tiers(env_name: str, out: Path, run_dir: Path | None, steps: int, num_envs: int, seed: int,
               ppo_overrides: list[str], wandb_mode: str = "disabled", eval_episodes: int = 100) -> dict[str, Any]:
    """Build all tiers under `out/<tier>/`; returns a summary (also written to `out/tiers.json`)."""
    import envs

    out.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir or train_ppo(env_name, out / "ppo_run", ppo_overrides, seed, wandb_mode)
    spec = envs.spec(env_name, envs.make(env_name))
    random_return = evaluate_random(env_name, eval_episodes, seed)
    returns = checkpoint_returns(run_dir)
    medium_chunk, expert_chunk = pick_policies(returns, random_return)
    references = {"random": random_return, "expert": returns[expert_chunk]}

    replay_chunks = replay_policies(returns, medium_chunk)
    # loaded together, the checkpoints share one policy function and so one compiled collection per shape
    chunks = sorted({medium_chunk, expert_chunk, *replay_chunks})
    behaviors = dict(zip(chunks, collect_lib.behaviors_from_run(run_dir, chunks), strict=True))

    def gather(chunk: int | None, count: int, collect_seed: int, envs_used: int = num_envs):
        behavior, info = (collect_lib.random_behavior(spec), {}) if chunk is None else behaviors[chunk]
        data = collect_lib.collect(behavior, env_name, count, envs_used, collect_seed)
        return data, behavior, info

    summary: dict[str, Any] = {"env": env_name, "run": str(run_dir.absolute()), "reference_returns": references,
                               "medium_chunk": medium_chunk, "expert_chunk": expert_chunk, "tiers": {}}
    collected = {}
    for tier, chunk, offset in [("random", None, 1), ("medium", medium_chunk, 2), ("expert", expert_chunk, 3)]:
        data, behavior, info = gather(chunk, steps, seed * 1000 + offset)
        collected[tier] = data
        metadata = save_tier(out, tier, data, env_name, spec, behavior.description, behavior.fingerprint, seed,
                             references, {"policy": info, "policy_eval_return": returns.get(chunk, random_return)})
        summary["tiers"][tier] = metadata.quality

    per_chunk = -(-steps // len(replay_chunks))
    chunk_envs = replay_envs(per_chunk, num_envs, spec.episode_length)
    replay = [gather(chunk, per_chunk, seed * 1000 + 10 + chunk, chunk_envs)[0] for chunk in replay_chunks]
    metadata = save_tier(out, "medium-replay", concatenate(replay), env_name, spec,
                         f"PPO checkpoints {replay_chunks} of {run_dir.name}", None, seed, references,
                         {"policy_chunks": replay_chunks, "envs_per_checkpoint": chunk_envs})
    summary["tiers"]["medium-replay"] = metadata.quality
    parents = {tier: storage.load_metadata(out / tier).fingerprint for tier in ("medium", "expert")}
    metadata = save_tier(out, "medium-expert", concatenate([collected["medium"], collected["expert"]]), env_name, spec,
                         "medium and expert policies", None, seed, references, {"parents": parents})
    summary["tiers"]["medium-expert"] = metadata.quality
    from jaxrl.infra.files import atomic_write_json

    atomic_write_json(out / "tiers.json", summary)
    return summary
