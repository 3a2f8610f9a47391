"""`jaxrl shift`: how far each policy of a run strays from a dataset, per policy and per state.

Three scores, each on the states the policy itself visits (rollouts: what a shadow deployment would see) with the
actions it takes there:
- novelty: the distance of a state to its nearest dataset state over the data's typical one (jaxrl/safety/novelty.py);
- action likelihood: the log-density of the policy's action under a behavior model fitted to the dataset
  (jaxrl/safety/behavior.py), against the log-likelihoods of logged actions it did not fit (a fifth of the
  episodes, held out);
- Q disagreement: the spread of an ensemble of FQE critics of the policy (jaxrl/ope/fqe.py, members differing in
  initialization and batches) at the state and action, over the spread of their mean Q across the dataset.
A state is out of distribution where its novelty exceeds `novelty_threshold` or its action is less likely than
all but `likelihood_quantile` of the logged actions; the out-of-distribution rate is what a deployment gate reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.config import ConfigError, build_config
from jaxrl.data import storage
from jaxrl.data.dataset import Dataset
from jaxrl.data.statistics import dataset_statistics
from jaxrl.loop_config import OfflineLoop, loop_keys
from jaxrl.ope import fqe
from jaxrl.ope.run import Candidate, fit_fqe, load_candidates
from jaxrl.safety import behavior
from jaxrl.safety.novelty import fit_novelty, novelty
from jaxrl.train import make_offline_trainer, run_policy
from jaxrl.types import Transition


@dataclasses.dataclass(frozen=True)
class Options:
    episodes: int = 16  # rollout episodes (in parallel, with auto-reset) whose states are scored, per policy
    ensemble_size: int = 5  # FQE critics whose disagreement is read
    novelty_threshold: float = 3.0  # out of distribution beyond this many typical nearest-neighbour distances
    likelihood_quantile: float = 0.01  # ... or an action less likely than this share of the logged actions
    gamma: float = 0.99  # the FQE critics' discount
    seed: int = 0
    fqe_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    behavior_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


def check_options(options: Options) -> None:
    if options.episodes < 1 or options.ensemble_size < 2:
        raise ConfigError(f"--episodes must be >= 1 and --ensemble >= 2; got {options.episodes}, "
                          f"{options.ensemble_size}")
    if options.novelty_threshold <= 0 or not 0 < options.likelihood_quantile < 1:
        raise ConfigError("--novelty-threshold must be > 0 and --likelihood-quantile in (0, 1); got "
                          f"{options.novelty_threshold}, {options.likelihood_quantile}")


# The critics' disagreement needs their spread, not a converged value: a quarter of FQE's default budget, so
# `ensemble_size` critics per policy cost about what one `jaxrl ope` fit does.
ENSEMBLE_UPDATES = 5000
HELD_OUT = 0.2  # share of the episodes the behavior model does not fit, whose log-likelihoods set the threshold


def split_episodes(transition: Transition, held_out: float) -> tuple[Transition, Transition]:
    """Whole episodes, every 1/held_out-th one held out: a model's likelihood on the data it fitted is optimistic,
    so new actions of the logging policy itself would look unlikely against it."""
    episode = np.unique(transition.episode_id, return_inverse=True)[1]
    out = (episode % round(1 / held_out)) == 0
    pick = lambda rows: Transition(*(np.asarray(field)[rows] for field in transition))
    return pick(~out), pick(out)


def fit_behavior(transition: Transition, spec: Any, overrides: dict, key: jax.Array):
    """The behavior model fitted on the dataset: its learner and trained state."""
    config = build_config(behavior.Config, overrides, "behavior model keys")
    learner = behavior.make_behavior_model(config, spec, dataset_statistics(transition))
    trainer = make_offline_trainer(learner, None, loop_keys(OfflineLoop, config), 1)
    state, _ = jax.jit(trainer.run_chunk)(trainer.init(key, learner.hyperparams), Dataset.from_numpy(transition),
                                          jnp.int32(config.num_updates))
    return learner, state.agent


def ensemble(candidate: Candidate, transition: Transition, options: Options, key: jax.Array):
    """FQE critics of every policy of the candidate, `ensemble_size` each, in one vmapped program: [P * K]."""
    k = options.ensemble_size
    tiled = jax.tree.map(lambda leaf: jnp.repeat(leaf, k, axis=0), candidate.agent_states)
    members = candidate._replace(agent_states=tiled, labels=[label for label in candidate.labels for _ in range(k)])
    config = build_config(fqe.Config, {"gamma": options.gamma, "num_updates": ENSEMBLE_UPDATES,
                                       **options.fqe_overrides}, "FQE keys")
    model, states, _ = fit_fqe(members, transition, config, key)
    return model, states


def live_states(candidate: Candidate, options: Options, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """States [P, M, O] the policies visit in `episodes` parallel envs over one time limit, and their sampled
    actions [P, M, A]."""
    env = envs.make(candidate.spec.env)
    spec = envs.spec(candidate.spec.env, env)
    batched = envs.training_env(env, options.episodes, spec.episode_length)
    learner = candidate.experiment.learner

    def visit(agent_state, visit_key):
        reset_key, run_key = jax.random.split(visit_key)
        policy = lambda obs, step_key: learner.act(agent_state, obs, step_key, False)
        _, steps = run_policy(policy, batched, batched.reset(reset_key), run_key, spec.episode_length)
        flat = lambda x: x.reshape(-1, *x.shape[2:])
        return flat(steps.obs), flat(steps.action)

    states, actions = jax.jit(jax.vmap(visit))(candidate.agent_states,
                                                jax.random.split(key, len(candidate.labels)))
    return np.asarray(states), np.asarray(actions)


def policy_scores(states: np.ndarray, actions: np.ndarray, disagreement: np.ndarray, novelty_model: Any,
                  behavior_model: tuple, loglik_threshold: float, options: Options) -> dict[str, np.ndarray]:
    """Per-state scores of one policy: novelty, action log-likelihood, Q disagreement and the OOD flag, [M] each."""
    learner, state = behavior_model
    state_novelty = novelty(novelty_model, states)
    loglik = np.asarray(jax.jit(learner.log_prob)(state, jnp.asarray(states), jnp.asarray(actions)))
    ood = (state_novelty > options.novelty_threshold) | (loglik < loglik_threshold)
    return {"novelty": state_novelty, "action_log_likelihood": loglik, "q_disagreement": disagreement,
            "out_of_distribution": ood}


def summarize(scores: dict[str, np.ndarray], loglik_threshold: float, options: Options) -> dict[str, float]:
    return {
        "states": int(len(scores["novelty"])),
        "novelty_mean": float(scores["novelty"].mean()),
        "novelty_p95": float(np.percentile(scores["novelty"], 95)),
        "novel_state_rate": float((scores["novelty"] > options.novelty_threshold).mean()),
        "action_log_likelihood_mean": float(scores["action_log_likelihood"].mean()),
        "unlikely_action_rate": float((scores["action_log_likelihood"] < loglik_threshold).mean()),
        "q_disagreement_mean": float(scores["q_disagreement"].mean()),
        "q_disagreement_p95": float(np.percentile(scores["q_disagreement"], 95)),
        "ood_rate": float(scores["out_of_distribution"].mean()),
    }


def disagreements(model: fqe.FQE, states_k: Any, candidate: Candidate, states: np.ndarray, actions: np.ndarray,
                  transition: Transition, k: int) -> np.ndarray:
    """Per policy and state, the ensemble's std of Q(s, a) (return) over the std across the dataset's rows of the
    ensemble's mean Q(s, a): [P, M]."""
    def spread(member_states, obs, action, data_obs, data_action):
        q = jax.vmap(lambda s: model.q_values(s, obs, action)[:, 0])(member_states)  # [K, M]
        data_q = jax.vmap(lambda s: model.q_values(s, data_obs, data_action)[:, 0])(member_states)  # [K, N / 10]
        return q.std(axis=0) / (data_q.mean(axis=0).std() + 1e-6)

    grouped = jax.tree.map(lambda leaf: leaf.reshape(len(candidate.labels), k, *leaf.shape[1:]), states_k)
    # The dataset rows are arguments (shared by the policies), not constants embedded in the compiled program.
    return np.asarray(jax.jit(jax.vmap(spread, in_axes=(0, 0, 0, None, None)))(
        grouped, jnp.asarray(states), jnp.asarray(actions), jnp.asarray(transition.obs[::10]),
        jnp.asarray(transition.action[::10])))


