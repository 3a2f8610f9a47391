"""What every stage shares: the context it runs in and the result it records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from jaxrl.deploy.config import PipelineConfig
from jaxrl.deploy.registry import Registry
from jaxrl.experiment import RunOptions


class Context(NamedTuple):
    config: PipelineConfig
    run_dir: Path
    registry: Registry
    inject: str | None  # a fault drill (config.INJECTIONS), or None
    results: dict[str, dict[str, Any]]  # the finished stages' results (StageResult._asdict()), by stage
    run_options: RunOptions  # for the training runs the stages start (W&B mode, progress bars)

    def output(self, stage: str, name: str) -> Any:
        """What an earlier stage left for the later ones."""
        return self.results[stage]["outputs"][name]


class StageResult(NamedTuple):
    stage: str
    passed: bool  # False stops the pipeline here
    decision: str  # one sentence: what was decided, and why
    figures: dict[str, Any]  # what was measured
    thresholds: dict[str, Any]  # what it was held against
    outputs: dict[str, Any] = {}  # paths and names the later stages read
    rolled_back: bool = False


def incidents_exceed(incidents: int, episodes: int, max_rate: float, alpha: float) -> tuple[bool, float]:
    """Whether `incidents` of `episodes` show a rate above `max_rate` at significance `alpha`: the one-sided
    binomial test's p-value P(X >= incidents | X ~ Binomial(episodes, max_rate)). A chunk of a dozen episodes with
    two incidents is not evidence of a rate over 10% (p = 0.34); eight are (p < 1e-5)."""
    from scipy import stats  # a dependency of jax itself

    if episodes == 0 or incidents == 0:
        return False, 1.0
    p_value = float(stats.binom.sf(incidents - 1, episodes, max_rate))
    return p_value < alpha, p_value


def check(figures: dict[str, Any], thresholds: dict[str, Any], failures: list[str]) -> tuple[bool, str]:
    """The gate's verdict from the failed conditions' descriptions: (passed, decision)."""
    if failures:
        return False, "stopped: " + "; ".join(failures)
    return True, "passed: " + ", ".join(f"{name} {_short(figures[name])} (limit {_short(limit)})"
                                        for name, limit in thresholds.items() if name in figures)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
