"""`jaxrl collect` and `jaxrl dataset make|inspect|filter|import|export`: the command-line face of datasets.

Handlers take the parsed arguments and return an exit code; user errors raise `DatasetError` (a
ValueError), which the top-level `jaxrl` command prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from jaxrl.data import formats, minari_format, quality, storage
from jaxrl.data.filter import top_fraction
from jaxrl.data.metadata import Metadata
from jaxrl.data.report_files import render_markdown
from jaxrl.infra import compile_cache
from jaxrl.types import Transition

FORMATS = ("d4rl", "minari")


def _save_with_report(path: Path, transition: Transition, metadata: Metadata, overwrite: bool) -> Metadata:
    """Save a dataset folder and write its quality report next to the arrays."""
    metadata = storage.save(path, transition, metadata, overwrite=overwrite)
    quality.write_report(path, quality.quality_report(transition, metadata))
    return metadata


def _describe(path: Path, metadata: Metadata) -> str:
    brief = metadata.quality or {}
    return (
        f"wrote {path}: {brief.get('transitions')} transitions, {brief.get('episodes')} episodes, "
        f"mean return {brief.get('returns', {}).get('mean', float('nan')):.4g}, fingerprint {metadata.fingerprint[:16]}"
    )


def inspect_command(args: argparse.Namespace) -> int:
    """Validate a dataset folder, print its quality report and write it to DIR/quality.{json,md} and returns.png."""
    transition, metadata = storage.load(args.dir)
    report = quality.quality_report(transition, metadata)
    paths = quality.write_report(args.dir, report)
    print(render_markdown(report))
    print(f"\nwrote {', '.join(str(path) for path in paths)}")
    return 0


def filter_command(args: argparse.Namespace) -> int:
    """Keep the best episodes of DIR by return and save them to --out, recording DIR as the parent."""
    transition, metadata = storage.load(args.dir)
    kept, child = top_fraction(transition, metadata, args.top_fraction, parent_path=args.dir)
    child = _save_with_report(Path(args.out), kept, child, args.overwrite)
    derivation = child.provenance.parent.derivation
    print(
        f"kept {derivation['episodes_kept']} of {derivation['episodes_in_parent']} episodes "
        f"(returns >= {derivation['min_return_kept']:.4g})"
    )
    print(_describe(Path(args.out), child))
    return 0


def import_command(args: argparse.Namespace) -> int:
    """Read a D4RL HDF5 file or a local Minari dataset (folder or id) and save it as a jaxrl dataset folder."""
    reader = formats.import_d4rl if args.format == "d4rl" else minari_format.import_minari
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", formats.NarrowingWarning)
        transition, metadata = reader(
            args.file,
            args.env,
            drop_invalid=args.drop_invalid,
            random_return=args.random_return,
            expert_return=args.expert_return,
        )
    _show(caught)
    if metadata.dropped_invalid_rows:
        print(f"dropped {metadata.dropped_invalid_rows} invalid rows (recorded in metadata.json)")
    metadata = _save_with_report(Path(args.out), transition, metadata, args.overwrite)
    print(_describe(Path(args.out), metadata))
    return 0


def _show(caught: list[warnings.WarningMessage]) -> None:
    """Print narrowing warnings as plain lines on stderr; show any other warning as Python would."""
    for warning in caught:
        if issubclass(warning.category, formats.NarrowingWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def export_command(args: argparse.Namespace) -> int:
    """Write a dataset folder as a D4RL HDF5 file, or as a Minari dataset under a datasets root (default Minari's)."""
    if args.format == "d4rl" and args.out is None:
        raise ValueError("jaxrl dataset export --format d4rl: --out FILE.hdf5 is required")
    transition, metadata = storage.load(args.dir)
    if args.format == "d4rl":
        formats.export_d4rl(args.out, transition, metadata, overwrite=args.overwrite)
        print(f"wrote {args.out}: {len(transition.obs)} transitions (D4RL-style HDF5)")
        return 0
    root = Path(args.out) if args.out is not None else minari_format.datasets_root()
    destination = minari_format.export_minari(
        root, transition, metadata, dataset_id=args.dataset_id, overwrite=args.overwrite
    )
    dataset_id = destination.relative_to(root).as_posix()
    print(f"wrote {destination}: {len(transition.obs)} transitions (Minari)")
    if args.out is None:
        print(f"load it with: minari.load_dataset({dataset_id!r}); import it: jaxrl dataset import {dataset_id} "
              "--format minari")
    else:
        print(f"load it with: MINARI_DATASETS_PATH={root} and minari.load_dataset({dataset_id!r})")
    return 0


def collect_command(args: argparse.Namespace) -> int:
    """Log `--steps` transitions of a random policy or a trained run's policy into a new dataset folder."""
    import envs
    from jaxrl import collect as collect_lib
    from jaxrl.data.metadata import Provenance

    if args.steps < 1 or args.num_envs < 1:
        raise ValueError(f"--steps and --num-envs must be positive, got {args.steps} and {args.num_envs}")
    spec = envs.spec(args.env, envs.make(args.env))
    if args.policy == "random":
        behavior, info = collect_lib.random_behavior(spec), {}
    elif args.policy in collect_lib.logging_policy_names(args.env):
        behavior, info = collect_lib.env_behavior(args.env, args.policy), {"logging_policy": args.policy}
    elif Path(args.policy).is_dir():
        behavior, info = collect_lib.behavior_from_run(Path(args.policy), seed_index=args.seed_index)
    else:
        shipped = "".join(f", '{name}'" for name in collect_lib.logging_policy_names(args.env))
        raise ValueError(f"--policy {args.policy!r}: not 'random'{shipped} (the logging policies of {args.env}) "
                         "nor a run directory")
    data = collect_lib.collect(behavior, args.env, args.steps, args.num_envs, args.seed)
    metadata = Metadata(env_name=args.env, obs_size=spec.obs_size, action_size=spec.action_size, discrete=spec.discrete,
                        provenance=Provenance(behavior_policy=behavior.description,
                                              behavior_policy_fingerprint=behavior.fingerprint, seed=args.seed),
                        random_return=args.random_return, expert_return=args.expert_return,
                        time_limit=spec.episode_length, extra={"policy": info})
    metadata = _save_with_report(Path(args.out), data, metadata, args.overwrite)
    print(_describe(Path(args.out), metadata))
    return 0


def make_command(args: argparse.Namespace) -> int:
    """Train (or take) a PPO run and write the D4RL-style tiers of `jaxrl.tiers` under --out."""
    from jaxrl.tiers import make_tiers

    if args.steps < 1 or args.num_envs < 1:
        raise ValueError(f"--steps and --num-envs must be positive, got {args.steps} and {args.num_envs}")
    summary = make_tiers(args.env, Path(args.out), Path(args.run) if args.run else None, args.steps, args.num_envs,
                         args.seed, args.set, args.wandb or "disabled")
    references = summary["reference_returns"]
    print(f"{args.out}: reference returns random {references['random']:.2f}, expert {references['expert']:.2f} "
          f"(medium = checkpoint {summary['medium_chunk']}, expert = checkpoint {summary['expert_chunk']})")
    for tier, brief in summary["tiers"].items():
        print(f"  {tier:14s} {brief['transitions']:>9d} transitions {brief['episodes']:>6d} episodes "
              f"mean return {brief['returns']['mean']:.2f}")
    return 0


def add_collect_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `jaxrl collect`."""
    parser = subparsers.add_parser("collect", help="log a policy's experience as a dataset")
    parser.add_argument("--env", required=True, help="environment name")
    parser.add_argument("--policy", required=True,
                        help="'random', a logging policy that ships with the env (recsys: 'production'), or a run "
                             "directory (its newest checkpoint)")
    parser.add_argument("--steps", type=int, required=True, help="transitions to log")
    parser.add_argument("--out", required=True, help="new dataset folder")
    parser.add_argument("--num-envs", type=int, default=64, help="parallel environments")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-index", type=int, default=0, help="which seed of a multi-seed run acts")
    parser.add_argument("--random-return", type=float, help="reference return of a random policy")
    parser.add_argument("--expert-return", type=float, help="reference return of an expert policy")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    compile_cache.add_option(parser)
    parser.set_defaults(func=collect_command)


def add_dataset_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `dataset` and its sub-commands on the top-level `jaxrl` parser's subparsers."""
    parser = subparsers.add_parser("dataset", help="inspect, filter, import and export logged datasets")
    commands = parser.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="validate a dataset and write its quality report into it")
    inspect.add_argument("dir", help="dataset folder (arrays.npz + metadata.json)")
    inspect.set_defaults(func=inspect_command)

    keep = commands.add_parser("filter", help="keep the episodes with the highest returns")
    keep.add_argument("dir", help="dataset folder to filter")
    keep.add_argument("--top-fraction", type=float, required=True, help="fraction of episodes to keep, in (0, 1]")
    keep.add_argument("--out", required=True, help="new dataset folder")
    keep.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    keep.set_defaults(func=filter_command)

    reader = commands.add_parser("import", help="import a D4RL HDF5 file or a local Minari dataset")
    reader.add_argument("file", help="D4RL .hdf5 file; Minari dataset folder (<root>/<dataset_id>) or dataset id "
                        "(e.g. D4RL/door/human-v2, looked up under $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    reader.add_argument("--format", choices=FORMATS, required=True)
    reader.add_argument("--env", required=True, help="environment name to record, e.g. hopper")
    reader.add_argument("--out", required=True, help="new dataset folder")
    reader.add_argument("--drop-invalid", action="store_true", help="drop invalid rows instead of refusing the file")
    reader.add_argument("--random-return", type=float, help="reference return of a random policy")
    reader.add_argument("--expert-return", type=float, help="reference return of an expert policy")
    reader.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    reader.set_defaults(func=import_command)

    writer = commands.add_parser("export", help="export a dataset as D4RL HDF5 or Minari")
    writer.add_argument("dir", help="dataset folder to export")
    writer.add_argument("--format", choices=FORMATS, required=True)
    writer.add_argument("--out", help="d4rl: the .hdf5 file (required); minari: the datasets root folder "
                        "(default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)")
    writer.add_argument("--dataset-id", help="minari: dataset id, default <env>-v0")
    writer.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    writer.set_defaults(func=export_command)

    make = commands.add_parser("make", help="D4RL-style tiers (random, medium, expert, medium-replay, "
                               "medium-expert) from a PPO run it trains, or one given")
    make.add_argument("--env", required=True, help="environment name")
    make.add_argument("--out", required=True, help="folder that receives one dataset folder per tier")
    make.add_argument("--run", help="an existing PPO run directory (default: train one under --out/ppo_run)")
    make.add_argument("--steps", type=int, default=100_000, help="transitions per tier")
    make.add_argument("--num-envs", type=int, default=64, help="parallel environments while collecting")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="PPO config overrides")
    make.add_argument("--wandb", choices=["offline", "online", "disabled"], help="W&B mode of the PPO run")
    compile_cache.add_option(make)
    make.set_defaults(func=make_command)
    return parser
