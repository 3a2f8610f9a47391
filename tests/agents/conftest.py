"""Synthetic batches, the learner-contract checks every offline agent's tests share, and small pointmass datasets
built as `jaxrl dataset make` builds them (for the learning tests)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl import collect as collect_lib
from jaxrl import tiers
from jaxrl.data import storage
from jaxrl.data.metadata import Metadata
from jaxrl.hyperparams import stack
from jaxrl.types import EnvSpec, Learner, Transition

SPEC = EnvSpec(name="synthetic", obs_size=3, action_size=2, discrete=False, episode_length=10)
DISCRETE_SPEC = EnvSpec(name="synthetic-discrete", obs_size=3, action_size=4, discrete=True, episode_length=10)
BATCH_SIZE = 32
SMALL = {"hidden_sizes": (16, 16), "batch_size": BATCH_SIZE, "num_updates": 100}  # keeps compiles quick


def make_batch(key: jax.Array, batch_size: int = BATCH_SIZE, spec: EnvSpec = SPEC) -> Transition:
    """Random transitions with continuous actions in [-1, 1] (int32 ones for a discrete spec) and a few terminal
    steps."""
    obs_key, action_key, reward_key, next_key, done_key = jax.random.split(key, 5)
    if spec.discrete:
        action = jax.random.randint(action_key, (batch_size,), 0, spec.action_size, jnp.int32)
    else:
        action = jax.random.uniform(action_key, (batch_size, spec.action_size), minval=-0.9, maxval=0.9)
    return Transition(
        obs=jax.random.normal(obs_key, (batch_size, spec.obs_size)),
        action=action,
        reward=jax.random.normal(reward_key, (batch_size,)),
        cost=jnp.zeros((batch_size,)),
        discount=(jax.random.uniform(done_key, (batch_size,)) > 0.1).astype(jnp.float32),
        next_obs=jax.random.normal(next_key, (batch_size, spec.obs_size)),
        behavior_log_prob=jnp.full((batch_size,), jnp.nan),
        episode_id=jnp.zeros((batch_size,), jnp.int32),
    )


def constant_output(params, value: float):
    """Params of an MLP-based network (MLP, ValueNet, QEnsemble: the output layer is the last Dense in flattening
    order) whose output is `value` everywhere: all zeros but the output bias."""
    zeroed = jax.tree.map(jnp.zeros_like, params)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(zeroed)
    last_bias = max(i for i, (path, _) in enumerate(leaves) if "bias" in jax.tree_util.keystr(path))
    leaves = [leaf if i != last_bias else jnp.full_like(leaf, value) for i, (_, leaf) in enumerate(leaves)]
    return jax.tree.unflatten(treedef, leaves)


class LearnerContract:
    """Checks of the Learner triple that hold for every offline agent; jitted functions are compiled once."""

    def __init__(self, learner: Learner, batch: Transition):
        self.learner = learner
        self.batch = batch
        self.init = jax.jit(lambda key: learner.init(key, learner.hyperparams))  # the config's hyperparameters
        self.update = jax.jit(learner.update)
        self.act = jax.jit(learner.act, static_argnums=3)

    def train(self, num_steps: int, key: jax.Array):
        """`num_steps` updates on the fixed batch; returns the initial and final states and per-step metrics.

        A host loop over the already-compiled update: cheaper in a test than compiling a scan.
        """
        init_key, update_key = jax.random.split(key)
        initial = state = self.init(init_key)
        history = []
        for step_key in jax.random.split(update_key, num_steps):
            state, metrics = self.update(state, self.batch, step_key)
            history.append(metrics)
        return initial, state, jax.tree.map(lambda *values: jnp.stack(values), *history)

    def check_act(self) -> None:
        state = self.init(jax.random.key(0))
        for deterministic in (True, False):
            action, info = self.act(state, self.batch.obs * 10, jax.random.key(1), deterministic)
            chex.assert_shape(action, self.batch.action.shape)
            assert isinstance(info, dict)
            assert bool(jnp.all(jnp.abs(action) <= 1.0)), f"action outside [-1, 1] (deterministic={deterministic})"

    def check_update_shapes(self) -> None:
        state = self.init(jax.random.key(0))
        new_state, metrics = self.update(state, self.batch, jax.random.key(1))
        chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)
        assert int(new_state.step) == 1
        assert metrics, "update reported no metrics"
        for name, value in metrics.items():
            chex.assert_shape(value, (), custom_message=name)
            assert bool(jnp.isfinite(value)), f"metric {name} is not finite"

    def check_vmap_matches_separate(self) -> None:
        """Runs with different seeds and hyperparameters in one vmapped program give the same numbers as each run
        alone: the hyperparameters are data in the state, not constants of the program."""
        learner, batch = self.learner, self.batch
        runs = 3
        init_keys = jax.random.split(jax.random.key(3), runs)
        update_keys = jax.random.split(jax.random.key(4), runs)
        # Every hyperparameter scaled down by 0%, 10%, 20%: all stay in range (rates, coefficients, discounts).
        hyperparams = [jax.tree.map(lambda v, run=run: v * (1 - 0.1 * run), learner.hyperparams) for run in range(runs)]
        one_run = jax.jit(lambda i, h, u: learner.update(learner.init(i, h), batch, u))
        vmapped = jax.jit(jax.vmap(one_run))(init_keys, stack(hyperparams), update_keys)
        for run in range(runs):
            separate = one_run(init_keys[run], hyperparams[run], update_keys[run])
            picked = jax.tree.map(lambda x, i=run: x[i], vmapped)
            chex.assert_trees_all_close(picked, separate, rtol=1e-5, atol=1e-5)
        # Same key, other hyperparameters: other parameters after one update.
        same_key = jax.jit(jax.vmap(one_run, in_axes=(None, 0, None)))(init_keys[0], stack(hyperparams), update_keys[0])
        params = [jax.tree.leaves(jax.tree.map(lambda x, i=run: x[i], same_key[0]._replace(hyperparams=())))
                  for run in range(2)]
        assert any(not np.allclose(a, b) for a, b in zip(*params, strict=True)), "hyperparameters had no effect"

    def check_deterministic(self) -> None:
        first = self.update(self.init(jax.random.key(5)), self.batch, jax.random.key(6))
        second = self.update(self.init(jax.random.key(5)), self.batch, jax.random.key(6))
        chex.assert_trees_all_equal(first, second)
        other_seed = self.update(self.init(jax.random.key(7)), self.batch, jax.random.key(6))
        pairs = zip(jax.tree.leaves(first[0]), jax.tree.leaves(other_seed[0]), strict=True)
        assert any(not np.allclose(a, b) for a, b in pairs), "a different init key gave the same state"


@pytest.fixture(scope="session")
def batch() -> Transition:
    return make_batch(jax.random.key(0))


@pytest.fixture(scope="session")
def learner_contract() -> type[LearnerContract]:
    """`learner_contract(learner, batch)`: the shared checks, bound to one learner."""
    return LearnerContract


@pytest.fixture(scope="session")
def spec() -> EnvSpec:
    return SPEC


@pytest.fixture(scope="session")
def discrete_spec() -> EnvSpec:
    return DISCRETE_SPEC


@pytest.fixture(scope="session")
def small() -> dict:
    """Config overrides for small, fast test networks."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def constant() -> type:
    """`constant(params, value)`: params of an MLP-based network that outputs `value` everywhere."""
    return constant_output


