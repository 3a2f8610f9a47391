"""A dataset on disk is a folder: `arrays.npz` (one uncompressed array per Transition field) + `metadata.json`.

`save` validates, fills in checksums and the quality summary, and writes the folder atomically
(`jaxrl.infra.files`). `load` verifies checksums, then structure, then rows. Only the arrays are
checksummed, so other files in the folder (the `quality.*` reports) can be written at any time.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import numpy as np

from jaxrl.data import quality
from jaxrl.data.metadata import DatasetError, Metadata, Parent, checksums_of
from jaxrl.data.validate import check_checksums, validate
from jaxrl.infra.files import atomic_write_dir
from jaxrl.types import Transition

ARRAYS_FILE = "arrays.npz"
METADATA_FILE = "metadata.json"


def save(path: str | Path, transition: Transition, metadata: Metadata, overwrite: bool = False) -> Metadata:
    """Validate a numpy Transition and write it to the folder `path`; return the metadata as written.

    The written metadata has the arrays' checksums and the quality summary filled in. Invalid rows are
    refused (drop them first with `validate(..., drop_invalid=True)`). An existing `path` is refused unless
    `overwrite=True`, and is then replaced atomically; on any error `path` is left as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists; choose another folder or pass overwrite=True (CLI: --overwrite)")
    arrays = {field: np.asarray(value) for field, value in transition._asdict().items()}
    transition, _ = validate(arrays, metadata, f"{path / ARRAYS_FILE} (being saved)")
    report = quality.quality_report(transition, metadata)
    metadata = dataclasses.replace(metadata, checksums=checksums_of(transition), quality=quality.summary(report))

    def fill(folder: Path) -> None:
        with open(folder / ARRAYS_FILE, "wb") as handle:
            np.savez(handle, **transition._asdict())
        (folder / METADATA_FILE).write_text(metadata.to_json())

    try:
        atomic_write_dir(path, fill, overwrite)
    except FileExistsError as error:  # another writer made `path` while this one filled its copy
        raise DatasetError(str(error)) from None
    return metadata


def load(path: str | Path, drop_invalid: bool = False) -> tuple[Transition, Metadata]:
    """Read and validate a dataset folder; return numpy arrays and metadata.

    With `drop_invalid=True`, invalid rows are dropped instead of refused; the returned metadata then counts
    them in `dropped_invalid_rows`, has the checksums of the kept arrays, and names this folder as its parent.
    A checksum mismatch is never droppable.
    """
    path = Path(path)
    arrays_file, metadata_file = path / ARRAYS_FILE, path / METADATA_FILE
    for file in (arrays_file, metadata_file):
        if not file.is_file():
            raise DatasetError(f"{file}: not found; a dataset folder holds {ARRAYS_FILE} and {METADATA_FILE}")
    metadata = Metadata.from_json(metadata_file.read_text(), str(metadata_file))
    arrays = _read_arrays(arrays_file)
    check_checksums(arrays, metadata, str(arrays_file))
    transition, dropped = validate(arrays, metadata, str(arrays_file), drop_invalid)
    if dropped:
        parent = Parent(str(path.resolve()), metadata.fingerprint, {"drop_invalid": True, "rows_dropped": dropped})
        metadata = dataclasses.replace(
            metadata,
            dropped_invalid_rows=metadata.dropped_invalid_rows + dropped,
            checksums=checksums_of(transition),
            provenance=dataclasses.replace(metadata.provenance, parent=parent),
        )
    return transition, metadata


def load_metadata(path: str | Path) -> Metadata:
    """Read only `metadata.json` of a dataset folder (no array checks)."""
    file = Path(path) / METADATA_FILE
    if not file.is_file():
        raise DatasetError(f"{file}: not found; is {path} a jaxrl dataset folder?")
    return Metadata.from_json(file.read_text(), str(file))


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as content:
            return {name: content[name] for name in content.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{file}: cannot be read as an .npz archive ({error})") from None
