"""D4RL-style results of IQL, CQL and BC on our fast tasks: one command builds, trains, tabulates.

For every env in ENVS it builds the five tiers with `jaxrl dataset make` (unless data/<env>/tiers.json
exists), trains every agent on every tier with `jaxrl train ... --seeds 3` (skipping runs whose
summary.json exists and resuming ones that were cut off), then writes the table of normalized scores
(mean and std over seeds) into docs/results.md between its group's markers (`markers`: one block for the
fast tasks, one for Brax locomotion), leaving the rest of the doc alone.

Usage: .venv/bin/python scripts/offline_results.py [--lock /tmp/jaxrl-bench.lock] [--envs pendulum,pointmass]
       .venv/bin/python scripts/offline_results.py --dataset-seed 1   # the same study on datasets made with seed 1
       .venv/bin/python scripts/offline_results.py --envs halfcheetah,hopper   # about an hour on 2 CPU cores
       .venv/bin/python scripts/offline_results.py --envs halfcheetah,hopper --tiers medium-expert --updates 100000
With --lock, every heavy command runs under `flock LOCK`, so it never overlaps another job holding the lock.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxrl.data import storage  # noqa: E402
from jaxrl.report.build import build_report  # noqa: E402
from jaxrl.report.markdown import aggregates_table  # noqa: E402
from jaxrl.tiers import TIERS  # noqa: E402

ENVS = ("pendulum", "pointmass")  # the default; Brax locomotion (halfcheetah, hopper) by --envs
COST_ENVS = ("pointmass",)  # envs whose info["cost"] means something (pendulum's is always 0)
AGENTS = ("iql", "cql", "bc")
SEEDS = 3
DATASET_STEPS = 100_000  # transitions per tier
# PPO solves pointmass within a few default checkpoints (one per 8k steps), which left medium-replay a single
# checkpoint's data; a checkpoint per PPO iteration (2048 steps) gives it the early policies D4RL's has.
# Brax locomotion steps at a few thousand steps/s on 2 CPU cores (halfcheetah ~5k, hopper ~16k with zero
# actions): its expert is what about a quarter of an hour of PPO reaches, with 35-40 checkpoints to pick from.
DATASET_OPTIONS = {"pointmass": ["--set", "eval_every=2048"],
                   "halfcheetah": ["--set", "total_steps=3500000", "eval_every=102400"],
                   "hopper": ["--set", "total_steps=8000000", "eval_every=204800"]}
# The Brax envs are trained on the three tiers D4RL's locomotion results report, and evaluated on fewer
# episodes: a 1000-step Brax episode costs as much as 5 pendulum episodes, and its return varies less.
ENV_TIERS = {"halfcheetah": ("medium", "medium-replay", "medium-expert"),
             "hopper": ("medium", "medium-replay", "medium-expert")}
JAXRL = ".venv/bin/jaxrl"
DOC = ROOT / "docs" / "results.md"


class Variant(NamedTuple):
    """The study as configured (the default), or a variant: `updates` per agent (evaluated halfway and at the
    end) on `tiers` only, and/or datasets made with another `dataset_seed` (in data/<env>-dseed<k>/). A variant's
    runs live in runs/offline<suffix>/ and its table is a block of its own."""

    updates: int | None = None
    tiers: tuple[str, ...] | None = None
    dataset_seed: int = 0

    @property
    def suffix(self) -> str:
        """What the variant appends to the runs folder and the doc block's name: "", "-100k", "-dseed1", ..."""
        return ("" if self.updates is None else f"-{self.updates // 1000}k") + self.data_suffix

    @property
    def data_suffix(self) -> str:
        return f"-dseed{self.dataset_seed}" if self.dataset_seed else ""


STANDARD = Variant()


def markers(group: str) -> tuple[str, str]:
    """The comments that delimit one group's block in docs/results.md."""
    return f"<!-- offline-results:{group}:begin -->", f"<!-- offline-results:{group}:end -->"


