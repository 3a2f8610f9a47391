"""The `jaxrl` command: train, sweep, resume, evaluate, collect, dataset tools and reports."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train an agent (ppo, ppo_lag, sac online; rlpd online with a "
                                                 "dataset mixed in; iql, cql, calql, bc offline)")
    parser.add_argument("agent", nargs="?", help="ppo, ppo_lag or sac (online: --env), rlpd (--dataset, its env), "
                                                 "iql, cql, calql or bc (offline: --dataset)")
    parser.add_argument("--env", help="environment name (online agents; offline agents take it from the dataset)")
    parser.add_argument("--dataset", help="dataset folder (offline agents)")
    parser.add_argument("--config", help="YAML file of config keys")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[], help="override config keys")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds trained at once (vmapped)")
    parser.add_argument("--seed-batch", type=int, default=None, metavar="N",
                        help="vmap N seeds at a time, the groups one after another in the same program "
                             "(default: all seeds at once; on a CPU, where one seed of a large update such as "
                             "CQL's already fills the cores, 1 is faster)")
    parser.add_argument("--run-dir", help="output folder (default: runs/<agent>-<env>-<time>)")
    parser.add_argument("--sweep-member", metavar="JSON_FILE",
                        help="train one member of a W&B sweep: the parameters `wandb agent` writes for "
                             "${args_json_file} (agent, env or dataset, config, seeds and config keys), in place of "
                             "the arguments above")
    _add_run_options(parser)
    parser.set_defaults(func=_train)


def _add_sweep(subparsers) -> None:
    parser = subparsers.add_parser("sweep", help="train every member of a W&B sweep file, as few programs as "
                                                 "possible (members differing only in hyperparameters are vmapped)")
    parser.add_argument("file", help="a W&B sweep YAML file (method grid or random)")
    parser.add_argument("--run-dir", help="output folder (default: runs/sweep-<file name>-<time>)")
    parser.add_argument("--seed", type=int, default=0, help="seed of method random's draws (default 0)")
    _add_run_options(parser)
    parser.set_defaults(func=_sweep)


def _sweep(args) -> int:
    from jaxrl.sweep.run import run_sweep

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/sweep-{Path(args.file).stem}-{stamp}")
    return _report_sweep(run_sweep(args.file, run_dir, _run_options(args), seed=args.seed), run_dir)


def _report_sweep(result: dict, run_dir: Path) -> int:
    print((run_dir / "ranking.md").read_text(), end="")
    best = min(result["members"], key=lambda row: row["rank"])
    print(f"{run_dir}: best {best['name']} ({result['metric']['name']} {best['metric']:.4g}); "
          f"{len(result['members'])} members in {len(result['programs'])} program(s)")
    return 0


def _add_run_options(parser) -> None:
    parser.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                        help="W&B mode (default: online if logged in, else offline)")
    parser.add_argument("--checkpoint-every", type=int, default=1, metavar="CHUNKS",
                        help="checkpoint every this many chunks (a chunk = eval_every steps)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from jaxrl.infra.watchdog import DEFAULT_TIMEOUT

    parser.add_argument("--watchdog", type=_watchdog_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="exit with code 3, naming the stuck program, when a compiled program makes no progress "
                             "for this long (CPU: uses no CPU time; GPU/TPU: runs this long); 0 disables "
                             f"(default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--devices", type=int, default=1, metavar="N",
                        help="train on the first N devices: each takes whole runs when the vmapped runs (seeds x "
                             "sweep members) divide evenly, else a share of every batch, gradients averaged "
                             "(default: 1)")
    from jaxrl.infra import compile_cache, distributed

    compile_cache.add_option(parser)
    distributed.add_options(parser)


def _watchdog_seconds(text: str) -> float:
    seconds = float(text)
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (0 disables), got {text!r}")
    return seconds


def _train(args) -> int:
    from jaxrl.config import ConfigError, parse_overrides
    from jaxrl.experiment import make_spec

    if args.sweep_member:
        return _train_sweep_member(args)
    if not args.agent:
        raise ConfigError("jaxrl train: name the agent (ppo, ppo_lag, sac, rlpd, iql, cql, calql or bc), or give "
                          "--sweep-member JSON_FILE")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seed_batch is not None and args.seed_batch < 1:
        raise ConfigError(f"--seed-batch must be at least 1, got {args.seed_batch}")
    spec = make_spec(args.agent, args.env, args.dataset, args.config, parse_overrides(args.set), args.seeds,
                     args.seed_batch, source=f"jaxrl train {args.agent}")
    env_name = spec.env
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/{args.agent}-{env_name.replace('/', '_')}-{stamp}")
    from jaxrl.infra.distributed import is_primary

    if (run_dir / "config.yaml").exists() and is_primary():  # others of a multi-host run may see it written
        raise ConfigError(f"{run_dir} already holds a run: continue it with `jaxrl resume {run_dir}` "
                          "or pick another --run-dir")
    return _execute(spec, run_dir, args, resume=False)


def _train_sweep_member(args) -> int:
    import json

    from jaxrl.config import ConfigError
    from jaxrl.sweep.run import member_spec

    path = Path(args.sweep_member)
    try:
        parameters = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"--sweep-member {path}: not a readable JSON file of sweep parameters ({error})") from None
    if not isinstance(parameters, dict):
        raise ConfigError(f"--sweep-member {path}: expected a JSON object of parameters, "
                          f"got {type(parameters).__name__}")
    spec = member_spec(parameters, f"--sweep-member {path}")
    run_id = os.environ.get("WANDB_RUN_ID") or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/{spec.agent}-{spec.env.replace('/', '_')}-{run_id}")
    return _execute(spec, run_dir, args, resume=(run_dir / "config.yaml").exists())


def _run_options(args):
    from jaxrl.experiment import RunOptions
    from jaxrl.infra.logging import default_wandb_mode

    return RunOptions(wandb_mode=args.wandb or default_wandb_mode(), checkpoint_every=args.checkpoint_every,
                      progress=not args.no_progress, watchdog_seconds=args.watchdog, devices=args.devices)


def _execute(spec, run_dir: Path, args, resume: bool) -> int:
    from jaxrl.experiment import execute

    _, summary = execute(spec, run_dir, _run_options(args), resume=resume)
    print(f"{run_dir}: eval return {summary['eval_return_mean']:.2f} "
          f"(per seed {', '.join(f'{r:.2f}' for r in summary['eval_return_per_seed'])})")
    return 0


def _add_finetune(subparsers) -> None:
    parser = subparsers.add_parser("finetune", help="continue every seed of a finished offline run (iql, cql or "
                                                    "calql) online, in its dataset's env, with that dataset mixed in")
    parser.add_argument("offline_run_dir", metavar="OFFLINE_RUN_DIR", help="the offline run's folder (only read)")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="online env steps (default: the config's total_steps)")
    parser.add_argument("--config", help="YAML file of replay-loop and agent keys (e.g. experiments/finetune/)")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[], help="override config keys")
    parser.add_argument("--run-dir", help="output folder (default: runs/finetune-<agent>-<env>-<time>)")
    _add_run_options(parser)
    parser.set_defaults(func=_finetune)


def _finetune(args) -> int:
    import json

    from jaxrl.config import ConfigError, parse_overrides
    from jaxrl.finetune import finetune_spec

    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    spec = finetune_spec(args.offline_run_dir, args.steps, args.config, parse_overrides(args.set))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/finetune-{spec.agent}-{spec.env.replace('/', '_')}-{stamp}")
    if (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} already holds a run: continue it with `jaxrl resume {run_dir}` "
                          "or pick another --run-dir")
    if run_dir.resolve() == Path(args.offline_run_dir).resolve():
        raise ConfigError(f"--run-dir {run_dir} is the offline run's folder, which fine-tuning only reads")
    code = _execute(spec, run_dir, args, resume=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary.get("offline_score") is not None:
        print(f"{run_dir}: normalized score {summary['offline_score']:.1f} offline -> "
              f"{summary['normalized_score_mean']:.1f} after {summary['online_env_steps']} online steps "
              f"(lowest in the first tenth {summary['min_score_first_10pct']:.1f}, "
              f"regret {summary['cumulative_regret']:.3f})")
    return code


def _add_resume(subparsers) -> None:
    parser = subparsers.add_parser("resume", help="continue a run or a sweep from its newest checkpoints")
    parser.add_argument("run_dir")
    _add_run_options(parser)
    parser.set_defaults(func=_resume)


def _resume(args) -> int:
    from jaxrl.experiment import load_spec

    run_dir = Path(args.run_dir)
    if (run_dir / "sweep.yaml").is_file():
        from jaxrl.sweep.run import run_sweep

        return _report_sweep(run_sweep(None, run_dir, _run_options(args), resume=True), run_dir)
    return _execute(load_spec(run_dir), run_dir, args, resume=True)


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a run's newest checkpoint, or a registry's version")
    parser.add_argument("run_dir", help="a run folder, a policy registry (its live version, or --version) or one "
                                        "policy folder")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per seed (default: the config's)")
    parser.add_argument("--version", default=None, help="with a registry: the version to evaluate (default: live)")
    from jaxrl.infra import compile_cache

    compile_cache.add_option(parser)
    parser.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from jaxrl.policy import evaluate_deployed, evaluate_run

    if (Path(args.run_dir) / "config.yaml").is_file():
        result = evaluate_run(Path(args.run_dir), args.episodes)
        print(f"{args.run_dir}: return {result['eval_return_mean']:.2f} over {result['episodes']} episodes per seed "
              f"(per seed {', '.join(f'{r:.2f}' for r in result['eval_return_per_seed'])})")
        return 0
    result = evaluate_deployed(Path(args.run_dir), args.version, args.episodes)
    name = f"{args.run_dir} {result['version']}" if result["version"] else args.run_dir
    print(f"{name}: return {result['eval_return_mean']:.2f}, cost {result['eval_cost_per_seed'][0]:.2f} over "
          f"{result['episodes']} episodes")
    return 0


def _add_report(subparsers) -> None:
    from jaxrl.report.stats import DEFAULT_REPS

    parser = subparsers.add_parser("report", help="aggregate runs over seeds and tasks: IQM, mean, median, "
                                                  "optimality gap with bootstrap intervals, profiles, curves")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run folder of `jaxrl train`, or a folder holding some anywhere beneath it")
    parser.add_argument("--out", default="report", metavar="DIR",
                        help="output folder for report.md, aggregates.json, performance_profile.png and "
                             "learning_curves.png (default: report)")
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS,
                        help=f"bootstrap resamples (default: {DEFAULT_REPS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    parser.set_defaults(func=_report)


def _report(args) -> int:
    from jaxrl.report.build import OUTPUTS, write_report

    report = write_report(args.run_dirs, Path(args.out), args.reps, args.seed)
    score = report["score"].replace("_", " ")
    for agent, result in report["agents"].items():
        low, high = result["iqm"]["ci"]
        print(f"{agent}: IQM {score} {result['iqm']['estimate']:.2f} [{low:.2f}, {high:.2f}] "
              f"over {result['tasks']} task(s), {result['runs']} runs")
    print(f"wrote {', '.join(str(Path(args.out) / name) for name in OUTPUTS)}")
    return 0


def _add_ope(subparsers) -> None:
    from jaxrl.ope.run import ESTIMATORS, Options

    defaults = Options()
    parser = subparsers.add_parser("ope", help="off-policy evaluation: estimate every seed of every run from a dataset "
                                               "alone (FQE, importance sampling, doubly robust) with intervals")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="runs whose policies (every seed) are evaluated; RUN_DIR@N takes checkpoint N")
    parser.add_argument("--dataset", required=True, help="dataset folder of the same env")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS),
                        help=f"comma-separated, of {', '.join(ESTIMATORS)} (default: all)")
    parser.add_argument("--true-returns", type=int, default=0, metavar="N",
                        help="roll out N episodes per policy for its true value and score the estimators' ranking "
                             "(default 0: estimates only)")
    parser.add_argument("--out", help="output folder for ope.json, ope.md, ope.png (default: runs/ope-<env>-<time>)")
    parser.add_argument("--resamples", type=int, default=defaults.num_resamples, help="bootstrap resamples")
    parser.add_argument("--level", type=float, default=defaults.level, help="confidence level of the intervals")
    parser.add_argument("--gamma", type=float, help="discount (default: 0.99, lower where the time limit needs)")
    parser.add_argument("--policy", default=defaults.policy, choices=("stochastic", "deterministic"),
                        help="the policy evaluated: act's samples (default) or its mode (FQE only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of FQE, the bootstrap and the rollouts")
    parser.add_argument("--fqe-members", type=int, default=defaults.fqe_members, metavar="M",
                        help="FQE fits per policy (own initialization and batches); with M > 1 the FQE-based "
                             "estimates are their mean and the intervals include their spread")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[], help="FQE config keys (jaxrl/ope/fqe.py)")
    from jaxrl.infra import compile_cache

    compile_cache.add_option(parser)
    parser.set_defaults(func=_ope)


def _new_output_folder(args, kind: str) -> Path:
    """`--out`, or runs/<kind>-<the dataset's env>-<time>; refused if it exists, before any work."""
    from jaxrl.config import ConfigError
    from jaxrl.data.storage import load_metadata

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/{kind}-{load_metadata(args.dataset).env_name.replace('/', '_')}-{stamp}")
    if out.exists():
        raise ConfigError(f"--out {out}: already exists; choose a new folder")
    return out


