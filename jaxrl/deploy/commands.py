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
    add = actions.add_parser("add", help="store one seed of a run as a new version (not live)")
    add.add_argument("registry", help="the registry folder (created if missing)")
    add.add_argument("run_dir")
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
    from jaxrl.deploy import bundle
    from jaxrl.deploy.registry import Registry

    if args.action == "add":
        registry = Registry(args.registry, create=True)
        version = registry.add(bundle.from_run(Path(args.run_dir), args.seed_index, args.chunk), note=args.note)
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
