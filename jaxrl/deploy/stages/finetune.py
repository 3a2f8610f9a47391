"""Stage 6, online fine-tuning: the candidate continues on the replay loop (`jaxrl finetune`, its logs mixed in),
in live environments (`live_env`, where the shadow and canary stages ran), under the cost constraint
E[episode cost] <= `finetune_cost_budget` (by default the logs' mean: no less safe than the incumbent;
jaxrl/safety/constrained.py), watched after every chunk of `finetune_chunk_steps` env steps. Its exploration
budget is `finetune_steps` env steps (the run's length) and `finetune_max_cost` total cost incurred: reaching the
cost cap ends the stage cleanly. An incident rate (online episodes costing more than `incident_cost`, per finished
episode) significantly over `max_incident_rate` in a chunk (a one-sided binomial test at `canary_alpha`) rolls the
policy back to the last good version (the previous chunk's checkpoint, or the candidate as it started) and stops
the stage; nothing is promoted then.

The incident-spike drill fine-tunes in `pointmass-drift`, where the hazards have grown since the logs were taken."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from jaxrl.deploy import bundle
from jaxrl.deploy.stages.common import Context, StageResult, incidents_exceed
from jaxrl.experiment import execute
from jaxrl.finetune import finetune_spec
from jaxrl.infra.logging import read_metrics

DRIFTED_ENV = {"pointmass": "pointmass-drift"}
EVAL_EPISODES = 20


class Watch:
    """The stage's monitor (jaxrl/infra/runner.py): the cumulative cost against the budget and each chunk's
    incident rate. Totals of chunks before a resumed run's first one are read back from its metrics.jsonl."""

    def __init__(self, run_dir: Path, max_cost: float, max_incident_rate: float, alpha: float):
        self.run_dir, self.max_cost, self.max_incident_rate, self.alpha = run_dir, max_cost, max_incident_rate, alpha
        self.cost = None
        self.incident = None  # (chunk, rate) of the chunk that crossed the threshold
        self.budget_reached = False

    def __call__(self, chunk: int, metrics: dict[str, Any]) -> str | None:
        if self.cost is None:
            self.cost = sum(record.get("train/cost_total") or 0.0 for record in read_metrics(self.run_dir)
                            if 0 < record.get("chunk", 0) < chunk)
        self.cost += float(metrics["train/cost_total"].sum())
        episodes, incidents = int(metrics["train/episodes"].sum()), int(metrics["train/incidents"].sum())
        exceeded, p_value = incidents_exceed(incidents, episodes, self.max_incident_rate, self.alpha)
        if exceeded:
            self.incident = (chunk, incidents / episodes)
            return (f"incident rate {incidents / episodes:.1%} ({incidents} of {episodes} episodes) in chunk {chunk}, "
                    f"over max_incident_rate {self.max_incident_rate:.1%} (binomial p = {p_value:.2g})")
        if self.cost >= self.max_cost:
            self.budget_reached = True
            return f"exploration budget: total cost {self.cost:.1f} reached finetune_max_cost {self.max_cost}"
        return None


def run(context: Context) -> StageResult:
    config = context.config
    candidate_run, seed = Path(context.output("ope", "run")), context.output("ope", "seed")
    agent = context.output("ope", "agent")
    budget = config.finetune_cost_budget
    if budget is None:  # the logs' mean, where the env has a cost signal at all
        budget = context.results["data"]["figures"]["cost_mean"] or None
    overrides = {"eval_every": config.finetune_chunk_steps, "eval_episodes": EVAL_EPISODES,
                 "incident_cost": config.incident_cost, "cost_budget": budget}
    spec = finetune_spec(candidate_run, config.finetune_steps, config.finetune_config.format(agent=agent), overrides)
    spec = dataclasses.replace(spec, seeds=(seed,), env=config.deploy_env)
    if context.inject == "incident-spike":
        if config.env not in DRIFTED_ENV:
            raise ValueError(f"--inject incident-spike: has a drifted world for {', '.join(DRIFTED_ENV)} only, "
                             f"not {config.env}")
        spec = dataclasses.replace(spec, env=DRIFTED_ENV[config.env])
    run_dir = context.run_dir / "finetune"
    watch = Watch(run_dir, config.finetune_max_cost, config.max_incident_rate, config.canary_alpha)
    options = dataclasses.replace(context.run_options, monitor=watch, keep_checkpoints=None)
    _, summary = execute(spec, run_dir, options, resume=(run_dir / "config.yaml").is_file())
    figures = {"env_steps": summary["env_steps"], "online_cost_total": summary["online_cost_total"],
               "online_return_mean": summary["online_return_mean"], "eval_return": summary["eval_return_mean"],
               "eval_cost": summary["eval_cost_mean"], "env": spec.env, "stopped": summary["stopped"]}
    thresholds = {"cost_budget": budget, "finetune_steps": config.finetune_steps,
                  "finetune_max_cost": config.finetune_max_cost,
                  "max_incident_rate": config.max_incident_rate, "incident_cost": config.incident_cost}
    registry = context.registry
    if watch.incident is not None:
        chunk = watch.incident[0]
        good = (context.output("ope", "candidate_version") if chunk == 1 else
                registry.add_once(bundle.from_run(run_dir, chunk=chunk - 1),
                                  note=f"last good version of the fine-tuning (chunk {chunk - 1})"))
        decision = (f"rolled back to {good}, the last good version, and stopped: {summary['stopped']['reason']}; "
                    "nothing is promoted")
        return StageResult("finetune", False, decision, figures, thresholds, {"last_good_version": good},
                           rolled_back=True)
    chunk = best_chunk(read_metrics(run_dir), budget) if config.finetune_keep == "best" else None
    figures["kept_chunk"] = chunk
    kept = f"its checkpoint {chunk} (the best evaluation)" if chunk is not None else "its last checkpoint"
    version = registry.add_once(bundle.from_run(run_dir, chunk=chunk),
                                note=f"{agent} fine-tuned online for {summary['env_steps']} env steps, {kept}")
    ended = ("ended by its exploration budget: " + summary["stopped"]["reason"] if watch.budget_reached else
             f"ran its {config.finetune_steps} env steps")
    decision = (f"passed: {ended}; online cost {summary['online_cost_total']:.1f}, no chunk over the incident "
                f"rate limit; fine-tuned policy ({kept}) stored as {version}")
    return StageResult("finetune", True, decision, figures, thresholds, {"finetuned_version": version})


def best_chunk(records: list[dict[str, Any]], cost_budget: float | None) -> int | None:
    """The checkpoint (chunk >= 1) whose evaluation scored the highest return among those whose evaluated cost is
    within `cost_budget` (every one when None; the latest of equals); None when no evaluation qualifies (then the
    last checkpoint is kept)."""
    scored = [r for r in records if r.get("chunk", 0) >= 1 and "eval/return" in r
              and (cost_budget is None or r.get("eval/cost", 0.0) <= cost_budget)]
    if not scored:
        return None
    return max(scored, key=lambda r: (r["eval/return"], r["chunk"]))["chunk"]
