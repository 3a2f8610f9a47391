"""Offline to online on our fast tasks: fine-tuned IQL, CQL and Cal-QL beside SAC from scratch and RLPD at the same
online budget; one command trains what is missing and writes the table into docs/results.md.

For every env and tier it needs the dataset and the offline IQL and CQL runs of the offline study
(`scripts/offline_results.py`, whose runs it reuses: runs/offline/<env>/<tier>/<agent>), trains Cal-QL offline with
CQL's config, fine-tunes the three with experiments/finetune/<agent>.yaml, and trains SAC and RLPD from the start
with experiments/finetune/{sac,rlpd}.yaml; runs whose summary.json exists are skipped, cut-off ones resumed.

Usage: .venv/bin/python scripts/finetune_results.py [--lock /tmp/jaxrl-bench.lock] [--envs pendulum,pointmass]
       .venv/bin/python scripts/finetune_results.py --agents cql,calql --set cql_alpha=1.0   # a variant
With --set, the fine-tuning runs (not the offline ones, nor SAC's and RLPD's) take those keys, live in folders named
after them (runs/finetune/<env>/<tier>/<agent>-cql_alpha1.0) and fill their own block of docs/results.md.
With --lock, every heavy command runs under `flock LOCK`, so it never overlaps another job holding the lock.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import offline_results as study  # noqa: E402
from scripts.offline_results import JAXRL, SEEDS, config_file, data_dir, execute, mean_std, publish  # noqa: E402
from scripts.offline_results import run_dir as offline_run_dir  # noqa: E402

ENVS = ("pendulum", "pointmass")  # the default; Brax locomotion (hopper, halfcheetah) by --envs
BRAX_ENVS = ("hopper", "halfcheetah")
TIERS = ("medium", "medium-replay")
# Brax rows: medium-replay only (D4RL's fine-tuning benchmark tier), evaluated on 10 episodes as the offline
# locomotion runs are (a 1000-step episode costs as much as 5 pendulum episodes).
ENV_TIERS = {env: ("medium-replay",) for env in BRAX_ENVS}
ENV_OPTIONS = {env: ["--set", "eval_episodes=10"] for env in BRAX_ENVS}
FINETUNED = ("iql", "cql", "calql")  # offline run, then `jaxrl finetune`
FROM_SCRATCH = ("sac", "rlpd")  # online from the first step, at the same budget
GROUP = "finetune"  # the block's name in docs/results.md
NOT_RUN = "not run yet"


def offline_dir(env: str, tier: str, agent: str) -> str:
    """IQL's and CQL's offline runs are the offline study's; Cal-QL's is trained here with CQL's config."""
    return offline_run_dir(env, tier, agent) if agent != "calql" else f"runs/finetune/{env}/{tier}/calql-offline"


def variant_name(sets: tuple[str, ...]) -> str:
    """`cql_alpha=1.0` -> "cql_alpha1.0": the suffix of a variant's run folders and doc block ("" for none)."""
    return "-".join(item.replace("=", "") for item in sets)


def online_dir(env: str, tier: str, agent: str, sets: tuple[str, ...] = ()) -> str:
    """A fine-tuning variant's runs have their own folders; SAC and RLPD, which no variant changes, keep theirs."""
    suffix = f"-{variant_name(sets)}" if sets and agent in FINETUNED else ""
    return f"runs/finetune/{env}/{tier}/{agent}{suffix}"


def commands(env: str, tier: str, sets: tuple[str, ...] = ()) -> list[tuple[str, str, list[str]]]:
    """(agent, run folder, command) of every run of one table row, in the order they must run (Cal-QL's offline run
    before its fine-tuning, with the config of the offline study's CQL runs)."""
    dataset = f"{data_dir(env)}/{tier}"
    common = ["--wandb", "disabled", "--no-progress"]
    online = [*common, *ENV_OPTIONS.get(env, [])]
    calql_offline = offline_dir(env, tier, "calql")
    runs = [("calql", calql_offline, [JAXRL, "train", "calql", "--dataset", dataset, "--config",
                                      config_file(env, "cql"), "--seeds", str(SEEDS), "--run-dir", calql_offline,
                                      *common])]
    for agent in FINETUNED:
        folder = online_dir(env, tier, agent, sets)
        runs.append((agent, folder, [JAXRL, "finetune", offline_dir(env, tier, agent), "--config",
                              f"experiments/finetune/{agent}.yaml", "--run-dir", folder, *online,
                              *(["--set", *sets] if sets else [])]))
    for agent in FROM_SCRATCH:
        runs.append((agent, online_dir(env, tier, agent), [JAXRL, "train", agent, "--dataset", dataset, "--config",
                                                    f"experiments/finetune/{agent}.yaml", "--seeds", str(SEEDS),
                                                    "--run-dir", online_dir(env, tier, agent), *online]))
    return runs


