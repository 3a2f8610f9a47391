"""jaxrl: offline, online and hybrid reinforcement learning in JAX."""

import os as _os

# XLA's CPU runtime can deadlock (every worker idle, the host waiting forever) on some vmapped programs
# under its concurrency-optimized thunk scheduler; seen with jaxlib 0.10.2 on `vmap` over 3 seeds of PPO's
# init on pendulum. The default scheduler runs them. Set before JAX starts its backend.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG.split("=")[0] not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = f"{_os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

__version__ = "0.1.0"
