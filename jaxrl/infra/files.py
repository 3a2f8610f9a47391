"""File helpers: atomic writes of files and folders, and fingerprints of array trees.

Every atomic write builds its result beside the destination, fsyncs it, then renames it into place, so
readers see the old content or the new, never a part. Temporary files are opened with plain `open`, not
`tempfile.mkstemp`: mkstemp makes them private (mode 0600), and the rename would carry that mode onto
configs, summaries and datasets that everyone else can read.

Replacing an existing folder swaps the two with one `renameat2(RENAME_EXCHANGE)` on Linux. Where that call is
missing it falls back to two renames, so a crash between them leaves the old copy under `.<name>.old-*` next
to the destination and no destination; readers never see a half-written one.

This is the lowest layer of jaxrl: it imports nothing from the rest of the package.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import jax
import numpy as np

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # <linux/fs.h>


def fsync_path(path: Path) -> None:
    """fsync a file or a folder entry table."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(path: Path) -> None:
    """fsync every file and folder under `path`, then `path` itself."""
    for item in sorted(path.rglob("*"), reverse=True):
        fsync_path(item)
    fsync_path(path)


def atomic_write_file(file: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(handle)` on a temporary sibling of `file`, fsync it, and rename it over `file`.

    The file gets the mode `open` gives (0o666 less the umask). On any error `file` is left as it was and the
    temporary file is removed.
    """
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(file)
    try:
        with open(temp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, file)
        fsync_path(file.parent)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(file: str | Path, text: str) -> None:
    """Write a text file (UTF-8) atomically."""
    atomic_write_file(file, lambda handle: handle.write(text.encode()))


def atomic_write_json(file: str | Path, data: Any) -> None:
    """Write `data` as indented JSON with sorted keys atomically; numpy and JAX arrays become lists."""
    atomic_write_text(file, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def atomic_write_dir(path: str | Path, fill: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call `fill(temp_folder)`, fsync it, and move it to `path`; an existing `path` needs `overwrite=True`.

    Raises FileExistsError when `path` exists (or appears while filling) without `overwrite`. On any error the
    destination is left as it was and the temporary folder is removed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; choose another path or pass overwrite=True (CLI: --overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(path)
    temp.mkdir()
    try:
        fill(temp)
        fsync_tree(temp)
        _move_into_place(temp, path, overwrite)
    finally:
        _remove(temp)


def _temp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the C library has no renameat2 or the filesystem refuses."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _move_into_place(new: Path, destination: Path, overwrite: bool) -> None:
    if not destination.exists():
        os.rename(new, destination)
    elif not overwrite:
        raise FileExistsError(f"{destination}: appeared while writing; not replaced (pass overwrite=True)")
    elif _exchange(new, destination):
        _remove(new)  # after the swap, `new` holds the old content
    else:
        old = destination.parent / f".{destination.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(destination, old)
        try:
            os.rename(new, destination)
        except OSError:
            os.rename(old, destination)
            raise
        _remove(old)
    fsync_path(destination.parent)


def tree_sha256(tree: Any) -> str:
    """sha256 over every array leaf's dtype, shape and bytes, in tree order: equal iff bit-identical."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
