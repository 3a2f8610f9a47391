"""Conservative Q-Learning, CQL(H) (Kumar, Zhou, Tucker and Levine, 2020, arXiv:2006.04779).

SAC with twin critics and a learned entropy temperature, whose critics are also pushed down on actions
the dataset does not contain: the soft maximum of Q over sampled actions, minus Q on the dataset's
action (Eq. 4). The soft maximum is estimated by importance sampling over uniform and current-policy
actions (Appendix F), as in the official implementation; defaults follow CORL's locomotion settings.

Discrete actions (the env spec decides) follow the paper's discrete variant (Sec. 4, its Atari agent on a
Q-network, as d3rlpy's DiscreteCQL): no actor and no temperature; twin Q heads over all actions, double-Q
targets (the online critics' mean picks the next action, the target critics' min values it), and the
penalty log Σ_a exp Q(s, a) - Q(s, a_data) computed exactly over the actions; the policy is greedy in Q.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import common, sac
from jaxrl.data.statistics import DatasetStatistics
from jaxrl.hyperparams import hyperparams, traced
from jaxrl.loop_config import check_positive, check_unit_interval, require
from jaxrl.networks import QEnsemble, compute_dtype, select_action
from jaxrl.types import EnvSpec, Learner, Metrics, Params, PRNGKey, Transition

MAX_LAGRANGE_MULTIPLIER = 1e6  # α' is clipped here, as in the official implementation


@hyperparams
class Hyperparams:
    """CQL's numeric hyperparameters (defaults: CORL's MuJoCo locomotion settings), traced in the agent state."""

    gamma: float = 0.99  # discount factor
    critic_lr: float = 3e-4  # Adam learning rate of the twin Q networks (and of α' when lagrange is on)
    policy_lr: float = 3e-5  # Adam learning rate of the policy and of the entropy temperature
    target_update_rate: float = 0.005  # polyak rate of the target critics
    cql_alpha: float = 10.0  # weight of the conservative penalty (α in Eq. 4)
    target_action_gap: float = 5.0  # threshold of the Lagrangian form (used only when lagrange is on)


@dataclasses.dataclass(frozen=True)
class CQLKeys:
    """CQL's static keys, the same offline and fine-tuning."""

    num_sampled_actions: int = 10  # actions drawn per state from each of uniform, π(·|s), π(·|s') for the penalty
    lagrange: bool = False  # tune the penalty weight so the penalty stays near target_action_gap (CQL-Lagrange)
    # The critics score every state on its 1 + 3n actions in this many slices of the batch, one after another
    # (at most this many: the largest count that divides batch_size). Same result; at the defaults the
    # activations of all 2 x 7936 rows at once (16 MB a layer) overflow a CPU's caches, and slices that fit
    # run the same FLOPs about 15% faster on 2 cores (docs/benchmarks.md). 1 scores all rows at once.
    critic_chunks: int = 8
    # Discrete actions only: the stochastic policy is epsilon-greedy, greedy in Q with this probability's share of
    # uniform actions: exploration when the replay loop fine-tunes it online (DQN's), and a density that is never 0
    # for off-policy evaluation. Evaluation and deployment act greedily.
    exploration_epsilon: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        check_unit_interval(self, "gamma")
        check_unit_interval(self, "target_update_rate", low_open=True)
        check_positive(self, "critic_lr", "policy_lr", "num_sampled_actions", "critic_chunks")
        check_unit_interval(self, "exploration_epsilon")
        require(math.isfinite(self.cql_alpha) and self.cql_alpha >= 0, "cql_alpha", "finite and >= 0", self.cql_alpha)
        require(math.isfinite(self.target_action_gap), "target_action_gap", "finite", self.target_action_gap)


