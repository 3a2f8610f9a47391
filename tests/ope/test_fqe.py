"""FQE (jaxrl/ope/fqe.py) against values known in closed form: a fixed policy on a deterministic chain, with a
cost at one state, trained by the shared offline loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.data.dataset import Dataset
from jaxrl.data.statistics import dataset_statistics
from jaxrl.loop_config import OfflineLoop
from jaxrl.ope import fqe
from jaxrl.train import make_offline_trainer
from jaxrl.types import EnvSpec, Learner, Transition

CHAIN = 5  # states 0..4; every step moves right with reward 1; the step out of state 4 terminates
GAMMA = 0.9
COST_STATE = 2
SPEC = EnvSpec(name="chain", obs_size=CHAIN, action_size=1, discrete=False, episode_length=100)


def chain_data(starts=(0, 2)) -> Transition:
    """One episode from each start state to the end; obs are one-hot, the logged action is 0.5."""
    rows = [(state, min(state + 1, CHAIN - 1), float(state == CHAIN - 1), episode)
            for episode, start in enumerate(starts) for state in range(start, CHAIN)]
    eye = np.eye(CHAIN, dtype=np.float32)
    states, next_states, terminal, ids = (np.array(column) for column in zip(*rows, strict=True))
    n = len(rows)
    return Transition(obs=eye[states], action=np.full((n, 1), 0.5, np.float32), reward=np.ones(n, np.float32),
                      cost=(states == COST_STATE).astype(np.float32), discount=1.0 - terminal.astype(np.float32),
                      next_obs=eye[next_states], behavior_log_prob=np.zeros(n, np.float32),
                      episode_id=ids.astype(np.int32))


def constant_policy(action: float) -> Learner:
    """A policy that always takes `action` (its state is empty)."""
    act = lambda state, obs, key, deterministic: (jnp.full((obs.shape[0], 1), action), {})
    return Learner(lambda key, hp: (), act, None)


def fit(data: Transition, config: fqe.Config, policy: Learner, spec: EnvSpec = SPEC, bounds=None):
    model = fqe.make_fqe(config, spec, policy, dataset_statistics(data), bounds)
    trainer = make_offline_trainer(model.learner, None, OfflineLoop(batch_size=config.batch_size), 1)
    state = trainer.init(jax.random.key(0), model.learner.hyperparams)
    state = state._replace(agent=fqe.attach_policy(state.agent, ()))
    state, metrics = jax.jit(trainer.run_chunk)(state, Dataset.from_numpy(data), jnp.int32(config.num_updates))
    return model, state.agent, metrics


def test_fqe_of_a_fixed_policy_on_a_deterministic_chain_matches_its_discounted_value_and_cost():
    data = chain_data()
    config = fqe.Config(gamma=GAMMA, hidden_sizes=(64, 64), num_updates=3000, batch_size=64, learning_rate=1e-3)
    model, state, _ = fit(data, config, constant_policy(0.5))
    obs = jnp.eye(CHAIN)
    values = model.q_values(state, obs, jnp.full((CHAIN, 1), 0.5))  # [5, 2]
    steps_left = CHAIN - np.arange(CHAIN)
    expected_return = (1 - GAMMA**steps_left) / (1 - GAMMA)  # sum of γ^j over the steps to the end
    expected_cost = np.where(np.arange(CHAIN) <= COST_STATE, GAMMA ** (COST_STATE - np.arange(CHAIN)), 0.0)
    np.testing.assert_allclose(values[:, 0], expected_return, atol=0.05)
    np.testing.assert_allclose(values[:, 1], expected_cost, atol=0.03)
    state_values = model.state_values(state, obs, jax.random.key(1), 4)
    np.testing.assert_allclose(state_values, values, atol=1e-5)  # the policy's action is the logged one


def test_fqe_is_unchanged_by_reward_normalization():
    data = chain_data()
    plain = fqe.Config(gamma=GAMMA, hidden_sizes=(64, 64), num_updates=3000, batch_size=64, learning_rate=1e-3,
                       normalize_rewards=False, normalize_observations=False)
    scaled = fqe.Config(**{**plain.__dict__, "normalize_rewards": True, "normalize_observations": True})
    obs, action = jnp.eye(CHAIN), jnp.full((CHAIN, 1), 0.5)
    a = fit(data, plain, constant_policy(0.5))
    b = fit(data, scaled, constant_policy(0.5))
    assert float(b[1].normalizer.reward_scale) != 1.0
    np.testing.assert_allclose(a[0].q_values(a[1], obs, action), b[0].q_values(b[1], obs, action), atol=0.08)


def self_loop(n: int = 64) -> Transition:
    """A state that loops onto itself with reward 1, never terminating: V = 1 / (1 - γ)."""
    return Transition(obs=np.ones((n, 1), np.float32), action=np.full((n, 1), 0.5, np.float32),
                      reward=np.ones(n, np.float32), cost=np.zeros(n, np.float32), discount=np.ones(n, np.float32),
                      next_obs=np.ones((n, 1), np.float32), behavior_log_prob=np.zeros(n, np.float32),
                      episode_id=np.zeros(n, np.int32))


def loop_value(overrides: dict, gamma: float, bounds=None) -> float:
    """FQE's Q on the self loop, its config as `jaxrl ope` builds it from `overrides`."""
    from jaxrl.ope.run import Options, fqe_config

    config = fqe_config(Options(fqe_overrides={"hidden_sizes": (32, 32), "batch_size": 32, "learning_rate": 1e-3,
                                               "normalize_observations": False, "normalize_rewards": False,
                                               **overrides}), gamma)
    model, state, _ = fit(self_loop(), config, constant_policy(0.5), SPEC._replace(obs_size=1), bounds)
    return float(model.q_values(state, jnp.ones((1, 1)), jnp.full((1, 1), 0.5))[0, 0])


