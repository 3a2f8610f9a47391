"""Off-policy evaluation of discrete policies on `recsys-bandit` (one recommendation per episode), whose logs carry
the production policy's exact propensities: there the importance-sampling family is unbiased, so its intervals
must hold the true value measured by rollouts; FQE's exact expectation over the items must land near it too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxrl.ope import fqe
from jaxrl.ope.run import Options, run_ope
from tests.helpers import recsys_logs

ENV = "recsys-bandit"


@pytest.fixture(scope="module")
def bandit(tmp_path_factory) -> dict:
    """20k logged recommendations (20k one-step episodes) of the production policy."""
    folder = tmp_path_factory.mktemp("recsys-bandit")
    return {"data": Path(recsys_logs(folder / "logs", 20_000, 500, env=ENV)), "out": folder}


def test_importance_sampling_holds_the_true_value_of_a_discrete_policy(bandit, tmp_path):
    """The target: BC trained briefly on the logs, a stochastic policy near but not at the logging one (its
    importance weights vary), with log-probs."""
    run_dir = tmp_path / "bc"
    train_args = {"num_updates": 300, "eval_every": 300, "eval_episodes": 8, "hidden_sizes": (32, 32),
                  "batch_size": 256}
    from jaxrl import agents
    from jaxrl.config import build_config
    from jaxrl.experiment import RunOptions, RunSpec, execute

    spec = RunSpec("bc", ENV, (0,), build_config(agents.get("bc").Config, train_args), str(bandit["data"]))
    execute(spec, run_dir, RunOptions(progress=False))
    options = Options(estimators=("fqe", "is", "wis"), true_returns=10_000, num_resamples=100,
                      fqe_overrides={"num_updates": 600, "hidden_sizes": [32, 32], "batch_size": 256})
    result = run_ope(bandit["data"], [str(run_dir)], options)
    assert result["gamma"] == pytest.approx(0.01)  # one-step episodes
    policy = result["policies"][0]
    truth = policy["true_return"]
    assert 5.0 < policy["effective_sample_size"] < 20_000  # weights vary: the target is not the logging policy
    # Unbiased (IS) and consistent (WIS): within 3.5 standard errors of the rollouts' mean, the estimate's error
    # read off its 95% bootstrap interval and the truth's from its rollouts; the same for the unsafe rate (cost).
    for name in ("is", "wis"):
        for signal, true_value, true_stderr in (("return", truth, policy["true_return_stderr"]),
                                                ("cost", policy["true_cost"], 0.0)):
            interval = policy["estimates"][name][signal]
            stderr = (interval["high"] - interval["low"]) / (2 * 1.96)
            assert abs(interval["estimate"] - true_value) < 3.5 * np.hypot(stderr, true_stderr), (
                name, signal, interval, true_value)
    assert policy["estimates"]["fqe"]["return"]["estimate"] == pytest.approx(truth, abs=0.05)


def test_fqe_on_discrete_actions_is_exact_over_the_items():
    """V(s) = Σ_a π(a|s) Q(s, a): for a uniform policy, the mean of Q over the items."""
    import jax
    import jax.numpy as jnp

    import envs
    from jaxrl.types import Learner

    spec = envs.spec(ENV, envs.make(ENV))
    uniform = Learner(lambda key, hp: (), lambda state, obs, key, det: (jnp.zeros(obs.shape[0], jnp.int32), {}),
                      None, log_prob=lambda state, obs, action: jnp.full(obs.shape[:1], -np.log(200.0)))
    config = fqe.Config(hidden_sizes=(8,), normalize_observations=False, normalize_rewards=False)
    model = fqe.make_fqe(config, spec, uniform, None)
    state = fqe.attach_policy(model.learner.init(jax.random.key(0), model.learner.hyperparams), ())
    obs = jax.random.normal(jax.random.key(1), (5, spec.obs_size))
    every = jnp.stack([model.q_values(state, obs, jnp.full((5,), a, jnp.int32)) for a in range(200)])  # [N, B, 2]
    np.testing.assert_allclose(model.state_values(state, obs, jax.random.key(2), 16), every.mean(axis=0),
                               rtol=1e-4, atol=1e-5)
