"""Stage 4, shadow: the incumbent acts in every live environment (`live_env`: the world the policy would be deployed
in, which may have moved since the logs were taken); the candidate only scores the states it sees. Gated on how
many live states lie outside the logs (novelty, jaxrl/safety/novelty.py: a changed environment) and how far the
candidate's actions are from the incumbent's there. The shift is reported feature by feature too (the observation
features whose live mean moved most, in logged standard deviations), and both policies' action latency."""

from __future__ import annotations

import jax
import numpy as np

from jaxrl.data import storage
from jaxrl.deploy.live import action_latency, run_live
from jaxrl.deploy.stages.common import Context, StageResult, check
from jaxrl.safety.novelty import fit_novelty, novelty


def action_distance(candidate: np.ndarray, incumbent: np.ndarray) -> np.ndarray:
    """Per state, how far the candidate's action is from the incumbent's: the L2 distance of continuous actions
    [..., A]; for discrete actions [...] (ints: items), 1 where the two choose differently, else 0, so its mean is
    the share of states on which they disagree."""
    if np.issubdtype(candidate.dtype, np.integer):
        return (candidate != incumbent).astype(np.float64)
    return np.linalg.norm(candidate - incumbent, axis=-1)


def feature_shift(logged: np.ndarray, live: np.ndarray, top: int = 3) -> dict[str, float]:
    """The `top` observation features whose mean moved most from the logged states to the live ones, in logged
    standard deviations (signed), keyed "obs[i]"; features constant in the logs are skipped."""
    std = logged.std(axis=0)
    varies = np.flatnonzero(std > 1e-6)
    moved = (live.mean(axis=0)[varies] - logged.mean(axis=0)[varies]) / std[varies]
    order = np.argsort(-np.abs(moved), kind="stable")[:top]
    return {f"obs[{varies[i]}]": float(moved[i]) for i in order}


def gate_failures(figures: dict, config) -> list[str]:
    """Why the shadow stage stops, from its figures and the pipeline config's limits (none: it passes)."""
    failures = []
    if figures["ood_rate"] > config.shadow_max_ood_rate:
        failures.append(f"{figures['ood_rate']:.1%} of live states are out of the logs' distribution (novelty > "
                        f"{config.shadow_novelty_threshold}), over shadow_max_ood_rate {config.shadow_max_ood_rate}")
    if figures["disagreement"] > config.shadow_max_disagreement:
        failures.append(f"the candidate's actions differ from the incumbent's by {figures['disagreement']:.2f} on "
                        f"average, over shadow_max_disagreement {config.shadow_max_disagreement}")
    limit = config.shadow_max_feature_shift
    moved = [(name, value) for name, value in figures["feature_shift"].items() if limit is not None and
             abs(value) > limit]
    if moved:
        listed = ", ".join(f"{name} by {value:+.2f}" for name, value in moved)
        failures.append(f"live feature means moved ({listed} logged standard deviations), over "
                        f"shadow_max_feature_shift {limit}")
    return failures


def run(context: Context) -> StageResult:
    config = context.config
    incumbent = context.registry.load(context.output("data", "incumbent_version"))
    candidate = context.registry.load(context.output("ope", "candidate_version"))
    live = run_live(incumbent, candidate, config.deploy_env, config.shadow_envs, config.shadow_steps, 0,
                    config.seed + 2)
    transitions, _ = storage.load(context.output("data", "dataset"))
    model = fit_novelty(transitions.obs, transitions.episode_id, jax.random.PRNGKey(config.seed))
    states = live.obs.reshape(-1, live.obs.shape[-1])
    scores = novelty(model, states)
    disagreement = action_distance(live.candidate_mode, live.incumbent_mode)  # [T, B]
    discrete = np.issubdtype(live.candidate_mode.dtype, np.integer)
    largest = 1.0 if discrete else 2.0 * np.sqrt(live.candidate_mode.shape[-1])
    figures = {"ood_rate": float((scores > config.shadow_novelty_threshold).mean()),
               "novelty_median": float(np.median(scores)),
               "disagreement": float(disagreement.mean()),
               "disagreement_p90": float(np.quantile(disagreement, 0.9)),
               "live_states": int(len(states)), "live_env": config.deploy_env, "logged_env": config.env,
               "feature_shift": feature_shift(transitions.obs, states),
               "incumbent_latency": action_latency(incumbent), "candidate_latency": action_latency(candidate),
               "disagreement_histogram": np.histogram(disagreement, bins=20, range=(0.0, largest))[0].tolist()}
    thresholds = {"ood_rate": config.shadow_max_ood_rate, "disagreement": config.shadow_max_disagreement}
    if config.shadow_max_feature_shift is not None:
        figures["feature_shift_max"] = max((abs(value) for value in figures["feature_shift"].values()), default=0.0)
        thresholds["feature_shift_max"] = config.shadow_max_feature_shift
    failures = gate_failures(figures, config)
    passed, decision = check(figures, thresholds, failures)
    return StageResult("shadow", passed, decision, figures, thresholds)
