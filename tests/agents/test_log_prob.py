"""The policies' densities at logged actions (`Learner.log_prob`, what importance sampling weighs by): the
squashed Gaussian's change of variables by hand, every stochastic policy's density integrating to the mass it puts
inside the action box, and agreement with the log-probs PPO's `act` reports for its own samples."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import agents
from jaxrl.networks import squashed_log_prob
from jaxrl.types import EnvSpec

SPEC_1D = EnvSpec(name="synthetic-1d", obs_size=3, action_size=1, discrete=False, episode_length=10)
# RLPD's and Cal-QL's densities are SAC's and CQL's code: checked in the slow suite only.
STOCHASTIC = ("ppo", "sac", "iql", "cql", pytest.param("rlpd", marks=pytest.mark.slow),
              pytest.param("calql", marks=pytest.mark.slow))
SMALL = {"hidden_sizes": (16, 16)}


def make(name: str, spec: EnvSpec = SPEC_1D):
    config = agents.config_class(name)(**({"policy_hidden_sizes": (16, 16), "value_hidden_sizes": (16, 16)}
                                           if name == "ppo" else SMALL))
    learner = agents.get(name).make_learner(config, spec)
    state = jax.jit(learner.init)(jax.random.key(3), learner.hyperparams)
    return learner, state


def test_squashed_log_prob_is_the_gaussian_density_of_atanh_a_minus_log_one_minus_a_squared():
    mean, std, action = 0.3, 0.5, 0.6
    raw = math.atanh(action)
    by_hand = (-0.5 * ((raw - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
               - math.log(1 - action**2))
    value = squashed_log_prob(jnp.array([[mean]]), jnp.log(jnp.array([[std]])), jnp.array([[action]]))
    np.testing.assert_allclose(value, [by_hand], rtol=1e-5)


def test_squashed_log_prob_stays_finite_at_the_action_bounds():
    value = squashed_log_prob(jnp.zeros((2, 1)), jnp.zeros((2, 1)), jnp.array([[1.0], [-1.0]]))
    assert bool(jnp.all(jnp.isfinite(value)))


@pytest.mark.parametrize("name", STOCHASTIC)
def test_the_density_integrates_to_the_policys_mass_inside_the_action_box(name):
    learner, state = make(name)
    obs = jax.random.normal(jax.random.key(0), (4, SPEC_1D.obs_size)) * 2.0
    grid = jnp.linspace(-1.0, 1.0, 40_001)[1:-1]  # [G]
    log_prob = jax.jit(jax.vmap(lambda a: learner.log_prob(state, obs, jnp.full((4, 1), a))))(grid)  # [G, 4]
    mass = np.trapezoid(np.exp(np.asarray(log_prob, np.float64)), np.asarray(grid), axis=0)  # [4]
    if name == "iql":  # an unsquashed Gaussian around tanh(mean): its mass inside [-1, 1] is below 1
        mean, _ = learner.act(state, obs, jax.random.key(0), True)
        std = float(jnp.exp(state.policy.params["params"]["log_std"][0]))
        phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
        expected = [phi((1 - m) / std) - phi((-1 - m) / std) for m in np.asarray(mean)[:, 0]]
    else:
        expected = np.ones(4)
    np.testing.assert_allclose(mass, expected, atol=2e-3)


def test_ppo_log_prob_at_its_own_samples_equals_what_act_reports():
    spec = EnvSpec(name="synthetic", obs_size=3, action_size=2, discrete=False, episode_length=10)
    learner, state = make("ppo", spec)
    obs = jax.random.normal(jax.random.key(1), (64, 3))
    action, info = learner.act(state, obs, jax.random.key(2), False)
    np.testing.assert_allclose(learner.log_prob(state, obs, action), info["log_prob"], rtol=1e-4, atol=1e-4)


def test_ppo_discrete_log_prob_is_the_categorical_log_softmax():
    spec = EnvSpec(name="synthetic-discrete", obs_size=3, action_size=4, discrete=True, episode_length=10)
    learner, state = make("ppo", spec)
    obs = jax.random.normal(jax.random.key(1), (8, 3))
    action, info = learner.act(state, obs, jax.random.key(2), False)
    np.testing.assert_allclose(learner.log_prob(state, obs, action), info["log_prob"], rtol=1e-6)
    total = sum(jnp.exp(learner.log_prob(state, obs, jnp.full((8,), a, jnp.int32))) for a in range(4))
    np.testing.assert_allclose(total, np.ones(8), rtol=1e-5)


def test_bc_is_deterministic_and_has_no_density():
    learner, _ = make("bc")
    assert learner.log_prob is None
