"""Logging a policy's experience as a dataset: random policies, trained runs, and the collection itself."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.infra.files import tree_sha256
from jaxrl.train import run_policy
from jaxrl.types import EnvSpec, Learner, Transition

# (state, obs [B, ...], key) -> (action, {"log_prob": [B]}): a policy with its parameters passed in
LoggingPolicy = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class Behavior(NamedTuple):
    """A logging policy and what the metadata says about it.

    The policy takes its parameters as an argument rather than closing over them, so that behaviors sharing one
    `policy` function (the checkpoints of one run: `behaviors_from_run`) share one compiled collection.
    """

    policy: LoggingPolicy
    description: str
    fingerprint: str | None
    state: Any = ()  # the policy's parameters


def random_behavior(spec: EnvSpec) -> Behavior:
    """Uniform actions: in [-1, 1]^d, or over the discrete choices; log-probs are exact."""

    def policy(state, obs, key):
        batch = obs.shape[0]
        if spec.discrete:
            action = jax.random.randint(key, (batch,), 0, spec.action_size, jnp.int32)
            log_prob = -math.log(spec.action_size)
        else:
            action = jax.random.uniform(key, (batch, spec.action_size), jnp.float32, -1.0, 1.0)
            log_prob = -spec.action_size * math.log(2.0)
        return action, {"log_prob": jnp.full((batch,), log_prob, jnp.float32)}

    return Behavior(policy, "uniform random", None)


def logging_policy_names(env_name: str) -> list[str]:
    """The logging policies that ship with an env (`env.logging_policies`, e.g. recsys's "production")."""
    return sorted(getattr(envs.make(env_name), "logging_policies", {}))


@dataclasses.dataclass(frozen=True)
class EnvPolicyConfig:
    """A logging policy that ships with an env, as a deployable policy (jaxrl/deploy/bundle.py): which one."""

    name: str = "production"


def env_policy_learner(env_name: str, name: str) -> Learner:
    """A logging policy that ships with a discrete-action env (`env.logging_policies[name]`: its log-probabilities
    over the actions, [B, N] from observations [B, O]) behind the learner interface: `act` samples as it logged
    (its mode: the most likely action), `log_prob` is exact. It has no parameters: the env defines it, so its
    state is empty. ValueError naming the env's policies when it has no `name`."""
    policies = getattr(envs.make(env_name), "logging_policies", {})
    if name not in policies:
        have = ", ".join(sorted(policies)) or "none"
        raise ValueError(f"environment {env_name!r} has no logging policy {name!r} (it ships: {have})")
    log_probs_of = policies[name]

    def chosen(log_probs: jax.Array, action: jax.Array) -> jax.Array:
        return jnp.take_along_axis(log_probs, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def act(state, obs, key, deterministic):
        log_probs = log_probs_of(obs)
        action = (jnp.argmax(log_probs, axis=-1) if deterministic
                  else jax.random.categorical(key, log_probs, axis=-1)).astype(jnp.int32)
        return action, {"log_prob": chosen(log_probs, action)}

    return Learner(lambda key, hyperparams: (), act, None, None, lambda state, obs, action: chosen(
        log_probs_of(obs), action))


def env_behavior(env_name: str, name: str) -> Behavior:
    """A logging policy that ships with the env, with its exact log-probs; ValueError naming the ones it has."""
    learner = env_policy_learner(env_name, name)
    return Behavior(stochastic_policy(learner.act), f"{name} (the logging policy that ships with "
                    f"{env_name})", None)


def random_learner(spec: EnvSpec) -> Learner:
    """The uniform policy behind the learner interface, so the shared evaluator can score it."""
    policy = random_behavior(spec).policy
    return Learner(lambda key, hyperparams: (), lambda state, obs, key, deterministic: policy(state, obs, key), None)


@functools.lru_cache(maxsize=8)
def stochastic_policy(act) -> LoggingPolicy:
    """A learner's `act` as a logging policy: its stochastic action, log-probs in the info. The same function for
    the same `act`, so behaviors of one learner (a run's checkpoints) share one compiled collection."""
    return lambda state, obs, key: act(state, obs, key, False)


def learner_behavior(learner: Learner, agent_state: Any, description: str) -> Behavior:
    """A trained agent's stochastic policy (log-probs from its `act`)."""
    return Behavior(stochastic_policy(learner.act), description, tree_sha256(agent_state), agent_state)


def collect(behavior: Behavior, env_name: str, num_steps: int, num_envs: int, seed: int,
            episode_length: int | None = None) -> Transition:
    """`num_steps` (rounded up to a multiple of `num_envs`) transitions, episodes stored contiguously.

    Episodes still running when collection stops end without a terminal flag, like a time-out.
    """
    length = -(-num_steps // num_envs)
    gather, discrete = _gather_program(behavior.policy, env_name, num_envs, length, episode_length)
    steps = jax.device_get(gather(behavior.state, jax.random.PRNGKey(seed)))
    return to_transitions(steps, discrete)


@functools.lru_cache(maxsize=8)
def _gather_program(policy: LoggingPolicy, env_name: str, num_envs: int, length: int, episode_length: int | None):
    """One compiled collection per policy function and shape: a run's checkpoints (hopper's 34 medium-replay ones)
    pass their parameters to the same program instead of compiling one each. Also whether the env's actions are
    discrete."""
    env = envs.make(env_name)
    spec = envs.spec(env_name, env)
    batched = envs.training_env(env, num_envs, episode_length or spec.episode_length)

    @jax.jit
    def gather(state, key):
        reset_key, run_key = jax.random.split(key)
        _, steps = run_policy(lambda obs, key: policy(state, obs, key), batched, batched.reset(reset_key), run_key,
                              length)
        return steps

    return gather, spec.discrete


def episode_ids(done: np.ndarray) -> np.ndarray:
    """Ids [B, T] numbering the episodes of env 0 first, then env 1, ...; `done` is [B, T]."""
    within = np.cumsum(done, axis=1) - done  # episodes finished before each step
    per_env = done.sum(axis=1) + (done[:, -1] == 0)  # finished ones plus the one cut off at the end
    offsets = np.concatenate([[0], np.cumsum(per_env)[:-1]])
    return (within + offsets[:, None]).astype(np.int32)


def to_transitions(steps: Any, discrete: bool) -> Transition:
    """Time-major [T, B] steps to env-major rows, so each episode's rows are consecutive."""
    env_major = lambda x: np.swapaxes(np.asarray(x), 0, 1).reshape(-1, *np.shape(x)[2:])
    done = np.swapaxes(np.asarray(steps.done), 0, 1) > 0
    action = env_major(steps.action).astype(np.int32 if discrete else np.float32)
    return Transition(
        obs=env_major(steps.obs).astype(np.float32),
        action=action,
        reward=env_major(steps.reward).astype(np.float32),
        cost=env_major(steps.cost).astype(np.float32),
        discount=env_major(steps.discount).astype(np.float32),
        next_obs=env_major(steps.final_obs).astype(np.float32),
        behavior_log_prob=env_major(steps.act_info["log_prob"]).astype(np.float32),
        episode_id=episode_ids(done.astype(np.int64)).reshape(-1),
    )


def behavior_from_run(run_dir: Path, chunk: int | None = None, seed_index: int = 0) -> tuple[Behavior, dict]:
    """The policy of seed `seed_index` of a run, at checkpoint `chunk` (default: the newest)."""
    return behaviors_from_run(run_dir, [chunk], seed_index)[0]


def behaviors_from_run(run_dir: Path, chunks: list[int | None], seed_index: int = 0) -> list[tuple[Behavior, dict]]:
    """`behavior_from_run` for several checkpoints of one run, sharing one policy function (so `collect` compiles
    once for all of them)."""
    from jaxrl.policy import load_run_checkpoints

    spec, experiment, restored = load_run_checkpoints(Path(run_dir), chunks)
    if not 0 <= seed_index < len(spec.seeds):
        raise ValueError(f"{run_dir}: seed index {seed_index} out of range (the run has {len(spec.seeds)} seeds)")
    behaviors = []
    for agent_states, chunk in restored:
        agent_state = jax.tree.map(lambda x: x[seed_index], agent_states)
        description = f"{spec.agent} {Path(run_dir).name} seed {spec.seeds[seed_index]} checkpoint {chunk}"
        info = {"run": str(Path(run_dir).absolute()), "chunk": chunk, "seed": spec.seeds[seed_index],
                "agent": spec.agent}
        behaviors.append((learner_behavior(experiment.learner, agent_state, description), info))
    return behaviors
