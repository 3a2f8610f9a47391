"""Atomic file and folder writes: build beside the destination, fsync, then rename into place.

Replacing an existing folder swaps the two with one `renameat2(RENAME_EXCHANGE)` on Linux. Where that call is
missing it falls back to two renames, so a crash between them leaves the old copy under `.<name>.old-*` next
to the destination and no destination; readers never see a half-written one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from jaxrl.data.metadata import DatasetError

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


def write_file_atomic(file: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(handle)` on a temporary sibling of `file`, fsync it, and rename it over `file`."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(file)  # not tempfile.mkstemp: that would make the file private (mode 0600)
    try:
        with open(temp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, file)
        fsync_path(file.parent)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(file: str | Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    write_file_atomic(file, lambda handle: handle.write(text.encode()))


def write_dir_atomic(path: str | Path, fill: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call `fill(temp_folder)`, fsync it, and move it to `path`; an existing `path` needs `overwrite=True`.

    On any error the destination is left as it was and the temporary folder is removed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists; choose another path or pass overwrite=True (CLI: --overwrite)")
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
        raise DatasetError(f"{destination}: appeared while writing; not replaced (pass overwrite=True)")
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
