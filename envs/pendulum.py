"""Pendulum swing-up with a continuous torque: gymnax's Pendulum-v1 through the adapter.

Action: one torque in [-1, 1], rescaled to gymnax's [-2, 2]. Observation: cos(theta), sin(theta), theta_dot.
Reward per step: -(theta^2 + 0.1 theta_dot^2 + 0.001 torque^2), in [-16.3, 0]; over the 200-step
episode a random policy scores about -1200, a good swing-up policy about -150 (gym's usual scale).
"""

from __future__ import annotations

import gymnax

from envs.gymnax_adapter import GymnaxAdapter

EPISODE_LENGTH = 200


class Pendulum(GymnaxAdapter):
    """Never terminates; TimeLimit cuts it at EPISODE_LENGTH steps."""

    def __init__(self):
        env, params = gymnax.make("Pendulum-v1")
        super().__init__(env, params.replace(max_steps_in_episode=EPISODE_LENGTH), name="pendulum")
