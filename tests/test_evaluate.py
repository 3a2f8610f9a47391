"""The evaluator: episode returns, costs and lengths on a scripted env, with early ends, time limits and max_steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.evaluate import make_evaluator
from jaxrl.types import Learner
from tests.envs.counting import CountingEnv


def stop_at_step_learner() -> Learner:
    """A policy whose state is each env's chosen episode length: it ends the episode on exactly that step.

    Stochastic actions end every episode at once, so an evaluator that does not act deterministically shows.
    """

    def act(last_steps, obs, key, deterministic):
        if not deterministic:
            return jnp.ones_like(last_steps), {}
        return (obs[:, 0] + 1 == last_steps).astype(jnp.float32), {}

    return Learner(init=None, act=act, update=None)


# Three envs that end after 2 and 4 steps and never (100 > the time limit of 6).
LAST_STEPS = jnp.array([2.0, 4.0, 100.0])


@pytest.mark.parametrize("max_steps, lengths", [
    (100, [2, 4, 6]),  # the third episode is cut by the env's time limit
    (5, [2, 4, 5]),  # ... or sooner by the evaluator's max_steps
])
def test_evaluator_totals_each_episode_up_to_its_end(max_steps, lengths):
    env = envs.eval_env(CountingEnv(), num_envs=3, episode_length=6)
    evaluate = jax.jit(make_evaluator(stop_at_step_learner(), env, max_steps))
    metrics = evaluate(LAST_STEPS, jax.random.key(0))
    returns = [length * (length + 1) / 2 for length in lengths]  # 1 + 2 + ... + length
    np.testing.assert_allclose(metrics["eval/return"], np.mean(returns), rtol=1e-6)
    np.testing.assert_allclose(metrics["eval/return_std"], np.std(returns), rtol=1e-6)
    np.testing.assert_allclose(metrics["eval/cost"], 0.5 * np.mean(lengths), rtol=1e-6)
    np.testing.assert_allclose(metrics["eval/length"], np.mean(lengths), rtol=1e-6)


def test_evaluator_with_every_episode_ended_early():
    env = envs.eval_env(CountingEnv(), num_envs=2, episode_length=1000)
    metrics = jax.jit(make_evaluator(stop_at_step_learner(), env, 1000))(jnp.array([1.0, 3.0]), jax.random.key(0))
    # Returns 1 and 1 + 2 + 3, lengths 1 and 3: nothing is counted after both episodes have ended.
    expected = {"eval/return": 3.5, "eval/return_std": 2.5, "eval/cost": 1.0, "eval/length": 2.0}
    for name, value in expected.items():
        np.testing.assert_allclose(metrics[name], value, rtol=1e-6, err_msg=name)
