"""From a run specification (agent, env or dataset, seeds, config) to the pieces a run needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import yaml

import envs
from jaxrl import agents, hyperparams
from jaxrl.config import ConfigError, build_config, resolve_values, to_dict
from jaxrl.data import storage
from jaxrl.data.dataset import Dataset
from jaxrl.data.returns import with_returns_to_go
from jaxrl.data.statistics import dataset_statistics
from jaxrl.infra import distributed
from jaxrl.infra.files import atomic_write_text
from jaxrl.infra.logging import RunLogger, read_metrics
from jaxrl.infra.runner import run, write_summary
from jaxrl.infra.watchdog import DEFAULT_TIMEOUT
from jaxrl.loop_config import OfflineLoop, OnlineLoop, ReplayLoop, loop_keys
from jaxrl.train import Trainer, make_offline_trainer, make_online_trainer, make_replay_trainer
from jaxrl.types import EnvSpec, Learner, MCTransition, Transition


@dataclasses.dataclass(frozen=True)
class RunSpec:
    agent: str
    env: str
    seeds: tuple[int, ...]
    config: Any  # the agent's Config
    dataset: str | None = None  # offline agents, RLPD and fine-tuning: the dataset folder
    seed_batch: int | None = None  # seeds trained together (vmapped), groups one after another; None: all at once
    init_from: str | None = None  # fine-tuning: the offline run whose final agents every seed starts from


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, apart from what it trains (the RunSpec)."""

    wandb_mode: str = "disabled"  # offline, online or disabled
    checkpoint_every: int = 1  # chunks between checkpoints (the last chunk is always saved)
    keep_checkpoints: int | None = 2  # newest checkpoints kept; None keeps all
    progress: bool = True  # show a progress bar
    watchdog_seconds: float | None = DEFAULT_TIMEOUT  # see jaxrl/infra/watchdog.py; None or 0: off
    devices: int = 1  # devices the runs train on (jaxrl/infra/devices.py): whole runs each, or data parallel
    monitor: Any = None  # (chunk, metrics) -> a reason to stop the run there, or None (jaxrl/infra/runner.py)


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
        if isinstance(config, ReplayLoop) and config.mixes_offline_data and not dataset:
            raise ConfigError(f"{source}: {agent} with offline_fraction > 0 mixes a dataset into its batches, so one "
                              "is required (--dataset DIR)")
        if dataset:
            if not isinstance(config, ReplayLoop):
                raise ConfigError(f"{source}: {agent} learns from its own rollouts only; it takes no dataset")
            dataset_env = storage.load_metadata(dataset).env_name
            if env and env != dataset_env:
                raise ConfigError(f"{source}: --env {env} differs from the dataset's env {dataset_env} ({dataset})")
            env = dataset_env
        elif not env:
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
    if spec.agent in agents.MC_RETURNS:  # the dataset's returns-to-go are computed with gamma when it loads
        traced.discard("gamma")
    static = {k: v for k, v in to_dict(spec.config).items() if k not in traced and k != "seed"}
    return spec.agent, spec.env, spec.dataset, spec.seed_batch, yaml.safe_dump(static)


class Experiment(NamedTuple):
    trainer: Trainer
    learner: Learner
    env_spec: EnvSpec
    data: Any  # the device-resident Dataset its batches draw from (offline, or mixed in online), else None
    dataset_metadata: Any  # the dataset's metadata (reference returns) where the run names one, else None


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
    if isinstance(config, ReplayLoop):  # SAC, RLPD, or an offline agent being fine-tuned
        return _build_replay(spec, module, config, eval_env, env_spec, max_eval_steps)
    if spec.agent in agents.ONLINE:
        learner = module.make_learner(config, env_spec)
        train_env = envs.training_env(envs.make(spec.env), config.num_envs, episode_length(config, env_spec),
                                      config.action_repeat)
        trainer = make_online_trainer(learner, train_env, eval_env, loop_keys(OnlineLoop, config), max_eval_steps)
        return Experiment(trainer, learner, env_spec, None, None)
    transitions, metadata = storage.load(spec.dataset)
    learner = module.make_learner(config, env_spec, dataset_statistics(transitions))
    if getattr(config, "cost_penalty", 0.0) > 0.0:
        from jaxrl.safety.constrained import penalize_cost

        learner = penalize_cost(learner, config.cost_penalty)
    trainer = make_offline_trainer(learner, eval_env, loop_keys(OfflineLoop, config), max_eval_steps)
    return Experiment(trainer, learner, env_spec, Dataset.from_numpy(batch_rows(spec, transitions)), metadata)


