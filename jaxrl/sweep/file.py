"""W&B sweep files: read, check, and expand into members (one parameter assignment each).

The format is W&B's (`method`, `parameters`, `metric`, `run_cap`), so the same file also works with `wandb sweep`
and `wandb agent`. `agent`, `env` or `dataset`, `config` (a YAML file of base keys), `seeds` (how many per member)
and `seed_batch` are run parameters; every other parameter is a config key of the agent, checked like `--set`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.config import ConfigError, load_yaml

RUN_PARAMETERS = ("agent", "env", "dataset", "config", "seeds", "seed_batch")
METHODS = ("grid", "random")
DISTRIBUTIONS = ("constant", "categorical", "uniform", "int_uniform", "q_uniform", "log_uniform",
                 "log_uniform_values", "q_log_uniform_values", "normal", "log_normal")
GOALS = ("maximize", "minimize")
# Metrics a member is ranked by: the final evaluation's figures (mean over the member's seeds).
METRICS = {"eval/return": "eval_return_mean", "eval/cost": "eval_cost_mean",
           "normalized_score": "normalized_score_mean"}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One entry of `parameters`: a fixed value, a list of values or a distribution."""

    name: str
    distribution: str
    values: tuple[Any, ...] = ()  # constant (one value) and categorical
    low: float | None = None  # min and max of the uniform kinds
    high: float | None = None
    mu: float = 0.0  # normal and log_normal
    sigma: float = 1.0
    q: float = 1.0  # q_ kinds: values are rounded to multiples of q

    def sample(self, rng: np.random.Generator) -> Any:
        """One draw, with W&B's meaning of each distribution."""
        kind = self.distribution
        if kind in ("constant", "categorical"):
            return self.values[rng.integers(len(self.values))]
        if kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        if kind == "int_uniform":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if kind == "q_uniform":
            return _quantize(rng.uniform(self.low, self.high), self.q)
        if kind == "log_uniform":  # min and max are natural logs of the bounds
            return float(math.exp(rng.uniform(self.low, self.high)))
        if kind in ("log_uniform_values", "q_log_uniform_values"):
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return _quantize(value, self.q) if kind.startswith("q_") else float(value)
        if kind == "normal":
            return float(rng.normal(self.mu, self.sigma))
        return float(math.exp(rng.normal(self.mu, self.sigma)))  # log_normal


def _quantize(value: float, q: float) -> float | int:
    rounded = round(value / q) * q
    return int(rounded) if float(q).is_integer() else float(rounded)


@dataclasses.dataclass(frozen=True)
class SweepFile:
    path: str
    method: str
    parameters: tuple[Parameter, ...]
    metric_name: str = "eval/return"
    metric_goal: str = "maximize"
    run_cap: int | None = None
    name: str | None = None

    @property
    def summary_key(self) -> str:
        """The key of summary.json the metric is read from."""
        return METRICS.get(self.metric_name, self.metric_name)

    def members(self, seed: int = 0) -> list[dict[str, Any]]:
        """Every member's parameter values: the grid's product in order, or `run_cap` random draws (`seed`)."""
        if self.method == "grid":
            names = [p.name for p in self.parameters]
            grid = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(p.values for p in
                                                                                            self.parameters))]
            return grid[: self.run_cap] if self.run_cap else grid
        rng = np.random.default_rng(seed)
        return [{p.name: p.sample(rng) for p in self.parameters} for _ in range(self.run_cap)]


def _parameter(where: str, name: str, entry: Any) -> Parameter:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping such as {{value: ...}} or {{values: [...]}}, got {entry!r}")
    if "parameters" in entry:
        raise ConfigError(f"{where}: nested parameters are not supported; name each config key at the top level")
    if "value" in entry:
        return Parameter(name, "constant", (entry["value"],))
    distribution = entry.get("distribution") or _infer_distribution(entry)
    if distribution not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: distribution {distribution!r} is not supported; use one of "
                          f"{', '.join(DISTRIBUTIONS)}")
    if distribution in ("constant", "categorical"):
        values = entry.get("values", [entry.get("value")])
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: 'values' must be a non-empty list, got {values!r}")
        return Parameter(name, distribution, tuple(values))
    if distribution in ("normal", "log_normal"):
        return Parameter(name, distribution, mu=float(entry.get("mu", 0.0)), sigma=float(entry.get("sigma", 1.0)))
    low, high = entry.get("min"), entry.get("max")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low <= high:
        raise ConfigError(f"{where}: {distribution} needs numbers min <= max, got min={low!r} max={high!r}")
    if "values" in distribution and low <= 0:
        raise ConfigError(f"{where}: {distribution} needs min > 0 (it samples the log of the values), got {low}")
    return Parameter(name, distribution, low=low, high=high, q=float(entry.get("q", 1.0)))


def _infer_distribution(entry: dict) -> str:
    """W&B's inference when `distribution` is left out."""
    if "values" in entry:
        return "categorical"
    if isinstance(entry.get("min"), int) and isinstance(entry.get("max"), int):
        return "int_uniform"
    return "uniform"


def read_sweep(path: str | Path) -> SweepFile:
    """Read and check a W&B sweep YAML file; errors name the file and the entry."""
    return parse_sweep(load_yaml(path), str(path))


def parse_sweep(document: dict[str, Any], where: str) -> SweepFile:
    """Check a sweep document read from the file `where`."""
    method = document.get("method", "grid")
    if method not in METHODS:
        hint = " (run Bayesian sweeps with `wandb agent`, see README)" if method == "bayes" else ""
        raise ConfigError(f"{where}: method {method!r} is not supported by jaxrl sweep; use grid or random{hint}")
    entries = document.get("parameters")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{where}: expected a 'parameters' mapping of names to {{value}}, {{values}} or a "
                          "distribution")
    parameters = tuple(_parameter(f"{where}: parameters.{name}", name, entry) for name, entry in entries.items())
    run_cap = document.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        raise ConfigError(f"{where}: run_cap must be a positive integer, got {run_cap!r}")
    if method == "grid":
        sampled = [p.name for p in parameters if p.distribution not in ("constant", "categorical")]
        if sampled:
            raise ConfigError(f"{where}: method grid needs value or values for every parameter; "
                              f"{', '.join(sampled)} use a distribution (use method: random)")
    elif run_cap is None:
        raise ConfigError(f"{where}: method random needs run_cap (how many members to draw)")
    metric = document.get("metric", {}) or {}
    goal = metric.get("goal", "maximize")
    if goal not in GOALS:
        raise ConfigError(f"{where}: metric.goal must be maximize or minimize, got {goal!r}")
    name = metric.get("name", "eval/return")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: metric.name must be a metric such as {', '.join(METRICS)}, got {name!r}")
    return SweepFile(where, method, parameters, name, goal, run_cap, document.get("name"))
