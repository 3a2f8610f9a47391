"""The policy registry: a folder of immutable policy versions and a record of which one is live.

```
REGISTRY/
  registry.json        {"live": "v3", "live_history": ["v1", "v3"], "events": [...]}: replaced atomically
  versions/v1/         a policy folder (jaxrl/deploy/bundle.py), written once, atomically
  versions/v1/gates/   one JSON file per gate the version went through, with its figures and decision
```

Promoting or rolling back rewrites `registry.json` in one atomic rename, so a crash at any moment (kill -9
included) leaves either the old live version or the new one, each with its whole history. Versions are never
changed once written; the gate files beside them only accumulate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jaxrl.config import ConfigError, load_json
from jaxrl.data.metadata import now_iso
from jaxrl.deploy import bundle
from jaxrl.infra.files import atomic_write_json

REGISTRY_FILE = "registry.json"
VERSIONS = "versions"
GATES = "gates"
FORMAT_VERSION = 1
_VERSION_NAME = re.compile(r"v(\d+)")


class Registry:
    """One registry folder. A single writer at a time is assumed (the pipeline, or a person by hand)."""

    def __init__(self, path: str | Path, create: bool = False):
        self.path = Path(path)
        if create and not (self.path / REGISTRY_FILE).exists():
            if self.path.exists() and any(self.path.iterdir()):
                raise ConfigError(f"{self.path}: exists and is not a policy registry (no {REGISTRY_FILE})")
            atomic_write_json(self.path / REGISTRY_FILE, {"format": FORMAT_VERSION, "live": None,
                                                          "live_history": [], "events": []})
        self._read()  # checks the folder now, with a message, rather than at first use

    def _read(self) -> dict[str, Any]:
        file = self.path / REGISTRY_FILE
        if not file.is_file():
            raise ConfigError(f"{self.path}: not a policy registry (no {REGISTRY_FILE})")
        record = load_json(file)
        missing = {"live", "live_history", "events"} - set(record)
        if missing:
            raise ConfigError(f"{file}: missing field(s) {', '.join(sorted(missing))}")
        return record

    @property
    def live(self) -> str | None:
        return self._read()["live"]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._read()["events"]

    def versions(self) -> list[str]:
        folder = self.path / VERSIONS
        names = [p.name for p in folder.iterdir() if _VERSION_NAME.fullmatch(p.name)] if folder.is_dir() else []
        return sorted(names, key=lambda name: int(name[1:]))

    def version_dir(self, version: str) -> Path:
        if version not in self.versions():
            known = ", ".join(self.versions()) or "none yet"
            raise ConfigError(f"{self.path}: no version {version!r} (versions: {known})")
        return self.path / VERSIONS / version

    def add(self, policy: bundle.Policy, note: str = "") -> str:
        """Store `policy` as the next version (not live); its name."""
        existing = self.versions()
        version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
        bundle.save(policy, self.path / VERSIONS / version)
        self._commit(lambda record: record, {"event": "add", "version": version, "note": note})
        return version

    def add_once(self, policy: bundle.Policy, note: str = "") -> str:
        """`add`, unless a version with the same parameters, agent, env and config is already here (a resumed
        pipeline registering what it registered before it was killed): then that version's name."""
        config = bundle.config_document(policy.config)
        for version in self.versions():
            document = bundle.read_document(self.path / VERSIONS / version)
            if (document["params_sha256"], document["agent"], document["env"], document["config"]) == (
                    policy.params_sha256, policy.agent, policy.env, config):
                return version
        return self.add(policy, note)

    def load(self, version: str | None = None) -> bundle.Policy:
        """The policy of `version` (default: the live one)."""
        version = version or self.live
        if version is None:
            raise ConfigError(f"{self.path}: no version is live yet; name one (versions: "
                              f"{', '.join(self.versions()) or 'none'})")
        return bundle.load(self.version_dir(version))

    def record_gate(self, version: str, gate: str, figures: dict[str, Any]) -> None:
        """Keep a gate's decision and figures beside the version (`gates/<gate>.json`, written atomically)."""
        atomic_write_json(self.version_dir(version) / GATES / f"{gate}.json", figures)

    def gates(self, version: str) -> dict[str, Any]:
        folder = self.version_dir(version) / GATES
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return {file.stem: json.loads(file.read_text()) for file in files}

    def promote(self, version: str, reason: str = "") -> None:
        """Make `version` live."""
        self.version_dir(version)

        def change(record):
            record["live"] = version
            record["live_history"].append(version)
            return record

        self._commit(change, {"event": "promote", "version": version, "previous": self.live, "reason": reason})

    def rollback(self, reason: str = "") -> str:
        """Make the version that was live before the current one live again; its name."""
        history = self._read()["live_history"]
        if len(history) < 2:
            raise ConfigError(f"{self.path}: nothing to roll back to (live history: {history or 'empty'})")
        current, previous = history[-1], history[-2]

        def change(record):
            record["live_history"] = record["live_history"][:-1]
            record["live"] = previous
            return record

        self._commit(change, {"event": "rollback", "version": previous, "previous": current, "reason": reason})
        return previous

    def _commit(self, change, event: dict[str, Any]) -> None:
        record = change(self._read())
        record["events"].append({**event, "time": now_iso()})
        atomic_write_json(self.path / REGISTRY_FILE, record)

    def describe(self) -> list[dict[str, Any]]:
        """A row per version: name, agent, env, source, whether live, the gates it passed."""
        live, rows = self.live, []
        for version in self.versions():
            document = bundle.read_document(self.path / VERSIONS / version)
            gates = self.gates(version)
            rows.append({"version": version, "live": version == live, "agent": document["agent"],
                         "env": document["env"], "provenance": document["provenance"],
                         "params_sha256": document["params_sha256"],
                         "gates": {name: gate.get("passed") for name, gate in gates.items()}})
        return rows


def resolve(path: str | Path, version: str | None = None) -> tuple[bundle.Policy, str | None]:
    """The policy a path names: a registry's live version (or `version`), a policy folder, or a run folder's first
    seed at its newest checkpoint; and the registry version it is, where it is one."""
    path = Path(path)
    if (path / REGISTRY_FILE).is_file():
        registry = Registry(path)
        version = version or registry.live
        return registry.load(version), version
    if version is not None:
        raise ConfigError(f"{path}: --version needs a policy registry (no {REGISTRY_FILE} here)")
    if (path / bundle.POLICY_FILE).is_file():
        return bundle.load(path), None
    if (path / "config.yaml").is_file():
        return bundle.from_run(path), None
    raise ConfigError(f"{path}: not a run (config.yaml), a policy registry ({REGISTRY_FILE}) or a policy folder "
                      f"({bundle.POLICY_FILE})")
