"""`jaxrl ope`: off-policy estimates, with bootstrap intervals, of every seed of every given run against one dataset,
and, given rollouts of the true returns, how well each estimator ranks and selects the policies.

What is estimated: each policy's expected discounted return (and cost) Σ_t γ^t r_t from the env's initial states,
for the stochastic policy (`act`'s samples, whose density `Learner.log_prob` gives the importance weights) unless
`policy="deterministic"`, whose density is degenerate: then, as for BC, only FQE applies. γ defaults to
`default_gamma(time limit)`, small enough that γ^T ≤ 0.01, so FQE's infinite-horizon value and the time-limited
episodes' value agree (jaxrl/ope/fqe.py); FQE's target network then moves fast enough for its fit to converge
within its updates at that γ (`default_target_update_rate`).

Which data each estimator reads: FQE trains on every row; its direct-method estimate averages V at the first state
of every episode (a cut episode started like any other). The importance-sampling family and doubly robust read
whole episodes only (terminated, or at the time limit: jaxrl/data/episodes.py), since a cut episode's return is
a prefix of one; they need the dataset's behavior log-probs, which imported data may lack.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.config import ConfigError, build_config
from jaxrl.data import storage
from jaxrl.data.dataset import Dataset
from jaxrl.data.episodes import EpisodeEnds, episode_ends
from jaxrl.data.statistics import dataset_statistics
from jaxrl.evaluate import make_episode_runner
from jaxrl.experiment import Experiment, RunSpec
from jaxrl.infra.runner import repeat_hyperparams
from jaxrl.loop_config import OfflineLoop, loop_keys
from jaxrl.ope import estimators as est
from jaxrl.ope import fqe
from jaxrl.policy import load_run
from jaxrl.train import make_offline_trainer
from jaxrl.types import Transition

# The command's estimator names -> jaxrl/ope/estimators.py's; "fqe" is FQE's direct-method estimate.
ESTIMATORS = {"fqe": "dm", "is": "is", "wis": "wis", "pdis": "pdis", "wpdis": "wpdis", "dr": "dr", "wdr": "wdr"}
WEIGHTED = tuple(name for name in ESTIMATORS if name != "fqe")  # those that need importance weights
READS_FQE = ("fqe", "dr", "wdr")  # those that read FQE's Q and V (the rest only the policy's log-probs)
SIGNALS = ("return", "cost")
ROW_BATCH = 8192  # dataset rows per call when reading the policy's log-probs and FQE's values (bounds memory)
VALUE_SAMPLES = 16  # actions per state in V(s) = E_a~π Q(s, a)
TAIL = 0.01  # default γ keeps γ^(time limit) at most this


@dataclasses.dataclass(frozen=True)
class Options:
    estimators: tuple[str, ...] = tuple(ESTIMATORS)
    true_returns: int = 0  # rollout episodes per policy measuring its true value (0: none, no selection metrics)
    num_resamples: int = 1000  # bootstrap resamples of the episodes
    level: float = 0.95  # the intervals' confidence level
    delta: float = 0.05  # HCOPE's lower bound holds with probability 1 - delta
    gamma: float | None = None  # None: default_gamma(the dataset's time limit)
    policy: str = "stochastic"  # or "deterministic" (what `jaxrl evaluate` runs; FQE only)
    seed: int = 0
    fqe_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # FQE config keys (`--set`)
    # FQE fits per policy, each its own initialization and batches. With more than one, the FQE-based estimates
    # (fqe, dr, wdr) are the members' mean and their intervals resample a member with the episodes, so they carry
    # FQE's own fitting error as well as the data's.
    fqe_members: int = 1


class Candidate(NamedTuple):
    """One run's policies: every seed of each checkpoint asked for, stacked as P = checkpoints x seeds, so FQE,
    the log-probs and the rollouts of all of them are one program each."""

    run_dir: Path
    spec: RunSpec
    experiment: Experiment
    agent_states: Any  # [P, ...]
    labels: list[tuple[int, int]]  # [P] (checkpoint, seed)


def default_gamma(time_limit: int) -> float:
    """0.99, or less where needed so that γ^time_limit ≤ TAIL (pendulum's 200 steps: 0.977)."""
    return min(0.99, TAIL ** (1.0 / time_limit))


def check_options(options: Options) -> None:
    unknown = [name for name in options.estimators if name not in ESTIMATORS]
    if unknown or not options.estimators:
        raise ConfigError(f"--estimators: unknown {', '.join(unknown) or '(none given)'}; "
                          f"known: {', '.join(ESTIMATORS)}")
    if options.policy not in ("stochastic", "deterministic"):
        raise ConfigError(f"--policy: expected stochastic or deterministic, got {options.policy!r}")
    if options.true_returns < 0 or options.num_resamples < 2 or not 0 < options.level < 1:
        raise ConfigError("--true-returns must be >= 0, --resamples >= 2 and --level in (0, 1); got "
                          f"{options.true_returns}, {options.num_resamples}, {options.level}")
    if options.fqe_members < 1:
        raise ConfigError(f"--fqe-members: expected at least 1, got {options.fqe_members}")
    if options.gamma is not None and not 0 < options.gamma < 1:
        raise ConfigError(f"--gamma: expected a discount in (0, 1), got {options.gamma}")


def parse_run(text: str) -> tuple[Path, int | None]:
    """`RUN_DIR` (its newest checkpoint) or `RUN_DIR@N` (checkpoint N, e.g. a PPO run's policies along training)."""
    path, at, chunk = text.rpartition("@")
    if at and not Path(text).exists() and chunk.isdigit():
        return Path(path), int(chunk)
    return Path(text), None


def load_candidates(runs: list[str], metadata: Any, dataset_dir: Path) -> list[Candidate]:
    """Every run's policies (runs named twice, at other checkpoints, are one candidate), refused where the run's
    env or observation size is not the dataset's."""
    chunks_by_run: dict[Path, list[int | None]] = {}
    candidates = []
    for text in runs:
        run_dir, chunk = parse_run(text)
        if (run_dir / "policy.json").is_file() and chunk is None:
            candidates.append(policy_candidate(run_dir, metadata, dataset_dir))
            continue
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir}: not a run directory (no config.yaml) nor a policy folder (no policy.json)")
        chunks_by_run.setdefault(run_dir, []).append(chunk)
    for run_dir, chunks in chunks_by_run.items():
        loaded = [load_run(run_dir, chunk=chunk) for chunk in chunks]
        spec, experiment = loaded[0][:2]
        if spec.env != metadata.env_name or experiment.env_spec.obs_size != metadata.obs_size:
            raise ConfigError(f"{run_dir}: its policies act in {spec.env} (observations of size "
                              f"{experiment.env_spec.obs_size}); the dataset {dataset_dir} was logged in "
                              f"{metadata.env_name} (size {metadata.obs_size})")
        states = jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *(entry[2] for entry in loaded))
        labels = [(entry[3], seed) for entry in loaded for seed in spec.seeds]
        candidates.append(Candidate(run_dir, spec, experiment, states, labels))
    return candidates


