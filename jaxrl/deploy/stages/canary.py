"""Stage 5, canary: the candidate acts in `canary_fraction` of the live environments, the incumbent in the rest,
for `canary_steps` steps. The candidate fails if its episodes' return is lower, or their cost higher, than the
incumbent's at significance `canary_alpha` (one-sided Welch t-tests), and is rolled back (its environments return
to the incumbent) if its incident rate (episodes costing more than `incident_cost`) is significantly over
`max_incident_rate` (a one-sided binomial test at `canary_alpha`)."""

from __future__ import annotations

import numpy as np
from scipy import stats  # a dependency of jax itself

from jaxrl.deploy.live import finished_episodes, run_live
from jaxrl.deploy.stages.common import Context, StageResult, check, incidents_exceed


def run(context: Context) -> StageResult:
    config = context.config
    incumbent = context.registry.load(context.output("data", "incumbent_version"))
    candidate = context.registry.load(context.output("ope", "candidate_version"))
    candidate_envs = round(config.canary_envs * config.canary_fraction)
    live = run_live(incumbent, candidate, config.deploy_env, config.canary_envs, config.canary_steps, candidate_envs,
                    config.seed + 3)
    figures = compare(finished_episodes(live, candidate=True), finished_episodes(live, candidate=False),
                      config.incident_cost)
    figures["candidate_envs"] = candidate_envs
    thresholds = {"canary_alpha": config.canary_alpha, "candidate_incident_rate": config.max_incident_rate}
    failures, rolled_back = verdict(figures, config.canary_alpha, config.max_incident_rate)
    passed, decision = check(figures, thresholds, failures)
    if passed:
        decision = (f"passed: return {figures['candidate_return_mean']:.2f} vs the incumbent's "
                    f"{figures['incumbent_return_mean']:.2f} (p = {figures['return_worse_p']:.2g} for worse), cost "
                    f"{figures['candidate_cost_mean']:.2f} vs {figures['incumbent_cost_mean']:.2f} (p = "
                    f"{figures['cost_higher_p']:.2g} for higher), {figures['candidate_incidents']} incidents in "
                    f"{figures['candidate_episodes']} episodes (limit {config.max_incident_rate:.0%})")
    if rolled_back:
        decision += "; rolled back: the candidate's environments return to the incumbent"
    context.registry.record_gate(context.output("ope", "candidate_version"), "canary",
                                 {"passed": passed, "decision": decision, **figures})
    return StageResult("canary", passed, decision, figures, thresholds, rolled_back=rolled_back)


def compare(candidate: tuple[np.ndarray, np.ndarray], incumbent: tuple[np.ndarray, np.ndarray],
            incident_cost: float) -> dict:
    """Returns and costs of the two groups' episodes side by side, the one-sided Welch tests' p-values (candidate
    worse: lower return, higher cost) and each group's incident rate."""
    (candidate_returns, candidate_costs), (incumbent_returns, incumbent_costs) = candidate, incumbent
    figures = {"candidate_episodes": int(len(candidate_returns)), "incumbent_episodes": int(len(incumbent_returns))}
    for name, returns, costs in (("candidate", candidate_returns, candidate_costs),
                                 ("incumbent", incumbent_returns, incumbent_costs)):
        figures[f"{name}_return_mean"] = float(returns.mean()) if len(returns) else None
        figures[f"{name}_cost_mean"] = float(costs.mean()) if len(costs) else None
        figures[f"{name}_incidents"] = int((costs > incident_cost).sum())
        figures[f"{name}_incident_rate"] = float((costs > incident_cost).mean()) if len(costs) else None
    enough = len(candidate_returns) >= 2 and len(incumbent_returns) >= 2
    figures["return_worse_p"] = _p(candidate_returns, incumbent_returns, "less") if enough else None
    figures["cost_higher_p"] = _p(candidate_costs, incumbent_costs, "greater") if enough else None
    return figures


def _p(candidate: np.ndarray, incumbent: np.ndarray, alternative: str) -> float:
    if np.ptp(np.concatenate([candidate, incumbent])) == 0:  # identical values: no evidence either way
        return 1.0
    return float(stats.ttest_ind(candidate, incumbent, equal_var=False, alternative=alternative).pvalue)


def verdict(figures: dict, alpha: float, max_incident_rate: float) -> tuple[list[str], bool]:
    """The failed conditions, and whether the candidate is rolled back (an incident rate over the limit)."""
    if figures["return_worse_p"] is None:
        return [f"too few finished episodes to compare ({figures['candidate_episodes']} candidate, "
                f"{figures['incumbent_episodes']} incumbent): raise canary_steps or canary_fraction"], False
    failures = []
    if figures["return_worse_p"] < alpha:
        failures.append(f"the candidate's return {figures['candidate_return_mean']:.2f} is lower than the incumbent's "
                        f"{figures['incumbent_return_mean']:.2f} (p = {figures['return_worse_p']:.3g} < {alpha})")
    if figures["cost_higher_p"] < alpha:
        failures.append(f"the candidate's cost {figures['candidate_cost_mean']:.2f} is higher than the incumbent's "
                        f"{figures['incumbent_cost_mean']:.2f} (p = {figures['cost_higher_p']:.3g} < {alpha})")
    rolled_back, p_value = incidents_exceed(figures["candidate_incidents"], figures["candidate_episodes"],
                                            max_incident_rate, alpha)
    figures["incident_p"] = p_value
    if rolled_back:
        failures.append(f"candidate incident rate {figures['candidate_incident_rate']:.1%} over max_incident_rate "
                        f"{max_incident_rate:.1%} (binomial p = {p_value:.2g} < {alpha})")
    return failures, rolled_back
