"""The persistent compilation cache of the `jaxrl` commands: compile a program once, load it on every later run.

On a CPU, compiling takes most of a short run (34 of the 48 s of a 50k-step pendulum PPO run). JAX can keep
compiled programs on disk, keyed by the program, its shapes and the compiler, so a rerun of a config, a resume
or another config of the same shapes loads them instead. The `jaxrl` commands that compile call `configure`
once, before anything compiles; the library alone keeps JAX's default (no cache), so tests and benchmarks
that import it measure compilation as before.

Where the cache lives, the first that applies:
  `--no-compile-cache`, or JAXRL_COMPILE_CACHE=0      off
  JAXRL_COMPILE_CACHE=DIR                            DIR  (1 means the default folder below)
  JAX_COMPILATION_CACHE_DIR=DIR                      DIR  (JAX's own setting, kept)
  XDG_CACHE_HOME set (an absolute path)              $XDG_CACHE_HOME/jaxrl/xla
  otherwise                                          ~/.cache/jaxrl/xla
A folder that cannot be created or written turns the cache off with a warning; the run goes on.

JAX runs what it loads from the cache, so the folder must be writable by no one else: the default one is
created private (mode 0700).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import jax

ENV_VAR = "JAXRL_COMPILE_CACHE"
OFF, DEFAULT = "0", "1"
SUBFOLDER = Path("jaxrl", "xla")


def cache_folder(enabled: bool = True) -> Path | None:
    """The cache folder by the order in this module's docstring (read from the environment), None when off."""
    setting = os.environ.get(ENV_VAR, "")
    if not enabled or setting == OFF:
        return None
    if setting not in ("", DEFAULT):
        return Path(setting).expanduser().absolute()
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path in XDG_CACHE_HOME is invalid and is ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / SUBFOLDER


def configure(enabled: bool = True) -> Path | None:
    """Point JAX's persistent compilation cache at `cache_folder(enabled)`, or turn it off; call it before
    anything compiles. Returns the folder in use, None when the cache is off."""
    folder = cache_folder(enabled)
    problem = _unwritable(folder) if folder else None
    if problem:
        print(f"jaxrl: warning: compilation cache off: {problem}. The run goes on and compiles every program; "
              f"set {ENV_VAR} to a writable folder, or to {OFF} to turn the cache off without this warning.",
              file=sys.stderr, flush=True)
        folder = None
    if folder is None:
        # Off means off, also when the user's environment set JAX_COMPILATION_CACHE_DIR.
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every program, not only those that took over JAX's default 1 s to compile: which programs cross
    # that line depends on the machine's load, and loading a small one from disk still beats compiling it.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size floor (JAX's docs)
    return folder


def _unwritable(folder: Path) -> str | None:
    """Why `folder` cannot hold the cache, or None when it can be created and written."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"cannot write to {folder} ({error.strerror or error})"
    return None


def add_option(parser: argparse.ArgumentParser) -> None:
    """`--no-compile-cache` on a command that compiles; `configure(args.compile_cache)` applies it."""
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help=f"compile every program afresh instead of loading it from the compilation cache "
                             f"(default: on, in $XDG_CACHE_HOME/jaxrl/xla or ~/.cache/jaxrl/xla; {ENV_VAR}=DIR "
                             f"moves it, {ENV_VAR}={OFF} turns it off)")
