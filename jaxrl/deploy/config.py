"""The pipeline's config: one flat, frozen dataclass, its keys grouped by stage (prefix), read from a YAML file
and `--set key=value` like every other config, so a run's `pipeline.yaml` says everything it did."""

from __future__ import annotations

import dataclasses

from jaxrl import agents
from jaxrl.loop_config import check_unit_interval, require

INJECTIONS = ("unsafe-candidate", "incident-spike", "bad-data")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    env: str = "pointmass"  # the environment the incumbent acts in (and the candidates will)
    seed: int = 0  # every stage's randomness derives from it: the same config and seed make the same decisions
    registry: str = ""  # the policy registry; "" keeps one inside the run folder
    # Where the live stages (shadow, canary, fine-tuning, promotion) run; "" is env. Another population than the
    # logs' (recsys-shifted against recsys) is the shift the shadow stage measures before anything acts in it.
    live_env: str = ""

    # 1. Data. Either a logged dataset, or logs collected here from the incumbent policy.
    dataset: str = ""  # a dataset folder (jaxrl dataset format); "" collects data_steps from the incumbent
    incumbent: str = ""  # the live policy: a registry folder (its live version), a policy folder, a run folder, or
    # env:NAME, a logging policy that ships with the env (recsys's env:production); "" uses the registry's live
    # version, or trains a stand-in (incumbent_agent for incumbent_steps) when none is
    incumbent_agent: str = "ppo"  # the stand-in incumbent's agent
    incumbent_config: str = "experiments/ppo/pointmass.yaml"
    incumbent_steps: int = 60_000  # a short run: an incumbent the candidates can beat
    data_steps: int = 50_000  # transitions logged from the incumbent's stochastic policy
    data_envs: int = 16
    data_min_episodes: int = 200  # whole episodes the data must hold
    # mean pairwise action-grid occupancy (jaxrl/data/quality.py); discrete actions: the share ever taken
    data_min_action_coverage: float = 0.2
    data_max_duplicate_fraction: float = 0.01

    # 2. Offline training of the candidates, seeds of each agent vmapped.
    candidates: tuple[str, ...] = ("iql", "cql")
    candidate_seeds: int = 2
    candidate_updates: int = 5_000
    candidate_config: str = "experiments/offline/{agent}.yaml"  # each candidate's other keys ({agent}: its name)

    # 3. OPE gate: a candidate goes on if the lower end of its return interval beats the incumbent's estimate by
    # ope_margin, and the upper end of its cost interval stays under ope_max_cost_ratio x the incumbent's estimated
    # cost and under ope_max_cost (both discounted, as jaxrl ope estimates them). Ratios to the incumbent's estimate
    # by the same estimator cancel that estimator's bias, which an absolute limit does not.
    ope_estimator: str = "fqe"
    ope_margin: float = 0.0
    ope_max_cost_ratio: float = 2.0
    ope_max_cost: float | None = None  # an absolute limit as well; None: the ratio alone
    ope_fqe_updates: int = 5_000
    ope_fqe_members: int = 1  # FQE fits per policy; > 1 puts their spread into the intervals (jaxrl/ope/run.py)
    ope_resamples: int = 500
    ope_level: float = 0.9  # a 90% interval: its lower end is a 95% one-sided bound
    ope_true_returns: int = 50  # rollouts per candidate for the report's true values (0: none; never gates)

    # 4. Shadow: the candidate scores the states the incumbent visits live, without acting.
    shadow_envs: int = 32
    shadow_steps: int = 200  # per environment
    shadow_max_ood_rate: float = 0.2  # share of live states whose novelty exceeds shadow_novelty_threshold
    shadow_novelty_threshold: float = 3.0  # novelty of a state (1: as far from the data as its own states are)
    # mean L2 distance of the two policies' actions (in [-1, 1] units); on discrete actions, the share of states on
    # which they choose differently (in [0, 1])
    shadow_max_disagreement: float = 1.0
    # Stop when an observation feature's live mean has moved more than this many logged standard deviations (the
    # population the logs describe is not the one the policy would meet); None reports the shift without gating.
    shadow_max_feature_shift: float | None = None

    # 5. Canary: the candidate acts in a fraction of the environments, the incumbent in the rest.
    canary_envs: int = 64
    canary_fraction: float = 0.125
    canary_steps: int = 300  # per environment
    canary_alpha: float = 0.05  # the candidate fails if it is worse than the incumbent at this significance
    incident_cost: float = 8.0  # an episode with more cost than this is an incident
    max_incident_rate: float = 0.1  # incidents per episode that roll back (canary) or stop (fine-tuning)

    # 6. Online fine-tuning of the candidate under a cost constraint (jaxrl/safety/constrained.py), monitored per
    # chunk, within an exploration budget.
    finetune_cost_budget: float | None = None  # expected cost per episode; None: the logs' mean (the incumbent's)
    finetune_steps: int = 5_000  # the budget of online env steps
    finetune_max_cost: float = 600.0  # the budget of total cost incurred online
    finetune_chunk_steps: int = 500  # env steps between checks (and evaluations, and good versions)
    finetune_config: str = "experiments/finetune/{agent}.yaml"  # the fine-tuning keys ({agent}: the candidate's)
    # Which fine-tuned policy goes on to promotion: "last" (the run's end) or "best" (the checkpoint whose evaluation
    # scored the highest return, among those within the cost budget): a run that peaked and then collapsed keeps
    # its peak. Either way the promotion stage compares it with the candidate before fine-tuning.
    finetune_keep: str = "last"

    def __post_init__(self) -> None:
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        if self.live_env and self.live_env != self.env:
            import envs

            known = [name for name in envs.names() if not name.startswith("gymnax/")]
            require(self.live_env in envs.names(), "live_env", f"an environment name (such as {', '.join(known)})",
                    self.live_env)
            logged, live = (envs.spec(name, envs.make(name)) for name in (self.env, self.live_env))
            shape = lambda spec: (spec.obs_size, spec.action_size, spec.discrete)
            require(shape(logged) == shape(live), "live_env",
                    f"an environment with {self.env}'s observations and actions (size {logged.obs_size}, "
                    f"{logged.action_size} {'choices' if logged.discrete else 'dimensions'})", self.live_env)
        unknown = [name for name in self.candidates if name not in agents.FINETUNE]
        require(bool(self.candidates) and not unknown, "candidates",
                f"a non-empty list of {', '.join(agents.FINETUNE)} (agents the pipeline can fine-tune online)",
                list(self.candidates))
        require(self.incumbent_agent in agents.ONLINE, "incumbent_agent", f"one of {', '.join(agents.ONLINE)}",
                self.incumbent_agent)
        for key in ("incumbent_steps", "data_steps", "data_envs", "candidate_seeds", "candidate_updates",
                    "ope_fqe_updates", "ope_fqe_members", "shadow_envs", "shadow_steps", "canary_envs", "canary_steps",
                    "finetune_steps", "finetune_chunk_steps"):
            require(getattr(self, key) > 0, key, "> 0", getattr(self, key))
        require(self.finetune_keep in ("last", "best"), "finetune_keep", "last or best", self.finetune_keep)
        require(self.ope_resamples >= 2, "ope_resamples", ">= 2", self.ope_resamples)
        require(self.shadow_max_feature_shift is None or self.shadow_max_feature_shift > 0,
                "shadow_max_feature_shift", "> 0 (or null: no gate)", self.shadow_max_feature_shift)
        require(self.ope_max_cost_ratio > 0, "ope_max_cost_ratio", "> 0", self.ope_max_cost_ratio)
        from jaxrl.ope.run import ESTIMATORS

        require(self.ope_estimator in ESTIMATORS, "ope_estimator", f"one of {', '.join(ESTIMATORS)}",
                self.ope_estimator)
        for key in ("ope_level", "canary_alpha"):
            check_unit_interval(self, key, low_open=True, high_open=True)
        for key in ("canary_fraction", "max_incident_rate", "data_min_action_coverage",
                    "data_max_duplicate_fraction", "shadow_max_ood_rate"):
            check_unit_interval(self, key)
        candidates = round(self.canary_envs * self.canary_fraction)
        require(0 < candidates < self.canary_envs, "canary_fraction",
                f"a share of canary_envs ({self.canary_envs}) that gives the candidate at least one environment and "
                "the incumbent at least one", self.canary_fraction)

    @property
    def deploy_env(self) -> str:
        """The environment the live stages run in."""
        return self.live_env or self.env
