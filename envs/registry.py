"""Environments by name: Brax physics envs, every gymnax env as `gymnax/<id>`, and our pure-JAX tasks."""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import warnings
from collections.abc import Callable, Iterator

import jax

from jaxrl.types import EnvSpec


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences what Brax/MuJoCo print and warn on import and construction (missing warp, maintenance notes)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


with quiet():
    import brax.envs
    import gymnax
    from brax.envs.base import Env

from envs.gymnax_adapter import GymnaxAdapter  # noqa: E402  (after brax is imported quietly)
from envs.pendulum import Pendulum  # noqa: E402
from envs.pointmass import PointMass  # noqa: E402
from envs.recsys import RecSys  # noqa: E402
from envs.wrappers import ZeroCost  # noqa: E402

GYMNAX_PREFIX = "gymnax/"
BRAX_EPISODE_LENGTH = 1000
# pointmass-drift: pointmass after its hazards grew (radius 0.40 for 0.18: they overlap into one wall with a gap
# only at its ends), the changed world of the pipeline's incident drill (jaxrl/deploy/stages/finetune.py).
# recsys-shifted: the recommender's users from another population whose tastes drift 5x faster (envs/recsys.py);
# recsys-bandit: one recommendation per episode (a contextual bandit).
_OWN_ENVS: dict[str, Callable[..., Env]] = {"pendulum": Pendulum, "pointmass": PointMass,
                                            "pointmass-drift": functools.partial(PointMass, hazard_radius=0.40),
                                            "recsys": RecSys,
                                            "recsys-shifted": functools.partial(RecSys, population_shift=0.6,
                                                                                drift_rate=0.05),
                                            "recsys-bandit": functools.partial(RecSys, horizon=1)}


class UnknownEnvError(ValueError):
    """A name that `make` does not know; the message lists the names it does."""


# Registered in Brax but unable to step with our pinned versions; `make` explains instead of failing deep in a trace.
# Remove an entry once `pytest -m slow tests/envs` passes for it.
_BROKEN_BRAX = {
    "swimmer": "brax 0.14.2's fluid model calls jnp.clip(a_min=...), which JAX 0.10 removed",
}


def _brax_names() -> list[str]:
    # Brax keeps its registry private; `_envs` is where brax.envs.register_environment writes.
    return sorted(name for name in brax.envs._envs if name not in _BROKEN_BRAX)


def names() -> list[str]:
    """Every name `make` accepts."""
    gymnax_names = [GYMNAX_PREFIX + env_id for env_id in gymnax.registered_envs]
    return sorted(_OWN_ENVS) + _brax_names() + gymnax_names


def make(name: str, **kwargs) -> Env:
    """A single, unbatched env; kwargs go to its constructor (e.g. `backend=` for Brax envs)."""
    if name in _OWN_ENVS:
        return _OWN_ENVS[name](**kwargs)
    if name.startswith(GYMNAX_PREFIX) and name[len(GYMNAX_PREFIX) :] in gymnax.registered_envs:
        env, params = gymnax.make(name[len(GYMNAX_PREFIX) :], **kwargs)
        return GymnaxAdapter(env, params, name=name)
    if name in _BROKEN_BRAX:
        raise ValueError(f"Brax env {name!r} cannot run with the pinned versions: {_BROKEN_BRAX[name]}.")
    if name in brax.envs._envs:
        with quiet():
            return ZeroCost(brax.envs.get_environment(name, **kwargs))
    raise UnknownEnvError(_unknown_message(name))


def _unknown_message(name: str) -> str:
    available = names()
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown environment {name!r}.{hint} Available: {', '.join(available)}."


def spec(name: str, env: Env) -> EnvSpec:
    """Static facts agents build networks from; `env` is what `make(name)` returned (wrapped or not)."""
    # Traced, not run: Brax's own `observation_size` executes a reset op by op (seconds for physics envs).
    obs_shape = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs.shape
    return EnvSpec(
        name=name,
        obs_size=int(obs_shape[-1]),
        action_size=int(env.action_size),
        discrete=bool(getattr(env, "discrete", False)),
        episode_length=int(getattr(env, "default_episode_length", BRAX_EPISODE_LENGTH)),
    )
