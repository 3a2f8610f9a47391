"""Point-mass navigation: hazard cost, goal reward and termination, and solvability by a simple controller."""

import jax
import jax.numpy as jnp
import pytest

import envs
from envs import pointmass


def _state_at(position, goal=(0.8, 0.0)):
    env = envs.make("pointmass")
    state = env.reset(jax.random.PRNGKey(0))
    sim = pointmass.PointMassState(jnp.asarray(position, jnp.float32), jnp.zeros(2), jnp.asarray(goal, jnp.float32))
    return env, state.replace(pipeline_state=sim)


@pytest.mark.parametrize(
    ("position", "expected_cost"),
    [
        ((0.0, 0.0), 1.0),
        ((0.05, 0.5), 1.0),
        ((0.0, -0.4), 1.0),
        ((0.0, 0.25), 0.0),  # the gap between two hazards
        ((-0.8, 0.0), 0.0),
        ((0.0, 0.9), 0.0),  # above the column
    ],
)
def test_cost_is_one_inside_a_hazard_and_zero_outside(position, expected_cost):
    env, state = _state_at(position)
    next_state = env.step(state, jnp.zeros(2))
    assert float(next_state.info["cost"]) == expected_cost
    edge_distances = next_state.obs[-3:]
    assert bool(jnp.any(edge_distances < 0)) == bool(expected_cost)


def test_reaching_the_goal_pays_the_bonus_and_terminates():
    env, state = _state_at((0.75, 0.0), goal=(0.8, 0.0))
    next_state = env.step(state, jnp.array([1.0, 0.0]))
    assert float(next_state.done) == 1.0
    assert float(next_state.reward) > pointmass.GOAL_BONUS - 1.0
    far_env, far_state = _state_at((-0.8, 0.0))
    assert float(far_env.step(far_state, jnp.zeros(2)).done) == 0.0


def test_moving_toward_the_goal_is_rewarded_and_away_penalized():
    env, state = _state_at((-0.8, 0.0), goal=(0.8, 0.0))
    toward = env.step(state, jnp.array([1.0, 0.0])).reward
    away = env.step(state, jnp.array([-1.0, 0.0])).reward
    assert float(toward) > 0.0 > float(away)


def test_walls_keep_the_mass_in_the_arena():
    env, state = _state_at((0.99, 0.99))
    for _ in range(10):
        state = env.step(state, jnp.ones(2))
    assert bool(jnp.all(jnp.abs(state.pipeline_state.position) <= pointmass.ARENA_HALF_WIDTH))


def test_starts_and_goals_lie_on_opposite_sides_outside_hazards():
    env = envs.make("pointmass")
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 512))
    position, goal = states.pipeline_state.position, states.pipeline_state.goal
    assert bool(jnp.all(jnp.sign(position[:, 0]) == -jnp.sign(goal[:, 0])))
    assert bool(jnp.all(jnp.abs(position[:, 0]) >= pointmass.SIDE_BAND[0]))
    assert bool(jnp.all(states.obs[:, -3:] > 0))


def test_straight_line_controller_reaches_goals_but_often_crosses_hazards():
    env = envs.eval_env(envs.make("pointmass"), num_envs=256, episode_length=pointmass.EPISODE_LENGTH)

    def controller(obs):  # PD toward the goal: obs = position, velocity / top speed, goal - position, ...
        return jnp.clip(8.0 * obs[:, 4:6] - 1.5 * obs[:, 2:4], -1.0, 1.0)

    @jax.jit
    def evaluate(key):
        def step(carry, _):
            state, alive = carry
            state = env.step(state, controller(state.obs))
            finished = alive * state.done
            return (state, alive - finished), (finished, state.info["truncation"], state.info["episode_cost"])

        state = env.reset(key)
        return jax.lax.scan(step, (state, jnp.ones(256)), None, pointmass.EPISODE_LENGTH)[1]

    finished, truncation, episode_cost = evaluate(jax.random.PRNGKey(0))
    reached = (finished * (1 - truncation)).sum() / 256
    unsafe = (finished * (episode_cost > 0)).sum() / 256
    assert float(reached) > 0.95
    assert float(unsafe) > 0.5
