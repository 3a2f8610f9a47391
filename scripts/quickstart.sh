#!/usr/bin/env bash
# Set up .venv (idempotent) and run the main job: PPO on the pendulum swing-up, 3 seeds in one program.
# Extra arguments go to `jaxrl train`, e.g. `./scripts/quickstart.sh --set total_steps=1e6`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export WANDB_SILENT=true
exec .venv/bin/jaxrl train ppo --env pendulum --config experiments/ppo/pendulum.yaml --seeds 3 "$@"