def policy_candidate(folder: Path, metadata: Any, dataset_dir: Path) -> Candidate:
    """A policy folder (a registry version, jaxrl/deploy/bundle.py) as a candidate of one policy."""
    from jaxrl.deploy import bundle

    policy = bundle.load(folder)
    if policy.env_spec.obs_size != metadata.obs_size or policy.env_spec.discrete != metadata.discrete:
        kind = lambda discrete: "discrete" if discrete else "continuous"
        raise ConfigError(f"{folder}: its policy acts in {policy.env} (observations of size "
                          f"{policy.env_spec.obs_size}, {kind(policy.env_spec.discrete)} actions); the dataset "
                          f"{dataset_dir} was logged in {metadata.env_name} (size {metadata.obs_size}, "
                          f"{kind(metadata.discrete)} actions)")
    seed = policy.provenance.get("seed") or 0
    spec = RunSpec(policy.agent, policy.env, (seed,), policy.config)
    experiment = Experiment(None, policy.learner, policy.env_spec, None, None)
    return Candidate(folder, spec, experiment, jax.tree.map(lambda leaf: leaf[None], policy.state),
                     [(policy.provenance.get("chunk"), seed)])


def padded(ends: EpisodeEnds, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices [E, T] of the chosen episodes, padded with their last row, and the mask [E, T]."""
    first, length = ends.first_row[which], ends.length[which]
    steps = np.arange(int(length.max()))
    mask = steps[None, :] < length[:, None]
    index = first[:, None] + np.minimum(steps[None, :], length[:, None] - 1)
    return index.astype(np.int32), mask.astype(np.float32)


def value_bounds(transition: Transition, horizon: int, gamma: float) -> tuple[tuple[float, float], ...]:
    """The range of any discounted sum over `horizon` steps of the data's rewards, and of its costs."""
    return tuple(est.return_range(float(values.min()), float(values.max()), horizon, gamma)
                 for values in (transition.reward, transition.cost))


def fit_fqe(candidate: Candidate, transition: Transition, config: fqe.Config, key: jax.Array, members: int = 1,
            bounds: tuple | None = None):
    """FQE of each of the candidate's policies, `members` fits each, vmapped in one program: the model and its
    states [P x members] (policy p's fits at p * members + m). `bounds`: `value_bounds`, clipping Q's targets."""
    model = fqe.make_fqe(config, candidate.experiment.env_spec, candidate.experiment.learner,
                         dataset_statistics(transition), bounds)
    trainer = make_offline_trainer(model.learner, None, loop_keys(OfflineLoop, config), 1)
    num_fits = len(candidate.labels) * members
    hyperparams = repeat_hyperparams(model.learner.hyperparams, num_fits)
    state = jax.vmap(trainer.init)(jax.random.split(key, num_fits), hyperparams)
    policies = jax.tree.map(lambda leaf: jnp.repeat(leaf, members, axis=0), candidate.agent_states)
    state = state._replace(agent=fqe.attach_policy(state.agent, policies))
    chunk = jax.jit(jax.vmap(trainer.run_chunk, in_axes=(0, None, None)))
    state, metrics = chunk(state, Dataset.from_numpy(transition), jnp.int32(config.num_updates))
    return model, state.agent, {name: np.asarray(value).tolist() for name, value in metrics.items()}


def make_per_row(model: fqe.FQE, log_prob: Any, transition: Transition):
    """`per_row(fqe_state, key)`: for one policy, on every dataset row, its log-prob of the logged action (nan
    without a density), FQE's Q(s, a) and V(s), [N] and [N, 2]; in batches of ROW_BATCH rows, one compiled
    program for every policy of a candidate."""
    rows = len(transition.obs)
    num_batches = -(-rows // ROW_BATCH)
    pad = num_batches * ROW_BATCH - rows
    chunks = lambda x: jnp.pad(jnp.asarray(x), [(0, pad)] + [(0, 0)] * (np.ndim(x) - 1)).reshape(
        num_batches, ROW_BATCH, *np.shape(x)[1:])
    obs, action = chunks(transition.obs), chunks(transition.action)

    @jax.jit
    def compute(fqe_state: Any, key: jax.Array, obs: jax.Array, action: jax.Array) -> tuple:
        # The rows are arguments, not closed-over constants XLA would embed in (and compile with) the program.
        def batch(inputs: tuple) -> tuple:
            obs, action, batch_key = inputs
            density = log_prob(fqe_state.policy, obs, action) if log_prob else jnp.full(obs.shape[0], jnp.nan)
            return (density, model.q_values(fqe_state, obs, action),
                    model.state_values(fqe_state, obs, batch_key, VALUE_SAMPLES))

        return jax.lax.map(batch, (obs, action, jax.random.split(key, num_batches)))

    def per_row(fqe_state: Any, key: jax.Array) -> dict:
        out = compute(fqe_state, key, obs, action)
        density, q, v = (np.asarray(x).reshape(num_batches * ROW_BATCH, *np.shape(x)[2:])[:rows] for x in out)
        return {"log_prob": density, "q": q, "v": v}

    return per_row


def estimate(name: str, members: list[est.Episodes], gamma: float, key: jax.Array, options: Options
             ) -> tuple[dict, np.ndarray]:
    """The estimate with its bootstrap interval, and the resampled estimates [R] behind the interval. `members`:
    the episodes as each FQE fit values them (one entry for a single fit, or for an estimator that reads no
    FQE). The estimate is the members' mean; each resample of the episodes (the same resamples for every member)
    is scored by one member drawn at random, so the interval spans the fits' spread as well as the data's."""
    estimator = est.ESTIMATORS[ESTIMATORS[name]]
    samples = jnp.stack([est.resampled_estimates(estimator, episodes, gamma, key, options.num_resamples)
                         for episodes in members])  # [M, R]
    points = [estimator(episodes, gamma, jnp.ones(episodes.reward.shape[0])) for episodes in members]
    point = jnp.mean(jnp.stack(points))
    if len(members) > 1:
        drawn = jax.random.randint(jax.random.fold_in(key, len(members)), (options.num_resamples,), 0, len(members))
        samples = samples[drawn, jnp.arange(options.num_resamples)]
    else:
        samples = samples[0]
    interval = est.percentile_interval(point, samples, options.level)
    found = {field: float(value) for field, value in interval._asdict().items()}
    if len(members) > 1:
        found["members"] = [float(value) for value in points]
    return found, np.asarray(samples)


def signal_episodes(transition: Transition, rows: dict, index: np.ndarray, mask: np.ndarray, signal: int
                    ) -> est.Episodes:
    """The Episodes of the return (signal 0) or the cost (1) of one policy on the chosen episodes."""
    values = transition.reward if signal == 0 else transition.cost
    log_ratio = rows["log_prob"] - transition.behavior_log_prob
    return est.Episodes(jnp.asarray(values[index]), jnp.asarray(mask), jnp.asarray(log_ratio[index]),
                        jnp.asarray(rows["q"][index, signal]), jnp.asarray(rows["v"][index, signal]))


def hcope(episodes: est.Episodes, return_bounds: tuple[float, float], gamma: float, key: jax.Array,
          delta: float) -> float | None:
    """HCOPE's 1-δ lower bound on the expected return (Thomas et al. 2015), returns bounded by `return_bounds`
    (`value_bounds`' first: from the dataset's own min and max reward, an assumption: the bound is only as sound as
    that range)."""
    if episodes.reward.shape[0] < 4:
        return None
    g_min, g_max = return_bounds
    returns = est.normalize_returns(est.discounted_returns(episodes, gamma), g_min, g_max)
    bound = est.hcope_lower_bound(returns, est.trajectory_log_weights(episodes), key, delta)
    return float(est.denormalize(bound, g_min, g_max))


def true_values(candidate: Candidate, episodes: int, gamma: float, deterministic: bool, key: jax.Array) -> dict:
    """Rollouts of each of the candidate's policies: discounted return and cost means [P], standard errors."""
    env = envs.make(candidate.spec.env)
    spec = envs.spec(candidate.spec.env, env)
    runner = make_episode_runner(candidate.experiment.learner, envs.eval_env(env, episodes, spec.episode_length),
                                 spec.episode_length, deterministic)
    totals = jax.jit(jax.vmap(runner, in_axes=(0, 0, None)))(
        candidate.agent_states, jax.random.split(key, len(candidate.labels)), jnp.float32(gamma))
    returns, costs = np.asarray(totals.discounted_returns), np.asarray(totals.discounted_costs)
    return {"return": returns.mean(axis=1), "return_stderr": returns.std(axis=1, ddof=1) / math.sqrt(episodes),
            "cost": costs.mean(axis=1), "undiscounted_return": np.asarray(totals.returns).mean(axis=1)}


def default_target_update_rate(gamma: float, num_updates: int) -> float:
    """FQE's Polyak rate: SAC's 0.005, or more where `num_updates` would stop the fit short of its fixed point.

    Each update moves the target network τ of the way to the online network, which fits the target's Bellman
    backup, so Q's initial error (it starts near 0) shrinks by about exp(-num_updates τ (1 - γ)); this keeps that
    at most TAIL. At 0.005 and 20k updates the factor is 0.37 for γ = 0.99: every estimate came out at about 63%
    of its value (hopper). At 20k updates: pointmass (γ 0.955) 0.0051, pendulum (0.977) 0.010, hopper (0.99)
    0.023."""
    return min(1.0, max(0.005, math.log(1.0 / TAIL) / (num_updates * (1.0 - gamma))))


def fqe_config(options: Options, gamma: float) -> fqe.Config:
    """FQE's config: γ, the policy evaluated, `--set` keys, and unless set there the Polyak rate that converges."""
    config = build_config(fqe.Config, {"gamma": gamma, "deterministic": options.policy == "deterministic",
                                       **options.fqe_overrides}, "--set (FQE keys)")
    if "target_update_rate" in options.fqe_overrides:
        return config
    return dataclasses.replace(config, target_update_rate=default_target_update_rate(gamma, config.num_updates))


def first_state_episodes(rows: dict, ends: EpisodeEnds, signal: int) -> est.Episodes:
    """FQE's direct method reads V at the first state of every episode, cut ones included: one step each."""
    v = jnp.asarray(rows["v"][ends.first_row, signal])[:, None]  # [E, 1]
    zeros = jnp.zeros_like(v)
    return est.Episodes(zeros, jnp.ones_like(v), zeros, zeros, v)


def policy_estimates(member_rows: list[dict], transition: Transition, ends: EpisodeEnds, whole: tuple | None,
                     gamma: float, bounds: tuple, not_weighted: str | None, key: jax.Array, options: Options
                     ) -> tuple[dict, dict[str, np.ndarray]]:
    """Every estimator's estimate and interval of one policy's return and cost, or why it does not apply; the
    effective sample size of its trajectory weights and HCOPE's lower bound where weights exist. Also each
    estimator's resampled return estimates [R]: `key` is shared by every policy, so their resamples are paired.
    `member_rows`: the policy's rows (make_per_row) under each FQE fit; their log-probs are the policy's own.
    `bounds`: `value_bounds`, whose return range bounds HCOPE."""
    rows = member_rows[0]
    result: dict[str, Any] = {"estimates": {}, "unavailable": {}}
    samples = {}
    for number, name in enumerate(options.estimators):
        if name != "fqe" and not_weighted:
            result["unavailable"][name] = not_weighted
            continue
        result["estimates"][name] = {}
        reads_fqe = name in READS_FQE
        for signal, signal_name in enumerate(SIGNALS):
            members = [first_state_episodes(each, ends, signal) if name == "fqe" else
                       signal_episodes(transition, each, *whole, signal)
                       for each in (member_rows if reads_fqe else member_rows[:1])]
            found, resampled = estimate(name, members, gamma, jax.random.fold_in(key, 2 * number + signal), options)
            result["estimates"][name][signal_name] = found
            if signal == 0:
                samples[name] = resampled
    if not not_weighted:
        episodes = signal_episodes(transition, rows, *whole, 0)
        log_weights = est.trajectory_log_weights(episodes)
        result["effective_sample_size"] = float(est.effective_sample_size(log_weights, jnp.ones_like(log_weights)))
        result["hcope_lower_bound"] = hcope(episodes, bounds[0], gamma, key, options.delta)
    return result, samples


def weighted_unavailable(transition: Transition, dataset_dir: Path, whole: np.ndarray, options: Options,
                         candidate: Candidate) -> str | None:
    """Why the importance-sampling family and doubly robust cannot estimate this run's policies, or None."""
    if not np.isfinite(transition.behavior_log_prob).all():
        return (f"{dataset_dir} has no behavior log-probs (imported data?): importance weights need the logging "
                "policy's density at every logged action")
    if not whole.any():
        return f"{dataset_dir} has no whole episode (all were cut by the logging budget)"
    if options.policy == "deterministic":
        return "the deterministic policy has no density (use the stochastic policy, the default)"
    if candidate.experiment.learner.log_prob is None:
        return f"{candidate.spec.agent}'s policy is deterministic: it has no density to weigh by"
    return None


def metrics_over_resamples(estimates: np.ndarray, truth: jax.Array, low: jax.Array, high: jax.Array,
                           behavior_value: float, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The selection metrics of every bootstrap resample's estimates [R, P], one vmapped program: each [R]."""
    from jaxrl.ope.selection import selection_metrics

    score = lambda resample: selection_metrics(resample, truth, low, high, jnp.float32(behavior_value), ks)
    return {key: np.asarray(value) for key, value in jax.jit(jax.vmap(score))(jnp.asarray(estimates)).items()}


def selection(policies: list[dict], samples: list[dict[str, np.ndarray]], behavior_value: float,
              options: Options) -> dict:
    """Per estimator, over the policies it estimated: Spearman, regret@k, MSE, interval coverage, SharpeRatio@k
    (jaxrl/ope/selection.py) of the return estimates against the rollouts' true values; and each metric's
    `level` interval over the bootstrap resamples (every policy's estimate on the same resampled dataset), all
    resamples scored in one vmapped program."""
    from jaxrl.ope.selection import selection_metrics

    scores = {}
    for name in options.estimators:
        chosen = [i for i, p in enumerate(policies) if name in p["estimates"]]
        if len(chosen) < 2:
            continue
        column = {field: jnp.asarray([policies[i]["estimates"][name]["return"][field] for i in chosen])
                  for field in ("estimate", "low", "high")}
        truth = jnp.asarray([policies[i]["true_return"] for i in chosen])
        ks = tuple(k for k in (1, 3) if k <= len(chosen))
        metrics = selection_metrics(column["estimate"], truth, column["low"], column["high"],
                                    jnp.float32(behavior_value), ks)
        resampled = metrics_over_resamples(np.stack([samples[i][name] for i in chosen], axis=1), truth,
                                           column["low"], column["high"], behavior_value, ks)
        tail = (1.0 - options.level) / 2.0
        intervals = {key: [float(np.nanquantile(values, tail)), float(np.nanquantile(values, 1.0 - tail))]
                     for key, values in resampled.items() if key != "coverage"}
        scores[name] = {"policies": len(chosen), **{key: float(value) for key, value in metrics.items()},
                        "intervals": intervals}
    return scores


def behavior_return(transition: Transition, whole: tuple, gamma: float) -> float:
    """The logging policy's value: the mean discounted return of the dataset's whole episodes (on-policy)."""
    index, mask = whole
    return float((transition.reward[index] * mask * gamma ** np.arange(index.shape[1])).sum(axis=1).mean())


def run_ope(dataset_dir: Path, runs: list[str], options: Options) -> dict:
    """Estimates for every seed of every run (`RUN_DIR` or `RUN_DIR@CHECKPOINT`), and the selection metrics with
    `options.true_returns`."""
    check_options(options)
    transition, metadata = storage.load(dataset_dir)
    candidates = load_candidates(runs, metadata, dataset_dir)
    time_limit = metadata.time_limit or candidates[0].experiment.env_spec.episode_length
    gamma = options.gamma or default_gamma(time_limit)
    config = fqe_config(options, gamma)
    bounds = value_bounds(transition, time_limit, gamma)
    ends = episode_ends(transition.episode_id, transition.discount, metadata.time_limit)
    whole = padded(ends, ends.complete) if ends.complete.any() else None
    behavior_value = behavior_return(transition, whole, gamma) if whole else None
    key, resample_key = jax.random.split(jax.random.key(options.seed))  # one resampling for every policy
    policies, samples = [], []
    seconds = dict.fromkeys(("fqe", "rows", "estimates", "true_returns"), 0.0)  # where the time goes
    for candidate in candidates:
        key, fqe_key, rows_key, true_key = jax.random.split(key, 4)
        began = time.perf_counter()
        members = options.fqe_members
        model, states, fqe_metrics = fit_fqe(candidate, transition, config, fqe_key, members, bounds)
        seconds["fqe"] += time.perf_counter() - began
        began = time.perf_counter()
        truth = (true_values(candidate, options.true_returns, gamma, options.policy == "deterministic", true_key)
                 if options.true_returns else None)
        seconds["true_returns"] += time.perf_counter() - began
        not_weighted = weighted_unavailable(transition, dataset_dir, ends.complete, options, candidate)
        per_row = make_per_row(model, candidate.experiment.learner.log_prob if not not_weighted else None,
                               transition)
        for index, (chunk, seed) in enumerate(candidate.labels):
            began = time.perf_counter()
            fits = range(index * members, (index + 1) * members)
            member_rows = [per_row(jax.tree.map(lambda leaf, i=fit: leaf[i], states),
                                   jax.random.fold_in(rows_key, index if members == 1 else fit)) for fit in fits]
            seconds["rows"] += time.perf_counter() - began
            began = time.perf_counter()
            found, resampled = policy_estimates(member_rows, transition, ends, whole, gamma, bounds,
                                                not_weighted, resample_key, options)
            seconds["estimates"] += time.perf_counter() - began
            entry = {"run": str(candidate.run_dir), "agent": candidate.spec.agent, "seed": seed,
                     "checkpoint": chunk, "fqe_loss": float(np.mean([fqe_metrics["fqe_loss"][fit] for fit in fits])),
                     **found}
            samples.append(resampled)
            if truth is not None:
                entry.update({"true_return": float(truth["return"][index]),
                              "true_return_stderr": float(truth["return_stderr"][index]),
                              "true_cost": float(truth["cost"][index]),
                              "true_undiscounted_return": float(truth["undiscounted_return"][index])})
            policies.append(entry)
    return {"dataset": str(dataset_dir), "env": metadata.env_name, "gamma": gamma, "policy": options.policy,
            "estimators": list(options.estimators),
            "level": options.level, "num_resamples": options.num_resamples, "hcope_delta": options.delta,
            "true_return_episodes": options.true_returns, "fqe_config": dataclasses.asdict(config),
            "fqe_members": options.fqe_members,
            "seconds": seconds,
            "episodes": {"total": int(len(ends.length)), "whole": int(ends.complete.sum()),
                         "cut": int(ends.cut.sum()), "time_limit": metadata.time_limit},
            "behavior_value": behavior_value, "policies": policies,
            "selection": selection(policies, samples, behavior_value, options) if options.true_returns and whole
            else {}}