def tiers_of(env: str) -> tuple[str, ...]:
    return ENV_TIERS.get(env, TIERS)


def tabulated_envs() -> list[str]:
    """The fast envs, and the Brax envs that have at least one finished run: the block shows every row made."""
    made = [env for env in BRAX_ENVS if any(summary(online_dir(env, tier, agent)) for tier in tiers_of(env)
                                            for agent in FINETUNED + FROM_SCRATCH)]
    return [*ENVS, *made]


def shown_variants(sets: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The keys of the runs a table shows: the agents as configured, and a variant's runs beside them."""
    return ((), sets) if sets else ((),)


def train_all(envs: list[str], lock: str | None, agents: tuple[str, ...], tiers: tuple[str, ...] | None = None,
              sets: tuple[str, ...] = ()) -> None:
    """Every missing run of `agents` on `tiers` (default: the env's) and the offline Cal-QL runs they need; for a
    variant, its runs and the ones as configured that its table sets beside them."""
    for env in envs:
        for tier in tiers or tiers_of(env):
            for agent in ("iql", "cql"):
                if agent in agents and not (ROOT / offline_dir(env, tier, agent) / "summary.json").is_file():
                    raise SystemExit(f"{offline_dir(env, tier, agent)}: no finished offline run; run "
                                     f"scripts/offline_results.py --envs {env} first")
            # by folder, in order: the offline Cal-QL run both lists start with is trained once
            runs = {run[1]: run for keys in shown_variants(sets) for run in commands(env, tier, keys)}
            for agent, folder, command in runs.values():
                if agent not in agents or (ROOT / folder / "summary.json").is_file():
                    continue
                if (ROOT / folder / "config.yaml").is_file():
                    command = [JAXRL, "resume", folder, "--wandb", "disabled", "--no-progress"]
                execute(command, lock)


def summary(folder: str) -> dict | None:
    """The run's summary.json, None where the run has not finished."""
    path = ROOT / folder / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


NAMES = {"iql": "IQL", "cql": "CQL", "calql": "Cal-QL", "sac": "SAC", "rlpd": "RLPD"}


def columns(sets: tuple[str, ...], agents: tuple[str, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(heading, agent, variant keys) of the table's columns: every agent as configured; for a variant, each of
    its agents twice, as configured and with the variant's keys, on the same offline runs."""
    if not sets:
        return [(NAMES[agent], agent, ()) for agent in FINETUNED + FROM_SCRATCH]
    return [column for agent in agents for column in ((NAMES[agent], agent, ()),
                                                      (f"{NAMES[agent]}, {' '.join(sets)}", agent, sets))]


def table(envs: list[str], sets: tuple[str, ...] = (), agents: tuple[str, ...] = FINETUNED) -> str:
    """The score table (offline -> online, regret), the dip table and the wall times."""
    shown = columns(sets, agents)
    tuned = [column for column in shown if column[1] in FINETUNED]
    rows = ["| task | " + " | ".join(heading for heading, _, _ in shown) + " |", "|" + "---|" * (len(shown) + 1)]
    dips = ["| task | " + " | ".join(f"{heading} offline / lowest early / worst seed" for heading, _, _ in tuned)
            + " |", "|" + "---|" * (len(tuned) + 1)]
    seconds = {heading: 0.0 for heading, _, _ in shown}
    steps = None
    for env in envs:
        for tier in tiers_of(env):
            cells, dip_cells = [], []
            for heading, agent, keys in shown:
                run = summary(online_dir(env, tier, agent, keys))
                if run is None:
                    cells.append(NOT_RUN)
                    if agent in FINETUNED:
                        dip_cells.append(NOT_RUN)
                    continue
                seconds[heading] += run["wall_seconds"]
                final = f"**{mean_std(run['normalized_score_per_seed'])}** ({run['cumulative_regret']:.2f})"
                if agent not in FINETUNED:
                    cells.append(final)
                    continue
                steps = run["online_env_steps"]
                cells.append(f"{mean_std(run['offline_score_per_seed'])} → {final}")
                worst = min(low - start for low, start in zip(run["min_score_first_10pct_per_seed"],
                                                              run["offline_score_per_seed"], strict=True))
                dip_cells.append(f"{np.mean(run['offline_score_per_seed']):.1f} / "
                                 f"{np.mean(run['min_score_first_10pct_per_seed']):.1f} / {worst:+.1f}")
            rows.append(f"| {env} {tier} | " + " | ".join(cells) + " |")
            dips.append(f"| {env} {tier} | " + " | ".join(dip_cells) + " |")
    timing = ", ".join(f"{heading if sets else agent} {value / 60:.1f} min"
                       for (heading, agent, _), value in zip(shown, seconds.values(), strict=True))
    return ("\n".join(rows) + "\n\nNormalized score (0 random, 100 expert; mean ± std over seeds "
            f"{', '.join(map(str, range(SEEDS)))}), offline → after {steps or 0:,} online env steps, cumulative regret "
            "in brackets (mean over the online evaluations of 1 - score/100, lower is better)."
            + ("" if sets else " SAC and RLPD start from nothing; their row is the score after the same online steps.")
            + "\n\nThe early dip (normalized score before the first online step, the lowest evaluation in the first "
            "tenth of the online steps, both seed means, and the largest drop of one seed):\n\n"
            + "\n".join(dips) + f"\n\nWall time of the online runs, all rows, 3 seeds each: {timing}.\n")


def commands_block(envs: list[str], lock: str | None, sets: tuple[str, ...] = (),
                   agents: tuple[str, ...] = FINETUNED + FROM_SCRATCH) -> str:
    """Every command behind the table; for a variant, the offline study's runs it starts from and the runs as
    configured beside the variant's."""
    lines = []
    for env in envs:
        for tier in tiers_of(env):
            if sets:
                lines += [shlex.join(study.train_command(env, tier, agent)) for agent in ("iql", "cql")
                          if agent in agents]
            for keys in shown_variants(sets):
                for agent, _, command in commands(env, tier, keys):
                    line = shlex.join(command)
                    if agent in agents and line not in lines:
                        lines.append(line)
    prefix = f" (each under `flock {lock}`)" if lock else ""
    return f"Every command, as run{prefix}:\n\n```bash\n" + "\n".join(lines) + "\n```\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lock", help="run each heavy command under `flock LOCK`")
    parser.add_argument("--envs", default=",".join(ENVS), help="comma-separated envs")
    parser.add_argument("--agents", default=",".join(FINETUNED + FROM_SCRATCH),
                        help="comma-separated agents to train (the table shows every finished run)")
    parser.add_argument("--tiers", help="comma-separated tiers to train (default: each env's)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="keys for the fine-tuning runs: a variant, in its own folders and doc block")
    parser.add_argument("--no-doc", action="store_true", help="print the table but leave docs/results.md alone")
    args = parser.parse_args()
    bad = [item for item in args.set if "=" not in item]
    if bad:
        parser.error(f"--set: expected KEY=VALUE, got {' '.join(bad)}")
    sets = tuple(args.set)
    agents = tuple(args.agents.split(","))
    train_all(args.envs.split(","), args.lock, agents, tuple(args.tiers.split(",")) if args.tiers else None, sets)
    flags = f" --lock {args.lock}" if args.lock else ""
    if sets:  # a variant: its rows and agents only, each beside the same agent as configured
        envs = args.envs.split(",")
        flags += f" --envs {args.envs} --agents {args.agents} --set {' '.join(sets)}"
        runs = commands_block(envs, args.lock, sets, agents)
    else:
        envs = tabulated_envs()
        runs = commands_block(envs, args.lock)
    body = (f"Generated by `.venv/bin/python scripts/finetune_results.py{flags}`"
            + ("" if sets else " (Brax rows: `--envs hopper,halfcheetah`)") + ".\n\n" + table(envs, sets, agents)
            + "\n" + runs)
    return publish(f"{GROUP}-{variant_name(sets)}" if sets else GROUP, body, args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
