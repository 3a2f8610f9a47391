"""Stage 7, promotion: a policy that passed every gate becomes the live version. Fine-tuning may have made the
candidate worse without an incident (CQL's online unlearning, docs/results.md), so the fine-tuned policy is first
compared with the candidate as the canary passed it, `PROMOTE_EPISODES` episodes of each in the env: the
fine-tuned one is promoted unless it is significantly worse in return or cost (the canary's one-sided Welch tests
at `canary_alpha`), and the candidate is promoted then. The registry's one atomic write
(jaxrl/deploy/registry.py) means a crash here leaves the incumbent live or the new version, never neither."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.deploy.bundle import Policy
from jaxrl.deploy.stages import canary
from jaxrl.deploy.stages.common import Context, StageResult
from jaxrl.evaluate import make_episode_runner

GATES = ("data", "ope", "shadow", "canary", "finetune")
PROMOTE_EPISODES = 100


def episodes(policy: Policy, env_name: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns and costs of `count` episodes of the policy's stochastic action (as it acts live)."""
    env = envs.make(env_name)
    length = envs.spec(env_name, env).episode_length
    runner = make_episode_runner(policy.learner, envs.eval_env(env, count, length), length, deterministic=False)
    totals = jax.jit(runner)(policy.state, jax.random.PRNGKey(seed), jnp.float32(1.0))
    return np.asarray(totals.returns), np.asarray(totals.costs)


def run(context: Context) -> StageResult:
    config, registry = context.config, context.registry
    tuned, started = context.output("finetune", "finetuned_version"), context.output("ope", "candidate_version")
    previous = context.output("data", "incumbent_version")
    figures = canary.compare(episodes(registry.load(tuned), config.deploy_env, PROMOTE_EPISODES, config.seed + 4),
                             episodes(registry.load(started), config.deploy_env, PROMOTE_EPISODES, config.seed + 4),
                             config.incident_cost)
    worse = [f"{what} (p = {figures[key]:.2g} < {config.canary_alpha})" for what, key in
             (("lower return", "return_worse_p"), ("higher cost", "cost_higher_p"))
             if figures[key] is not None and figures[key] < config.canary_alpha]
    version = started if worse else tuned
    for gate in GATES:
        result = context.results[gate]
        registry.record_gate(version, gate, {"passed": result["passed"], "decision": result["decision"]})
    if registry.live != version:  # a resumed pipeline may have promoted it just before it was killed
        registry.promote(version, f"passed {', '.join(GATES)}; replaces {previous}")
    compared = (f"fine-tuned {tuned}: return {figures['candidate_return_mean']:.2f}, cost "
                f"{figures['candidate_cost_mean']:.2f}; as the canary passed it, {started}: return "
                f"{figures['incumbent_return_mean']:.2f}, cost {figures['incumbent_cost_mean']:.2f}")
    reason = (f"fine-tuning made it worse, {' and '.join(worse)}, so the candidate as the canary passed it"
              if worse else "the fine-tuned policy, not significantly worse than before fine-tuning")
    decision = f"promoted {version}, {reason}; it replaces {previous} as the live version ({compared})"
    figures = {**figures, "live_version": version, "previous_version": previous, "fine_tuning_kept": not worse}
    return StageResult("promote", True, decision, figures, {"canary_alpha": config.canary_alpha},
                       {"live_version": version})
