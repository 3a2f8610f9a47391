"""The watchdog ends a run whose compiled program stops making progress, names it, and spares busy ones."""

import subprocess
import sys
import time

import pytest

from jaxrl.cli import main
from jaxrl.infra.watchdog import EXIT_CODE

# A compiled program that waits on the host for a minute at 0% CPU, as a deadlocked one does.
STUCK = """
import time
import jax
import jax.numpy as jnp
from jaxrl.infra.watchdog import Watchdog

def wait(x):
    time.sleep(60)
    return x

program = jax.jit(lambda x: jax.pure_callback(wait, jax.ShapeDtypeStruct((), jnp.float32), x) + 1)
watchdog = Watchdog(timeout={timeout}, cpu_progress={cpu})
with watchdog.watch("training chunk 1 of 3"):
    jax.block_until_ready(program(jnp.float32(0)))
print("finished")
"""

# A program busy for 4 s: longer than the timeout, but using the CPU all along.
BUSY = """
import time
from jaxrl.infra.watchdog import Watchdog

watchdog = Watchdog(timeout=2, cpu_progress=True, poll=0.5)
with watchdog.watch("evaluation after chunk 2 of 3"):
    end = time.monotonic() + 4
    while time.monotonic() < end:
        pass
print("finished")
"""


def run_python(code: str, timeout: float = 120):
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - began


@pytest.mark.parametrize("cpu", [True, False])
def test_a_stuck_program_ends_the_process_with_its_name(cpu):
    done, seconds = run_python(STUCK.format(timeout=3, cpu=cpu))
    assert done.returncode == EXIT_CODE, done.stderr[-2000:]
    assert "finished" not in done.stdout and seconds < 50
    assert "watchdog: the training chunk 1 of 3" in done.stderr
    assert ("used no CPU" if cpu else "has run") in done.stderr
    assert "Thread" in done.stderr  # every thread's Python stack follows


def test_a_busy_program_outlives_the_timeout():
    done, _ = run_python(BUSY)
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-2000:]


def test_a_disabled_watchdog_never_fires():
    done, _ = run_python(STUCK.format(timeout=0, cpu=True).replace("time.sleep(60)", "time.sleep(4)"))
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-2000:]


def test_cli_rejects_a_negative_watchdog(capsys):
    with pytest.raises(SystemExit):
        main(["train", "ppo", "--env", "pendulum", "--watchdog", "-1"])
    assert "--watchdog" in capsys.readouterr().err
