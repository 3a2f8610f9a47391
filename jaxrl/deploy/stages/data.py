"""Stage 1, data: the incumbent policy and its logs. The incumbent is named by the config, the registry's live
version, or (on a fresh registry) a stand-in trained here; its logs are a given dataset or collected from it.
The gate: the logs load and validate (checksums, shapes, NaN, bounds), hold enough whole episodes, cover the
action space, and are not mostly duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import envs
from jaxrl import agents
from jaxrl import collect as collect_lib
from jaxrl.config import ConfigError, build_config, load_yaml
from jaxrl.data import quality, storage
from jaxrl.data.metadata import DatasetError, Metadata, Provenance
from jaxrl.deploy import bundle
from jaxrl.deploy.registry import Registry, resolve
from jaxrl.deploy.stages.common import Context, StageResult, check
from jaxrl.experiment import RunSpec, execute


def run(context: Context) -> StageResult:
    config = context.config
    version, how = incumbent_version(context)
    dataset_dir = Path(config.dataset) if config.dataset else collect_logs(context, version)
    if context.inject == "bad-data":
        dataset_dir = corrupt(dataset_dir, context.run_dir / "data-corrupted")
    outputs = {"incumbent_version": version, "incumbent_how": how, "dataset": str(dataset_dir)}
    try:
        transitions, metadata = storage.load(dataset_dir)
        if metadata.env_name != config.env:
            raise DatasetError(f"{dataset_dir}/metadata.json: field 'env_name' is {metadata.env_name!r}; the "
                               f"pipeline's env is {config.env!r}")
    except (DatasetError, ConfigError, ValueError, FileNotFoundError) as error:
        return StageResult("data", False, f"stopped: the logs are invalid ({error})", {}, {}, outputs)
    report = quality.quality_report(transitions, metadata)
    quality.write_report(context.run_dir / "data-quality", report)
    whole = report["episodes"] - (report["episodes_cut"] or 0)
    figures = {"transitions": report["transitions"], "whole_episodes": whole,
               "action_coverage": action_coverage(report["action_coverage"]),
               "duplicate_fraction": report["duplicate_transitions"] / report["transitions"],
               "return_mean": report["returns"]["mean"], "cost_mean": report["costs"]["mean"],
               "dataset_fingerprint": metadata.fingerprint}
    thresholds = {"whole_episodes": config.data_min_episodes, "action_coverage": config.data_min_action_coverage,
                  "duplicate_fraction": config.data_max_duplicate_fraction}
    failures = []
    if whole < config.data_min_episodes:
        failures.append(f"{whole} whole episodes, fewer than data_min_episodes {config.data_min_episodes}")
    if figures["action_coverage"] < config.data_min_action_coverage:
        failures.append(f"action coverage {figures['action_coverage']:.3f} under data_min_action_coverage "
                        f"{config.data_min_action_coverage} (the logs are too narrow to learn a different policy)")
    if figures["duplicate_fraction"] > config.data_max_duplicate_fraction:
        failures.append(f"{figures['duplicate_fraction']:.1%} duplicate rows, over data_max_duplicate_fraction")
    passed, decision = check(figures, thresholds, failures)
    return StageResult("data", passed, decision, figures, thresholds, outputs)


def action_coverage(coverage: dict) -> float:
    """One figure of how much of the action space the logs cover (jaxrl/data/quality.py): the share of discrete
    actions ever taken; for continuous actions the mean pairwise action-grid occupancy (the one dimension's
    occupancy for 1-D actions)."""
    if "fraction_taken" in coverage:
        return coverage["fraction_taken"]
    return coverage["pairwise_mean"] or coverage["per_dim"][0]


def incumbent_version(context: Context) -> tuple[str, str]:
    """The registry version of the incumbent, live: the config's `incumbent`, the registry's live version, or a
    stand-in trained now; and how it was found."""
    config, registry = context.config, context.registry
    name = bundle.env_policy_name(config.incumbent)
    if name is not None:
        try:
            policy = bundle.from_env(config.env, name)
        except ValueError as error:
            raise ConfigError(f"incumbent {config.incumbent}: {error}") from None
        how = f"the {name} policy that ships with {config.env}"
        return make_live(registry, policy, f"incumbent: {how}", "the incumbent named by the pipeline config"), how
    if config.incumbent:
        source = Path(config.incumbent)
        policy, _ = resolve(source)
        if policy.env != config.env:
            raise ConfigError(f"incumbent {source}: acts in {policy.env}, the pipeline's env is {config.env}")
        return (make_live(registry, policy, f"incumbent from {source}", "the incumbent named by the pipeline config"),
                f"named by the config ({source})")
    if registry.live is not None:
        return registry.live, "the registry's live version"
    run_dir = context.run_dir / "incumbent"
    values = {**load_yaml(config.incumbent_config), "total_steps": config.incumbent_steps,
              "eval_every": max(1, config.incumbent_steps // 3), "seed": config.seed}
    spec = RunSpec(config.incumbent_agent, config.env, (config.seed,),
                   build_config(agents.get(config.incumbent_agent).Config, values, config.incumbent_config))
    execute(spec, run_dir, context.run_options, resume=(run_dir / "config.yaml").is_file())
    version = make_live(registry, bundle.from_run(run_dir), "stand-in incumbent trained by the pipeline",
                        "stand-in incumbent: the registry had no live version")
    return version, f"a stand-in {config.incumbent_agent} trained for {config.incumbent_steps} steps"


def make_live(registry: Registry, policy: bundle.Policy, note: str, reason: str) -> str:
    """The policy's version in the registry (added once: a resumed pipeline finds the one it added), made live."""
    version = registry.add_once(policy, note=note)
    if registry.live != version:
        registry.promote(version, reason)
    return version


def collect_logs(context: Context, version: str) -> Path:
    """`data_steps` transitions of the incumbent's stochastic policy, saved as a dataset (once: a resumed
    pipeline reads what it saved)."""
    config, out = context.config, context.run_dir / "data"
    if (out / "metadata.json").is_file():
        return out
    policy = context.registry.load(version)
    behavior = collect_lib.learner_behavior(policy.learner, policy.state, f"incumbent {version}")
    transitions = collect_lib.collect(behavior, config.env, config.data_steps, config.data_envs, config.seed + 1)
    spec = envs.spec(config.env, envs.make(config.env))
    from jaxrl.tiers import evaluate_random

    metadata = Metadata(env_name=config.env, obs_size=spec.obs_size, action_size=spec.action_size,
                        discrete=spec.discrete, time_limit=spec.episode_length,
                        random_return=evaluate_random(config.env, 100, config.seed),
                        provenance=Provenance(behavior_policy=behavior.description,
                                              behavior_policy_fingerprint=behavior.fingerprint, seed=config.seed + 1),
                        extra={"registry_version": version})
    storage.save(out, transitions, metadata)
    return out


def corrupt(dataset_dir: Path, out: Path) -> Path:
    """The bad-data drill: a copy of the logs with rewards of a few rows overwritten by NaN (as a broken logger
    would write them), the checksums left as they were."""
    import shutil

    if not out.exists():
        shutil.copytree(dataset_dir, out)
        with np.load(out / storage.ARRAYS_FILE) as arrays:
            columns = dict(arrays)
        columns["reward"] = columns["reward"].copy()
        columns["reward"][::97] = np.nan
        np.savez(out / storage.ARRAYS_FILE, **columns)
    return out

