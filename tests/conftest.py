import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
# Not setdefault: whatever the developer's shell says, the suite (and every `jaxrl` subprocess it starts, which
# inherits this environment) writes nothing into a user's compilation cache and compiles every program afresh.
# tests/infra/test_compile_cache.py turns it on for its own subprocesses, in temporary folders.
os.environ["JAXRL_COMPILE_CACHE"] = "0"
