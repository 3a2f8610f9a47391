"""Wrappers: time limits vs termination, episode statistics, auto-reset, action repeat and batching."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.wrappers import ActionRepeat, AutoReset, EpisodeStats, TimeLimit, Vmap, VmapAutoReset

from .counting import CountingEnv


class NeverDoneEnv(CountingEnv):
    """Like Brax's halfcheetah: its step never writes `done`, so it returns the done it received."""

    def step(self, state, action):
        obs = state.pipeline_state.at[0].add(1.0)
        return state.replace(pipeline_state=obs, obs=obs, reward=obs[0])


def _rollout(env, actions, key=0):
    """Scripted rollout: a list of per-step states after each action."""
    state = env.reset(jax.random.PRNGKey(key))
    states = []
    for action in actions:
        state = env.step(state, jnp.float32(action))
        states.append(state)
    return state, states


def test_time_limit_truncates_at_the_limit_but_not_on_termination():
    env = TimeLimit(CountingEnv(), episode_length=3)
    _, states = _rollout(env, [0, 0, 0, 0, 1, 0, 0, 1])
    done = [float(s.done) for s in states]
    truncation = [float(s.info["truncation"]) for s in states]
    steps = [int(s.info["steps"]) for s in states]
    assert done == [0, 0, 1, 0, 1, 0, 0, 1]
    assert truncation == [0, 0, 1, 0, 0, 0, 0, 0]  # the last episode terminates exactly at the limit
    assert steps == [1, 2, 3, 1, 2, 1, 2, 3]


def test_episode_stats_hold_finished_episode_totals_on_done_steps():
    env = EpisodeStats(TimeLimit(CountingEnv(), episode_length=4))
    actions = [0, 1, 0, 0, 0, 0, 0, 0, 1]  # episodes: 2 steps (terminated), 4 (truncated), 3 (terminated)
    _, states = _rollout(env, actions)
    done = np.array([float(s.done) for s in states])
    returns = np.array([float(s.info["episode_return"]) for s in states])
    lengths = np.array([int(s.info["episode_length"]) for s in states])
    costs = np.array([float(s.info["episode_cost"]) for s in states])
    np.testing.assert_array_equal(done, [0, 1, 0, 0, 0, 1, 0, 0, 1])
    # The raw env's step counter never resets (no AutoReset), so rewards run 1..9.
    np.testing.assert_allclose(returns[done == 1], [1 + 2, 3 + 4 + 5 + 6, 7 + 8 + 9])
    np.testing.assert_array_equal(lengths[done == 1], [2, 4, 3])
    np.testing.assert_allclose(costs[done == 1], [1.0, 2.0, 1.5])
    assert returns[2] == 3.0 and lengths[2] == 1  # restarted from zero after the done step
    assert np.sum(done * returns) / np.sum(done) == (3 + 18 + 24) / 3


def test_auto_reset_returns_a_fresh_initial_state_and_keeps_the_finished_step():
    env = AutoReset(EpisodeStats(TimeLimit(CountingEnv(), episode_length=10)))
    _, states = _rollout(env, [0, 0, 1, 0, 1])
    after_first_done, after_second_done = states[2], states[4]
    for state in (after_first_done, after_second_done):
        assert float(state.done) == 1.0
        assert float(state.obs[0]) == 0.0  # the counter restarted: obs is a reset obs
    assert float(after_first_done.reward) == 3.0
    assert float(after_first_done.info["episode_return"]) == 6.0
    assert int(after_first_done.info["episode_length"]) == 3
    assert float(states[3].reward) == 1.0 and int(states[3].info["steps"]) == 1
    assert float(after_first_done.info["truncation"]) == 0.0
    starts = {float(s.obs[1]) for s in states}
    assert len(starts) == 3  # two resets, each drawing a new random start


def test_action_repeat_sums_reward_and_cost_until_termination():
    env = ActionRepeat(CountingEnv(), repeat=3)
    state = env.reset(jax.random.PRNGKey(0))
    state = env.step(state, jnp.float32(0))
    assert float(state.reward) == 1 + 2 + 3 and float(state.info["cost"]) == 1.5 and float(state.done) == 0
    state = env.step(state, jnp.float32(1))
    assert float(state.reward) == 4 and float(state.info["cost"]) == 0.5 and float(state.done) == 1