def run_shift(dataset_dir: Path, runs: list[str], options: Options) -> tuple[dict, dict[str, np.ndarray]]:
    """Scores of every policy of `runs` against the dataset: the summary (JSON-ready) and the per-state arrays."""
    check_options(options)
    transition, metadata = storage.load(dataset_dir)
    candidates = load_candidates(runs, metadata, dataset_dir)
    key = jax.random.key(options.seed)
    behavior_key, novelty_key, key = jax.random.split(key, 3)
    fitted, held_out = split_episodes(transition, HELD_OUT)
    behavior_model = fit_behavior(fitted, candidates[0].experiment.env_spec, options.behavior_overrides,
                                  behavior_key)
    logged = np.asarray(jax.jit(behavior_model[0].log_prob)(behavior_model[1], jnp.asarray(held_out.obs),
                                                             jnp.asarray(held_out.action)))
    loglik_threshold = float(np.quantile(logged, options.likelihood_quantile))
    novelty_model = fit_novelty(np.asarray(transition.obs), np.asarray(transition.episode_id), novelty_key)
    policies, arrays = [], {}
    for candidate in candidates:
        key, ensemble_key, visit_key = jax.random.split(key, 3)
        model, member_states = ensemble(candidate, transition, options, ensemble_key)
        states, actions = live_states(candidate, options, visit_key)
        spread = disagreements(model, member_states, candidate, states, actions, transition, options.ensemble_size)
        for index, (chunk, seed) in enumerate(candidate.labels):
            scores = policy_scores(states[index], actions[index], spread[index], novelty_model, behavior_model,
                                   loglik_threshold, options)
            name = f"{candidate.run_dir.name}@{chunk}/seed{seed}"
            arrays.update({f"{name}/{field}": value for field, value in scores.items()})
            arrays[f"{name}/states"] = states[index]
            policies.append({"run": str(candidate.run_dir), "agent": candidate.spec.agent, "checkpoint": chunk,
                             "seed": seed, "key": name, **summarize(scores, loglik_threshold, options)})
    summary = {"dataset": str(dataset_dir), "env": metadata.env_name, "options": dataclasses.asdict(options),
               "logged_action_log_likelihood_threshold": loglik_threshold,
               "novelty_scale": float(novelty_model.scale), "policies": policies}
    return summary, arrays


