"""RLPD, Reinforcement Learning with Prior Data (Ball, Smith, Kostrikov and Levine, 2023, arXiv:2302.02948).

Online SAC that samples half of every batch from an offline dataset from the first step on, with no pretraining,
made stable at a high update-to-data ratio by three choices: LayerNorm in the critics, an ensemble of critics
whose target is the min over a random pair of them (the policy reads their mean), and symmetric sampling. It is
SAC's learner with those keys (jaxrl/agents/sac.py): this module only sets the paper's defaults.
"""

from __future__ import annotations

import dataclasses

from jaxrl.agents import sac
from jaxrl.agents.sac import Hyperparams, make_learner  # noqa: F401 (RLPD's learner is SAC's)


@dataclasses.dataclass(frozen=True)
class Config(sac.Config):
    """RLPD: SAC's keys at the paper's values (its locomotion config, Appendix C)."""

    offline_fraction: float = 0.5  # symmetric sampling: half of each batch from the dataset
    updates_per_step: int = 20  # the paper's UTD ratio G
    num_critics: int = 10  # ensemble size E
    target_critics: int = 2  # the random subset Z whose min is the target
    critic_layer_norm: bool = True
    policy_q: str = "mean"
    target_entropy_scale: float = 0.5  # target entropy -|A|/2, as the reference code sets it