@dataclasses.dataclass(frozen=True)
class Config(Hyperparams, CQLKeys, common.OfflineAgentConfig):
    """CQL: the offline loop's keys, the shared offline keys, CQL's static keys and its hyperparameters."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Hyperparams, CQLKeys, common.FinetuneConfig):
    """CQL continued online on the replay loop, its penalty on every batch (offline and online rows alike)."""


Networks = sac.Networks  # SAC's twin critics and tanh-Gaussian policy
sample_actions, policy_loss, temperature_loss = sac.sample_actions, sac.policy_loss, sac.temperature_loss


class AgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each
    normalizer: common.InputNormalizer  # the dataset's statistics the agent sees its inputs through
    critic: common.TrainState
    target_critic_params: Params
    policy: common.TrainState
    log_temperature: common.TrainState  # params: log α of the entropy bonus, [] float32
    log_lagrange_multiplier: common.TrainState  # params: log α' of CQL-Lagrange, [] float32 (fixed if lagrange off)
    step: jax.Array  # [] int32, gradient steps taken


def make_networks(config: Config, spec: EnvSpec) -> Networks:
    return sac.make_networks(config.hidden_sizes, config.precision, spec)


def q_on_actions(nets: Networks, critic_params: Params, obs: jax.Array, actions: jax.Array, chunks: int) -> jax.Array:
    """Q of each state on each of its R actions, obs [B, obs_size] and actions [R, B, A] -> [C, R, B].

    The batch is cut into `chunks` slices (a divisor of B) scored one after another by `lax.map`.
    """
    rows, batch_size = actions.shape[:2]
    slice_size = batch_size // chunks
    obs_slices = obs.reshape(chunks, slice_size, obs.shape[-1])  # [K, B/K, obs_size]
    action_slices = actions.reshape(rows, chunks, slice_size, actions.shape[-1]).swapaxes(0, 1)  # [K, R, B/K, A]

    def score(slice_obs: jax.Array, slice_actions: jax.Array) -> jax.Array:
        broadcast_obs = jnp.broadcast_to(slice_obs, slice_actions.shape[:2] + slice_obs.shape[-1:])
        return nets.critic.apply(critic_params, broadcast_obs, slice_actions)  # [C, R, B/K]

    if chunks == 1:
        return score(obs, actions)
    q = jax.lax.map(lambda pair: score(*pair), (obs_slices, action_slices))  # [K, C, R, B/K]
    return q.transpose(1, 2, 0, 3).reshape(q.shape[1], rows, batch_size)


def conservative_penalty(
    q_data: jax.Array,
    q_random: jax.Array,
    q_current: jax.Array,
    q_next: jax.Array,
    current_log_prob: jax.Array,
    next_log_prob: jax.Array,
    action_size: int,
) -> jax.Array:
    """E_s[log Σ_a exp Q(s, a) - Q(s, a_data)] per critic (Eq. 4), the sum estimated by importance sampling.

    `q_data` [C, B]; `q_random`, `q_current`, `q_next` [C, n, B] are Q at s of uniform actions, of actions
    from π(·|s) and of actions from π(·|s'); the log-probs [n, B] are those of the policy's samples. Each
    sample is divided by its density (Appendix F; the uniform density on [-1, 1]^A is 2^-A). Returns [C].
    """
    uniform_log_density = -action_size * math.log(2.0)
    weighted_q = jnp.concatenate(
        [q_random - uniform_log_density, q_current - current_log_prob, q_next - next_log_prob], axis=1
    )  # [C, 3n, B]
    soft_max_q = jax.nn.logsumexp(weighted_q, axis=1)  # [C, B]
    return (soft_max_q - q_data).mean(axis=1)


def calibrate(q_policy: jax.Array, mc_return: jax.Array) -> jax.Array:
    """Cal-QL's calibration (Nakamoto et al., 2023, Eq. 5.1): Q [C, n, B] of the policy's actions, raised to the
    behavior policy's Monte-Carlo return of the state [B] where it is below it. Only the penalty's push-down on
    these actions is bounded; the uniform actions and the dataset's action are not (as in the reference code)."""
    return jnp.maximum(q_policy, mc_return)


def critic_loss(
    critic_params: Params,
    target_critic_params: Params,
    policy_params: Params,
    multiplier: jax.Array,
    batch: Transition,
    key: PRNGKey,
    *,
    nets: Networks,
    config: Config,
    hp: Hyperparams,
    calibrated: bool = False,
) -> tuple[jax.Array, Metrics]:
    """Σ over the twin critics of TD error + cql_alpha · α' · (penalty - gap) (Eq. 4).

    `multiplier` is α' of the Lagrangian form (1 without it, and the gap is then 0). `calibrated` (Cal-QL): Q on the
    policy's actions enters the penalty as max(Q, the batch's returns-to-go), so it is never pushed below the
    behavior policy's value (`calibrate`).
    """
    n = config.num_sampled_actions
    random_key, current_key, next_key = jax.random.split(key, 3)
    current_actions, current_log_prob = sample_actions(nets, policy_params, batch.obs, current_key, n)
    next_actions, next_log_prob = sample_actions(nets, policy_params, batch.next_obs, next_key, n + 1)
    random_actions = jax.random.uniform(random_key, current_actions.shape, minval=-1.0, maxval=1.0)  # [n, B, A]

    # Bellman target with a'~π(·|s') from the target critics; no entropy term in the backup (as in CORL).
    q_targets, target_q = sac.soft_bellman_target(nets, target_critic_params, batch, next_actions[0], 0.0, hp.gamma)

    # One batched critic call at s on the dataset action and all 3n sampled actions (the official code also
    # scores the actions drawn from π(·|s') at s).
    actions = jnp.concatenate([batch.action[None], random_actions, current_actions, next_actions[1:]])  # [1+3n, B, A]
    chunks = math.gcd(batch.obs.shape[0], config.critic_chunks)
    q = q_on_actions(nets, critic_params, batch.obs, actions, chunks)  # [C, 1+3n, B]
    q_data, q_random, q_current, q_next = q[:, 0], q[:, 1 : 1 + n], q[:, 1 + n : 1 + 2 * n], q[:, 1 + 2 * n :]

    td_loss = ((q_data - q_targets) ** 2).mean(axis=1).sum()
    calibration = {}
    if calibrated:
        # How often the bound holds Q up: near 1, the penalty pushes down no action of the policy's
        below = jnp.concatenate([q_current, q_next], axis=1) < batch.mc_return
        calibration = {"calql_bound_fraction": below.mean(), "mc_return_mean": batch.mc_return.mean()}
        q_current, q_next = calibrate(q_current, batch.mc_return), calibrate(q_next, batch.mc_return)
    penalty = conservative_penalty(
        q_data, q_random, q_current, q_next, current_log_prob, next_log_prob[1:], batch.action.shape[-1]
    )  # [C]
    gap = hp.target_action_gap if config.lagrange else 0.0
    loss = td_loss + (hp.cql_alpha * multiplier * (penalty - gap)).sum()
    metrics = {
        "critic_loss": loss,
        "td_loss": td_loss,
        "cql_penalty": penalty.mean(),
        "q_mean": q_data.mean(),
        "q_random_mean": q_random.mean(),
        "target_q_mean": target_q.mean(),
        **calibration,
    }
    return loss, metrics


def lagrange_multiplier(log_lagrange_multiplier: jax.Array) -> jax.Array:
    """α' = exp(log α'), clipped as in the official implementation."""
    return jnp.clip(jnp.exp(log_lagrange_multiplier), 0.0, MAX_LAGRANGE_MULTIPLIER)


def lagrange_loss(log_lagrange_multiplier: jax.Array, penalty: jax.Array, hp: Hyperparams) -> jax.Array:
    """max_α'≥0 α' · cql_alpha · (penalty - gap) (CQL-Lagrange, Appendix F): ascent on α', written as a loss."""
    return -lagrange_multiplier(log_lagrange_multiplier) * hp.cql_alpha * (penalty - hp.target_action_gap)


def penalty_weight(config: Config | FinetuneConfig, log_multiplier: common.TrainState) -> jax.Array:
    """α' of the Lagrangian form, or 1 without it: what the penalty is multiplied by (besides cql_alpha)."""
    return lagrange_multiplier(log_multiplier.params) if config.lagrange else jnp.ones(())


def dual_step(config: Config | FinetuneConfig, log_multiplier: common.TrainState, penalty: jax.Array,
              hp: Hyperparams, optimizer: optax.GradientTransformation) -> common.TrainState:
    """One ascent step on log α' from the batch's penalty in the Lagrangian form; unchanged without it."""
    if not config.lagrange:
        return log_multiplier
    return common.apply_gradients(log_multiplier, jax.grad(lagrange_loss)(log_multiplier.params, penalty, hp),
                                  optimizer)


def make_learner(config: Config | FinetuneConfig, spec: EnvSpec, statistics: DatasetStatistics | None = None,
                 calibrated: bool = False) -> Learner:
    """CQL as the learner: init(key, hyperparams), act(state, obs, key, deterministic), update(state, batch, key).

    `statistics` of the dataset are needed when the config normalizes observations or rewards. The entropy
    temperature learns at the policy's rate and α' at the critics', as in CORL. `calibrated` makes it Cal-QL
    (jaxrl/agents/calql.py): its batches are MCTransitions. Discrete actions: `make_discrete_learner`."""
    if spec.discrete:
        if calibrated:
            common.require_continuous(spec, "Cal-QL")
        return make_discrete_learner(config, spec, statistics)
    nets = make_networks(config, spec)
    target_entropy = -float(spec.action_size)
    normalizer = common.make_normalizer(config, spec, statistics)

    def init(key: PRNGKey, hp: Hyperparams) -> AgentState:
        critic_params, policy_params = sac.init_params(nets, key, spec)
        return AgentState(
            hyperparams=hp,
            normalizer=normalizer,
            critic=common.init_train_state(critic_params, optax.adam(hp.critic_lr)),
            target_critic_params=critic_params,
            policy=common.init_train_state(policy_params, optax.adam(hp.policy_lr)),
            log_temperature=common.init_train_state(common.scalar_param(0.0), optax.adam(hp.policy_lr)),
            log_lagrange_multiplier=common.init_train_state(common.scalar_param(0.0), optax.adam(hp.critic_lr)),
            step=jnp.zeros((), jnp.int32),
        )

    def act(state: AgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        obs = state.normalizer.observations(obs)
        return sac.tanh_policy_action(nets, state.policy.params, obs, key, deterministic), {}

    def update_critic(state: AgentState, batch: Transition, key: PRNGKey):
        """One critic step and, in the Lagrangian form, one dual step on α'."""
        hp = state.hyperparams
        critic_optimizer = optax.adam(hp.critic_lr)
        multiplier = penalty_weight(config, state.log_lagrange_multiplier)
        grads, metrics = jax.grad(critic_loss, has_aux=True)(
            state.critic.params, state.target_critic_params, state.policy.params, multiplier, batch, key,
            nets=nets, config=config, hp=hp, calibrated=calibrated,
        )
        log_multiplier = dual_step(config, state.log_lagrange_multiplier, metrics["cql_penalty"], hp, critic_optimizer)
        critic = common.apply_gradients(state.critic, grads, critic_optimizer)
        return critic, log_multiplier, {**metrics, "lagrange_multiplier": multiplier}

    def update_policy(state: AgentState, batch: Transition, key: PRNGKey):
        """One policy step and one entropy-temperature step."""
        hp = state.hyperparams
        policy_optimizer = optax.adam(hp.policy_lr)
        temperature = jnp.exp(state.log_temperature.params)
        grads, metrics = jax.grad(policy_loss, has_aux=True)(
            state.policy.params, state.critic.params, temperature, batch, key, nets=nets, config=config, hp=hp
        )
        temperature_grad = jax.grad(temperature_loss)(state.log_temperature.params, metrics["entropy"], target_entropy)
        policy = common.apply_gradients(state.policy, grads, policy_optimizer)
        log_temperature = common.apply_gradients(state.log_temperature, temperature_grad, policy_optimizer)
        return policy, log_temperature, {**metrics, "temperature": temperature}

    def update(state: AgentState, batch: Transition, key: PRNGKey) -> tuple[AgentState, Metrics]:
        batch = state.normalizer.transitions(batch)
        # Critics, policy and temperature all read the pre-update networks, as in the official code.
        critic_key, policy_key = jax.random.split(key)
        critic, log_lagrange_multiplier, critic_metrics = update_critic(state, batch, critic_key)
        policy, log_temperature, policy_metrics = update_policy(state, batch, policy_key)
        new_state = state._replace(
            critic=critic,
            target_critic_params=common.polyak_update(state.target_critic_params, critic.params,
                                                      state.hyperparams.target_update_rate),
            policy=policy,
            log_temperature=log_temperature,
            log_lagrange_multiplier=log_lagrange_multiplier,
            step=state.step + 1,
        )
        return new_state, {**critic_metrics, **policy_metrics}

    def log_prob(state: AgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        return sac.tanh_policy_log_prob(nets, state.policy.params, state.normalizer.observations(obs), action)

    return Learner(init=init, act=act, update=update, hyperparams=traced(Hyperparams, config), log_prob=log_prob)


# ------------------------------------------------------------------------------------------------ discrete actions


class DiscreteAgentState(NamedTuple):
    hyperparams: Hyperparams  # [] float32 each (policy_lr unused: no actor)
    normalizer: common.InputNormalizer
    critic: common.TrainState  # twin Q heads over all actions
    target_critic_params: Params
    log_lagrange_multiplier: common.TrainState  # as AgentState's
    step: jax.Array  # [] int32


def discrete_critic_loss(
    critic_params: Params,
    next_q: jax.Array,
    multiplier: jax.Array,
    batch: Transition,
    key: PRNGKey,
    *,
    critic: QEnsemble,
    config: Config,
    hp: Hyperparams,
) -> tuple[jax.Array, Metrics]:
    """Σ over the twin critics of (Q(s, a) - (r + γ d next_q))² + cql_alpha · α' · (log Σ_a exp Q(s, a) - Q(s, a) -
    gap), the CQL(H) penalty exact over the discrete actions; `next_q` [B] is the double-Q value of s'."""
    del key  # deterministic
    q_all = critic.apply(critic_params, batch.obs)  # [C, B, N]
    q_data = select_action(q_all, jnp.broadcast_to(batch.action, q_all.shape[:-1]))  # [C, B]
    q_targets = batch.reward + hp.gamma * batch.discount * next_q  # [B]
    td_loss = ((q_data - q_targets) ** 2).mean(axis=1).sum()
    penalty = (jax.nn.logsumexp(q_all, axis=-1) - q_data).mean(axis=1)  # [C]
    gap = hp.target_action_gap if config.lagrange else 0.0
    loss = td_loss + (hp.cql_alpha * multiplier * (penalty - gap)).sum()
    return loss, {"critic_loss": loss, "td_loss": td_loss, "cql_penalty": penalty.mean(), "q_mean": q_data.mean(),
                  "q_all_mean": q_all.mean(), "target_q_mean": next_q.mean()}


def double_q_value(critic: QEnsemble, critic_params: Params, target_critic_params: Params,
                   next_obs: jax.Array) -> jax.Array:
    """min_i Q'_i(s', argmax_a mean_j Q_j(s', a)) [B]: the online critics choose, the target critics value."""
    next_action = critic.apply(critic_params, next_obs).mean(axis=0).argmax(axis=-1)  # [B]
    return critic.apply(target_critic_params, next_obs, next_action).min(axis=0)


def make_discrete_learner(config: Config, spec: EnvSpec, statistics: DatasetStatistics | None = None) -> Learner:
    """Discrete CQL(H) as the learner; the policy is greedy in the critics' mean, epsilon-greedy when stochastic
    (`exploration_epsilon`), and `log_prob` is the stochastic policy's. Fine-tuning online continues the same
    learner DQN-style on the replay loop (double-Q targets, the penalty kept at `cql_alpha`, which a fine-tuning
    config may lower), exploring epsilon-greedily: no actor to learn from scratch, as discrete SAC would need."""
    critic = QEnsemble(config.hidden_sizes, num_critics=2, dtype=compute_dtype(config.precision),
                       num_actions=spec.action_size)
    normalizer = common.make_normalizer(config, spec, statistics)

    def init(key: PRNGKey, hp: Hyperparams) -> DiscreteAgentState:
        params = critic.init(key, jnp.zeros((1, spec.obs_size)))
        return DiscreteAgentState(
            hyperparams=hp,
            normalizer=normalizer,
            critic=common.init_train_state(params, optax.adam(hp.critic_lr)),
            target_critic_params=params,
            log_lagrange_multiplier=common.init_train_state(common.scalar_param(0.0), optax.adam(hp.critic_lr)),
            step=jnp.zeros((), jnp.int32),
        )

    def greedy(state: DiscreteAgentState, obs: jax.Array) -> jax.Array:
        q = critic.apply(state.critic.params, state.normalizer.observations(obs))  # [C, B, N]
        return q.mean(axis=0).argmax(axis=-1).astype(jnp.int32)

    epsilon = config.exploration_epsilon

    def act(state: DiscreteAgentState, obs: jax.Array, key: PRNGKey, deterministic: bool) -> tuple[jax.Array, dict]:
        best = greedy(state, obs)
        if deterministic or epsilon == 0.0:
            return best, {}
        explore_key, action_key = jax.random.split(key)
        explore = jax.random.bernoulli(explore_key, epsilon, best.shape)
        uniform = jax.random.randint(action_key, best.shape, 0, spec.action_size, jnp.int32)
        return jnp.where(explore, uniform, best), {}

    def update(state: DiscreteAgentState, batch: Transition, key: PRNGKey) -> tuple[DiscreteAgentState, Metrics]:
        hp = state.hyperparams
        batch = state.normalizer.transitions(batch)
        optimizer = optax.adam(hp.critic_lr)
        next_q = double_q_value(critic, state.critic.params, state.target_critic_params, batch.next_obs)
        multiplier = penalty_weight(config, state.log_lagrange_multiplier)
        grads, metrics = jax.grad(discrete_critic_loss, has_aux=True)(
            state.critic.params, next_q, multiplier, batch, key, critic=critic, config=config, hp=hp)
        log_multiplier = dual_step(config, state.log_lagrange_multiplier, metrics["cql_penalty"], hp, optimizer)
        new_critic = common.apply_gradients(state.critic, grads, optimizer)
        new_state = state._replace(
            critic=new_critic,
            target_critic_params=common.polyak_update(state.target_critic_params, new_critic.params,
                                                      hp.target_update_rate),
            log_lagrange_multiplier=log_multiplier,
            step=state.step + 1,
        )
        return new_state, {**metrics, "lagrange_multiplier": multiplier}

    def log_prob(state: DiscreteAgentState, obs: jax.Array, action: jax.Array) -> jax.Array:
        """(1 - ε) on the greedy action plus ε / N on every action."""
        uniform = epsilon / spec.action_size
        return jnp.log(jnp.where(greedy(state, obs) == action, 1.0 - epsilon + uniform, uniform))

    return Learner(init=init, act=act, update=update, hyperparams=traced(Hyperparams, config), log_prob=log_prob)
