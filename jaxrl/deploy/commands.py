"""`jaxrl registry list|show|add|promote|rollback`: the policy registry by hand."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_registry_commands(subparsers) -> None:
    parser = subparsers.add_parser("registry", help="inspect and change a policy registry: list, show, add, "
                                                    "promote, rollback")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every version, the live one marked, and its gates")
    listing.add_argument("registry")
    show = actions.add_parser("show", help="one version's provenance, config and gate figures")
    show.add_argument("registry")
    show.add_argument("version", nargs="?", default=None, help="default: the live version")
    add = actions.add_parser("add", help="store one seed of a run, or a logging policy that ships with an env, as a "
                                         "new version (not live)")
    add.add_argument("registry", help="the registry folder (created if missing)")
    add.add_argument("run_dir", help="a run folder, or env:NAME for the logging policy NAME of --env")
    add.add_argument("--env", default=None, help="with env:NAME, the env that ships the policy (e.g. recsys)")
    add.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds (default: the first)")
    add.add_argument("--chunk", type=int, default=None, help="checkpoint (default: the newest)")
    add.add_argument("--note", default="", help="recorded with the version's event")
    promote = actions.add_parser("promote", help="make a version live")
    promote.add_argument("registry")
    promote.add_argument("version")
    promote.add_argument("--reason", default="promoted by hand")
    rollback = actions.add_parser("rollback", help="make the previously live version live again")
    rollback.add_argument("registry")
    rollback.add_argument("--reason", default="rolled back by hand")
    parser.set_defaults(func=registry_command)


def registry_command(args: argparse.Namespace) -> int:
    from jaxrl.config import ConfigError
    from jaxrl.deploy import bundle
    from jaxrl.deploy.registry import Registry

    if args.action == "add":
        name = bundle.env_policy_name(args.run_dir)
        if name is not None:
            if args.env is None:
                raise ConfigError(f"registry add {args.run_dir}: name the env that ships it with --env")
            policy = bundle.from_env(args.env, name)
        else:
            policy = bundle.from_run(Path(args.run_dir), args.seed_index, args.chunk)
        registry = Registry(args.registry, create=True)
        version = registry.add(policy, note=args.note)
        print(f"{args.registry}: added {version} from {args.run_dir} (not live; `jaxrl registry promote "
              f"{args.registry} {version}` makes it live)")
        return 0
    registry = Registry(args.registry)
    if args.action == "list":
        rows = registry.describe()
        if not rows:
            print(f"{args.registry}: no versions yet")
        for row in rows:
            provenance = row["provenance"]
            source = f"{provenance.get('run_dir')} chunk {provenance.get('chunk')} seed {provenance.get('seed')}"
            gates = ", ".join(f"{name} {'passed' if ok else 'failed'}" for name, ok in row["gates"].items())
            print(f"{'*' if row['live'] else ' '} {row['version']:>4}  {row['agent']:<8} {row['env']:<12} "
                  f"{source}  {gates}")
        return 0
    if args.action == "show":
        version = args.version or registry.live
        if version is None:
            raise ValueError(f"{args.registry}: no version is live; name one")
        document = bundle.read_document(registry.version_dir(version))
        print(json.dumps({"version": version, "live": version == registry.live, **document,
                          "gates": registry.gates(version)}, indent=2, sort_keys=True))
        return 0
    if args.action == "promote":
        registry.promote(args.version, args.reason)
        print(f"{args.registry}: {args.version} is live")
        return 0
    version = registry.rollback(args.reason)
    print(f"{args.registry}: rolled back; {version} is live")
    return 0


def add_pipeline_command(subparsers) -> None:
    parser = subparsers.add_parser("pipeline", help="from an incumbent's logs to a deployed policy: data gate, "
                                                    "offline candidates, OPE gate, shadow, canary, monitored "
                                                    "fine-tuning, promotion or rollback")
    parser.add_argument("config", nargs="?", help="a pipeline YAML (experiments/pipeline/pointmass.yaml)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys")
    parser.add_argument("--run-dir", default=None, help="the pipeline's folder (default: runs/pipeline-<time>)")
    parser.add_argument("--inject", default=None, metavar="FAULT",
                        help="a fault drill: unsafe-candidate, incident-spike or bad-data")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue a killed pipeline from its last finished stage")
    parser.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                        help="W&B mode (default: online if logged in, else offline)")
    parser.add_argument("--no-progress", action="store_true", help="hide the training runs' progress bars")
    from jaxrl.infra import compile_cache

    compile_cache.add_option(parser)
    parser.set_defaults(func=pipeline_command)


def pipeline_command(args: argparse.Namespace) -> int:
    import datetime

    from jaxrl.config import ConfigError, build_config, load_yaml, parse_overrides
    from jaxrl.deploy import pipeline
    from jaxrl.deploy.config import PipelineConfig
    from jaxrl.experiment import RunOptions
    from jaxrl.infra.logging import default_wandb_mode

    options = RunOptions(wandb_mode=args.wandb or default_wandb_mode(), progress=not args.no_progress)
    if args.resume:
        if args.config or args.set or args.inject or args.run_dir:
            raise ConfigError("--resume RUN_DIR continues a pipeline as it was started: give no CONFIG, --set, "
                              "--inject or --run-dir with it")
        run_dir = Path(args.resume)
        pipeline.load(run_dir)  # checks it is a pipeline folder before anything runs
    else:
        if not args.config:
            raise ConfigError("jaxrl pipeline: name a config (experiments/pipeline/pointmass.yaml), or --resume "
                              "RUN_DIR")
        config = build_config(PipelineConfig, {**load_yaml(args.config), **parse_overrides(args.set)},
                              source=f"{args.config}{' and --set' if args.set else ''}")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.run_dir or f"runs/pipeline-{config.env}-{stamp}")
        pipeline.start(config, run_dir, args.inject)
    summary = pipeline.run(run_dir, options)
    outcome = (f"promoted {summary['live_version']}" if summary["promoted"] else
               f"stopped at {summary['stopped_at']}{' (rolled back)' if summary['rolled_back'] else ''}; "
               f"live version {summary['live_version']}")
    print(f"{run_dir}: {outcome}; report: {run_dir / 'report.md'}")
    return 0
