"""Stage 2, offline training: every candidate agent on the logs, its seeds in one program. The unsafe-candidate
drill trains them on logs whose reward is HAZARD_BONUS x cost: candidates that seek the hazards the task's reward
only tolerated, which the OPE gate (estimating cost on the true logs) must stop."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jaxrl import agents
from jaxrl.config import build_config, load_yaml
from jaxrl.data import storage
from jaxrl.data.metadata import Parent
from jaxrl.deploy.stages.common import Context, StageResult
from jaxrl.experiment import RunSpec, execute

HAZARD_BONUS = 10.0  # the unsafe-candidate drill's reward per unit of cost (and no other reward)


def run(context: Context) -> StageResult:
    config = context.config
    dataset = Path(context.output("data", "dataset"))
    if context.inject == "unsafe-candidate":
        dataset = hazard_seeking(dataset, context.run_dir / "data-hazard-seeking")
    seeds = tuple(range(config.seed, config.seed + config.candidate_seeds))
    runs, figures = {}, {}
    for agent in config.candidates:
        run_dir = context.run_dir / "candidates" / agent
        source = config.candidate_config.format(agent=agent)
        values = {**load_yaml(source), "num_updates": config.candidate_updates,
                  "eval_every": max(1, config.candidate_updates // 2), "seed": config.seed}
        spec = RunSpec(agent, config.env, seeds, build_config(agents.get(agent).Config, values, source), str(dataset))
        _, summary = execute(spec, run_dir, context.run_options, resume=(run_dir / "config.yaml").is_file())
        runs[agent] = str(run_dir)
        figures[f"{agent}_eval_return_per_seed"] = summary["eval_return_per_seed"]
        figures[f"{agent}_eval_cost_per_seed"] = summary["eval_cost_per_seed"]
    decision = (f"trained {', '.join(config.candidates)} x {len(seeds)} seeds for {config.candidate_updates} updates"
                + (" on hazard-seeking rewards (drill)" if context.inject == "unsafe-candidate" else ""))
    return StageResult("offline", True, decision, figures, {}, {"runs": runs, "seeds": list(seeds)})


def hazard_seeking(dataset: Path, out: Path) -> Path:
    """The logs with HAZARD_BONUS x cost for reward, saved as a derived dataset (once)."""
    if (out / "metadata.json").is_file():
        return out
    transitions, metadata = storage.load(dataset)

    provenance = dataclasses.replace(metadata.provenance, parent=Parent(str(dataset.absolute()), metadata.fingerprint,
                                                                        {"drill": "unsafe-candidate",
                                                                         "hazard_bonus": HAZARD_BONUS}))
    storage.save(out, transitions._replace(reward=HAZARD_BONUS * transitions.cost),
                 dataclasses.replace(metadata, provenance=provenance, checksums={}, quality=None))
    return out