def _ope(args) -> int:
    from jaxrl.config import parse_overrides
    from jaxrl.ope import report
    from jaxrl.ope.run import Options, run_ope

    out = _new_output_folder(args, "ope")
    options = Options(tuple(name.strip() for name in args.estimators.split(",") if name.strip()), args.true_returns,
                      args.resamples, args.level, gamma=args.gamma, policy=args.policy, seed=args.seed,
                      fqe_overrides=parse_overrides(args.set), fqe_members=args.fqe_members)
    result = run_ope(Path(args.dataset), args.run_dirs, options)
    report.write(out, result)
    print(report.markdown(result))
    print(f"wrote {out / 'ope.json'}, {out / 'ope.md'}" + (f", {out / 'ope.png'}" if args.true_returns else ""))
    return 0


def _add_shift(subparsers) -> None:
    from jaxrl.safety.shift import Options

    defaults = Options()
    parser = subparsers.add_parser("shift", help="distribution shift of a run's policies against a dataset: state "
                                                 "novelty, action likelihood, Q-ensemble disagreement")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="runs (RUN_DIR@N: checkpoint N)")
    parser.add_argument("--dataset", required=True, help="dataset folder of the same env")
    parser.add_argument("--episodes", type=int, default=defaults.episodes, help="rollout episodes per policy")
    parser.add_argument("--ensemble", type=int, default=defaults.ensemble_size, help="FQE critics")
    parser.add_argument("--novelty-threshold", type=float, default=defaults.novelty_threshold)
    parser.add_argument("--likelihood-quantile", type=float, default=defaults.likelihood_quantile)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output folder (default: runs/shift-<env>-<time>)")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[], help="FQE config keys")
    from jaxrl.infra import compile_cache

    compile_cache.add_option(parser)
    parser.set_defaults(func=_shift)