def group_of(env: str) -> str:
    """Each group of envs has its own block in the doc, so tabulating one group leaves the others' alone."""
    return "fast" if env in ENVS else "brax"


def data_dir(env: str, variant: Variant = STANDARD) -> str:
    return f"data/{env}{variant.data_suffix}"


def dataset_command(env: str, variant: Variant = STANDARD) -> list[str]:
    seed = ["--seed", str(variant.dataset_seed)] if variant.dataset_seed else []
    return [JAXRL, "dataset", "make", "--env", env, "--out", data_dir(env, variant), "--steps", str(DATASET_STEPS),
            *seed, *DATASET_OPTIONS.get(env, [])]


def config_file(env: str, agent: str) -> str:
    """Brax locomotion uses the agents' locomotion configs (the papers' reward scaling, state normalization)."""
    return f"experiments/offline/{agent}{'' if group_of(env) == 'fast' else '-locomotion'}.yaml"


def run_dir(env: str, tier: str, agent: str, variant: Variant = STANDARD) -> str:
    return f"runs/offline{variant.suffix}/{env}/{tier}/{agent}"


def train_command(env: str, tier: str, agent: str, variant: Variant = STANDARD) -> list[str]:
    sets = [] if variant.updates is None else [f"num_updates={variant.updates}", f"eval_every={variant.updates // 2}"]
    return [JAXRL, "train", agent, "--dataset", f"{data_dir(env, variant)}/{tier}", "--config", config_file(env, agent),
            "--seeds", str(SEEDS), "--run-dir", run_dir(env, tier, agent, variant), "--wandb", "disabled",
            "--no-progress", *(["--set", *sets] if sets else [])]


def tiers_of(env: str, variant: Variant = STANDARD) -> tuple[str, ...]:
    return variant.tiers or ENV_TIERS.get(env, TIERS)


def resume_command(env: str, tier: str, agent: str, variant: Variant = STANDARD) -> list[str]:
    return [JAXRL, "resume", run_dir(env, tier, agent, variant), "--wandb", "disabled", "--no-progress"]


def execute(command: list[str], lock: str | None) -> float:
    """Run `command` from the repository root (under `flock lock` when given); returns its wall seconds."""
    full = ["flock", lock, *command] if lock else command
    print("$", shlex.join(full), flush=True)
    began = time.perf_counter()
    subprocess.run(full, cwd=ROOT, check=True)
    return time.perf_counter() - began


def build_datasets(envs: list[str], lock: str | None, variant: Variant = STANDARD) -> None:
    for env in envs:
        if not (ROOT / data_dir(env, variant) / "tiers.json").is_file():
            execute(dataset_command(env, variant), lock)


def train_all(envs: list[str], lock: str | None, variant: Variant = STANDARD) -> None:
    for env in envs:
        for tier in tiers_of(env, variant):
            for agent in AGENTS:
                folder = ROOT / run_dir(env, tier, agent, variant)
                if (folder / "summary.json").is_file():
                    continue
                started = (folder / "config.yaml").is_file()
                command = resume_command if started else train_command
                execute(command(env, tier, agent, variant), lock)


# ---------------------------------------------------------------------------------------------- tables


def complete(env: str, variant: Variant = STANDARD) -> bool:
    """Whether the datasets and every run of `env` are finished."""
    return (ROOT / data_dir(env, variant) / "tiers.json").is_file() and all(
        (ROOT / run_dir(env, tier, agent, variant) / "summary.json").is_file()
        for tier in tiers_of(env, variant) for agent in AGENTS)


