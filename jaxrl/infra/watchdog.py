"""A watchdog that ends the process when a compiled program stops making progress.

A deadlocked XLA program (see jaxrl/initializers.py for the one we met) blocks the host forever at 0% CPU;
on a cluster that burns the whole allocation in silence. The runner wraps every blocking call (compiling,
initialization, each training chunk and evaluation) in `watch(name)`. A background thread then checks once
a second. On the CPU backend the program's progress is the process's CPU time: a program that used less than
`IDLE_CPU_FRACTION` of a core for `timeout` seconds is stuck, however long a busy one runs. On a GPU or TPU
the host idles while the device works, so there it is wall time: one program running `timeout` seconds.
Then it names the program, prints every thread's Python stack, and exits with `EXIT_CODE`; the run's
checkpoints stay, so `jaxrl resume` continues from the last one.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_CODE = 3
DEFAULT_TIMEOUT = 600.0  # seconds; the runner's and `jaxrl train --watchdog`'s default
IDLE_CPU_FRACTION = 0.1  # below this share of one core a CPU program counts as making no progress
POLL_SECONDS = 1.0


class Watchdog:
    """`with watchdog.watch("evaluation after chunk 3"): ...` exits the process if the body hangs.

    `timeout` None or 0 disables it. `cpu_progress`: judge progress by CPU time (the CPU backend) rather than
    by wall time (accelerators).
    """

    def __init__(self, timeout: float | None, cpu_progress: bool, poll: float = POLL_SECONDS):
        self.timeout = timeout or None
        self.cpu_progress = cpu_progress
        self.poll = poll
        self._program: str | None = None
        self._started = 0.0
        self._mode = cpu_progress
        self._lock = threading.Lock()
        self._closed = threading.Event()
        if self.timeout:
            threading.Thread(target=self._loop, name="jaxrl-watchdog", daemon=True).start()

    def close(self) -> None:
        """Stop watching (the thread ends within one poll)."""
        self._closed.set()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def watch(self, program: str, cpu_progress: bool | None = None) -> Iterator[None]:
        """Watch the body as `program`; `cpu_progress` overrides the mode (compiling always uses the CPU)."""
        with self._lock:
            self._program, self._started = program, time.monotonic()
            self._mode = self.cpu_progress if cpu_progress is None else cpu_progress
        try:
            yield
        finally:
            with self._lock:
                self._program = None

    def _loop(self) -> None:
        last_cpu, last_busy, watched = time.process_time(), time.monotonic(), None
        while not self._closed.wait(self.poll):
            now, cpu = time.monotonic(), time.process_time()
            with self._lock:
                program, started, cpu_mode = self._program, self._started, self._mode
            busy = cpu - last_cpu >= IDLE_CPU_FRACTION * self.poll
            last_cpu = cpu
            if program is None or program != watched or busy:
                last_busy, watched = now, program
            if program is None:
                continue
            stalled = now - last_busy if cpu_mode else now - started
            if stalled >= self.timeout:
                self._fire(program, stalled, cpu_mode)

    def _fire(self, program: str, stalled: float, cpu_mode: bool) -> None:
        how = "used no CPU" if cpu_mode else "has run"
        print(f"\njaxrl: watchdog: the {program} {how} for {stalled:.0f} s (--watchdog {self.timeout:g}): it looks "
              f"stuck, so the run stops here with exit code {EXIT_CODE}. Checkpoints written so far are kept; "
              "`jaxrl resume RUN_DIR` continues from the last one. A hang at 0% CPU on the CPU backend may be the "
              "jaxlib LAPACK deadlock (scripts/repro_lapack_deadlock.py); raise --watchdog if the program is merely "
              "slow. Python stacks of every thread follow.", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(EXIT_CODE)
