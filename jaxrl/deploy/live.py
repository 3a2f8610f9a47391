"""Two policies in one set of live environments: the incumbent and a candidate, for the shadow and canary
stages. Every environment is stepped by the loop of jaxrl/train.py (`run_policy`); each step, both policies see
the observation, one of them acts (per environment, by a mask), and both of their modes are recorded."""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.deploy.bundle import Policy
from jaxrl.train import run_policy


class LiveSteps(NamedTuple):
    """[T, B] per step unless said otherwise (host arrays)."""

    obs: np.ndarray  # [T, B, obs_size]
    candidate_acts: np.ndarray  # [B] bool: the candidate acted in that environment
    incumbent_mode: np.ndarray  # [T, B, action_size] the incumbent's deterministic action
    candidate_mode: np.ndarray  # [T, B, action_size] the candidate's
    cost: np.ndarray
    done: np.ndarray
    episode_return: np.ndarray  # the finished episode's totals where done
    episode_cost: np.ndarray


def run_live(incumbent: Policy, candidate: Policy, env_name: str, num_envs: int, steps: int, candidate_envs: int,
             seed: int) -> LiveSteps:
    """`steps` steps of `num_envs` environments; the first `candidate_envs` act with the candidate's stochastic
    policy, the rest with the incumbent's."""
    env = envs.make(env_name)
    spec = envs.spec(env_name, env)
    batched = envs.training_env(env, num_envs, spec.episode_length)
    mask = jnp.arange(num_envs) < candidate_envs  # [B]

    def policy(obs, key):
        incumbent_key, candidate_key = jax.random.split(key)
        incumbent_action, _ = incumbent.learner.act(incumbent.state, obs, incumbent_key, False)
        candidate_action, _ = candidate.learner.act(candidate.state, obs, candidate_key, False)
        incumbent_mode, _ = incumbent.learner.act(incumbent.state, obs, incumbent_key, True)
        candidate_mode, _ = candidate.learner.act(candidate.state, obs, candidate_key, True)
        acts = mask.reshape(mask.shape + (1,) * (candidate_action.ndim - 1))  # [B] or [B, 1]: discrete or not
        action = jnp.where(acts, candidate_action, incumbent_action)
        return action, {"incumbent_mode": incumbent_mode, "candidate_mode": candidate_mode}

    @jax.jit
    def live(key):
        reset_key, run_key = jax.random.split(key)
        return run_policy(policy, batched, batched.reset(reset_key), run_key, steps)[1]

    out = jax.device_get(live(jax.random.PRNGKey(seed)))
    return LiveSteps(out.obs, np.asarray(mask), out.act_info["incumbent_mode"], out.act_info["candidate_mode"],
                     out.cost, out.done, out.episode_return, out.episode_cost)


def finished_episodes(live: LiveSteps, candidate: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns and costs of the episodes that ended in the candidate's environments (or the incumbent's)."""
    envs_of = live.candidate_acts if candidate else ~live.candidate_acts
    ended = live.done.astype(bool) & envs_of[None, :]
    return live.episode_return[ended], live.episode_cost[ended]


def action_latency(policy: Policy, calls: int = 200) -> dict[str, float]:
    """Host-measured seconds of one compiled `act` on a single observation (what serving one request costs
    here): median and 99th percentile over `calls` calls, after a warm-up."""
    act = jax.jit(lambda state, obs, key: policy.learner.act(state, obs, key, True)[0])
    obs = jnp.zeros((1, policy.env_spec.obs_size), jnp.float32)
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(act(policy.state, obs, key))
    seconds = []
    for _ in range(calls):
        began = time.perf_counter()
        jax.block_until_ready(act(policy.state, obs, key))
        seconds.append(time.perf_counter() - began)
    return {"p50_ms": 1e3 * float(np.median(seconds)), "p99_ms": 1e3 * float(np.quantile(seconds, 0.99))}
