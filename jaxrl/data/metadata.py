"""What a logged dataset is and where it came from: the schema-versioned `metadata.json` of a dataset folder."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.types import Transition

SCHEMA_VERSION = 2
# Version 1 had no `time_limit`; it reads as unknown (None). Older files keep loading, newer ones are refused.
READABLE_VERSIONS = (1, 2)


class DatasetError(ValueError):
    """A dataset on disk or in memory is wrong; the message names the file, the field and the first bad row."""


@dataclasses.dataclass(frozen=True)
class Parent:
    """The dataset (or source file) this one was derived from, and how."""

    path: str | None  # absolute path of the folder or file the data was read from (None: never saved)
    fingerprint: str  # `Metadata.fingerprint` of a jaxrl parent, sha256 of the file(s) of a foreign one
    derivation: dict[str, Any]  # e.g. {"filter": "top_fraction", "fraction": 0.1} or {"import": "d4rl"}


@dataclasses.dataclass(frozen=True)
class Provenance:
    """How the transitions were produced."""

    behavior_policy: str = "unknown"  # human description of the logging policy
    behavior_policy_fingerprint: str | None = None  # e.g. sha256 of its parameters
    seed: int | None = None  # seed of the collection run
    code_version: str = dataclasses.field(default_factory=lambda: code_version())
    created_at: str = dataclasses.field(default_factory=lambda: now_iso())
    parent: Parent | None = None  # set on derived datasets (filters, imports, dropped rows)


def normalized_score(episode_return, random_return: float | None, expert_return: float | None):
    """D4RL-style score, 100 * (return - random) / (expert - random), of a return or an array of them; None
    without reference returns (or with equal ones)."""
    if random_return is None or expert_return is None or expert_return == random_return:
        return None
    return 100.0 * (episode_return - random_return) / (expert_return - random_return)


@dataclasses.dataclass(frozen=True)
class Metadata:
    """Everything about a dataset except its arrays; `save` fills `checksums` and `quality`."""

    env_name: str
    obs_size: int
    action_size: int  # action dimensions (continuous) or number of choices (discrete)
    discrete: bool
    provenance: Provenance = dataclasses.field(default_factory=Provenance)
    random_return: float | None = None  # reference returns for D4RL-style normalized scores
    expert_return: float | None = None
    # Steps after which the logging env truncated an episode. An episode that ends neither terminated nor at this
    # length was cut by the logging budget, not by the task (jaxrl/data/episodes.py). None: unknown (imports).
    time_limit: int | None = None
    dropped_invalid_rows: int = 0  # rows removed by `drop_invalid` over this data's history
    checksums: dict[str, str] = dataclasses.field(default_factory=dict)  # field -> `array_sha256`
    quality: dict[str, Any] | None = None  # `quality.summary` of the saved arrays
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # free-form, JSON-serializable
    schema_version: int = SCHEMA_VERSION

    @property
    def fingerprint(self) -> str:
        """sha256 over the per-field checksums: one id for the whole array content ('' before saving)."""
        return fingerprint_of(self.checksums) if self.checksums else ""

    def normalized_score(self, episode_return: float) -> float | None:
        """D4RL-style score: 100 * (return - random) / (expert - random), or None without reference returns."""
        return normalized_score(episode_return, self.random_return, self.expert_return)

    def to_json(self) -> str:
        """The `metadata.json` text; `fingerprint` is written for people and ignored on reading."""
        content = dataclasses.asdict(self)
        content["fingerprint"] = self.fingerprint
        return json.dumps(content, indent=2, sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str, file: str = "metadata.json") -> Metadata:
        """Parse `metadata.json` text, refusing unknown schema versions and unknown or missing keys."""
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{file}: not valid JSON ({error})") from None
        if not isinstance(content, dict):
            raise DatasetError(f"{file}: expected a JSON object, got {type(content).__name__}")
        version = content.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise DatasetError(
                f"{file}: schema_version {version!r} is not one this jaxrl reads {READABLE_VERSIONS}; "
                "use the jaxrl version that wrote it"
            )
        if version == 1:
            content = {**content, "time_limit": None, "schema_version": SCHEMA_VERSION}
        content.pop("fingerprint", None)
        provenance = _build(Provenance, content.get("provenance", {}), f"{file}: provenance")
        if provenance.parent is not None:
            parent = _build(Parent, provenance.parent, f"{file}: provenance.parent")
            provenance = dataclasses.replace(provenance, parent=parent)
        return _build(cls, {**content, "provenance": provenance}, file)


def _build(cls: type, content: Any, where: str) -> Any:
    """Construct dataclass `cls` from a JSON object, naming unknown or missing keys."""
    if not isinstance(content, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {content!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown, missing = sorted(set(content) - names), sorted(names - set(content))
    if unknown or missing:
        raise DatasetError(f"{where}: unknown keys {unknown}, missing keys {missing}; expected {sorted(names)}")
    for name, kinds in _TYPES.get(cls.__name__, {}).items():
        if not isinstance(content[name], kinds) or (bool not in kinds and isinstance(content[name], bool)):
            raise DatasetError(
                f"{where}: '{name}' is {content[name]!r}, expected {' or '.join(k.__name__ for k in kinds)}"
            )
    return cls(**content)


_TYPES = {  # JSON types of the keys the loaders rely on
    "Metadata": {
        "env_name": (str,),
        "obs_size": (int,),
        "action_size": (int,),
        "discrete": (bool,),
        "dropped_invalid_rows": (int,),
        "checksums": (dict,),
        "extra": (dict,),
        "random_return": (int, float, type(None)),
        "expert_return": (int, float, type(None)),
        "time_limit": (int, type(None)),
    },
    "Parent": {"path": (str, type(None)), "fingerprint": (str,), "derivation": (dict,)},
}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-serializable")


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes, so a reinterpreted file also mismatches."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def checksums_of(transition: Transition) -> dict[str, str]:
    """Per-field `array_sha256` of a numpy Transition."""
    return {name: array_sha256(np.asarray(value)) for name, value in transition._asdict().items()}


def fingerprint_of(checksums: dict[str, str]) -> str:
    """One sha256 over sorted `field:checksum` lines."""
    lines = "".join(f"{name}:{checksums[name]}\n" for name in sorted(checksums))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative path + content, in sorted order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def code_version() -> str:
    """`jaxrl <version>` plus the git commit (with `-dirty`) of the checkout when there is one."""
    try:
        version = importlib.metadata.version("jaxrl")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return f"jaxrl {version}"
    if commit.returncode != 0:
        return f"jaxrl {version}"
    suffix = "-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
    return f"jaxrl {version} (git {commit.stdout.strip()}{suffix})"
