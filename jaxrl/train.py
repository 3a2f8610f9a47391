"""The agent-agnostic loops: one rollout, and three loops: online (on-policy), offline, replay (off-policy online).

A loop here is a `Trainer`: `init(key, hyperparams)` builds the state of one run and
`run_chunk(state, data, iterations)` advances it by `iterations` (a traced count, so every chunk length is one
compiled loop); its `RunPlan` says how many iterations the run has and how they fall into chunks. Both functions
are pure, so the host runner vmaps them over runs (seeds, hyperparameters) and jits a whole chunk as the unit of
work. Only these functions step environments or sample datasets; agents see batches. They mark what they batch
(sampled transitions, environments, trajectories) with `shard_batch`, which splits it over the devices of a
data-parallel run and changes nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.data.dataset import Dataset, sample
from jaxrl.data.returns import episode_returns_to_go
from jaxrl.evaluate import make_evaluator
from jaxrl.infra.devices import shard_batch
from jaxrl.loop_config import OfflineLoop, OnlineLoop, ReplayLoop
from jaxrl.types import ActInfo, AgentState, Learner, MCTransition, Metrics, PRNGKey, Trajectory, Transition


class RunState(NamedTuple):
    agent: AgentState
    env_state: Any  # the batched environment state (online), None offline
    key: PRNGKey


class RunPlan(NamedTuple):
    """A run's length and how it is cut into chunks: the one source both the loop and the agents' schedules
    read (both from the loop's keys, `OnlineLoop.num_iterations` or `OfflineLoop.num_updates`).

    Chunk c (1-based) runs `iterations_per_chunk` iterations, the last one only what remains, so a run does
    exactly `iterations` iterations; an evaluation and a checkpoint follow every chunk.
    """

    iterations: int  # loop iterations in the whole run (online: rollout + update; offline: one update)
    iterations_per_chunk: int
    units_per_iteration: int  # progress units per iteration: env steps online, 1 offline
    unit: str  # "env_steps" or "updates"

    @property
    def num_chunks(self) -> int:
        return -(-self.iterations // self.iterations_per_chunk)

    def chunk_iterations(self, chunk: int) -> int:
        """Iterations of chunk `chunk` (1-based)."""
        return min(self.iterations_per_chunk, self.iterations - (chunk - 1) * self.iterations_per_chunk)

    def units_done(self, chunk: int) -> int:
        """Progress units (env steps or updates) done when chunk `chunk` ends; 0 before the first."""
        return min(chunk * self.iterations_per_chunk, self.iterations) * self.units_per_iteration

    @property
    def total_units(self) -> int:
        return self.iterations * self.units_per_iteration


class Trainer(NamedTuple):
    init: Callable[[PRNGKey, Any], RunState]  # (key, the agent's hyperparameters)
    # (state, shared data (the dataset) or None, iterations: a traced int, so every chunk length is one program)
    run_chunk: Callable[[RunState, Any, jax.Array], tuple[RunState, Metrics]]
    evaluate: Callable[[AgentState, PRNGKey], Metrics]
    plan: RunPlan
    hyperparams: Any  # the learner's: the config's values, what a run trains with unless a sweep says otherwise
    # The loop's keys whose sizes data parallelism splits over devices (jaxrl/infra/devices.py), by name.
    split_sizes: dict[str, int]


def repeat(iteration: Callable[[Any], tuple[Any, Metrics]], carry: Any, num_iterations: jax.Array):
    """Apply `iteration(carry) -> (carry, metrics)` `num_iterations` times (a traced count: one compiled loop
    serves every chunk length); returns the final carry and each metric summed over the iterations."""
    metric_shapes = jax.eval_shape(lambda c: iteration(c)[1], carry)
    zeros = jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), metric_shapes)

    def body(_, pair):
        carry, totals = pair
        carry, metrics = iteration(carry)
        return carry, jax.tree.map(jnp.add, totals, metrics)

    return jax.lax.fori_loop(0, num_iterations, body, (carry, zeros))


Policy = Callable[[jax.Array, PRNGKey], tuple[jax.Array, ActInfo]]  # (obs [B, ...], key) -> (action, act_info)


class Steps(NamedTuple):
    """What `run_policy` records, time-major [T, B, ...]."""

    obs: jax.Array  # observation the action was taken in
    action: jax.Array
    act_info: ActInfo
    reward: jax.Array
    cost: jax.Array
    done: jax.Array  # the episode ended on this step (terminated or truncated)
    truncation: jax.Array  # ... by the time limit
    final_obs: jax.Array  # observation the step produced, before any auto-reset
    episode_return: jax.Array  # totals of the episode, valid where done
    episode_cost: jax.Array

    @property
    def discount(self) -> jax.Array:
        """0 where the episode terminated (not where it was truncated), else 1."""
        return 1.0 - self.done * (1.0 - self.truncation)


def run_policy(policy: Policy, env: Any, env_state: Any, key: PRNGKey, length: int) -> tuple[Any, Steps]:
    """Step a batched, auto-resetting env `length` times with `policy`; the one loop that steps environments."""

    def step(env_state, step_key):
        action, act_info = policy(env_state.obs, step_key)
        next_state = env.step(env_state, action)
        info = next_state.info
        record = Steps(env_state.obs, action, act_info, next_state.reward, info["cost"], next_state.done,
                       info["truncation"], info["final_obs"], info["episode_return"], info["episode_cost"])
        return next_state, record

    return jax.lax.scan(step, env_state, jax.random.split(key, length))


def rollout(learner: Learner, env: Any, agent_state: AgentState, env_state: Any, key: PRNGKey, length: int):
    """Run the stochastic policy for `length` steps: the final env state, the `Trajectory` and the totals
    of the episodes that ended during it."""
    policy = lambda obs, step_key: learner.act(agent_state, obs, step_key, False)
    env_state, steps = run_policy(policy, env, env_state, key, length)
    trajectory = Trajectory(steps.obs, steps.action, steps.reward, steps.cost, steps.discount, steps.truncation,
                            steps.act_info, env_state.obs, steps.episode_cost)
    return env_state, trajectory, _episode_totals(steps)


def _episode_totals(steps: Steps) -> dict[str, jax.Array]:
    """How many episodes ended during `steps`, and their returns and costs summed (`_episode_metrics` averages)."""
    return {"episodes": steps.done.sum(), "return_sum": (steps.done * steps.episode_return).sum(),
            "cost_sum": (steps.done * steps.episode_cost).sum()}


def _episode_metrics(finished: dict[str, jax.Array]) -> Metrics:
    count = finished["episodes"]
    safe = jnp.maximum(count, 1.0)
    return {"train/episodes": count,
            "train/episode_return": jnp.where(count > 0, finished["return_sum"] / safe, jnp.nan),
            "train/episode_cost": jnp.where(count > 0, finished["cost_sum"] / safe, jnp.nan)}


def make_online_trainer(learner: Learner, train_env: Any, eval_env: Any, loop: OnlineLoop,
                        max_eval_steps: int) -> Trainer:
    """Rollout + update, `loop.num_iterations` times in all; a chunk (and an evaluation) per `eval_every` steps."""
    steps_per_iteration = loop.steps_per_iteration
    plan = RunPlan(loop.num_iterations, max(1, round(loop.eval_every / steps_per_iteration)), steps_per_iteration,
                   "env_steps")

    def init(key, hyperparams):
        agent_key, env_key, key = jax.random.split(key, 3)
        return RunState(learner.init(agent_key, hyperparams), train_env.reset(env_key), key)

    def iteration(state: RunState):
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        env_state, trajectory, finished = rollout(learner, train_env, state.agent, shard_batch(state.env_state),
                                                  rollout_key, loop.unroll_length)
        agent, metrics = learner.update(state.agent, shard_batch(trajectory, axis=1), update_key)  # [T, B, ...]
        return RunState(agent, shard_batch(env_state), key), (metrics, finished)

    def run_chunk(state: RunState, _data, num_iterations):
        state, (metric_sums, finished) = repeat(iteration, state, num_iterations)
        metrics = jax.tree.map(lambda total: total / num_iterations, metric_sums)
        return state, {**metrics, **_episode_metrics(finished)}

    evaluate = make_evaluator(learner, eval_env, max_eval_steps)
    return Trainer(init, run_chunk, evaluate, plan, learner.hyperparams, {"num_envs": loop.num_envs})


def make_offline_trainer(learner: Learner, eval_env: Any, loop: OfflineLoop, max_eval_steps: int) -> Trainer:
    """Sample + update, `loop.num_updates` times in all, `eval_every` per chunk; the dataset is shared data."""
    plan = RunPlan(loop.num_updates, loop.eval_every, 1, "updates")

    def init(key, hyperparams):
        agent_key, key = jax.random.split(key)
        return RunState(learner.init(agent_key, hyperparams), None, key)

    def run_chunk(state: RunState, dataset: Dataset, num_iterations):
        def one_update(carry):
            agent, key = carry
            key, sample_key, update_key = jax.random.split(key, 3)
            batch = shard_batch(sample(dataset, sample_key, loop.batch_size))
            agent, metrics = learner.update(agent, batch, update_key)
            return (agent, key), metrics

        (agent, key), metric_sums = repeat(one_update, (state.agent, state.key), num_iterations)
        return RunState(agent, None, key), jax.tree.map(lambda total: total / num_iterations, metric_sums)

    evaluate = make_evaluator(learner, eval_env, max_eval_steps)
    return Trainer(init, run_chunk, evaluate, plan, learner.hyperparams, {"batch_size": loop.batch_size})


class ReplayState(NamedTuple):
    """What the replay loop carries beside the agent: the environments, the buffer and the env steps so far."""

    env: Any  # the batched environment state
    buffer: Any  # flashbax item buffer state of Transitions
    env_steps: jax.Array  # [] int32
    episodes: Any = None  # EpisodeRows where online rows get their returns-to-go (`returns_gamma`), else None


class EpisodeRows(NamedTuple):
    """Each environment's episode in progress, for the returns-to-go written into its rows when it ends: the buffer
    slot of its first row (the next ones follow every E slots, as the buffer takes one row per env an iteration)
    and its rewards (the first `length` of at most T, the time limit)."""

    first_slot: jax.Array  # [E] int32
    rewards: jax.Array  # [E, T] float32
    length: jax.Array  # [E] int32


def record_episode_rows(buffer_state: Any, episodes: EpisodeRows, steps: Any, gamma: float,
                        rows_kept: int) -> tuple[Any, EpisodeRows]:
    """Add the step's rows, which the buffer has just taken (one per env), to each env's episode; where it ended,
    write the episode's returns-to-go (jaxrl/data/returns.py: the values a dataset's rows get when it loads) into
    the rows that the buffer still holds (added fewer than `rows_kept` iterations ago), and start the next
    episode. An episode longer than T keeps no return-to-go (-inf, no bound)."""
    num_envs, horizon = episodes.rewards.shape
    size = buffer_state.experience.mc_return.shape[1]
    added_at = (buffer_state.current_index - num_envs + jnp.arange(num_envs)) % size  # [E]
    first_slot = jnp.where(episodes.length == 0, added_at, episodes.first_slot)
    rewards = episodes.rewards.at[jnp.arange(num_envs), episodes.length].set(steps.reward[0], mode="drop")
    length = episodes.length + 1
    done = steps.done[0] > 0
    values = episode_returns_to_go(rewards, jnp.minimum(length, horizon), steps.discount[0] == 0.0, gamma)
    rows = jnp.arange(horizon)[None, :]
    age = length[:, None] - 1 - rows  # iterations since the row was added
    write = done[:, None] & (length[:, None] <= horizon) & (age >= 0) & (age < rows_kept)
    slots = (first_slot[:, None] + num_envs * rows) % size
    index = jnp.where(write, slots, size).reshape(-1)  # out of range: dropped
    mc_return = buffer_state.experience.mc_return.at[0, index].set(values.reshape(-1), mode="drop")
    buffer_state = buffer_state.replace(experience=buffer_state.experience._replace(mc_return=mc_return))
    return buffer_state, EpisodeRows(first_slot, rewards, jnp.where(done, 0, length))


def make_replay_buffer(loop: ReplayLoop):
    """The replay buffer: flashbax's item buffer (a ring of `buffer_size` transitions, sampled uniformly)."""
    import flashbax

    return flashbax.make_item_buffer(max_length=loop.buffer_size, min_length=1, sample_batch_size=loop.batch_size,
                                     add_batches=True)