def test_training_env_counts_episode_length_in_env_steps_with_action_repeat():
    env = envs.training_env(CountingEnv(), num_envs=2, episode_length=10, action_repeat=3)
    state = env.reset(jax.random.PRNGKey(0))
    for _ in range(4):  # ceil(10 / 3) agent steps
        state = env.step(state, jnp.zeros(2))
    np.testing.assert_array_equal(state.done, [1, 1])
    np.testing.assert_array_equal(state.info["truncation"], [1, 1])
    np.testing.assert_array_equal(state.obs[:, 0], [0, 0])


def test_vmap_splits_the_key_and_batches_every_field():
    env = Vmap(CountingEnv(), num_envs=5)
    state = env.reset(jax.random.PRNGKey(0))
    chex.assert_shape(state.obs, (5, 2))
    assert len(set(np.asarray(state.obs[:, 1]).tolist())) == 5
    state = env.step(state, jnp.array([0, 1, 0, 1, 0], jnp.float32))
    np.testing.assert_array_equal(state.done, [0, 1, 0, 1, 0])


def test_training_env_under_jit_and_scan_reports_consistent_statistics():
    num_envs, steps = 8, 250
    env = envs.training_env(envs.make("pointmass"), num_envs, episode_length=100)

    @jax.jit
    def rollout(key):
        def step(state, key):
            state = env.step(state, jax.random.uniform(key, (num_envs, 2), minval=-1.0, maxval=1.0))
            return state, (state.done, state.info["truncation"], state.info["episode_length"], state.info["steps"])

        state = env.reset(key)
        chex.assert_shape([state.reward, state.done, state.info["cost"], state.info["episode_return"]], (num_envs,))
        return jax.lax.scan(step, state, jax.random.split(key, steps))[1]

    done, truncation, episode_length, time_steps = rollout(jax.random.PRNGKey(0))
    assert float(done.sum()) >= 2 * num_envs
    np.testing.assert_array_equal(episode_length, time_steps)  # both restart together after every done
    assert bool(jnp.all(truncation <= done))
    assert bool(jnp.all(jnp.where(truncation > 0, episode_length == 100, True)))


def test_eval_env_does_not_reset_after_done():
    env = envs.eval_env(CountingEnv(), num_envs=2, episode_length=2)
    state = env.reset(jax.random.PRNGKey(0))
    for _ in range(3):
        state = env.step(state, jnp.zeros(2))
    np.testing.assert_array_equal(state.obs[:, 0], [3, 3])  # kept stepping the same episode


def test_episodes_of_an_env_that_never_sets_done_end_only_at_the_time_limit():
    env = envs.training_env(NeverDoneEnv(), num_envs=2, episode_length=3)
    state = env.reset(jax.random.PRNGKey(0))
    done, truncation = [], []
    for _ in range(9):
        state = env.step(state, jnp.zeros(2))
        done.append(state.done.tolist())
        truncation.append(state.info["truncation"].tolist())
    assert done == [[0, 0], [0, 0], [1, 1]] * 3  # not done on every step after the first truncation
    assert truncation == done  # each end is a truncation, never a termination


def test_vmap_auto_reset_steps_exactly_like_vmapped_auto_reset():
    num_envs = 8
    inner = EpisodeStats(TimeLimit(envs.make("pointmass"), 30))
    batched, reference = VmapAutoReset(inner, num_envs), Vmap(AutoReset(inner), num_envs)

    @jax.jit
    def rollout(key):
        def step(states, key):
            action = jax.random.uniform(key, (num_envs, 2), minval=-1.0, maxval=1.0)
            states = tuple(env.step(state, action) for env, state in zip((batched, reference), states, strict=True))
            return states, states

        states = (batched.reset(key), reference.reset(key))
        return jax.lax.scan(step, states, jax.random.split(key, 100))[1]

    ours, theirs = rollout(jax.random.PRNGKey(1))
    assert float(theirs.done.sum()) > num_envs  # episodes ended (terminated and truncated) along the way
    chex.assert_trees_all_equal(ours, theirs)