COLUMNS = ("novelty_mean", "novelty_p95", "novel_state_rate", "action_log_likelihood_mean", "unlikely_action_rate",
           "q_disagreement_mean", "ood_rate")


def markdown(summary: dict) -> str:
    options = summary["options"]
    lines = [f"# Distribution shift against {summary['dataset']} ({summary['env']})", "",
             f"On the states each policy visits ({options['episodes']} parallel episodes over one time limit), with "
             f"its sampled actions. Out of distribution: novelty above {options['novelty_threshold']} (1 = the "
             "dataset's median nearest-neighbour distance) or an action log-likelihood under the fitted behavior "
             f"model below {summary['logged_action_log_likelihood_threshold']:.2f} (the logged actions' "
             f"{options['likelihood_quantile']:.0%} quantile). Q disagreement: std of {options['ensemble_size']} FQE "
             "critics over the spread of their mean across the dataset.", "",
             "| policy | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for policy in summary["policies"]:
        lines.append(f"| {policy['key']} ({policy['agent']}) | "
                     + " | ".join(f"{policy[column]:.3f}" for column in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write(out_dir: Path, summary: dict, arrays: dict[str, np.ndarray]) -> None:
    """`shift.json`, `shift.md` and the per-state arrays `shift_states.npz`, one folder written whole."""
    import json

    from jaxrl.infra.files import atomic_write_dir

    def fill(folder: Path) -> None:
        (folder / "shift.json").write_text(json.dumps(summary, indent=2))
        (folder / "shift.md").write_text(markdown(summary))
        with open(folder / "shift_states.npz", "wb") as handle:
            np.savez_compressed(handle, **arrays)

    atomic_write_dir(out_dir, fill)
