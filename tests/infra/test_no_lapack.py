"""No program a run compiles calls LAPACK: jaxlib 0.10.2's CPU LAPACK kernels deadlock when as many run at once
as the machine has cores (jaxrl/initializers.py; scripts/repro_lapack_deadlock.py reproduces it)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl import agents
from jaxrl.config import build_config
from jaxrl.data.dataset import Dataset
from jaxrl.experiment import example_transition, make_eval_env
from jaxrl.infra.runner import chunk_over_seeds, evaluate_over_seeds, repeat_hyperparams
from jaxrl.train import make_offline_trainer, make_online_trainer, make_replay_trainer
from jaxrl.types import Transition

SMALL = {"ppo": {"num_envs": 4, "unroll_length": 4, "num_minibatches": 2},
         "iql": {"batch_size": 8}, "cql": {"batch_size": 8}, "bc": {"batch_size": 8},
         "sac": {"num_envs": 4, "batch_size": 8, "buffer_size": 64},
         "rlpd": {"num_envs": 4, "batch_size": 8, "buffer_size": 64, "updates_per_step": 2}}


def synthetic_dataset(obs_size: int, action_size: int, size: int = 32) -> Dataset:
    rng = np.random.default_rng(0)
    floats = lambda *shape: rng.normal(size=(size, *shape)).astype(np.float32)
    return Dataset.from_numpy(Transition(floats(obs_size), np.tanh(floats(action_size)), floats(), floats(),
                                         np.ones(size, np.float32), floats(obs_size), floats(),
                                         np.zeros(size, np.int32)))


def programs(agent: str):
    """(name, lowered program) of everything a 2-seed run of `agent` on pendulum compiles."""
    config = build_config(agents.get(agent).Config, SMALL[agent])
    eval_env, spec, max_steps = make_eval_env("pendulum", config, 2)
    learner = agents.get(agent).make_learner(config, spec)
    if agent in ("sac", "rlpd"):  # the replay loop; rlpd with a dataset mixed in
        train_env = envs.training_env(envs.make("pendulum"), config.num_envs, spec.episode_length, 1)
        data = synthetic_dataset(spec.obs_size, spec.action_size) if agent == "rlpd" else None
        trainer = make_replay_trainer(learner, train_env, eval_env, config, max_steps, example_transition(spec))
    elif agent in agents.ONLINE:
        train_env = envs.training_env(envs.make("pendulum"), config.num_envs, spec.episode_length, 1)
        trainer, data = make_online_trainer(learner, train_env, eval_env, config, max_steps), None
    else:
        trainer, data = make_offline_trainer(learner, eval_env, config, max_steps), synthetic_dataset(
            spec.obs_size, spec.action_size)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    hyperparams = repeat_hyperparams(trainer.hyperparams, 2)
    init = jax.jit(jax.vmap(trainer.init))
    state = jax.eval_shape(init, keys, hyperparams)
    return {"init": init.lower(keys, hyperparams),
            "chunk": jax.jit(chunk_over_seeds(trainer, None, 2)).lower(state, data, jnp.int32(1)),
            "evaluate": jax.jit(evaluate_over_seeds(trainer, None, 2)).lower(state.agent, keys)}


@pytest.mark.parametrize("agent", ["ppo", "iql", "cql", "bc", "sac", "rlpd"])
def test_no_program_of_a_run_calls_lapack(agent):
    for name, lowered in programs(agent).items():
        assert "lapack" not in lowered.as_text(), f"{agent}'s {name} program calls LAPACK"
