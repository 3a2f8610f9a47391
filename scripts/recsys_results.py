"""Logged recommendations: the production policy's logs, BC, IQL and CQL trained on them, and what each does on
the logging population (recsys) and the shifted one (recsys-shifted); writes docs/results.md ("Recommendations").

For each dataset seed: `jaxrl collect --env recsys --policy production` (data/recsys-production-dseed<k>/),
then each agent with experiments/offline/<agent>-recsys.yaml and 3 training seeds (runs/recsys/dseed<k>/<agent>/).
Every policy then plays 2000 sessions on each population (`envs.recsys.session_metrics`): engagement per
session, session length, distinct genres per session, unsafe rate. Agents act deterministically, as they are
evaluated, and the categorical policies (SAMPLED) also as they would serve, sampled. Reuses datasets and runs that
exist.

Usage: .venv/bin/python scripts/recsys_results.py [--dataset-seeds 0,1] [--lock /tmp/jaxrl-bench.lock] [--no-doc]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.offline_results import JAXRL, execute, publish, results_parser  # noqa: E402

# (row and run folder name, agent, extra arguments): each agent with its config; IQL also under a cost penalty of 1
# per unsafe recommendation (a fixed multiplier, the `cost_penalty` key), the safe candidate.
VARIANTS = (("bc", "bc", []), ("iql", "iql", []), ("iql-cost_penalty1", "iql", ["--set", "cost_penalty=1.0"]),
            ("cql", "cql", []))
# Rows also measured with the policy sampled (as the pipeline's canary serves it), not only its most likely item:
# the categorical policies of BC and IQL (CQL's sampled policy is epsilon-greedy, its greedy one nearly).
SAMPLED = ("bc", "iql", "iql-cost_penalty1")
CONFIG = "experiments/offline/{agent}-recsys.yaml"
STEPS = 200_000  # logged recommendations per dataset (about 5,500 sessions)
SEEDS = 3
SESSIONS = 2000
POPULATIONS = ("recsys", "recsys-shifted")
GROUP = "recsys"


def data_dir(dataset_seed: int) -> str:
    return f"data/recsys-production-dseed{dataset_seed}"


def run_dir(dataset_seed: int, name: str) -> str:
    return f"runs/recsys/dseed{dataset_seed}/{name}"


def prepare(dataset_seed: int, lock: str | None) -> list[str]:
    """Collect and train what is missing; the commands, for the doc."""
    collect = [JAXRL, "collect", "--env", "recsys", "--policy", "production", "--steps", str(STEPS), "--num-envs",
               "256", "--seed", str(dataset_seed), "--out", data_dir(dataset_seed)]
    commands = [collect]
    if not (ROOT / data_dir(dataset_seed) / "metadata.json").is_file():
        execute(collect, lock)
    for name, agent, extra in VARIANTS:
        train = [JAXRL, "train", agent, "--dataset", data_dir(dataset_seed), "--config", CONFIG.format(agent=agent),
                 "--seeds", str(SEEDS), "--run-dir", run_dir(dataset_seed, name), "--wandb", "disabled",
                 "--no-progress", *extra]
        commands.append(train)
        if not (ROOT / run_dir(dataset_seed, name) / "summary.json").is_file():
            execute(train, lock)
    return commands


def measure(policy, population: str, seed: int) -> dict[str, float]:
    import jax

    import envs
    from envs.recsys import session_metrics

    env = envs.make(population)
    metrics = jax.jit(lambda key: session_metrics(env, policy, key, SESSIONS))(jax.random.PRNGKey(1000 + seed))
    return {name: float(value) for name, value in metrics.items()}


def policies(dataset_seeds: list[int]):
    """(row name, [policy per dataset seed x training seed]) for the logging policy, uniform random and agents."""
    import jax

    import envs
    from jaxrl.policy import load_run

    env = envs.make("recsys")
    production = lambda obs, key: env.production_policy(obs, key)[0]
    uniform = lambda obs, key: jax.random.randint(key, (obs.shape[0],), 0, env.action_size)
    rows = [("production (logging)", [production]), ("uniform random", [uniform])]
    for name, _, _ in VARIANTS:
        for deterministic in (True, False) if name in SAMPLED else (True,):
            acting = []
            for dataset_seed in dataset_seeds:
                spec, experiment, states, _ = load_run(ROOT / run_dir(dataset_seed, name))
                for index in range(len(spec.seeds)):
                    state = jax.tree.map(lambda x, i=index: x[i], states)
                    acting.append(lambda obs, key, s=state, learner=experiment.learner, d=deterministic:
                                  learner.act(s, obs, key, d)[0])
            rows.append((name if deterministic else f"{name}, sampled", acting))
    return rows


def table(rows, dataset_seeds: list[int]) -> str:
    lines = ["| policy | population | engagement / session | session length | genres / session | unsafe rate |",
             "|---|---|---|---|---|---|"]
    for name, acting in rows:
        for population in POPULATIONS:
            runs = [measure(policy, population, seed) for seed, policy in enumerate(acting)]
            cell = lambda key, fmt, runs=runs: (
                f"{np.mean([r[key] for r in runs]):{fmt}}" if len(runs) == 1 else
                f"{np.mean([r[key] for r in runs]):{fmt}} ± {np.std([r[key] for r in runs], ddof=1):{fmt}}")
            lines.append(f"| {name} | {population} | {cell('engagement', '.2f')} | {cell('session_length', '.1f')} | "
                         f"{cell('genres', '.1f')} | {cell('unsafe_rate', '.3f')} |")
            print(lines[-1], flush=True)
    runs_per_agent = len(dataset_seeds) * SEEDS
    return "\n".join(lines) + (f"\n\nAgents: mean ± std over {runs_per_agent} runs ({len(dataset_seeds)} dataset "
                               f"seeds x {SEEDS} training seeds); each run and policy {SESSIONS} sessions per "
                               "population.\n")


def main(argv: list[str] | None = None) -> int:
    args = results_parser(__doc__).parse_args(argv)
    dataset_seeds = [int(s) for s in args.dataset_seeds.split(",")]
    commands = [command for seed in dataset_seeds for command in prepare(seed, args.lock)]
    body = table(policies(dataset_seeds), dataset_seeds)
    shown = "\n".join(" ".join(c) for c in commands[: 1 + len(VARIANTS)])
    header = (f"```bash\n.venv/bin/python scripts/recsys_results.py   # runs, per dataset seed k, e.g. k = 0:\n"
              f"{shown}\n```\n\n")
    return publish(GROUP, header + body, args.no_doc)


if __name__ == "__main__":
    sys.exit(main())
