"""Stage 3, the OPE gate: `jaxrl ope` of every candidate policy (each seed of each candidate run) and of the
incumbent on the logs. A candidate passes if the lower end of its return interval beats the incumbent's estimate
by `ope_margin` and the upper end of its cost interval stays under `ope_max_cost_ratio` times the incumbent's
estimated cost (and under `ope_max_cost`, when set); the passing candidate with the highest lower bound goes on.
The incumbent is estimated by the same estimator, not by its logs' own return: an estimator's bias (FQE's is
downward on our tasks at few updates) then falls on both sides of the comparison. Values are discounted with
OPE's γ (jaxrl/ope/run.py: γ^T ≤ 0.01); the logs' own value is reported beside."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from jaxrl.deploy import bundle
from jaxrl.deploy.stages.common import Context, StageResult
from jaxrl.ope import report as ope_report
from jaxrl.ope.run import Options, run_ope

# Small networks: the gate's FQE fits each candidate in seconds on our fast tasks (the default 256x256 takes ~4x).
FQE_KEYS = {"hidden_sizes": [64, 64]}


def run(context: Context) -> StageResult:
    config = context.config
    out = context.run_dir / "ope"
    if (out / "ope.json").is_file():  # resumed: the estimates of the interrupted run, not a second draw
        result = json.loads((out / "ope.json").read_text())
    else:
        estimators = tuple(dict.fromkeys(("fqe", config.ope_estimator)))
        options = Options(estimators=estimators, true_returns=config.ope_true_returns,
                          num_resamples=config.ope_resamples, level=config.ope_level, seed=config.seed,
                          fqe_members=config.ope_fqe_members,
                          fqe_overrides={**FQE_KEYS, "num_updates": config.ope_fqe_updates,
                                         "eval_every": config.ope_fqe_updates})
        incumbent = context.registry.version_dir(context.output("data", "incumbent_version"))
        runs = [*context.output("offline", "runs").values(), str(incumbent)]
        result = run_ope(Path(context.output("data", "dataset")), runs, options)
        ope_report.write(out, result)
    incumbent_dir = str(context.registry.version_dir(context.output("data", "incumbent_version")))
    incumbent = next(policy for policy in result["policies"] if policy["run"] == incumbent_dir)
    candidates = [policy for policy in result["policies"] if policy is not incumbent]
    incumbent_estimate = incumbent["estimates"][config.ope_estimator]["return"]["estimate"]
    incumbent_cost = incumbent["estimates"][config.ope_estimator]["cost"]["estimate"]
    logged_cost = context.results["data"]["figures"]["cost_mean"]
    # No cost in the logs (a task without a cost signal): nothing for the cost condition to compare.
    # A negative cost estimate (an under-fitted FQE) allows nothing above zero: the gate errs on the safe side.
    max_cost = config.ope_max_cost_ratio * max(incumbent_cost, 0.0) if logged_cost > 0 else math.inf
    if config.ope_max_cost is not None:
        max_cost = min(max_cost, config.ope_max_cost)
    rows = judge(candidates, incumbent_estimate, config.ope_estimator, config.ope_margin, max_cost)
    passing = [row for row in rows if row["passed"]]
    thresholds = {"incumbent_value": incumbent_estimate, "ope_margin": config.ope_margin, "max_cost": max_cost,
                  "ope_max_cost_ratio": config.ope_max_cost_ratio, "ope_max_cost": config.ope_max_cost,
                  "estimator": config.ope_estimator, "level": config.ope_level}
    figures = {"policies": rows, "gamma": result["gamma"], "passing": len(passing),
               "incumbent": {"estimate": incumbent_estimate, "logged_value": result["behavior_value"],
                             "true_return": incumbent.get("true_return"),
                             "cost_estimate": incumbent_cost}}
    if not passing:
        reasons = "; ".join(f"{row['name']}: {row['reason']}" for row in rows)
        return StageResult("ope", False, f"stopped: no candidate passed ({reasons})", figures, thresholds)
    best = max(passing, key=lambda row: row["return_low"])
    figures["chosen"] = best["name"]
    decision = (f"passed: {best['name']} goes on, return ≥ {best['return_low']:.2f} against the incumbent's "
                f"{incumbent_estimate:.2f} + {config.ope_margin}, cost ≤ {best['cost_high']:.2f} "
                f"(limit {max_cost:.2f}); {len(passing)} of {len(rows)} passed")
    seeds = context.output("offline", "seeds")
    policy = bundle.from_run(Path(best["run"]), seeds.index(best["seed"]))
    version = context.registry.add_once(policy, note=f"candidate {best['name']} (OPE gate passed)")
    context.registry.record_gate(version, "ope", {"passed": True, "decision": decision, **best, **thresholds})
    return StageResult("ope", True, decision, figures, thresholds,
                       {"run": best["run"], "agent": best["agent"], "seed": best["seed"], "name": best["name"],
                        "candidate_version": version})


def judge(policies: list[dict[str, Any]], incumbent_value: float, estimator: str, margin: float, max_cost: float
          ) -> list[dict[str, Any]]:
    """Each policy's interval ends and verdict, with the reason when it fails."""
    rows = []
    for policy in policies:
        name = f"{policy['agent']} seed {policy['seed']}"
        row = {"name": name, "run": policy["run"], "agent": policy["agent"], "seed": policy["seed"]}
        if estimator not in policy["estimates"]:
            rows.append({**row, "passed": False, "return_low": None, "cost_high": None,
                         "reason": f"{estimator} cannot estimate it ({policy['unavailable'].get(estimator)})"})
            continue
        estimate = policy["estimates"][estimator]
        row.update(return_estimate=estimate["return"]["estimate"], return_low=estimate["return"]["low"],
                   cost_estimate=estimate["cost"]["estimate"], cost_high=estimate["cost"]["high"],
                   true_return=policy.get("true_return"), true_cost=policy.get("true_cost"))
        failures = []
        if row["return_low"] < incumbent_value + margin:
            failures.append(f"return lower bound {row['return_low']:.2f} < incumbent {incumbent_value:.2f} + {margin}")
        if row["cost_high"] > max_cost:
            failures.append(f"cost upper bound {row['cost_high']:.2f} > {max_cost:.2f}")
        rows.append({**row, "passed": not failures, "reason": "; ".join(failures) or "passed"})
    return rows