def offline_fraction(loop: ReplayLoop, env_steps: jax.Array) -> jax.Array:
    """The share of a batch drawn from the dataset after `env_steps` online steps (traced): `offline_fraction`,
    moving linearly to `offline_fraction_end` at `total_steps` when that is set."""
    end = loop.offline_fraction if loop.offline_fraction_end is None else loop.offline_fraction_end
    progress = jnp.clip(env_steps / loop.total_steps, 0.0, 1.0)
    return loop.offline_fraction + (end - loop.offline_fraction) * progress


def mixed_batch(online: Transition, dataset: Dataset | None, key: PRNGKey, fraction: jax.Array) -> Transition:
    """`online` (a batch sampled from the buffer) with its first round(fraction * B) rows replaced by transitions
    drawn uniformly from `dataset`: exactly that share of every batch is offline data, whatever the traced
    `fraction` is, in one program. Without a dataset, `online` itself."""
    if dataset is None:
        return online
    size = online.reward.shape[0]
    offline = sample(dataset, key, size)
    from_dataset = jnp.arange(size) < jnp.round(fraction * size)  # [B]
    pick = lambda data, live: jnp.where(from_dataset.reshape((size,) + (1,) * (live.ndim - 1)), data, live)
    return jax.tree.map(pick, offline, online)


