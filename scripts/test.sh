#!/usr/bin/env bash
# Set up (with test extras) and run the test suite on 2 worker processes (pytest-xdist; a worker that runs
# out of tests takes some of the other's). Extra arguments go to pytest,
# e.g. `./scripts/test.sh -m slow` for the slow checks, `./scripts/test.sh -n 0` for one process.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}" WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -n 2 --dist worksteal "$@"
