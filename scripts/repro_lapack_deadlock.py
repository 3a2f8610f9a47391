"""Does the installed jaxlib still deadlock when two batched LAPACK calls run at once on the CPU?

jaxlib 0.10.2's CPU LAPACK kernels (QR here; Cholesky, eigh and the other batched ones share the code) split
a batch into tasks on XLA's intra-op thread pool and block their own worker until those finish. The thunk
executor runs independent kernels concurrently, so `threads` of them at once (the pool has one thread per
core) leave no worker to run the tasks they all wait for: the program never finishes, at 0% CPU. This is
why `jaxrl/initializers.py` orthogonalizes without LAPACK; see its docstring.

The script runs a jitted function of `--copies` independent batched QRs (default: one per core) in a child
process, under a timeout, and exits 0 if it finished (no deadlock: the workaround can be removed once the
same holds on every machine we support) or 1 if it hung. Seen on 2 cores with jaxlib 0.10.2: batches of two
256x256 (or 128x128) matrices, two copies, hang on the first or second call; one copy, or unbatched
matrices, or 64x64 ones (small enough to run inline) finish.

Usage: .venv/bin/python scripts/repro_lapack_deadlock.py [--size 256] [--batch 2] [--copies N] [--timeout 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys
import jax
import jax.numpy as jnp

size, batch, copies = (int(arg) for arg in sys.argv[1:4])


@jax.jit
def independent_qrs(key):
    keys = jax.random.split(key, copies)
    return sum(jnp.linalg.qr(jax.random.normal(k, (batch, size, size)))[0].sum() for k in keys)


for call in range(20):
    independent_qrs(jax.random.PRNGKey(call)).block_until_ready()
print("finished", jax.__version__)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="matrix side")
    parser.add_argument("--batch", type=int, default=2, help="matrices per QR call")
    parser.add_argument("--copies", type=int, default=os.cpu_count() or 2, help="independent QR calls per program")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before the run counts as hung")
    args = parser.parse_args()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", CHILD, str(args.size), str(args.batch), str(args.copies)]
    described = f"{args.copies} concurrent QRs of {args.batch}x{args.size}x{args.size}"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f"deadlock: {described} did not finish in {args.timeout:.0f} s (keep jaxrl/initializers.py)")
        return 1
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return 2
    print(f"no deadlock: {described} finished ({done.stdout.strip()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