def make_replay_trainer(learner: Learner, train_env: Any, eval_env: Any, loop: ReplayLoop, max_eval_steps: int,
                        example: Transition, random_warmup: bool = True, num_actions: int | None = None,
                        returns_gamma: float | None = None, episode_length: int = 0) -> Trainer:
    """Step every environment once into the buffer, then `updates_per_step` updates on batches sampled from it,
    mixed with the dataset's transitions (the shared data, None without one) at `offline_fraction`. The first
    `learning_starts` env steps update nothing and act uniformly at random (`random_warmup`) or with the agent's
    own policy (a pretrained agent being fine-tuned). `example` is one Transition (no batch axis), the shape of
    the buffer's items; `num_actions` the number of discrete actions (None: continuous ones in [-1, 1]).

    With an MCTransition `example`, online rows carry no return-to-go (-inf) until their episode ends; with
    `returns_gamma` they then get the episode's (discounted by it; `episode_length`, the time limit, bounds the
    rows an episode keeps track of)."""
    if returns_gamma is not None and not (isinstance(example, MCTransition) and episode_length > 0):
        raise ValueError("online returns-to-go need MCTransition buffer items and the episodes' time limit")
    plan = RunPlan(loop.num_iterations, max(1, round(loop.eval_every / loop.num_envs)), loop.num_envs, "env_steps")
    buffer = make_replay_buffer(loop)

    def init(key, hyperparams):
        agent_key, env_key, key = jax.random.split(key, 3)
        episodes = None if returns_gamma is None else EpisodeRows(
            jnp.zeros(loop.num_envs, jnp.int32), jnp.zeros((loop.num_envs, episode_length)),
            jnp.zeros(loop.num_envs, jnp.int32))
        replay = ReplayState(train_env.reset(env_key), buffer.init(example), jnp.zeros((), jnp.int32), episodes)
        return RunState(learner.init(agent_key, hyperparams), replay, key)

    def policy(agent, warming_up):
        def act(obs, key):
            action, _ = learner.act(agent, obs, key, False)
            if not random_warmup:
                return action, {}
            if num_actions is None:
                random = jax.random.uniform(key, (obs.shape[0], *example.action.shape), minval=-1.0, maxval=1.0)
            else:
                random = jax.random.randint(key, (obs.shape[0],), 0, num_actions, jnp.int32)
            return jnp.where(warming_up, random, action), {}
        return act

    def update_many(agent, buffer_state, dataset, fraction, key):
        """`updates_per_step` updates on mixed batches: the agent and the summed metrics."""
        def one_update(carry):
            agent, key = carry
            key, sample_key, offline_key, update_key = jax.random.split(key, 4)
            online = buffer.sample(buffer_state, sample_key).experience
            batch = shard_batch(mixed_batch(online, dataset, offline_key, fraction))
            agent, metrics = learner.update(agent, batch, update_key)
            return (agent, key), metrics

        (agent, _), metric_sums = repeat(one_update, (agent, key), jnp.int32(loop.updates_per_step))
        return agent, metric_sums

    def iteration(state: RunState, dataset: Dataset | None, learning: bool):
        """One env step of every env into the buffer, then (`learning`, static) the updates."""
        key, step_key, update_key = jax.random.split(state.key, 3)
        replay = state.env_state
        warming_up = replay.env_steps < loop.learning_starts
        env, steps = run_policy(policy(state.agent, warming_up), train_env, shard_batch(replay.env), step_key, 1)
        added = Transition(steps.obs, steps.action, steps.reward, steps.cost, steps.discount, steps.final_obs,
                           jnp.full(steps.reward.shape, jnp.nan), jnp.zeros(steps.reward.shape, jnp.int32))
        if isinstance(example, MCTransition):  # the episode has not ended: no return-to-go, so no bound
            added = MCTransition(*added, mc_return=jnp.full(steps.reward.shape, -jnp.inf))
        added = jax.tree.map(lambda x: x[0], added)
        buffer_state, episodes = buffer.add(replay.buffer, added), replay.episodes
        if episodes is not None:
            buffer_state, episodes = record_episode_rows(buffer_state, episodes, steps, returns_gamma,
                                                         loop.buffer_size // loop.num_envs)
        fraction = offline_fraction(loop, replay.env_steps)
        env_steps = replay.env_steps + loop.num_envs
        args = (state.agent, buffer_state, dataset, fraction, update_key)
        if learning:
            agent, metric_sums = update_many(*args)
        else:
            metric_shapes = jax.eval_shape(update_many, *args)[1]
            agent, metric_sums = state.agent, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)
        finished = _episode_totals(steps)
        if loop.incident_cost is not None:
            finished["incidents"] = (steps.done * (steps.episode_cost > loop.incident_cost)).sum()
        updates = jnp.int32(loop.updates_per_step if learning else 0)
        online = {"step_cost": steps.cost.sum(), "offline_fraction": fraction}
        replay = ReplayState(env, buffer_state, env_steps, episodes)
        return RunState(agent, replay, key), (metric_sums, updates, finished, online)

    def run_chunk(state: RunState, dataset: Dataset | None, num_iterations):
        # The iterations whose env steps stay below learning_starts, then the rest: two loops rather than a cond
        # per iteration, which vmapped seeds (a batched predicate) would turn into computing the updates anyway.
        # Every seed has the same count, so the vmapped loops run no iteration for nothing.
        after = state.env_state.env_steps + loop.num_envs  # env steps once the chunk's first iteration is done
        warm = jnp.clip(-(-(loop.learning_starts - after) // loop.num_envs), 0, num_iterations)
        state, warm_sums = repeat(lambda s: iteration(s, dataset, False), state, warm)
        state, learn_sums = repeat(lambda s: iteration(s, dataset, True), state, num_iterations - warm)
        metric_sums, updates, finished, online = jax.tree.map(jnp.add, warm_sums, learn_sums)
        metrics = jax.tree.map(lambda total: total / jnp.maximum(updates, 1), metric_sums)
        incidents = {"train/incidents": finished.pop("incidents")} if "incidents" in finished else {}
        return state, {**metrics, "updates": updates.astype(jnp.float32), **_episode_metrics(finished), **incidents,
                       "train/cost_total": online["step_cost"],  # every online step's cost in the chunk, all envs
                       "train/offline_fraction": online["offline_fraction"] / num_iterations}

    evaluate = make_evaluator(learner, eval_env, max_eval_steps)
    return Trainer(init, run_chunk, evaluate, plan, learner.hyperparams,
                   {"num_envs": loop.num_envs, "batch_size": loop.batch_size})
