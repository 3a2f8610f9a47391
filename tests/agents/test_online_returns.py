"""Cal-QL's online returns-to-go (`online_returns_to_go`): the rows the replay loop adds get their episode's
returns-to-go once it ends, the values a dataset's rows get when it loads (`returns_to_go`, in numpy), and no bound
(-inf) before that or where the buffer has already dropped the row."""

from __future__ import annotations

import flashbax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.data.returns import returns_to_go
from jaxrl.experiment import example_transition
from jaxrl.loop_config import ReplayLoop
from jaxrl.train import EpisodeRows, make_replay_trainer, record_episode_rows
from jaxrl.types import Learner, MCTransition, Transition

GAMMA = 0.9
# A policy that stands still (no goal reached on pointmass), learns nothing, and has no state.
STILL = Learner(lambda key, hp: jnp.zeros(()), lambda s, obs, key, det: (jnp.zeros((obs.shape[0], 2)), {}),
                lambda s, batch, key: (s, {}))


def mc_buffer(size: int):
    """An item buffer of scalar MCTransitions, as the replay loop makes for Cal-QL, and its empty state."""
    buffer = flashbax.make_item_buffer(max_length=size, min_length=1, sample_batch_size=2, add_batches=True)
    return buffer, buffer.init(MCTransition(*(jnp.zeros(()) for _ in range(8)), mc_return=jnp.zeros(())))


def expected(rewards: list[float], terminated: bool) -> np.ndarray:
    """returns_to_go of one episode laid out as a dataset."""
    n = len(rewards)
    zeros = np.zeros((n, 1), np.float32)
    discount = np.ones(n, np.float32)
    discount[-1] = 0.0 if terminated else 1.0
    rows = Transition(zeros, zeros, np.asarray(rewards, np.float32), zeros[:, 0], discount, zeros, zeros[:, 0],
                      np.zeros(n, np.int32))
    return returns_to_go(rows, GAMMA)


class FakeSteps:
    """One iteration's steps of E envs, as run_policy returns them ([1, E] each)."""

    def __init__(self, reward, done, terminated):
        self.reward = jnp.asarray([reward], jnp.float32)
        self.done = jnp.asarray([done], jnp.float32)
        self.discount = 1.0 - jnp.asarray([terminated], jnp.float32)


