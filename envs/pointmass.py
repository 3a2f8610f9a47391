"""Point-mass navigation to a goal past circular hazards: a fast pure-JAX task with a safety cost.

The arena is the square [-1, 1]^2 with walls. Each reset draws a start in one side band (|x| in
[0.6, 0.9], |y| <= 0.6) and a goal in the opposite band; a column of three hazards at x = 0 blocks most
straight lines between them, with safe gaps between the hazards and above/below them. So the shortest
path is usually unsafe and a safe policy must detour.

- Action: 2-D force in [-1, 1]^2 (clipped). The mass is damped, top speed about 0.075 per step.
- Observation (15 floats): position, velocity / top speed, goal - position, hazard centers - position
  (3 x 2), signed distance to each hazard's edge (3; negative inside).
- Reward: 10 x (decrease of the distance to the goal) - 0.1 per step, plus 10 on reaching the goal
  (within 0.1), which terminates the episode. Measured over 1024 episodes: a uniform random policy scores
  about -9 (cost ~1.6); a straight-line controller +22.6 in ~24 steps (cost ~3.0; 78% of episodes enter a
  hazard); a controller detouring through the nearest gap +21.7 in ~33 steps (cost ~0). A plain PPO
  (32 envs x 64 steps, 150k env steps, ~10 s on 2 CPU cores) reaches +22.7 with cost ~2.8: the
  unconstrained optimum is unsafe.
- Cost: `info["cost"]` = 1.0 on a step that ends inside a hazard, else 0.0. Hazards do not stop the mass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from flax import struct

EPISODE_LENGTH = 100
ARENA_HALF_WIDTH = 1.0
DAMPING = 0.8  # fraction of velocity kept each step
FORCE_GAIN = 0.015  # velocity change per step at full force: top speed FORCE_GAIN / (1 - DAMPING)
GOAL_RADIUS = 0.1
PROGRESS_SCALE = 10.0
TIME_PENALTY = 0.1
GOAL_BONUS = 10.0
HAZARD_CENTERS = ((0.0, -0.5), (0.0, 0.0), (0.0, 0.5))
HAZARD_RADIUS = 0.18
SIDE_BAND = (0.6, 0.9)  # |x| range of starts and goals
HEIGHT_BAND = 0.6  # |y| bound of starts and goals


@struct.dataclass
class PointMassState:
    position: jax.Array  # [2]
    velocity: jax.Array  # [2]
    goal: jax.Array  # [2]


class PointMass(Env):
    """Reach a random goal across a column of hazards; see the module docstring for the task's scales."""

    def __init__(self, hazard_radius: float = HAZARD_RADIUS):
        self._hazard_centers = jnp.asarray(HAZARD_CENTERS, jnp.float32)  # [H, 2]
        self._hazard_radius = hazard_radius
        self._top_speed = FORCE_GAIN / (1.0 - DAMPING)

    def reset(self, rng: jax.Array) -> State:
        # One draw for everything: random bits dominate the cost of this tiny env (AutoReset resets every step).
        uniform = jax.random.uniform(rng, (5,), jnp.float32)
        side = jnp.where(uniform[0] < 0.5, 1.0, -1.0)
        position = _in_band(uniform[1:3]) * jnp.array([side, 1.0])
        goal = _in_band(uniform[3:5]) * jnp.array([-side, 1.0])
        sim = PointMassState(position, jnp.zeros(2, jnp.float32), goal)
        zero = jnp.zeros((), jnp.float32)
        return State(sim, self._observe(sim), zero, zero, {}, {"cost": zero})

    def step(self, state: State, action: jax.Array) -> State:
        sim = state.pipeline_state
        force = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        velocity = DAMPING * sim.velocity + FORCE_GAIN * force
        unclipped = sim.position + velocity
        position = jnp.clip(unclipped, -ARENA_HALF_WIDTH, ARENA_HALF_WIDTH)
        velocity = jnp.where(position == unclipped, velocity, 0.0)  # walls absorb the impact
        next_sim = sim.replace(position=position, velocity=velocity)

        distance = jnp.linalg.norm(sim.goal - sim.position)
        next_distance = jnp.linalg.norm(sim.goal - position)
        reached = (next_distance < GOAL_RADIUS).astype(jnp.float32)
        reward = PROGRESS_SCALE * (distance - next_distance) - TIME_PENALTY + GOAL_BONUS * reached
        cost = jnp.any(self._hazard_edge_distance(position) < 0.0).astype(jnp.float32)
        return state.replace(
            pipeline_state=next_sim,
            obs=self._observe(next_sim),
            reward=reward,
            done=reached,
            info={**state.info, "cost": cost},
        )

    def _hazard_edge_distance(self, position: jax.Array) -> jax.Array:
        return jnp.linalg.norm(self._hazard_centers - position, axis=-1) - self._hazard_radius  # [H]

    def _observe(self, sim: PointMassState) -> jax.Array:
        return jnp.concatenate(
            [
                sim.position,
                sim.velocity / self._top_speed,
                sim.goal - sim.position,
                (self._hazard_centers - sim.position).ravel(),
                self._hazard_edge_distance(sim.position),
            ]
        )

    @property
    def default_episode_length(self) -> int:
        return EPISODE_LENGTH

    @property
    def observation_size(self) -> int:
        return 6 + 3 * len(HAZARD_CENTERS)

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jax"


def _in_band(uniform: jax.Array) -> jax.Array:
    """Maps [0, 1)^2 to x in SIDE_BAND (positive side) and |y| <= HEIGHT_BAND."""
    low = jnp.array([SIDE_BAND[0], -HEIGHT_BAND])
    high = jnp.array([SIDE_BAND[1], HEIGHT_BAND])
    return low + uniform * (high - low)
