import pytest

from jaxrl.agents import ppo
from jaxrl.config import ConfigError, build_config, parse_overrides, resolve_config


def test_unknown_key_is_named_with_the_valid_keys():
    with pytest.raises(ConfigError) as error:
        build_config(ppo.Config, {"num_env": 8})
    message = str(error.value)
    assert "num_env" in message and "valid keys" in message and "num_envs" in message


def test_ill_typed_key_is_named_with_the_expected_type():
    with pytest.raises(ConfigError, match="'num_envs': expected an integer, got 'many'"):
        build_config(ppo.Config, {"num_envs": "many"})
    with pytest.raises(ConfigError, match="'anneal_lr': expected true or false"):
        build_config(ppo.Config, {"anneal_lr": 3})


def test_out_of_range_value_names_the_key():
    with pytest.raises(ConfigError, match="'gamma' must be in"):
        build_config(ppo.Config, {"gamma": 1.5})


def test_yaml_then_set_later_values_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("num_envs: 8\nlearning_rate: 1e-3\npolicy_hidden_sizes: [16, 16]\n")
    config = resolve_config(ppo.Config, path, ["num_envs=16", "value_hidden_sizes=[32]"])
    assert config.num_envs == 16
    assert config.learning_rate == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string: still a number
    assert config.policy_hidden_sizes == (16, 16) and config.value_hidden_sizes == (32,)


def test_bad_yaml_key_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="bad.yaml: unknown key"):
        resolve_config(ppo.Config, path, [])


def test_set_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["num_envs"])
