"""A policy as a self-contained folder: one seed's agent state and what rebuilds the learner that acts with it.

`policy.json` names the agent, the environment and the resolved config (with where the policy came from), and
`policy.npz` holds every leaf of the agent state keyed by its path in the state's tree, so a folder that does not
fit the agent it names is refused leaf by leaf rather than misread. Offline agents also keep their dataset's
statistics (`statistics.npz`): their learner is built from them, so acting never needs the dataset itself. A
logging policy that ships with its env (`from_env`, agent "env-policy") has no parameters: its folder names it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl import agents
from jaxrl.collect import EnvPolicyConfig, env_policy_learner
from jaxrl.config import ConfigError, build_config, load_json, to_dict
from jaxrl.data.statistics import DatasetStatistics
from jaxrl.infra.files import atomic_write_dir, tree_sha256
from jaxrl.types import EnvSpec, Learner

POLICY_FILE = "policy.json"
STATE_FILE = "policy.npz"
STATISTICS_FILE = "statistics.npz"
FORMAT_VERSION = 1


class Policy(NamedTuple):
    """A deployable policy: the learner that acts, its state (one seed, no seed axis), and where it came from."""

    agent: str
    env: str
    config: Any  # the agent's Config (or FinetuneConfig)
    learner: Learner
    state: Any
    env_spec: EnvSpec
    statistics: DatasetStatistics | None
    provenance: dict[str, Any]  # run folder, checkpoint chunk, seed, dataset and its fingerprint, ...

    @property
    def params_sha256(self) -> str:
        return tree_sha256(self.state)


ENV_POLICY = "env-policy"  # the agent name of a logging policy that ships with its env (`from_env`)
ENV_PREFIX = "env:"  # how a pipeline config or `jaxrl registry add` names one: env:NAME


def env_policy_name(reference: str) -> str | None:
    """NAME of a reference `env:NAME` to a logging policy that ships with the env, or None for anything else (a
    folder)."""
    return reference.removeprefix(ENV_PREFIX) if reference.startswith(ENV_PREFIX) else None


def make_learner(agent: str, config: Any, env_spec: EnvSpec, statistics: DatasetStatistics | None,
                 env: str | None = None) -> Learner:
    """The learner of `agent`: offline agents (and their fine-tuned runs) are built from dataset statistics; an
    env's own policy (ENV_POLICY) from the env."""
    if agent == ENV_POLICY:
        return env_policy_learner(env, config.name)
    module = agents.get(agent)
    if agent in agents.OFFLINE:
        return module.make_learner(config, env_spec, statistics)
    return module.make_learner(config, env_spec)


def state_like(learner: Learner) -> Any:
    """The shapes and dtypes of the learner's state."""
    return jax.eval_shape(learner.init, jax.random.PRNGKey(0), learner.hyperparams)


def save(policy: Policy, folder: str | Path) -> None:
    """Write `policy` as a new folder, atomically (an existing folder is an error)."""
    finetune = policy.agent in agents.FINETUNE and isinstance(policy.config, agents.config_class(policy.agent, True))
    document = {"format": FORMAT_VERSION, "agent": policy.agent, "env": policy.env, "finetune_config": finetune,
                "config": config_document(policy.config), "params_sha256": policy.params_sha256,
                "provenance": policy.provenance}

    def fill(temp: Path) -> None:
        (temp / POLICY_FILE).write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
        leaves = {jax.tree_util.keystr(path): np.asarray(leaf)
                  for path, leaf in jax.tree_util.tree_flatten_with_path(policy.state)[0]}
        _write_npz(temp / STATE_FILE, leaves)
        if policy.statistics is not None:
            _write_npz(temp / STATISTICS_FILE, {field: np.asarray(value)
                                                for field, value in policy.statistics._asdict().items()})

    atomic_write_dir(folder, fill)


def config_document(config: Any) -> dict[str, Any]:
    """The config as `policy.json` stores it (and reads it back): JSON values, anything else as its string."""
    return json.loads(json.dumps(to_dict(config), default=str))