def test_episode_rows_get_their_returns_when_they_end_and_none_once_the_buffer_dropped_them():
    size, num_envs, horizon = 9, 2, 6  # 9 rows: the buffer keeps 4 whole iterations, and one env's row of a fifth
    buffer, state = mc_buffer(size)
    episodes = EpisodeRows(jnp.zeros(num_envs, jnp.int32), jnp.zeros((num_envs, horizon)),
                           jnp.zeros(num_envs, jnp.int32))
    # env 0: a 3-step episode that terminates, then a 5-step one cut by the time limit, whose first row the buffer
    # has dropped when it ends (env 1's last row took its slot); env 1: one 8-step episode, longer than the horizon:
    # it gets none.
    plan = [([1.0, 5.0], [0, 0], [0, 0]), ([2.0, 5.0], [0, 0], [0, 0]), ([3.0, 5.0], [1, 0], [1, 0]),
            ([-1.0, 5.0], [0, 0], [0, 0]), ([0.5, 5.0], [0, 0], [0, 0]), ([4.0, 5.0], [0, 0], [0, 0]),
            ([1.5, 5.0], [0, 0], [0, 0]), ([2.5, 5.0], [1, 1], [0, 0])]
    written = {}  # slot -> (env, iteration)
    for iteration, (reward, done, terminated) in enumerate(plan):
        slots = (state.current_index + jnp.arange(num_envs)) % size
        rows = MCTransition(*(jnp.zeros(num_envs) for _ in range(8)), mc_return=jnp.full(num_envs, -jnp.inf))
        rows = rows._replace(reward=jnp.asarray(reward))
        state = buffer.add(state, rows)
        state, episodes = record_episode_rows(state, episodes, FakeSteps(reward, done, terminated), GAMMA,
                                              size // num_envs)
        for env, slot in enumerate(np.asarray(slots)):
            written[int(slot)] = (env, iteration)
    mc = np.asarray(state.experience.mc_return[0])
    by_row = {where: mc[slot] for slot, where in written.items()}
    # Env 0's first episode (iterations 0-2) was overwritten by later rows; of its second, the last 4 rows remain.
    np.testing.assert_allclose([by_row[(0, i)] for i in range(4, 8)], expected([-1.0, 0.5, 4.0, 1.5, 2.5],
                                                                                False)[1:], rtol=1e-6)
    assert all(np.isneginf(by_row[(1, i)]) for i in range(4, 8))
    np.testing.assert_array_equal(np.asarray(episodes.length), [0, 0])


def test_rows_of_a_finished_episode_are_written_in_the_buffer_before_it_wraps():
    size, horizon = 16, 4
    buffer, state = mc_buffer(size)
    episodes = EpisodeRows(jnp.zeros(1, jnp.int32), jnp.zeros((1, horizon)), jnp.zeros(1, jnp.int32))
    rewards = [1.0, -2.0, 3.0]
    for step, reward in enumerate(rewards):
        rows = MCTransition(*(jnp.zeros(1) for _ in range(8)), mc_return=jnp.full(1, -jnp.inf))
        state = buffer.add(state, rows)
        last = step == len(rewards) - 1
        state, episodes = record_episode_rows(state, episodes, FakeSteps([reward], [last], [last]), GAMMA, size)
        if not last:
            assert np.isneginf(np.asarray(state.experience.mc_return[0, :step + 1])).all()  # no bound until it ends
    np.testing.assert_allclose(np.asarray(state.experience.mc_return[0, :3]), expected(rewards, True), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state.experience.mc_return[0, :3]), [1.0 - 1.8 + 2.43, -2.0 + 2.7, 3.0],
                               rtol=1e-6)  # by hand: G = r + 0.9 G'


def test_the_replay_loop_writes_each_finished_episodes_returns_into_its_rows():
    """Two pointmass envs with a 10-step time limit, a policy that stands still (no goal reached, so every episode
    is cut at 10 steps), 25 iterations: the first two episodes of each env carry returns_to_go of their rewards,
    the third (5 rows so far) none."""
    num_envs, limit, iterations = 2, 10, 25
    env = envs.make("pointmass")
    spec = envs.spec("pointmass", env)
    loop = ReplayLoop(num_envs=num_envs, total_steps=iterations * num_envs, batch_size=4, buffer_size=64,
                      learning_starts=10_000, episode_length=limit, eval_every=iterations * num_envs)
    trainer = make_replay_trainer(STILL, envs.training_env(env, num_envs, limit), None, loop, limit,
                                  example_transition(spec, True), random_warmup=False, returns_gamma=GAMMA,
                                  episode_length=limit)
    state = trainer.init(jax.random.key(0), None)
    state, _ = jax.jit(trainer.run_chunk)(state, None, jnp.int32(iterations))
    rows = state.env_state.buffer.experience
    reward, discount, mc = (np.asarray(field[0, :iterations * num_envs]).reshape(iterations, num_envs)
                            for field in (rows.reward, rows.discount, rows.mc_return))
    assert (discount == 1.0).all()  # no episode terminated: each was cut by the time limit
    for env_index in range(num_envs):
        for start in (0, limit):
            episode = slice(start, start + limit)
            np.testing.assert_allclose(mc[episode, env_index], expected(list(reward[episode, env_index]), False),
                                       rtol=1e-5, atol=1e-5)
        assert np.isneginf(mc[2 * limit:, env_index]).all()


def test_online_returns_need_an_mc_buffer_and_a_time_limit():
    env = envs.make("pointmass")
    spec = envs.spec("pointmass", env)
    loop = ReplayLoop(batch_size=4, buffer_size=8)
    with pytest.raises(ValueError, match="MCTransition"):
        make_replay_trainer(STILL, envs.training_env(env, 1, 10), None, loop, 10, example_transition(spec),
                            returns_gamma=GAMMA, episode_length=10)
