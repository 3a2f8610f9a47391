"""Stage 4, shadow: the incumbent acts in every live environment; the candidate only scores the states it sees.
Gated on how many live states lie outside the logs (novelty, jaxrl/safety/novelty.py: a changed environment) and
how far the candidate's actions are from the incumbent's there. Both policies' action latency is recorded."""

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


def run(context: Context) -> StageResult:
    config = context.config
    incumbent = context.registry.load(context.output("data", "incumbent_version"))
    candidate = context.registry.load(context.output("ope", "candidate_version"))
    live = run_live(incumbent, candidate, config.env, config.shadow_envs, config.shadow_steps, 0, config.seed + 2)
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
               "live_states": int(len(states)),
               "incumbent_latency": action_latency(incumbent), "candidate_latency": action_latency(candidate),
               "disagreement_histogram": np.histogram(disagreement, bins=20, range=(0.0, largest))[0].tolist()}
    thresholds = {"ood_rate": config.shadow_max_ood_rate, "disagreement": config.shadow_max_disagreement}
    failures = []
    if figures["ood_rate"] > config.shadow_max_ood_rate:
        failures.append(f"{figures['ood_rate']:.1%} of live states are out of the logs' distribution (novelty > "
                        f"{config.shadow_novelty_threshold}), over shadow_max_ood_rate {config.shadow_max_ood_rate}")
    if figures["disagreement"] > config.shadow_max_disagreement:
        failures.append(f"the candidate's actions differ from the incumbent's by {figures['disagreement']:.2f} on "
                        f"average, over shadow_max_disagreement {config.shadow_max_disagreement}")
    passed, decision = check(figures, thresholds, failures)
    return StageResult("shadow", passed, decision, figures, thresholds)
