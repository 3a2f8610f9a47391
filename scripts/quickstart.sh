#!/usr/bin/env bash
# Set up .venv (idempotent) and run the main job: the hybrid pipeline on pointmass, from an incumbent's logs to a
# promoted policy through the data, OPE, shadow, canary and fine-tuning gates (docs/pipeline.md). It prints where
# the report is. Extra arguments go to `jaxrl pipeline`, e.g. `./scripts/quickstart.sh --inject incident-spike`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export WANDB_SILENT=true
exec .venv/bin/jaxrl pipeline experiments/pipeline/pointmass.yaml --no-progress "$@"
