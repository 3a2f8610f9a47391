"""A logging policy that ships with its env (recsys's production policy) as a registry version: the incumbent a
pipeline starts from when the logs came from a system, not from a jaxrl run. It acts as the env logged, its
importance weights on its own logs are exactly 1, and a folder naming a policy the env lacks is refused."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.cli import main
from jaxrl.config import ConfigError
from jaxrl.deploy import bundle
from jaxrl.deploy.config import PipelineConfig
from jaxrl.deploy.registry import Registry
from jaxrl.deploy.stages import data
from jaxrl.deploy.stages.common import Context
from jaxrl.experiment import RunOptions
from tests.helpers import recsys_logs


def test_an_env_policy_version_acts_as_the_env_logs(tmp_path):
    registry = Registry(tmp_path / "registry", create=True)
    version = registry.add_once(bundle.from_env("recsys", "production"))
    assert registry.add_once(bundle.from_env("recsys", "production")) == version  # registered once
    assert registry.add_once(bundle.from_env("recsys-shifted", "production")) != version  # another env's
    policy = registry.load(version)
    assert policy.agent == bundle.ENV_POLICY and policy.config.name == "production" and policy.env == "recsys"
    env = envs.make("recsys")
    obs = jax.random.normal(jax.random.PRNGKey(0), (256, policy.env_spec.obs_size))
    key = jax.random.PRNGKey(1)
    action, info = policy.learner.act(policy.state, obs, key, False)
    logged_action, logged_info = env.production_policy(obs, key)
    np.testing.assert_array_equal(np.asarray(action), np.asarray(logged_action))
    np.testing.assert_array_equal(np.asarray(info["log_prob"]), np.asarray(logged_info["log_prob"]))
    log_probs = np.asarray(env.production_log_probs(obs))  # [B, N]
    mode, _ = policy.learner.act(policy.state, obs, key, True)
    np.testing.assert_array_equal(np.asarray(mode), log_probs.argmax(axis=1))
    other = jnp.arange(256, dtype=jnp.int32) % policy.env_spec.action_size
    np.testing.assert_allclose(np.asarray(policy.learner.log_prob(policy.state, obs, other)),
                               log_probs[np.arange(256), np.asarray(other)], rtol=1e-6)


def test_a_policy_folder_naming_a_policy_its_env_lacks_is_refused(tmp_path):
    bundle.save(bundle.from_env("recsys", "production"), tmp_path / "policy")
    document = json.loads((tmp_path / "policy" / bundle.POLICY_FILE).read_text())
    document["config"]["name"] = "greedy"
    (tmp_path / "policy" / bundle.POLICY_FILE).write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"policy\.json: environment 'recsys' has no logging policy 'greedy' "
                                          r"\(it ships: production\)"):
        bundle.load(tmp_path / "policy")
    with pytest.raises(ValueError, match="'pointmass' has no logging policy 'production' .it ships: none"):
        bundle.from_env("pointmass", "production")


def test_the_pipeline_starts_from_an_env_policy_named_env_colon_name(tmp_path):
    def context(incumbent: str) -> Context:
        config = PipelineConfig(env="recsys", incumbent=incumbent)
        return Context(config, tmp_path, Registry(tmp_path / "registry", create=True), None, {}, RunOptions())

    version, how = data.incumbent_version(context("env:production"))
    registry = Registry(tmp_path / "registry")
    assert registry.live == version and registry.load(version).agent == bundle.ENV_POLICY
    assert how == "the production policy that ships with recsys"
    assert data.incumbent_version(context("env:production"))[0] == version  # a resumed pipeline: the same version
    with pytest.raises(ConfigError, match="incumbent env:greedy: environment 'recsys' has no logging policy"):
        data.incumbent_version(context("env:greedy"))


def test_importance_weights_of_the_logging_policy_on_its_own_logs_are_one(tmp_path):
    """OPE of the incumbent on its own logs: each logged action's log-prob under the registry version equals the
    logged propensity, so IS and WIS give the logs' own discounted value (an independent computation)."""
    from jaxrl.ope.run import Options, run_ope

    dataset = Path(recsys_logs(tmp_path / "logs", 2048, 64, env="recsys-bandit"))
    registry = Registry(tmp_path / "registry", create=True)
    version = registry.add_once(bundle.from_env("recsys-bandit", "production"))
    options = Options(estimators=("fqe", "is", "wis"), num_resamples=20,
                      fqe_overrides={"hidden_sizes": [16], "num_updates": 20, "eval_every": 20})
    result = run_ope(dataset, [str(registry.version_dir(version))], options)
    (policy,) = result["policies"]
    assert policy["agent"] == bundle.ENV_POLICY
    for name in ("is", "wis"):
        assert policy["estimates"][name]["return"]["estimate"] == pytest.approx(result["behavior_value"], rel=1e-5)


def test_live_environments_take_item_actions_from_both_policies():
    from jaxrl.deploy.live import run_live

    production = bundle.from_env("recsys", "production")
    live = run_live(production, production, "recsys-shifted", 4, 6, 2, seed=0)
    np.testing.assert_array_equal(live.candidate_acts, [True, True, False, False])
    assert live.obs.shape == (6, 4, 21) and live.candidate_mode.shape == (6, 4)
    assert np.issubdtype(live.candidate_mode.dtype, np.integer)
    np.testing.assert_array_equal(live.candidate_mode, live.incumbent_mode)  # one policy, the same modes


def test_registry_add_takes_an_env_policy_by_hand(tmp_path, capsys):
    registry = tmp_path / "registry"
    assert main(["registry", "add", str(registry), "env:production", "--env", "recsys"]) == 0
    assert Registry(registry).load("v1").agent == bundle.ENV_POLICY and Registry(registry).live is None
    for argv, message in ((["env:production"], "name the env that ships it with --env"),
                          (["env:greedy", "--env", "recsys"], "has no logging policy 'greedy'")):
        assert main(["registry", "add", str(registry), *argv]) != 0
        assert message in capsys.readouterr().err
    assert Registry(registry).versions() == ["v1"]  # nothing added by the refused calls