def batch_rows(spec: RunSpec, transitions: Transition) -> Transition:
    """The dataset's rows as `spec`'s agent samples them: with the returns-to-go where it reads them."""
    return with_returns_to_go(transitions, spec.config.gamma) if spec.agent in agents.MC_RETURNS else transitions


def _build_replay(spec: RunSpec, module: Any, config: ReplayLoop, eval_env: Any, env_spec: EnvSpec,
                  max_eval_steps: int) -> Experiment:
    """The replay loop's run: the dataset (if the run names one) is mixed into batches when offline_fraction
    asks for it, and always gives the reference returns that normalize the scores."""
    transitions, metadata = storage.load(spec.dataset) if spec.dataset else (None, None)
    if spec.agent in agents.FINETUNE:  # offline agents see inputs through the dataset's statistics
        learner = module.make_learner(config, env_spec, dataset_statistics(transitions))
    else:
        learner = module.make_learner(config, env_spec)
    if getattr(config, "cost_budget", None) is not None:
        from jaxrl.safety.constrained import constrain

        learner = constrain(learner, config, env_spec, config.hidden_sizes)
    mixed = transitions is not None and config.mixes_offline_data
    data = Dataset.from_numpy(batch_rows(spec, transitions)) if mixed else None
    train_env = envs.training_env(envs.make(spec.env), config.num_envs, episode_length(config, env_spec))
    returns_gamma = config.gamma if getattr(config, "online_returns_to_go", False) else None  # Cal-QL's option
    trainer = make_replay_trainer(learner, train_env, eval_env, loop_keys(ReplayLoop, config), max_eval_steps,
                                  example_transition(env_spec, spec.agent in agents.MC_RETURNS),
                                  random_warmup=spec.init_from is None,
                                  num_actions=env_spec.action_size if env_spec.discrete else None,
                                  returns_gamma=returns_gamma,
                                  episode_length=episode_length(config, env_spec))
    return Experiment(trainer, learner, env_spec, data, metadata)


def example_transition(spec: EnvSpec, mc_return: bool = False) -> Transition:
    """One transition of zeros shaped for `spec` (no batch axis): the item shape of a replay buffer; an
    MCTransition with `mc_return`."""
    obs = jnp.zeros(spec.obs_size, jnp.float32)
    action = jnp.zeros((), jnp.int32) if spec.discrete else jnp.zeros(spec.action_size, jnp.float32)
    scalar = jnp.zeros((), jnp.float32)
    example = Transition(obs, action, scalar, scalar, scalar, obs, scalar, jnp.zeros((), jnp.int32))
    return MCTransition(*example, mc_return=scalar) if mc_return else example


def save_spec(run_dir: Path, spec: RunSpec) -> None:
    """Write the fully resolved `config.yaml` that `jaxrl resume` and `jaxrl evaluate` rebuild the run from."""
    document = {"agent": spec.agent, "env": spec.env, "dataset": spec.dataset, "seeds": list(spec.seeds),
                "seed_batch": spec.seed_batch, "config": to_dict(spec.config)}
    if spec.init_from is not None:
        document["init_from"] = spec.init_from
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(document, sort_keys=False))


def load_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    document = yaml.safe_load(path.read_text())
    missing = {"agent", "env", "seeds", "config"} - set(document or {})
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(sorted(missing))}")
    init_from = document.get("init_from")
    config = build_config(agents.config_class(document["agent"], finetune=init_from is not None), document["config"],
                          source=str(path))
    return RunSpec(document["agent"], document["env"], tuple(document["seeds"]), config, document.get("dataset"),
                   document.get("seed_batch"), init_from)


