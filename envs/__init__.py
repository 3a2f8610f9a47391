"""Environments behind Brax's Env API: `make(name)`, `names()`, `spec(name, env)` and the wrappers.

Every env: flat float32 observations; continuous actions in [-1, 1]^action_size, discrete actions int32
scalars; `state.done` (float32) means termination only; `state.info["cost"]` (float32, 0 without a safety
cost) always exists. `training_env` / `eval_env` add to `info`: "steps" (int32), "truncation" (1.0 when the
time limit, not the env, ended the episode), "episode_return", "episode_length" (int32), "episode_cost"
(totals of the finished episode on a step with done=1), and for training_env "reset_key".
"""

from envs.registry import UnknownEnvError, make, names, spec
from envs.wrappers import (
    ActionRepeat,
    AutoReset,
    EpisodeStats,
    TimeLimit,
    Vmap,
    VmapAutoReset,
    ZeroCost,
    eval_env,
    training_env,
)

__all__ = [
    "ActionRepeat",
    "AutoReset",
    "VmapAutoReset",
    "EpisodeStats",
    "TimeLimit",
    "UnknownEnvError",
    "Vmap",
    "ZeroCost",
    "eval_env",
    "make",
    "names",
    "spec",
    "training_env",
]
