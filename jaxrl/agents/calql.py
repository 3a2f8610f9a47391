"""Cal-QL, Calibrated Offline RL Pre-Training (Nakamoto, Zhai, Singh, Mark, Ma, Finn, Kumar and Levine, 2023,
arXiv:2303.05479).

CQL whose conservative penalty never pushes Q on the policy's actions below the behavior policy's value, estimated
by the Monte-Carlo return-to-go of the logged episode (`cql.calibrate`). Offline, Q stays on the scale of real
returns instead of far below them, so fine-tuning starts without the dip in which an over-conservative critic
is first unlearned. The returns-to-go are computed when the dataset loads (jaxrl/data/returns.py, which says how
time-limited episodes are valued). Rows added online carry none until their episode ends, so there the penalty is
CQL's; with `online_returns_to_go`, an episode's rows get its returns-to-go once it ends (the reference code
computes them for the episodes it collects before adding them), and the calibration holds on them too.
"""

from __future__ import annotations

import dataclasses
import functools

from jaxrl.agents import cql
from jaxrl.agents.cql import Hyperparams  # noqa: F401 (Cal-QL's hyperparameters are CQL's)


@dataclasses.dataclass(frozen=True)
class Config(cql.Config):
    """Cal-QL offline: CQL's keys and values (the returns-to-go use `gamma`, as the reference code does)."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(cql.FinetuneConfig):
    """Cal-QL continued online: CQL's fine-tuning keys, the calibration on the dataset's rows of every batch."""

    # Online rows get their episode's returns-to-go (discounted by `gamma`) once it ends, in the buffer, and the
    # calibration then bounds Q on them too. Off by default: the "Offline to online" table was measured without.
    online_returns_to_go: bool = False


make_learner = functools.partial(cql.make_learner, calibrated=True)