def normalized_scores(summary: dict[str, Any], metadata: Any) -> dict[str, Any]:
    """D4RL-style scores (0 random, 100 expert) from the dataset's reference returns, where it has them."""
    if metadata.random_return is None or metadata.expert_return is None:
        return {"normalized_score_mean": None, "normalized_score_per_seed": None}
    per_seed = [metadata.normalized_score(r) for r in summary["eval_return_per_seed"]]
    return {"normalized_score_mean": sum(per_seed) / len(per_seed), "normalized_score_per_seed": per_seed,
            "reference_returns": {"random": metadata.random_return, "expert": metadata.expert_return}}


def online_figures(run_dir: Path, seeds: list[int], total_steps: int, metadata: Any) -> dict[str, Any]:
    """What a replay-loop run's metrics.jsonl says of its online phase, per seed and averaged:

    - online_env_steps; online_episodes, online_return_mean (the finished online episodes' mean return) and
      online_cost_total (the cost of every online step, all environments);
    - with the dataset's reference returns (`metadata`): offline_score (the normalized score of the evaluation
      before the first online step: the offline policy when fine-tuning), cumulative_regret (the mean over the
      online evaluations of 1 - score / 100, as CORL reports it) and min_score_first_10pct (the lowest score
      evaluated within the first tenth of the online steps, at least the first online evaluation).
    """
    records = read_metrics(run_dir)
    per_seed: dict[str, list[float]] = {name: [] for name in ("online_episodes", "online_return_mean",
                                                              "online_cost_total")}
    scored = metadata is not None and metadata.random_return is not None and metadata.expert_return is not None
    if scored:
        per_seed.update(offline_score=[], cumulative_regret=[], min_score_first_10pct=[])
    for seed in seeds:
        rows = sorted((r for r in records if r["seed"] == seed), key=lambda r: r["step"])
        train = [r for r in rows if r["step"] > 0]
        episodes = sum(r.get("train/episodes") or 0.0 for r in train)
        returns = sum((r.get("train/episodes") or 0.0) * (r.get("train/episode_return") or 0.0) for r in train)
        per_seed["online_episodes"].append(episodes)
        per_seed["online_return_mean"].append(returns / episodes if episodes else float("nan"))
        per_seed["online_cost_total"].append(sum(r.get("train/cost_total") or 0.0 for r in train))
        if not scored:
            continue
        evaluations = [(r["step"], metadata.normalized_score(r["eval/return"])) for r in rows if "eval/return" in r]
        online = [score for step, score in evaluations if step > 0]
        per_seed["offline_score"].append(next((score for step, score in evaluations if step == 0), float("nan")))
        per_seed["cumulative_regret"].append(float(np.mean([1.0 - score / 100.0 for score in online])))
        early = [score for step, score in evaluations if 0 < step <= total_steps / 10] or online[:1]
        per_seed["min_score_first_10pct"].append(min(early))
    figures: dict[str, Any] = {"online_env_steps": total_steps}
    for name, values in per_seed.items():
        figures[name] = float(np.mean(values))
        figures[f"{name}_per_seed"] = [float(v) for v in values]
    return figures


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
                             watchdog_seconds=options.watchdog_seconds, num_devices=options.devices,
                             init_from=None if spec.init_from is None else Path(spec.init_from),
                             monitor=options.monitor)
    finally:
        logger.close()
    summary = {"agent": spec.agent, "env": spec.env, **summary}
    if spec.init_from is not None:
        summary["init_from"] = spec.init_from
    if experiment.dataset_metadata is not None:
        summary = {**summary, **normalized_scores(summary, experiment.dataset_metadata)}
    if isinstance(spec.config, ReplayLoop) and primary:
        summary = {**summary, **online_figures(run_dir, list(spec.seeds), summary["env_steps"],
                                               experiment.dataset_metadata)}
    if primary:
        write_summary(run_dir, summary)
    return state, summary
