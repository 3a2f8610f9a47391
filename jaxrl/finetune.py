"""Offline to online: the spec of a run that continues an offline run's agents on the replay loop (`jaxrl
finetune`); the runner starts it from their final states, and its summary adds `experiment.online_figures`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from jaxrl import agents
from jaxrl.agents.common import AgentKeys
from jaxrl.config import ConfigError, build_config, load_yaml, to_dict
from jaxrl.data import storage
from jaxrl.experiment import RunSpec, load_spec

# Keys of the offline config that mean something else on the replay loop (updates there, env steps here).
NOT_INHERITED = ("eval_every", "eval_episodes", "num_updates")


def finetune_spec(offline_dir: str | Path, steps: int | None = None, config_file: str | None = None,
                  overrides: dict[str, Any] | None = None) -> RunSpec:
    """Every seed of the finished offline run in `offline_dir` continued online, in its dataset's env with that
    dataset mixed in. The config: FinetuneConfig's defaults, then the offline run's hyperparameters and static
    keys, then `config_file`, then `overrides` (`steps` sets total_steps). Refuses, with the reason, anything
    that cannot be fine-tuned; reads the offline folder only."""
    offline_dir = Path(offline_dir)
    if not (offline_dir / "config.yaml").is_file():
        raise ConfigError(f"{offline_dir}: not a run directory (no config.yaml); jaxrl finetune takes the folder "
                          f"of a finished offline run of {' or '.join(agents.FINETUNE)}")
    offline = load_spec(offline_dir)
    if offline.agent not in agents.FINETUNE:
        kind = "an online" if offline.agent in agents.ONLINE else "an offline"
        raise ConfigError(f"{offline_dir}: a {offline.agent} run ({kind} agent) cannot be fine-tuned: fine-tuning "
                          f"continues the critics and policy of a value-based offline agent; runs of "
                          f"{', '.join(agents.FINETUNE)} can be")
    if offline.init_from is not None:
        raise ConfigError(f"{offline_dir}: already a fine-tuning run (of {offline.init_from}); fine-tune its offline "
                          "run, or resume this one with jaxrl resume")
    if not (offline_dir / "summary.json").is_file():
        raise ConfigError(f"{offline_dir}: the offline run has not finished (no summary.json); finish it first "
                          f"with jaxrl resume {offline_dir}")
    try:
        storage.load_metadata(offline.dataset)
    except Exception as error:  # noqa: BLE001 (any failure to read it means it is not where the run says)
        raise ConfigError(f"{offline_dir}/config.yaml: field 'dataset' names {offline.dataset}, which is not a "
                          f"readable dataset now ({error}); fine-tuning mixes that dataset in, so put it back "
                          "there") from None
    cls = agents.config_class(offline.agent, finetune=True)
    fields = {f.name for f in dataclasses.fields(cls)}
    inherited = {k: v for k, v in to_dict(offline.config).items() if k in fields and k not in NOT_INHERITED}
    values = {**inherited, **(load_yaml(config_file) if config_file else {}), **(overrides or {})}
    if steps is not None:
        values["total_steps"] = steps
    source = " and ".join(part for part in (config_file, "--set" if overrides or steps is not None else None)
                          if part) or str(offline_dir / "config.yaml")
    for key in AgentKeys.STRUCTURE:
        if key in values and _same(values[key], inherited[key]) is False:
            raise ConfigError(f"{source}: key '{key}' is the offline run's ({inherited[key]!r} in "
                              f"{offline_dir}/config.yaml) and cannot change when fine-tuning, got {values[key]!r}")
    config = build_config(cls, values, source=source)
    if config.seed != offline.config.seed:
        raise ConfigError(f"{source}: key 'seed' is the offline run's ({offline.config.seed}): each of its seeds is "
                          f"continued, got {config.seed}")
    return RunSpec(offline.agent, offline.env, offline.seeds, config, offline.dataset, offline.seed_batch,
                   str(offline_dir))


def _same(a: Any, b: Any) -> bool:
    """Config values equal as the config reads them (a YAML list and the tuple it becomes)."""
    normal = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    return normal(a) == normal(b)