def _shift(args) -> int:
    from jaxrl.config import parse_overrides
    from jaxrl.safety import shift

    out = _new_output_folder(args, "shift")
    options = shift.Options(args.episodes, args.ensemble, args.novelty_threshold, args.likelihood_quantile,
                            seed=args.seed, fqe_overrides=parse_overrides(args.set))
    summary, arrays = shift.run_shift(Path(args.dataset), args.run_dirs, options)
    shift.write(out, summary, arrays)
    print(shift.markdown(summary))
    print(f"wrote {out / 'shift.json'}, {out / 'shift.md'}, {out / 'shift_states.npz'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from jaxrl.dataset_commands import add_collect_command, add_dataset_commands
    from jaxrl.deploy.commands import add_pipeline_command, add_registry_commands

    parser = argparse.ArgumentParser(prog="jaxrl", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_sweep(subparsers)
    _add_finetune(subparsers)
    _add_resume(subparsers)
    _add_evaluate(subparsers)
    add_collect_command(subparsers)
    add_dataset_commands(subparsers)
    _add_report(subparsers)
    _add_ope(subparsers)
    _add_shift(subparsers)
    add_registry_commands(subparsers)
    add_pipeline_command(subparsers)
    args = parser.parse_args(argv)
    if hasattr(args, "compile_cache"):  # the commands that compile; before anything does
        from jaxrl.infra import compile_cache

        compile_cache.configure(args.compile_cache)
    try:
        if hasattr(args, "coordinator"):  # `train`, `sweep` and `resume`: join a multi-host run before JAX starts
            from jaxrl.infra import distributed

            distributed.initialize(args)
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"jaxrl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
