"""Off-policy evaluation, side by side: FQE updates/s, ours against d3rlpy's FQE on the same halfcheetah-shaped
data (batch 256, 2x256 networks, an IQL policy of the same size as the evaluated policy); our bootstrap of
1000 resamples over 1M transitions (1000 episodes of 1000 steps); and, where the offline study's pointmass data
exists, the whole `jaxrl ope` of 5 PPO checkpoints on pointmass medium as a process (imports and compiles
included).

Usage: .venv/bin/python scripts/bench_ope.py [--window 20] [--skip-d3rlpy] [--skip-command]
d3rlpy is optional (see docs/benchmarks.md). Run it alone on the machine (e.g. under `flock /tmp/jaxrl-bench.lock`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import best_rate, compile_timed, noise
from bench_offline import ACTION_SIZE, BATCH_SIZE, HIDDEN_SIZES, OBS_SIZE, synthetic_dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxrl.agents import iql  # noqa: E402
from jaxrl.data.dataset import Dataset  # noqa: E402
from jaxrl.data.statistics import dataset_statistics  # noqa: E402
from jaxrl.loop_config import OfflineLoop  # noqa: E402
from jaxrl.ope import estimators as est  # noqa: E402
from jaxrl.ope import fqe  # noqa: E402
from jaxrl.train import make_offline_trainer  # noqa: E402
from jaxrl.types import EnvSpec  # noqa: E402

UPDATES_PER_CALL = 500  # our FQE updates per timed call (one compiled loop)
D3RLPY_UPDATES_PER_CALL = 50
DATASET_SIZE = 1_000_000
EPISODE_LENGTH = 1000
POINTMASS_CHECKPOINTS = (1, 10, 20, 30, 40)


def our_fqe_rate(data, window: float) -> dict:
    spec = EnvSpec("halfcheetah-shaped", OBS_SIZE, ACTION_SIZE, False, EPISODE_LENGTH)
    statistics = dataset_statistics(data)
    policy = iql.make_learner(iql.Config(hidden_sizes=HIDDEN_SIZES), spec, statistics)
    config = fqe.Config(hidden_sizes=HIDDEN_SIZES, batch_size=BATCH_SIZE)
    model = fqe.make_fqe(config, spec, policy, statistics)
    trainer = make_offline_trainer(model.learner, None, OfflineLoop(batch_size=BATCH_SIZE), 1)
    state = trainer.init(jax.random.key(0), model.learner.hyperparams)
    state = state._replace(agent=fqe.attach_policy(state.agent, policy.init(jax.random.key(1), policy.hyperparams)))
    dataset = Dataset.from_numpy(data)
    compiled, compile_seconds = compile_timed(lambda s: trainer.run_chunk(s, dataset, jnp.int32(UPDATES_PER_CALL)),
                                              state)
    timing = best_rate(lambda: jax.block_until_ready(compiled(state)), UPDATES_PER_CALL, window)
    return {**timing, "compile_seconds": compile_seconds}


def d3rlpy_worker(window: float) -> None:
    """d3rlpy's FQE updates/s (sample a batch, update), printed as one JSON line."""
    import d3rlpy

    data, last_step = synthetic_dataset(DATASET_SIZE, seed=0)
    dataset = d3rlpy.dataset.MDPDataset(observations=data.obs, actions=data.action, rewards=data.reward,
                                        terminals=np.zeros_like(data.reward), timeouts=last_step.astype(np.float32))
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(HIDDEN_SIZES))
    policy = d3rlpy.algos.IQLConfig(batch_size=BATCH_SIZE, actor_encoder_factory=encoder,
                                    critic_encoder_factory=encoder, value_encoder_factory=encoder).create("cpu:0")
    policy.build_with_dataset(dataset)
    evaluator = d3rlpy.ope.FQE(algo=policy, config=d3rlpy.ope.FQEConfig(batch_size=BATCH_SIZE,
                                                                        encoder_factory=encoder), device="cpu:0")
    evaluator.build_with_dataset(dataset)

    def fit_loop():
        for _ in range(D3RLPY_UPDATES_PER_CALL):
            evaluator.update(dataset.sample_transition_batch(BATCH_SIZE))

    print(json.dumps(best_rate(fit_loop, D3RLPY_UPDATES_PER_CALL, window)))


