"""Stage 7, promotion: the fine-tuned candidate, having passed every gate, becomes the live version. The
registry's one atomic write (jaxrl/deploy/registry.py) means a crash here leaves the incumbent live or the
candidate, never neither."""

from __future__ import annotations

from jaxrl.deploy.stages.common import Context, StageResult

GATES = ("data", "ope", "shadow", "canary", "finetune")


def run(context: Context) -> StageResult:
    registry = context.registry
    version = context.output("finetune", "finetuned_version")
    previous = context.output("data", "incumbent_version")
    for gate in GATES:
        result = context.results[gate]
        registry.record_gate(version, gate, {"passed": result["passed"], "decision": result["decision"]})
    if registry.live != version:  # a resumed pipeline may have promoted it just before it was killed
        registry.promote(version, f"passed {', '.join(GATES)}; replaces {previous}")
    decision = f"promoted {version}: it replaces {previous} as the live version"
    return StageResult("promote", True, decision, {"live_version": version, "previous_version": previous}, {},
                       {"live_version": version})
