"""From a run specification (agent, env or dataset, seeds, config) to the pieces a run needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import yaml

import envs
from jaxrl import agents, hyperparams
from jaxrl.config import ConfigError, build_config, resolve_values, to_dict
from jaxrl.data import storage
from jaxrl.data.dataset import Dataset
from jaxrl.data.statistics import dataset_statistics
from jaxrl.infra import distributed
from jaxrl.infra.files import atomic_write_text
from jaxrl.infra.logging import RunLogger
from jaxrl.infra.runner import run, write_summary
from jaxrl.infra.watchdog import DEFAULT_TIMEOUT
from jaxrl.loop_config import OfflineLoop, OnlineLoop, ReplayLoop, loop_keys
from jaxrl.train import Trainer, make_offline_trainer, make_online_trainer, make_replay_trainer
from jaxrl.types import EnvSpec, Learner, Transition


@dataclasses.dataclass(frozen=True)
class RunSpec:
    agent: str
    env: str
    seeds: tuple[int, ...]
    config: Any  # the agent's Config
    dataset: str | None = None  # offline agents: the dataset folder
    seed_batch: int | None = None  # seeds trained together (vmapped), groups one after another; None: all at once


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, apart from what it trains (the RunSpec)."""

    wandb_mode: str = "disabled"  # offline, online or disabled
    checkpoint_every: int = 1  # chunks between checkpoints (the last chunk is always saved)
    keep_checkpoints: int | None = 2  # newest checkpoints kept; None keeps all
    progress: bool = True  # show a progress bar
    watchdog_seconds: float | None = DEFAULT_TIMEOUT  # see jaxrl/infra/watchdog.py; None or 0: off
    devices: int = 1  # devices the runs train on (jaxrl/infra/devices.py): whole runs each, or data parallel


def make_spec(agent: str, env: str | None, dataset: str | None, config_file: str | None, overrides: dict[str, Any],
              seeds: int = 1, seed_batch: int | None = None, source: str = "--set") -> RunSpec:
    """A checked RunSpec from what a user names: `jaxrl train`'s arguments, or one member of a sweep."""
    module = agents.get(agent)
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"{source}: seeds must be an integer of at least 1, got {seeds!r}")
    if seed_batch is not None and (not isinstance(seed_batch, int) or seed_batch < 1):
        raise ConfigError(f"{source}: seed_batch must be an integer of at least 1, got {seed_batch!r}")
    config = resolve_values(module.Config, config_file, overrides, source)
    if agent in agents.ONLINE:
        if not env:
            raise ConfigError(f"{source}: {agent} trains online, so an environment is required (--env NAME; in a "
                              "sweep, the parameter env)")
    else:
        if not dataset:
            raise ConfigError(f"{source}: {agent} trains offline, so a dataset is required (--dataset DIR; in a "
                              "sweep, the parameter dataset); make one with jaxrl dataset make")
        env = storage.load_metadata(dataset).env_name
    return RunSpec(agent, env, tuple(range(config.seed, config.seed + seeds)), config, dataset, seed_batch)


def hyperparameter_names(agent: str) -> list[str]:
    """The config keys of `agent` that are traced values (a sweep trains many of them in one program)."""
    return hyperparams.names(agents.get(agent).Hyperparams)


def static_part(spec: RunSpec) -> tuple:
    """What fixes a run's compiled program: everything but the hyperparameters' values. Runs that share it can
    train side by side in one program."""
    traced = set(hyperparameter_names(spec.agent))
    static = {k: v for k, v in to_dict(spec.config).items() if k not in traced and k != "seed"}
    return spec.agent, spec.env, spec.dataset, spec.seed_batch, yaml.safe_dump(static)


class Experiment(NamedTuple):
    trainer: Trainer
    learner: Learner
    env_spec: EnvSpec
    data: Any  # the device-resident Dataset offline, None online
    dataset_metadata: Any  # offline: the dataset's metadata (reference returns), None online


def episode_length(config: Any, env_spec: EnvSpec) -> int:
    """The online loop's time limit where it sets one; the environment's own otherwise (and always offline)."""
    return (config.episode_length if isinstance(config, OnlineLoop | ReplayLoop) else 0) or env_spec.episode_length