def d3rlpy_rate(window: float) -> dict | None:
    try:
        import d3rlpy  # noqa: F401
    except Exception as error:  # ImportError, or a broken torch install
        print(f"d3rlpy skipped: {type(error).__name__}: {error}")
        return None
    child = subprocess.run([sys.executable, __file__, "--d3rlpy-worker", "--window", str(window)],
                           stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def bootstrap_seconds(data) -> dict:
    """Seconds of WDR's bootstrap (1000 resamples) over the data as 1000 episodes of 1000 steps, compile apart."""
    shape = (DATASET_SIZE // EPISODE_LENGTH, EPISODE_LENGTH)
    rng = np.random.default_rng(0)
    episodes = est.Episodes(jnp.asarray(data.reward.reshape(shape)), jnp.ones(shape),
                            jnp.asarray(rng.normal(0, 0.05, shape), jnp.float32),
                            jnp.asarray(rng.normal(size=shape), jnp.float32),
                            jnp.asarray(rng.normal(size=shape), jnp.float32))
    run = lambda: jax.block_until_ready(est.bootstrap(est.weighted_doubly_robust, episodes, 0.99,
                                                      jax.random.key(0), 1000))
    began = time.perf_counter()
    run()
    first = time.perf_counter() - began
    began = time.perf_counter()
    run()
    return {"first_call_seconds": first, "seconds": time.perf_counter() - began}


def command_seconds() -> dict | None:
    """The whole `jaxrl ope` of 5 PPO checkpoints on pointmass medium, as a process."""
    data = ROOT / "data" / "pointmass"
    if not (data / "medium" / "metadata.json").is_file():
        print("`jaxrl ope` skipped: no data/pointmass (scripts/offline_results.py makes it)")
        return None
    with tempfile.TemporaryDirectory() as folder:
        command = [str(ROOT / ".venv/bin/jaxrl"), "ope", "--dataset", str(data / "medium"),
                   *(f"{data}/ppo_run@{chunk}" for chunk in POINTMASS_CHECKPOINTS), "--true-returns", "100",
                   "--out", f"{folder}/ope", "--no-compile-cache"]
        began = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
        return {"seconds": time.perf_counter() - began, "command": " ".join(command[1:]).replace(str(ROOT) + "/", "")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds of timed calls per rate")
    parser.add_argument("--skip-d3rlpy", action="store_true")
    parser.add_argument("--skip-command", action="store_true", help="do not time the whole `jaxrl ope`")
    parser.add_argument("--d3rlpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.d3rlpy_worker:
        d3rlpy_worker(args.window)
        return 0
    load = os.getloadavg()
    print(f"jax {jax.__version__}, {os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    data, _ = synthetic_dataset(DATASET_SIZE, seed=0)
    ours = our_fqe_rate(data, args.window)
    print(f"FQE updates/s, batch {BATCH_SIZE}, {HIDDEN_SIZES}: jaxrl {ours['best']:.0f}{noise(ours)} "
          f"(compile {ours['compile_seconds']:.1f} s)")
    theirs = None if args.skip_d3rlpy else d3rlpy_rate(args.window)
    if theirs:
        print(f"FQE updates/s: d3rlpy {theirs['best']:.0f}{noise(theirs)}; jaxrl / d3rlpy "
              f"{ours['best'] / theirs['best']:.2f}x")
    boot = bootstrap_seconds(data)
    print(f"bootstrap, WDR, 1000 resamples over {DATASET_SIZE:,} transitions (1000 episodes x 1000 steps): "
          f"{boot['seconds']:.1f} s (first call, compile included: {boot['first_call_seconds']:.1f} s)")
    whole = None if args.skip_command else command_seconds()
    if whole:
        print(f"`{whole['command']}`: {whole['seconds']:.0f} s as a process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