def test_jaxrl_opes_target_rate_lets_fqe_converge_where_sacs_would_stop_short():
    """V = 100 at γ = 0.99. In 3000 updates the target network at SAC's 0.005 covers 1 - exp(-3000 x 0.005 x 0.01)
    = 14% of the way; `jaxrl ope`'s default rate (log 100 / (3000 x 0.01) = 0.154) all of it."""
    from jaxrl.ope.run import default_target_update_rate

    assert np.isclose(default_target_update_rate(0.99, 3000), 0.1535, atol=1e-4)
    assert np.isclose(default_target_update_rate(0.955, 20_000), 0.00512, atol=1e-5)  # pointmass: about SAC's
    assert default_target_update_rate(0.5, 20_000) == 0.005  # never below SAC's
    converged = loop_value({"num_updates": 3000}, 0.99)
    stopped = loop_value({"num_updates": 3000, "target_update_rate": 0.005}, 0.99)
    assert abs(converged - 100.0) < 3.0, converged
    assert stopped < 30.0, stopped  # about 14 by the same arithmetic: the estimates' old bias


def test_fqe_clips_its_targets_to_the_range_a_discounted_sum_of_the_data_can_take():
    """Bounds from a 10-step horizon: G_max = Σ_{t<10} 0.99^t = 9.56, so the clipped iteration's fixed point is
    Q = 1 + 0.99 x 9.56 = 10.47 instead of 100."""
    from jaxrl.ope.run import value_bounds

    bounds = value_bounds(self_loop(), horizon=10, gamma=0.99)
    g_max = (1 - 0.99**10) / (1 - 0.99)
    np.testing.assert_allclose(np.asarray(bounds), [[0.0, g_max], [0.0, 0.0]], rtol=1e-6)
    assert abs(loop_value({"num_updates": 3000}, 0.99, bounds) - (1 + 0.99 * g_max)) < 0.3