def make_eval_env(name: str, config: Any, num_episodes: int):
    env = envs.make(name)
    env_spec = envs.spec(name, env)
    length = episode_length(config, env_spec)
    repeat = config.action_repeat if isinstance(config, OnlineLoop) else 1
    return envs.eval_env(env, num_episodes, length, repeat), env_spec, -(-length // repeat)


def build(spec: RunSpec, eval_episodes: int | None = None) -> Experiment:
    """Environments, learner and trainer for `spec`; `eval_episodes` overrides the config's count."""
    module = agents.get(spec.agent)
    config = spec.config
    eval_env, env_spec, max_eval_steps = make_eval_env(spec.env, config, eval_episodes or config.eval_episodes)
    if spec.agent in agents.ONLINE:
        learner = module.make_learner(config, env_spec)
        env = envs.make(spec.env)
        if isinstance(config, ReplayLoop):
            train_env = envs.training_env(env, config.num_envs, episode_length(config, env_spec))
            trainer = make_replay_trainer(learner, train_env, eval_env, loop_keys(ReplayLoop, config), max_eval_steps,
                                          example_transition(env_spec))
            return Experiment(trainer, learner, env_spec, None, None)
        train_env = envs.training_env(env, config.num_envs, episode_length(config, env_spec), config.action_repeat)
        trainer = make_online_trainer(learner, train_env, eval_env, loop_keys(OnlineLoop, config), max_eval_steps)
        return Experiment(trainer, learner, env_spec, None, None)
    transitions, metadata = storage.load(spec.dataset)
    learner = module.make_learner(config, env_spec, dataset_statistics(transitions))
    trainer = make_offline_trainer(learner, eval_env, loop_keys(OfflineLoop, config), max_eval_steps)
    return Experiment(trainer, learner, env_spec, Dataset.from_numpy(transitions), metadata)


def example_transition(spec: EnvSpec) -> Transition:
    """One transition of zeros shaped for `spec` (no batch axis): the item shape of a replay buffer."""
    obs = jnp.zeros(spec.obs_size, jnp.float32)
    action = jnp.zeros((), jnp.int32) if spec.discrete else jnp.zeros(spec.action_size, jnp.float32)
    scalar = jnp.zeros((), jnp.float32)
    return Transition(obs, action, scalar, scalar, scalar, obs, scalar, jnp.zeros((), jnp.int32))


def save_spec(run_dir: Path, spec: RunSpec) -> None:
    """Write the fully resolved `config.yaml` that `jaxrl resume` and `jaxrl evaluate` rebuild the run from."""
    document = {"agent": spec.agent, "env": spec.env, "dataset": spec.dataset, "seeds": list(spec.seeds),
                "seed_batch": spec.seed_batch, "config": to_dict(spec.config)}
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(document, sort_keys=False))


def load_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    document = yaml.safe_load(path.read_text())
    missing = {"agent", "env", "seeds", "config"} - set(document or {})
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(sorted(missing))}")
    module = agents.get(document["agent"])
    config = build_config(module.Config, document["config"], source=str(path))
    return RunSpec(document["agent"], document["env"], tuple(document["seeds"]), config, document.get("dataset"),
                   document.get("seed_batch"))


def normalized_scores(summary: dict[str, Any], metadata: Any) -> dict[str, Any]:
    """D4RL-style scores (0 random, 100 expert) from the dataset's reference returns, where it has them."""
    if metadata.random_return is None or metadata.expert_return is None:
        return {"normalized_score_mean": None, "normalized_score_per_seed": None}
    per_seed = [metadata.normalized_score(r) for r in summary["eval_return_per_seed"]]
    return {"normalized_score_mean": sum(per_seed) / len(per_seed), "normalized_score_per_seed": per_seed,
            "reference_returns": {"random": metadata.random_return, "expert": metadata.expert_return}}


def execute(spec: RunSpec, run_dir: Path, options: RunOptions = RunOptions(), resume: bool = False):
    """The one way to carry out a run: build it, then write its folder (config.yaml, metrics, checkpoints, W&B),
    train to the end (from the newest checkpoint when `resume`) and write summary.json.

    Building comes first, so a bad env or dataset fails before anything is written. Returns the final run state
    of every seed and the summary.
    """
    experiment = build(spec)
    run_dir = Path(run_dir)
    primary = distributed.is_primary()  # in a multi-host run, process 0 alone writes the folder and logs
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume and primary:
        save_spec(run_dir, spec)
    wandb_config = {"agent": spec.agent, "env": spec.env, **to_dict(spec.config)}
    logger = (RunLogger(run_dir, run_dir.name, list(spec.seeds), wandb_config, options.wandb_mode) if primary
              else distributed.NullLogger())
    try:
        state, summary = run(experiment.trainer, list(spec.seeds), run_dir, logger, experiment.data, resume=resume,
                             checkpoint_every=options.checkpoint_every, progress=options.progress,
                             keep_checkpoints=options.keep_checkpoints, seed_batch=spec.seed_batch,
                             watchdog_seconds=options.watchdog_seconds, num_devices=options.devices)
    finally:
        logger.close()
    summary = {"agent": spec.agent, "env": spec.env, **summary}
    if experiment.dataset_metadata is not None:
        summary = {**summary, **normalized_scores(summary, experiment.dataset_metadata)}
    if primary:
        write_summary(run_dir, summary)
    return state, summary
