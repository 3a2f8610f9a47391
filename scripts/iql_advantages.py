"""Where an IQL run's advantage weights fall on its dataset: a diagnostic for policy extraction.

IQL's policy is behavior cloning weighted by exp(β (Q(s, a) - V(s))). When the advantages carry the critics' error
rather than a ranking of the data's actions, the weights only make a noisier, smaller sample of the data, and the
policy can end far below plain BC. This prints, for one seed of a finished IQL run (its last checkpoint) on its own
dataset: the advantages' percentiles beside the critics' TD residuals, their correlation with each action dimension,
and for several β the weights' effective sample size and the weighted mean of the step within the episode and of
the actions in the episodes' first steps.

    .venv/bin/python scripts/iql_advantages.py runs/offline/hopper/medium-replay/iql
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
EARLY_STEPS = 20  # "the episodes' first steps"


def effective_sample_fraction(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows, as a fraction of the rows: (Σw)² / (n Σw²), 1 for equal
    weights, 1/n when one row carries all the weight."""
    weights = np.asarray(weights, np.float64)
    return float(weights.sum() ** 2 / (weights.size * (weights**2).sum()))


def steps_within_episode(episode_id: np.ndarray) -> np.ndarray:
    """[N] 0 at each episode's first row, counting up; rows of one episode are consecutive."""
    from jaxrl.data.episodes import episode_ends

    ends = episode_ends(episode_id, np.ones(len(episode_id)), None)
    return np.arange(len(episode_id)) - np.repeat(ends.first_row, ends.length)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (weights.reshape(-1, *[1] * (values.ndim - 1)) * values).sum(axis=0) / weights.sum()


def advantages(run_dir: Path, seed_index: int) -> tuple[dict[str, np.ndarray], object, object]:
    """Advantages Q - V (min over the target critics, as IQL's policy loss reads them) and TD residuals of the run's
    final agent on every row of its dataset, in the agent's reward scale; also the config and the raw dataset."""
    import envs
    from jaxrl.agents import iql
    from jaxrl.data import storage
    from jaxrl.policy import load_run

    spec, _, agent_states, _ = load_run(run_dir)
    if spec.agent != "iql":
        raise SystemExit(f"{run_dir}: an {spec.agent} run; this reads IQL runs")
    state = jax.tree.map(lambda x: x[seed_index], agent_states)
    data, metadata = storage.load(Path(spec.dataset))
    nets = iql.make_networks(spec.config, envs.spec(metadata.env_name, envs.make(metadata.env_name)))
    batch = state.normalizer.transitions(jax.tree.map(jnp.asarray, data))
    q = nets.critic.apply(state.target_critic_params, batch.obs, batch.action).min(axis=0)
    value = nets.value.apply(state.value.params, batch.obs)
    next_value = nets.value.apply(state.value.params, batch.next_obs)
    target = batch.reward + spec.config.gamma * batch.discount * next_value
    own_q = nets.critic.apply(state.critic.params, batch.obs, batch.action)  # [2, N]
    return ({"advantage": np.asarray(q - value), "td_residual": np.asarray(target - own_q).ravel()},
            spec.config, data)


def report(advantage: np.ndarray, td_residual: np.ndarray, action: np.ndarray, step: np.ndarray,
           betas: list[float], max_weight: float) -> list[str]:
    from jaxrl.agents import iql

    lines = ["| | " + " | ".join(f"p{p}" for p in PERCENTILES) + " | max |", "|---" * (len(PERCENTILES) + 2) + "|"]
    for name, values in (("advantage Q - V", advantage), ("TD residual", td_residual)):
        cells = [*np.percentile(values, PERCENTILES), values.max()]
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    correlations = [np.corrcoef(advantage, action[:, i])[0, 1] for i in range(action.shape[1])]
    lines += ["", "Correlation of the advantage with each action dimension: "
              + ", ".join(f"{c:+.3f}" for c in correlations), ""]
    early = step < EARLY_STEPS
    lines += [f"| β | effective sample | weighted mean step (plain {step.mean():.1f}) | mean action in the first "
              f"{EARLY_STEPS} steps (plain {np.array2string(action[early].mean(0), precision=3)}) |",
              "|---|---|---|---|"]
    for beta in betas:
        weights = np.asarray(iql.advantage_weights(advantage, beta, max_weight), np.float64)
        lines.append(f"| {beta:g} | {effective_sample_fraction(weights):.1%} | {weighted_mean(step, weights):.1f} | "
                     f"{np.array2string(weighted_mean(action[early], weights[early]), precision=3)} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished IQL run")
    parser.add_argument("--seed-index", type=int, default=0)
    parser.add_argument("--betas", default="0.1,0.3,1,3", help="comma-separated inverse temperatures")
    args = parser.parse_args()
    values, config, data = advantages(args.run_dir, args.seed_index)
    betas = [float(beta) for beta in args.betas.split(",")]
    print(f"{args.run_dir} (seed index {args.seed_index}; the run's β {config.inverse_temperature:g}, expectile "
          f"{config.expectile:g}; rewards as the agent scales them)\n")
    print("\n".join(report(values["advantage"], values["td_residual"], np.asarray(data.action),
                           steps_within_episode(np.asarray(data.episode_id)), betas, config.max_advantage_weight)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
