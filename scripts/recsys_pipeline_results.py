"""The pipeline on logged recommendations: `jaxrl pipeline experiments/pipeline/recsys.yaml` for each seed, then
what the production policy, the candidate the OPE gate chose and the promoted policy do for users of both
populations; writes docs/results.md ("The pipeline on recsys").

For each seed k: `jaxrl pipeline experiments/pipeline/recsys.yaml --set seed=k --run-dir
runs/pipeline-recsys-seed<k>` (skipped when its summary.json exists; resumed when it was cut off). Each policy
then serves 2000 sessions per population as it is deployed, sampled (`envs.recsys.session_metrics`): engagement
per session, session length, distinct genres per session, unsafe rate.

Usage: .venv/bin/python scripts/recsys_pipeline_results.py [--seeds 0,1] [--lock /tmp/jaxrl-bench.lock] [--no-doc]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.offline_results import JAXRL, execute, publish, results_parser  # noqa: E402
from scripts.pipeline_summary import RECSYS, stage_text  # noqa: E402
from scripts.recsys_results import POPULATIONS, SESSIONS, measure  # noqa: E402

CONFIG = "experiments/pipeline/recsys.yaml"
GROUP = "recsys-pipeline"


def run_dir(seed: int) -> str:
    return f"runs/pipeline-recsys-seed{seed}"


def pipeline(seed: int, lock: str | None) -> tuple[list[str], dict]:
    """The command and the summary of the seed's pipeline, run or continued where needed."""
    folder = ROOT / run_dir(seed)
    command = [JAXRL, "pipeline", CONFIG, "--set", f"seed={seed}", "--run-dir", run_dir(seed), "--wandb",
               "disabled", "--no-progress"]
    if not (folder / "summary.json").is_file() or not json.loads((folder / "summary.json").read_text())["stages"]:
        execute(command if not (folder / "pipeline.yaml").is_file() else
                [JAXRL, "pipeline", "--resume", run_dir(seed), "--wandb", "disabled", "--no-progress"], lock)
    return command, json.loads((folder / "summary.json").read_text())


def served(policy, population: str, seed: int) -> dict[str, float]:
    """Session metrics of a registry version acting as it serves (sampled)."""
    return measure(lambda obs, key: policy.learner.act(policy.state, obs, key, False)[0], population, seed)


def stage_rows(seed: int, summary: dict) -> list[str]:
    return [f"| {seed} | {stage['stage']} | {stage_text(stage['stage'], stage, RECSYS)} |"
            for stage in summary["stages"]]


def ope_rows(seed: int, summary: dict) -> list[str]:
    ope = next(stage for stage in summary["stages"] if stage["stage"] == "ope")["figures"]
    incumbent = ope["incumbent"]
    estimates = json.loads((ROOT / run_dir(seed) / "ope" / "ope.json").read_text())["policies"]
    true_cost = next(policy["true_cost"] for policy in estimates if policy["agent"] == "env-policy")
    rows = [f"| {seed} | production (incumbent) | {incumbent['estimate']:.2f} | – | {incumbent['true_return']:.2f} "
            f"| {incumbent['cost_estimate']:.2f} | {true_cost:.2f} |"]
    for row in ope["policies"]:
        rows.append(f"| {seed} | {row['name']} | {row['return_estimate']:.2f} | {row['return_low']:.2f} | "
                    f"{row['true_return']:.2f} | {row['cost_estimate']:.2f} | {row['true_cost']:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = results_parser(__doc__, "--seeds").parse_args(argv)
    from jaxrl.deploy.registry import Registry

    seeds = [int(seed) for seed in args.seeds.split(",")]
    stages, ope, served_rows, commands = [], [], [], []
    for seed in seeds:
        command, summary = pipeline(seed, args.lock)
        commands.append(" ".join(command))
        stages += stage_rows(seed, summary)
        ope += ope_rows(seed, summary)
        registry = Registry(summary["registry"])
        results = {stage["stage"]: stage for stage in summary["stages"]}
        versions = [("production (incumbent)", results["data"]["outputs"]["incumbent_version"])]
        if "candidate_version" in results.get("ope", {}).get("outputs", {}):
            versions.append((f"candidate ({results['ope']['outputs']['name']})",
                             results["ope"]["outputs"]["candidate_version"]))
        if summary["promoted"]:
            versions.append(("promoted", summary["live_version"]))
        for label, version in versions:
            policy = registry.load(version)
            for population in POPULATIONS:
                m = served(policy, population, seed)
                served_rows.append(f"| {seed} | {label}, {version} | {population} | {m['engagement']:.2f} | "
                                   f"{m['session_length']:.1f} | {m['genres']:.1f} | {m['unsafe_rate']:.3f} |")
                print(served_rows[-1], flush=True)
    body = "\n".join([
        "```bash", ".venv/bin/python scripts/recsys_pipeline_results.py   # runs, for each seed:", *commands, "```",
        "", "| seed | stage | figures and verdict |", "|---|---|---|", *stages,
        "", f"Each policy serving {SESSIONS} sessions per population, sampled as it is deployed:", "",
        "| seed | policy, version | population | engagement / session | session length | genres / session | "
        "unsafe rate |", "|---|---|---|---|---|---|---|", *served_rows,
        "", "The OPE gate's estimates (FQE, discounted) against 200 rollouts of each policy in `recsys`:", "",
        "| seed | policy | FQE return | 90% lower bound | true return | FQE unsafe | true unsafe |",
        "|---|---|---|---|---|---|---|", *ope, ""])
    return publish(GROUP, body, args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