def complete_episodes(directory: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Returns and costs of the dataset's complete episodes, and how many were cut off by the end of collection.

    An episode is complete when it terminated (discount 0 on its last row) or ran the env's full length;
    the ones collection stopped in the middle would bias the mean, so they are left out.
    """
    transition, metadata = storage.load(directory)
    import envs

    length = envs.spec(metadata.env_name, envs.make(metadata.env_name)).episode_length
    ids = np.asarray(transition.episode_id)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    complete = (np.asarray(transition.discount)[ends - 1] == 0) | (ends - starts == length)
    returns = np.add.reduceat(np.asarray(transition.reward, np.float64), starts)
    costs = np.add.reduceat(np.asarray(transition.cost, np.float64), starts)
    return returns[complete], costs[complete], int((~complete).sum())


def final_costs(folder: Path) -> list[float]:
    """Per-seed eval cost of the last evaluation, from metrics.jsonl."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    last = max(record["step"] for record in records)
    return [record["eval/cost"] for record in records if record["step"] == last]


def mean_std(values: list[float]) -> str:
    """`mean ± std` with the sample std over seeds (ddof=1)."""
    array = np.asarray(values, dtype=float)
    return f"{array.mean():.1f} ± {array.std(ddof=1):.1f}"


def tables(envs: list[str], variant: Variant = STANDARD) -> str:
    """Markdown of the score table, the cost table (envs with a cost signal) and the reference returns."""
    score_rows, cost_rows, reference_rows, seconds = [], [], [], 0.0
    for env in envs:
        tiers = json.loads((ROOT / data_dir(env, variant) / "tiers.json").read_text())
        references = tiers["reference_returns"]
        ppo = json.loads((ROOT / data_dir(env, variant) / "ppo_run" / "summary.json").read_text())
        reference_rows.append(f"| {env} | {references['random']:.2f} | {references['expert']:.2f} | "
                              f"{tiers['medium_chunk']} | {tiers['expert_chunk']} | {ppo['env_steps']:,} | "
                              f"{ppo['wall_seconds'] / 60:.1f} |")
        for tier in tiers_of(env, variant):
            directory = ROOT / data_dir(env, variant) / tier
            metadata = storage.load_metadata(directory)
            returns, costs, cut = complete_episodes(directory)
            behavior = (f"{metadata.normalized_score(float(returns.mean())):.1f} ({returns.size} ep)"
                        if returns.size else f"n/a (0 complete of {cut} ep)")
            scores, agent_costs = [], []
            for agent in AGENTS:
                folder = ROOT / run_dir(env, tier, agent, variant)
                summary = json.loads((folder / "summary.json").read_text())
                seconds += summary["wall_seconds"]
                scores.append(mean_std(summary["normalized_score_per_seed"]))
                agent_costs.append(mean_std(final_costs(folder)))
            score_rows.append(f"| {env} | {tier} | {behavior} | {' | '.join(scores)} |")
            if env in COST_ENVS:
                data_cost = f"{costs.mean():.2f}" if costs.size else "n/a"
                cost_rows.append(f"| {env} | {tier} | {data_cost} | {' | '.join(agent_costs)} |")
    header = " | ".join(agent.upper() for agent in AGENTS)
    runs = sum(len(tiers_of(env, variant)) for env in envs) * len(AGENTS)
    lines = [
        f"Normalized score, 100 · (return − random) / (expert − random): mean ± std over {SEEDS} seeds (sample std),",
        "each seed's score the mean return of its final evaluation. Behavior: the dataset's own mean episode",
        "return (complete episodes only), normalized the same way.",
        "",
        f"| env | tier | behavior | {header} |",
        "|---|---|---|" + "---|" * len(AGENTS),
        *score_rows,
        "",
        *aggregates(envs, variant),
    ]
    if cost_rows:
        lines += ["Episode cost (steps inside a hazard) of the final evaluation, mean ± std over seeds; data: the",
                  "dataset's mean episode cost.", "",
                  f"| env | tier | data | {header} |", "|---|---|---|" + "---|" * len(AGENTS), *cost_rows, ""]
    lines += ["Reference returns (random: uniform policy; expert: best PPO checkpoint's evaluation) and the PPO",
              "checkpoints picked as the medium and expert policies:", "",
              "| env | random | expert | medium checkpoint | expert checkpoint | PPO env steps | PPO minutes |",
              "|---|---|---|---|---|---|---|",
              *reference_rows, "",
              f"Training wall time, all {runs} runs (compile and evaluation included): {seconds / 60:.1f} min.", ""]
    return "\n".join(lines)


def aggregates(envs: list[str], variant: Variant = STANDARD) -> list[str]:
    """The IQM table over every task (env x tier) of the score table, as `jaxrl report` computes it."""
    folders = [ROOT / run_dir(env, tier, agent, variant) for env in envs for tier in tiers_of(env, variant)
               for agent in AGENTS]
    report = build_report(folders)
    env_dirs = " ".join(str(Path(run_dir(env, "tier", "agent", variant)).parent.parent) for env in envs)
    return [f"Over all {len(report['tasks'])} tasks above (env x tier), every seed of every task pooled: IQM, "
            f"mean, median and optimality gap of the normalized score with {report['confidence']:.0%} stratified "
            f"bootstrap intervals ({report['reps']:,} resamples, each drawing every task's seeds from that task's "
            f"own), as `jaxrl report {env_dirs}` prints them:", "",
            *aggregates_table(report, 1), ""]


def commands_block(envs: list[str], lock: str | None, variant: Variant = STANDARD) -> str:
    prefix = f"flock {lock} " if lock else ""
    lines = [shlex.join(dataset_command(env, variant)) for env in envs]
    lines += [shlex.join(train_command(env, tier, agent, variant)) for env in envs for tier in tiers_of(env, variant)
              for agent in AGENTS]
    return ("Every command, as run (each under `" + prefix.strip() + "`)" if lock else "Every command, as run") + \
        ":\n\n```bash\n" + "\n".join(lines) + "\n```\n"


def results_parser(doc: str, seeds_flag: str = "--dataset-seeds") -> argparse.ArgumentParser:
    """The flags the recsys results scripts share: which seeds (comma-separated), the lock, and --no-doc."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(seeds_flag, default="0,1")
    parser.add_argument("--lock", help="run each job under `flock LOCK`")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/results.md alone")
    return parser


def publish(group: str, body: str, no_doc: bool) -> int:
    """Print a results block and (unless `no_doc`) write it into docs/results.md; the script's exit status."""
    print(body)
    if not no_doc:
        write_doc(group, body)
    return 0


def write_doc(group: str, body: str) -> None:
    """Replace what lies between the group's markers in docs/results.md (append them if they are missing)."""
    begin, end = markers(group)
    block = f"{begin}\n{body}{end}"
    text = DOC.read_text() if DOC.is_file() else "# Results\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lock", help="run each heavy command under `flock LOCK`")
    parser.add_argument("--envs", default=",".join(ENVS), help="comma-separated envs")
    parser.add_argument("--updates", type=int, help="a variant: this many updates for every agent (own runs and table)")
    parser.add_argument("--tiers", help="with --updates: comma-separated tiers (default: every tier of each env)")
    parser.add_argument("--dataset-seed", type=int, default=0,
                        help="a variant: datasets made with this seed (data/<env>-dseed<N>/), their own runs and table")
    parser.add_argument("--no-doc", action="store_true", help="print the table but leave docs/results.md alone")
    args = parser.parse_args()
    if args.tiers and args.updates is None:
        parser.error("--tiers is for a variant: give --updates too")
    envs = args.envs.split(",")
    variant = Variant(args.updates, tuple(args.tiers.split(",")) if args.tiers else None, args.dataset_seed)
    build_datasets(envs, args.lock, variant)
    train_all(envs, args.lock, variant)
    # A group's block keeps every env of the group whose results are complete, not only the ones run now.
    for group in dict.fromkeys(group_of(env) for env in envs):
        members = [env for env in dict.fromkeys([*ENVS, *ENV_TIERS, *envs])
                   if group_of(env) == group and (env in envs or complete(env, variant))]
        body = tables(members, variant) + "\n" + commands_block(members, args.lock, variant)
        print(body)
        if not args.no_doc:
            write_doc(group + variant.suffix, body)
            print(f"wrote the {group + variant.suffix} block of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
