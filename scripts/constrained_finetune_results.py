"""The replay loop's cost constraint, measured: IQL trained on the production policy's recsys logs for engagement
alone (docs/results.md, "Recommendations from logs": 89% of what it recommends is unsafe) fine-tuned online with
and without `cost_budget`; writes docs/results.md ("Safety: the replay loop's cost constraint").

For each dataset seed k (the logs and offline runs of scripts/recsys_results.py, which this runs first if they
are missing): `jaxrl finetune runs/recsys/dseed<k>/iql --steps 10000 --config experiments/finetune/iql.yaml
[--set cost_budget=B]` into runs/recsys/dseed<k>/finetune-<variant>/. The table reads each run's metrics.jsonl
(online unsafe recommendations per finished session, by window of the run) and serves its final policy, sampled,
to 2000 sessions (`envs.recsys.session_metrics`).

Usage: .venv/bin/python scripts/constrained_finetune_results.py [--dataset-seeds 0,1] [--lock LOCK] [--no-doc]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.offline_results import JAXRL, execute, publish, results_parser  # noqa: E402
from scripts.recsys_results import measure, prepare, run_dir  # noqa: E402

BUDGET = 2.0  # expected unsafe recommendations per session (the production policy logs about 4.7)
VARIANTS = (("unconstrained", []), (f"cost_budget={BUDGET:g}", ["--set", f"cost_budget={BUDGET}"]))
STEPS = 10_000  # online recommendations, about 260 sessions, one environment (experiments/finetune/iql.yaml)
WINDOWS = ((0, 1000), (1000, 5000), (5000, 10_000))  # env steps
GROUP = "constrained-finetune"


def finetune_dir(dataset_seed: int, variant: str) -> str:
    return f"{run_dir(dataset_seed, 'iql')}-finetune-{variant.replace('=', '')}"


def finetune(dataset_seed: int, lock: str | None) -> list[list[str]]:
    commands = []
    for variant, extra in VARIANTS:
        command = [JAXRL, "finetune", run_dir(dataset_seed, "iql"), "--steps", str(STEPS), "--config",
                   "experiments/finetune/iql.yaml", "--run-dir", finetune_dir(dataset_seed, variant), "--wandb",
                   "disabled", "--no-progress", *extra]
        commands.append(command)
        if not (ROOT / finetune_dir(dataset_seed, variant) / "summary.json").is_file():
            execute(command, lock)
    return commands


def windows(folder: Path) -> dict[int, list[float]]:
    """Per seed, online unsafe recommendations per finished session in each of WINDOWS, and the online engagement
    per session in the last one."""
    from jaxrl.infra.logging import read_metrics

    per_seed: dict[int, list[float]] = {}
    records = [r for r in read_metrics(folder) if "train/cost_total" in r]
    for seed in sorted({r["seed"] for r in records}):
        mine = [r for r in records if r["seed"] == seed]
        row = []
        for low, high in WINDOWS:
            inside = [r for r in mine if low < r["step"] <= high]
            row.append(sum(r["train/cost_total"] for r in inside) / max(1, sum(r["train/episodes"] for r in inside)))
        last = [r for r in mine if r["step"] > WINDOWS[-1][0]]
        row.append(sum(r["train/episode_return"] * r["train/episodes"] for r in last)
                   / max(1, sum(r["train/episodes"] for r in last)))
        per_seed[seed] = row
    return per_seed


def served(folder: Path) -> list[dict[str, float]]:
    """Session metrics of each seed's final policy, sampled (a constrained run's learner acts with the agent
    inside its state)."""
    import jax

    from jaxrl.policy import load_run

    spec, experiment, states, _ = load_run(folder)
    out = []
    for index in range(len(spec.seeds)):
        state = jax.tree.map(lambda x, i=index: x[i], states)
        out.append(measure(lambda obs, key, s=state: experiment.learner.act(s, obs, key, False)[0], "recsys", index))
    return out


def main(argv: list[str] | None = None) -> int:
    args = results_parser(__doc__).parse_args(argv)
    dataset_seeds = [int(s) for s in args.dataset_seeds.split(",")]
    commands = []
    for seed in dataset_seeds:
        prepare(seed, args.lock)
        commands += finetune(seed, args.lock)
    fmt = lambda values, spec: f"{np.mean(values):{spec}} ± {np.std(values, ddof=1):{spec}}"
    lines = ["| fine-tuning | online unsafe / session, steps 0-1k | 1k-5k | 5k-10k | online engagement / session, "
             "5k-10k | served: engagement / session | served: unsafe rate |", "|---|---|---|---|---|---|---|"]
    for variant, _ in VARIANTS:
        online, final = [], []
        for seed in dataset_seeds:
            folder = ROOT / finetune_dir(seed, variant)
            online += list(windows(folder).values())
            final += served(folder)
        online = np.asarray(online)
        engagement, unsafe = [m["engagement"] for m in final], [m["unsafe_rate"] for m in final]
        lines.append(f"| {variant} | " + " | ".join(fmt(online[:, i], ".2f") for i in range(4)) + " | "
                     f"{fmt(engagement, '.2f')} | {fmt(unsafe, '.3f')} |")
        print(lines[-1], flush=True)
    shown = "\n".join(" ".join(c) for c in commands[: len(VARIANTS)])
    body = (f"```bash\n.venv/bin/python scripts/constrained_finetune_results.py   # runs, per dataset seed k, e.g. "
            f"k = 0:\n{shown}\n```\n\n" + "\n".join(lines) +
            f"\n\nMean ± std over {len(dataset_seeds) * 3} runs ({len(dataset_seeds)} dataset seeds x 3 seeds of the "
            f"offline IQL run); {STEPS} online steps each; served: 2000 sessions of the final policy, sampled, on "
            "recsys.\n")
    return publish(GROUP, body, args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
