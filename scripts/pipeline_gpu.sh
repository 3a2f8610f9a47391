#!/usr/bin/env bash
# The pipeline on a second machine: runs experiments/pipeline/<NAME>.yaml for the given seeds side by side, each
# under a time limit, and packs what each decided into OUT_DIR/runs.tar.gz (summary.json, report.md, the plot,
# pipeline_state.json, metrics.jsonl, the OPE estimates and the registry; no datasets or checkpoints), to be set
# against this machine's runs with scripts/compare_pipelines.py.
#
#   scripts/pipeline_gpu.sh OUT_DIR LIMIT_S NAME:SEED [NAME:SEED ...]    e.g. ... out 450 pointmass:0 recsys:0
#
# Needs a Python with the project's dependencies (PYTHON, default python3; jax[cuda] on a GPU) and runs from the
# repository root. Each run logs to OUT_DIR/<NAME>-seed<SEED>.log, ending with its exit status and seconds; a run
# cut off by its limit still packs the stages it finished (the pipeline records each stage as it ends).
set -u
out=${1:?usage: scripts/pipeline_gpu.sh OUT_DIR LIMIT_S NAME:SEED ...}
limit=${2:?usage: scripts/pipeline_gpu.sh OUT_DIR LIMIT_S NAME:SEED ...}
shift 2
py=${PYTHON:-python3}
runs=${RUNS_DIR:-/tmp/pipeline-runs}
mkdir -p "$out" "$runs"
export XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_PLATFORMS=${JAX_PLATFORMS:-cuda} WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=".:${PYTHONPATH:-}"

"$py" -c 'import jax, jaxrl.cli, envs; print("jax", jax.__version__, jax.devices())' || exit 1
for spec in "$@"; do
    name=${spec%%:*} seed=${spec##*:}
    (
        start=$SECONDS
        timeout -k 5 "$limit" "$py" -m jaxrl.cli pipeline "experiments/pipeline/$name.yaml" --set "seed=$seed" \
            --run-dir "$runs/$name-seed$seed" --wandb disabled --no-progress
        echo "== $name seed $seed: exit $? after $((SECONDS - start)) s"
    ) >"$out/$name-seed$seed.log" 2>&1 &
done
wait
tail -n 3 "$out"/*.log
(cd "$runs" && find . \( -name summary.json -o -name report.md -o -name pipeline.png -o -name pipeline_state.json \
    -o -name pipeline.yaml -o -name metrics.jsonl -o -path '*/ope/*' -o -path '*/registry/*' \) -type f -print0 |
    tar -czf - --null -T -) >"$out/runs.tar.gz"
ls -l "$out"
