import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
# Not setdefault: whatever the developer's shell says, the suite (and every `jaxrl` subprocess it starts, which
# inherits this environment) writes nothing into a user's compilation cache and compiles every program afresh.
# tests/infra/test_compile_cache.py turns it on for its own subprocesses, in temporary folders.
os.environ["JAXRL_COMPILE_CACHE"] = "0"


# A short PPO run on pointmass (12 iterations of 2048 steps, a checkpoint after each: from near random to good)
# and a dataset of 16 envs x 400 steps (64 whole episodes of 100 steps) logged by its checkpoint 4: the policies
# and data of the off-policy evaluation and distribution-shift tests.
POINTMASS_PPO = ["total_steps=24576", "eval_every=2048", "eval_episodes=16"]
POINTMASS_LOGGER = 4


@pytest.fixture(scope="session")
def pointmass_logged(tmp_path_factory) -> dict:
    import envs
    from jaxrl import collect as collect_lib
    from jaxrl import tiers
    from jaxrl.data import storage
    from jaxrl.data.metadata import Metadata

    out = tmp_path_factory.mktemp("pointmass-logged")
    run_dir = tiers.train_ppo("pointmass", out / "ppo_run", POINTMASS_PPO, seed=0, wandb_mode="disabled")
    behavior, _ = collect_lib.behavior_from_run(run_dir, chunk=POINTMASS_LOGGER)
    spec = envs.spec("pointmass", envs.make("pointmass"))
    metadata = Metadata(env_name="pointmass", obs_size=spec.obs_size, action_size=spec.action_size, discrete=False,
                        time_limit=spec.episode_length)
    storage.save(out / "data", collect_lib.collect(behavior, "pointmass", 6400, 16, seed=1), metadata)
    return {"run": str(run_dir), "data": out / "data", "out": out}