# PPO's pointmass config, 20 iterations of 2048 steps with a checkpoint after each: its return climbs from
# random (about -9) to expert (about +22), so there are checkpoints below and around the medium third.
PPO_OVERRIDES = ["total_steps=40960", "eval_every=2048", "eval_episodes=16"]
STEPS_PER_CHECKPOINT, NUM_ENVS = 2048, 16  # medium-replay: about 2k transitions from each checkpoint up to medium
MEDIUM_STEPS = 20_480  # medium: the medium policy's transitions


@pytest.fixture(scope="session")
def pointmass_tiers(tmp_path_factory) -> dict[str, str]:
    """Pointmass medium-replay and medium dataset folders, built as `jaxrl dataset make` builds those tiers (one
    short PPO run for both), with reference returns: uniform random play and PPO's best checkpoint."""
    env = "pointmass"
    out = tmp_path_factory.mktemp("pointmass-tiers")
    run_dir = tiers.train_ppo(env, out / "ppo_run", PPO_OVERRIDES, seed=0, wandb_mode="disabled")
    returns = tiers.checkpoint_returns(run_dir)
    random_return = tiers.evaluate_random(env, 32, seed=0)
    medium, _ = tiers.pick_policies(returns, random_return)
    spec = envs.spec(env, envs.make(env))
    metadata = Metadata(env_name=env, obs_size=spec.obs_size, action_size=spec.action_size, discrete=False,
                        random_return=random_return, expert_return=max(returns.values()))
    parts = []
    chunks = tiers.replay_policies(returns, medium)
    for chunk, (behavior, _) in zip(chunks, collect_lib.behaviors_from_run(run_dir, chunks), strict=True):
        parts.append(collect_lib.collect(behavior, env, STEPS_PER_CHECKPOINT, NUM_ENVS, seed=chunk))
    storage.save(out / "medium-replay", tiers.concatenate(parts), metadata)
    behavior, _ = collect_lib.behavior_from_run(run_dir, chunk=medium)
    storage.save(out / "medium", collect_lib.collect(behavior, env, MEDIUM_STEPS, NUM_ENVS, seed=medium), metadata)
    return {"medium-replay": str(out / "medium-replay"), "medium": str(out / "medium")}