def _write_npz(file: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    file.write_bytes(buffer.getvalue())


def load(folder: str | Path) -> Policy:
    """Read a policy folder back; every problem is a ConfigError naming the file and what was wrong."""
    folder = Path(folder)
    document = read_document(folder)
    agent = document["agent"]
    config_class = (EnvPolicyConfig if agent == ENV_POLICY else
                    agents.config_class(agent, finetune=bool(document.get("finetune_config"))))
    config = build_config(config_class, document["config"], source=str(folder / POLICY_FILE))
    env_spec = envs.spec(document["env"], envs.make(document["env"]))
    statistics = _read_statistics(folder / STATISTICS_FILE) if agent in agents.OFFLINE else None
    try:
        learner = make_learner(agent, config, env_spec, statistics, document["env"])
    except ValueError as error:  # an env policy the env does not ship
        raise ConfigError(f"{folder / POLICY_FILE}: {error}") from None
    state = _read_state(folder / STATE_FILE, state_like(learner))
    policy = Policy(agent, document["env"], config, learner, state, env_spec, statistics, document["provenance"])
    if policy.params_sha256 != document["params_sha256"]:
        raise ConfigError(f"{folder / STATE_FILE}: parameters do not match params_sha256 in {POLICY_FILE} "
                          "(the file was changed or damaged)")
    return policy


def read_document(folder: Path) -> dict[str, Any]:
    file = folder / POLICY_FILE
    if not file.is_file():
        raise ConfigError(f"{folder}: not a policy folder (no {POLICY_FILE})")
    document = load_json(file)
    missing = {"agent", "env", "config", "params_sha256", "provenance"} - set(document)
    if missing:
        raise ConfigError(f"{file}: missing field(s) {', '.join(sorted(missing))}")
    known = (*agents.ONLINE, *agents.OFFLINE, ENV_POLICY)
    if document["agent"] not in known:
        raise ConfigError(f"{file}: field 'agent' is {document['agent']!r}; expected one of {', '.join(known)}")
    return document


def _read_statistics(file: Path) -> DatasetStatistics:
    if not file.is_file():
        raise ConfigError(f"{file}: missing (an offline agent's policy keeps its dataset's statistics)")
    with np.load(file) as arrays:
        return DatasetStatistics(arrays["obs_mean"], arrays["obs_std"], float(arrays["min_episode_return"]),
                                 float(arrays["max_episode_return"]))


def _read_state(file: Path, like: Any) -> Any:
    if not file.is_file():
        raise ConfigError(f"{file}: missing (the policy's parameters)")
    paths_and_shapes, treedef = jax.tree_util.tree_flatten_with_path(like)
    with np.load(file) as arrays:
        stored = dict(arrays)
    leaves = []
    for path, shape in paths_and_shapes:
        name = jax.tree_util.keystr(path)
        if name not in stored:
            raise ConfigError(f"{file}: no array for state leaf {name}; the file does not fit this agent and config")
        value = stored.pop(name)
        if value.shape != shape.shape or value.dtype != shape.dtype:
            raise ConfigError(f"{file}: state leaf {name} is {value.dtype}{list(value.shape)}; expected "
                              f"{shape.dtype}{list(shape.shape)}")
        leaves.append(jnp.asarray(value))
    if stored:
        raise ConfigError(f"{file}: arrays {', '.join(sorted(stored))} are not part of this agent's state")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def from_env(env_name: str, name: str) -> Policy:
    """The logging policy `name` that ships with env `env_name` (recsys's "production") as a deployable policy: the
    incumbent a team's logs came from. ValueError naming the env's policies when it has no `name`."""
    config = EnvPolicyConfig(name)
    env_spec = envs.spec(env_name, envs.make(env_name))
    learner = make_learner(ENV_POLICY, config, env_spec, None, env_name)
    return Policy(ENV_POLICY, env_name, config, learner, (), env_spec, None,
                  {"env_policy": name, "seed": 0, "chunk": None})


def from_run(run_dir: str | Path, seed_index: int = 0, chunk: int | None = None) -> Policy:
    """Seed `seed_index` of a run at checkpoint `chunk` (default: the newest) as a deployable policy."""
    from jaxrl.data import storage
    from jaxrl.data.statistics import dataset_statistics
    from jaxrl.policy import load_run

    spec, experiment, agent_states, chunk = load_run(Path(run_dir), chunk=chunk)
    if not 0 <= seed_index < len(spec.seeds):
        raise ConfigError(f"{run_dir}: seed index {seed_index} out of range (the run has {len(spec.seeds)} seeds)")
    state = jax.tree.map(lambda x: x[seed_index], agent_states)
    provenance = {"run_dir": str(Path(run_dir).absolute()), "chunk": chunk, "seed": spec.seeds[seed_index],
                  "dataset": spec.dataset, "dataset_fingerprint": None}
    statistics = None
    if spec.dataset is not None:
        transitions, metadata = storage.load(spec.dataset)
        provenance["dataset_fingerprint"] = metadata.fingerprint
        statistics = dataset_statistics(transitions) if spec.agent in agents.OFFLINE else None
    learner = experiment.learner
    if hasattr(state, "inner"):  # trained under a cost constraint (jaxrl/safety/constrained.py): the agent inside acts
        state, learner = state.inner, make_learner(spec.agent, spec.config, experiment.env_spec, statistics)
    return Policy(spec.agent, spec.env, spec.config, learner, state, experiment.env_spec, statistics, provenance)
