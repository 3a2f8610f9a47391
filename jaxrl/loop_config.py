"""The keys the loops of `jaxrl.train` read, apart from any agent's: how long a run is, how it is cut into chunks,
how it is evaluated. An agent's `Config` inherits one of these (a YAML file stays one flat mapping), and the loops
are handed only this part, by type (`loop_keys`), never the agent's keys."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

L = TypeVar("L")


def require(ok: bool, key: str, requirement: str, value: Any) -> None:
    """Raise a ValueError naming the config `key` when `ok` is false (build_config reports it with its source)."""
    if not ok:
        raise ValueError(f"config key '{key}' must be {requirement}, got {value!r}")


def check_positive(config: Any, *keys: str) -> None:
    """Every named numeric field of `config` must be finite and > 0."""
    for key in keys:
        value = getattr(config, key)
        require(math.isfinite(value) and value > 0, key, "> 0", value)


def check_widths(config: Any, key: str) -> None:
    """The named field is a non-empty sequence of positive layer widths."""
    widths = getattr(config, key)
    require(len(widths) > 0 and all(size > 0 for size in widths), key, "a non-empty list of positive layer widths",
            widths)


def check_unit_interval(config: Any, key: str, low_open: bool = False, high_open: bool = False) -> None:
    """The named field must lie in [0, 1], with either end excluded when asked."""
    value = getattr(config, key)
    above = value > 0 if low_open else value >= 0
    below = value < 1 if high_open else value <= 1
    interval = f"in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    require(above and below, key, interval, value)


def loop_keys(loop_class: type[L], config: Any) -> L:
    """The part of `config` that `loop_class` declares: what a loop may read."""
    return loop_class(**{f.name: getattr(config, f.name) for f in dataclasses.fields(loop_class)})


@dataclasses.dataclass(frozen=True)
class OfflineLoop:
    """Sample a batch, update; `num_updates` times, evaluating every `eval_every` updates."""

    batch_size: int = 256  # transitions sampled from the dataset per gradient step
    num_updates: int = 1_000_000  # total gradient steps (also the length of learning-rate schedules)
    eval_every: int = 5_000  # gradient steps between evaluations
    eval_episodes: int = 10  # episodes per evaluation
    seed: int = 0  # seed of the run's root key; --seeds N trains seed, seed+1, ...

    def __post_init__(self) -> None:
        check_positive(self, "batch_size", "num_updates", "eval_every", "eval_episodes")
        require(self.seed >= 0, "seed", ">= 0", self.seed)


@dataclasses.dataclass(frozen=True)
class OnlineLoop:
    """Roll out `num_envs` environments for `unroll_length` steps, update; until `total_steps` env steps."""

    num_envs: int = 64  # parallel environments in each rollout
    unroll_length: int = 32  # steps per environment per rollout
    total_steps: int = 1_000_000  # environment steps (action repeats included)
    episode_length: int = 0  # time limit in steps; 0 takes the environment's default
    action_repeat: int = 1  # environment steps per policy decision
    eval_every: int = 100_000  # environment steps between evaluations
    eval_episodes: int = 16  # episodes per evaluation (run in parallel)
    seed: int = 0  # first seed; --seeds N trains seed, seed+1, ...

    def __post_init__(self) -> None:
        for key in ["num_envs", "unroll_length", "total_steps", "action_repeat", "eval_every", "eval_episodes"]:
            require(getattr(self, key) > 0, key, "positive", getattr(self, key))
        require(self.episode_length >= 0, "episode_length", ">= 0", self.episode_length)
        require(self.seed >= 0, "seed", ">= 0", self.seed)

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps consumed by one rollout + update."""
        return self.num_envs * self.unroll_length * self.action_repeat

    @property
    def num_iterations(self) -> int:
        """Rollout + update iterations of the run: the fewest that reach `total_steps`. The online loop runs
        exactly this many, and every schedule spans exactly this many."""
        return -(-self.total_steps // self.steps_per_iteration)


@dataclasses.dataclass(frozen=True)
class ReplayLoop:
    """Step `num_envs` environments once into a replay buffer, then `updates_per_step` updates on batches drawn
    from it; until `total_steps` env steps. The first `learning_starts` steps act uniformly at random (or with the
    pretrained policy, when fine-tuning), and no update runs before them. With an offline dataset (RLPD,
    fine-tuning), `offline_fraction` of every batch comes from the dataset and the rest from the buffer."""

    num_envs: int = 1  # parallel environments, each stepped once per iteration
    total_steps: int = 100_000  # online environment steps
    updates_per_step: int = 1  # gradient updates per iteration (the update-to-data ratio with num_envs 1)
    batch_size: int = 256  # transitions per gradient update
    buffer_size: int = 1_000_000  # transitions the replay buffer holds; the oldest go first
    learning_starts: int = 5_000  # env steps of uniform random actions before the first update
    # Share of each batch drawn from the offline dataset (needs one): 0.5 is RLPD's symmetric sampling, 0 trains on
    # online data only. A traced value: with offline_fraction_end it moves linearly from this value at the first
    # env step to that one at the last, in the same compiled program.
    offline_fraction: float = 0.0
    offline_fraction_end: float | None = None  # None (the default) keeps offline_fraction all run
    episode_length: int = 0  # time limit in steps; 0 takes the environment's default
    eval_every: int = 10_000  # environment steps between evaluations
    eval_episodes: int = 10  # episodes per evaluation (run in parallel)
    seed: int = 0  # first seed; --seeds N trains seed, seed+1, ...
    # An online episode costing more than this is an incident, counted per chunk (train/incidents) for monitoring;
    # None counts none.
    incident_cost: float | None = None

    def __post_init__(self) -> None:
        for key in ["num_envs", "total_steps", "updates_per_step", "batch_size", "buffer_size", "eval_every",
                    "eval_episodes"]:
            require(getattr(self, key) > 0, key, "positive", getattr(self, key))
        require(self.learning_starts >= 0, "learning_starts", ">= 0", self.learning_starts)
        require(self.buffer_size >= self.batch_size, "buffer_size", f">= batch_size ({self.batch_size})",
                self.buffer_size)
        require(self.episode_length >= 0, "episode_length", ">= 0", self.episode_length)
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        check_unit_interval(self, "offline_fraction")
        if self.offline_fraction_end is not None:
            check_unit_interval(self, "offline_fraction_end")

    @property
    def mixes_offline_data(self) -> bool:
        """Whether any batch of the run draws from an offline dataset."""
        return self.offline_fraction > 0 or bool(self.offline_fraction_end)

    @property
    def num_iterations(self) -> int:
        """Iterations of the run (each steps every environment once): the fewest that reach `total_steps`."""
        return -(-self.total_steps // self.num_envs)
