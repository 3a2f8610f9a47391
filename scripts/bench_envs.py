"""Environment stepping rate against the number of parallel envs (a benchmark, not a test).

    .venv/bin/python scripts/bench_envs.py --envs pointmass,pendulum,hopper --num-envs 256,1024,4096

Each env runs as the training loop sees it (`envs.training_env`: time limit, episode statistics, automatic
reset), stepped `--steps` times with uniformly random actions inside one jitted `lax.scan`; the rate is env
steps per second of the best of the timed calls after one untimed (compiling) call, and the time to compile
is printed beside it. Beside it, the raw env (`env.step` vmapped, no wrappers, no resets) in the same run, so
the ratio says what the wrappers cost. Run it alone on the machine: the numbers are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _rollout(env, num_envs: int, steps: int, wrapped: bool):
    """A jitted function (key -> final rewards) that resets `num_envs` envs and steps them `steps` times."""
    import jax

    import envs

    batched = envs.training_env(env, num_envs, envs.spec("bench", env).episode_length) if wrapped else None
    action_size = env.action_size
    discrete = bool(getattr(env, "discrete", False))

    def random_action(key):
        if discrete:
            return jax.random.randint(key, (num_envs,), 0, action_size)
        return jax.random.uniform(key, (num_envs, action_size), minval=-1.0, maxval=1.0)

    def run(key):
        reset_key, step_key = jax.random.split(key)
        if wrapped:
            state = batched.reset(reset_key)
            step = batched.step
        else:
            state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
            step = jax.vmap(env.step)

        def body(state, key):
            state = step(state, random_action(key))
            return state, None

        state, _ = jax.lax.scan(body, state, jax.random.split(step_key, steps))
        return state.reward

    return jax.jit(run)


def measure(name: str, num_envs: int, steps: int, calls: int) -> dict:
    import jax

    import envs

    env = envs.make(name)
    row = {"env": name, "num_envs": num_envs, "steps": steps}
    for label, wrapped in (("training_env", True), ("raw", False)):
        run = _rollout(env, num_envs, steps, wrapped)
        start = time.perf_counter()
        jax.block_until_ready(run(jax.random.PRNGKey(0)))
        row[f"{label}_compile_seconds"] = time.perf_counter() - start
        best = float("inf")
        for call in range(calls):
            start = time.perf_counter()
            jax.block_until_ready(run(jax.random.PRNGKey(call + 1)))
            best = min(best, time.perf_counter() - start)
        row[f"{label}_steps_per_second"] = num_envs * steps / best
    row["wrapped_over_raw"] = row["training_env_steps_per_second"] / row["raw_steps_per_second"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="pointmass,pendulum", help="comma-separated env names (`jaxrl envs`)")
    parser.add_argument("--num-envs", default="256,1024,4096", help="comma-separated counts of parallel envs")
    parser.add_argument("--steps", type=int, default=100, help="steps of every env per timed call")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per measurement (the best counts)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, str(REPO))
    import jax

    device = jax.devices()[0]
    rows = []
    for name in [n.strip() for n in args.envs.split(",") if n.strip()]:
        for num_envs in [int(n) for n in args.num_envs.split(",") if n.strip()]:
            row = measure(name, num_envs, args.steps, args.calls)
            rows.append(row)
            print(f"{name:>14} {num_envs:7d} envs: training_env {row['training_env_steps_per_second']:>14,.0f} "
                  f"steps/s (compile {row['training_env_compile_seconds']:.1f} s), raw "
                  f"{row['raw_steps_per_second']:>14,.0f} steps/s, wrapped/raw {row['wrapped_over_raw']:.2f}",
                  file=sys.stderr, flush=True)
    print(f"\n{device.platform} {device.device_kind}; {args.steps} steps per call, best of {args.calls} calls\n")
    print("| env | num_envs | training_env steps/s | raw steps/s | wrapped / raw | compile s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['env']} | {row['num_envs']} | {row['training_env_steps_per_second']:,.0f} | "
              f"{row['raw_steps_per_second']:,.0f} | {row['wrapped_over_raw']:.2f} | "
              f"{row['training_env_compile_seconds']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"device": f"{device.platform} {device.device_kind}", "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
