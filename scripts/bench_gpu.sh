#!/usr/bin/env bash
# The benchmarks at GPU sizes, one after another, each under its own time limit; figures for docs/benchmarks.md.
#
#   scripts/bench_gpu.sh OUT_DIR [PARTS]      PARTS: comma-separated subset of smoke,envs,brax_envs,scale,offline,ppo
#
# Needs a Python with jax[cuda] and the project's dependencies (PYTHON, default python3) and runs from the
# repository root. Each part writes OUT_DIR/<part>.txt (its output) and OUT_DIR/<part>.json (its figures), and
# its last lines are echoed, so a part that fails or runs out of time costs only itself.
set -u
out=${1:?usage: scripts/bench_gpu.sh OUT_DIR [PARTS]}
parts=${2:-smoke,envs,brax_envs,scale,offline,ppo}
py=${PYTHON:-python3}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_PLATFORMS=${JAX_PLATFORMS:-cuda} WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=".:${PYTHONPATH:-}"

part() {  # part NAME SECONDS COMMAND...: run it if NAME is in PARTS
    local name=$1 limit=$2
    shift 2
    [[ ",$parts," == *",$name,"* ]] || return 0
    echo "== $name (limit ${limit} s)"
    local start=$SECONDS
    timeout -k 5 "$limit" "$@" >"$out/$name.txt" 2>&1
    echo "== $name: exit $? after $((SECONDS - start)) s"
    tail -n 25 "$out/$name.txt"
}

part smoke 45 bash -c "nvidia-smi -L; $py -c 'import jax, jaxrl.cli, envs; print(jax.__version__, jax.devices())'"
part envs 60 "$py" scripts/bench_envs.py --envs pointmass,pendulum --num-envs 1024,131072 \
    --json "$out/envs.json"
part brax_envs 60 "$py" scripts/bench_envs.py --envs hopper --num-envs 4096 --steps 50 \
    --json "$out/brax_envs.json"
part scale 120 "$py" scripts/bench_scale.py --parts members,precision,num_envs --members 1,8,64 \
    --num-envs 1024,16384 --json "$out/scale.json"
part offline 70 "$py" scripts/bench_offline.py --skip-d3rlpy --window 2 --json "$out/offline.json"
part ppo 120 "$py" scripts/bench_ppo.py --env inverted_pendulum --json "$out/ppo.json"
