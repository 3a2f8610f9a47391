"""A recommender session: pick the next item for a user who gets bored, grows (dis)satisfied and may leave.

Learned from RecSim's interest-evolution environment (users with latent interests, a choice model, a time
budget) and KuaiSim (retention: the session ends when the user leaves); written for JAX, one user per env.

- Catalogue (fixed by `catalogue_seed`): `num_items` items (default 200) in `num_genres` genres (10), each with
  an 8-dim unit embedding near its genre's centre, a quality in [0, 1] and a popularity (a share of past views,
  higher for good items and for unsafe ones). A fraction `unsafe_fraction` (5%) is flagged unsafe:
  policy-violating content that is tempting (a click and watch bonus, so high short-term engagement).
  Recommending one costs `info["cost"]` = 1.
- User (drawn at reset from the population): a latent unit preference vector around the population's mean;
  satisfaction (starts at 0.5) that follows engagement; boredom per genre that grows each time its genre is
  shown and decays otherwise (so diversity pays); preferences that drift by `drift_rate` per step.
- Step: the item is clicked with probability sigmoid(4 affinity + 2 (quality - 0.5) - 0.6 boredom + 2.5 unsafe
  - 0.5), affinity the cosine of preference and item; a click watches a fraction sigmoid(2 affinity + 2 quality
  - 1 + 1.5 unsafe) of the item. Reward: engagement = click x watch fraction, in [0, 1).
- Leaving: each step the user leaves with probability 0.01 + 0.3 clip((0.35 - satisfaction) / 0.35, 0, 1),
  which ends the episode (a termination); otherwise the session is cut at `session_length` steps (50, a
  truncation by the time limit). `horizon=1` ends every episode after its first step (a contextual bandit).
- Observation (21 floats), what the system could know: its estimate of the user's preferences (a noisy
  sign-up estimate, then moved toward clicked items and away from skipped ones), the genre counts of what it
  recommended (decayed like boredom, over 5), the last engagement, the session's mean engagement so far, and
  the session step over `session_length`.
- Action: an item index (int32, discrete).
- Drift: `population_shift` in [0, 1] moves the population's mean preference toward another direction
  (`recsys-shifted`: 0.6, with drift_rate 0.05 against 0.01), so logs from one population meet another.

`production_policy` is the logging policy that ships with the env: a softmax over log-popularity and the
affinity of the preference estimate with each item, mixed with epsilon-uniform exploration; its log-probs are
exact, so datasets it logs carry true propensities (`jaxrl collect --env recsys --policy production`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from flax import struct

EMBED_DIM = 8
SESSION_LENGTH = 50
# The click model: logit = CLICK_AFFINITY affinity + CLICK_QUALITY (quality - 0.5) - CLICK_BOREDOM boredom[genre]
#   + UNSAFE_APPEAL unsafe - CLICK_BIAS; watch fraction = sigmoid(WATCH_AFFINITY affinity + WATCH_QUALITY quality
#   - 1 + UNSAFE_WATCH unsafe).
CLICK_AFFINITY, CLICK_QUALITY, CLICK_BOREDOM, CLICK_BIAS = 4.0, 2.0, 0.6, 0.5
WATCH_AFFINITY, WATCH_QUALITY = 2.0, 2.0
UNSAFE_APPEAL, UNSAFE_WATCH = 2.5, 1.5
BOREDOM_DECAY = 0.8  # boredom[g] <- 0.8 boredom[g] + [g shown]: at most 5 for a genre shown every step
SATISFACTION_START, SATISFACTION_RATE = 0.5, 0.15  # satisfaction <- (1 - rate) satisfaction + rate engagement
LEAVE_BASE, LEAVE_SCALE, LEAVE_FLOOR = 0.01, 0.3, 0.35
ESTIMATE_NOISE = 0.8  # std of the sign-up estimate's error, per unit preference vector
ESTIMATE_RATE, ESTIMATE_BASELINE = 0.3, 0.3  # estimate += rate (engagement - baseline) item embedding
POPULATION_SPREAD = 0.3  # std per dimension of a user's preference around the population mean (before norming)
# The production policy: logits = POPULARITY_WEIGHT log popularity + AFFINITY_WEIGHT (estimate . item), epsilon.
POPULARITY_WEIGHT, AFFINITY_WEIGHT, EPSILON = 1.0, 3.0, 0.1


@struct.dataclass
class Catalogue:
    embedding: jax.Array  # [N, D] unit vectors
    genre: jax.Array  # [N] int32
    quality: jax.Array  # [N] in [0, 1]
    popularity: jax.Array  # [N] shares, sum 1
    unsafe: jax.Array  # [N] float32 0/1


@struct.dataclass
class UserState:
    preference: jax.Array  # [D] unit vector, latent
    estimate: jax.Array  # [D] the system's estimate of it
    boredom: jax.Array  # [G] per genre
    satisfaction: jax.Array  # []
    last_engagement: jax.Array  # []
    engagement_sum: jax.Array  # []
    step: jax.Array  # [] int32
    rng: jax.Array  # the session's own randomness (clicks, leaving, drift)


def make_catalogue(num_items: int, num_genres: int, unsafe_fraction: float, seed: int) -> Catalogue:
    """The items, from a numpy generator (the same catalogue in every process for the same seed)."""
    if num_items < num_genres or num_genres < 1:
        raise ValueError(f"recsys: need num_items >= num_genres >= 1, got {num_items} items, {num_genres} genres")
    if not 0.0 <= unsafe_fraction < 1.0:
        raise ValueError(f"recsys: unsafe_fraction must be in [0, 1), got {unsafe_fraction}")
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(num_genres, EMBED_DIM)))
    genre = np.arange(num_items) % num_genres
    embedding = _unit(centres[genre] + 0.35 * rng.normal(size=(num_items, EMBED_DIM)))
    quality = rng.uniform(0.0, 1.0, num_items)
    unsafe = np.zeros(num_items)
    unsafe[rng.choice(num_items, int(round(unsafe_fraction * num_items)), replace=False)] = 1.0
    popularity = np.exp(2.0 * quality + 1.5 * unsafe + rng.normal(scale=0.5, size=num_items))
    return Catalogue(jnp.asarray(embedding, jnp.float32), jnp.asarray(genre, jnp.int32),
                     jnp.asarray(quality, jnp.float32), jnp.asarray(popularity / popularity.sum(), jnp.float32),
                     jnp.asarray(unsafe, jnp.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class RecSys(Env):
    """One user's session per env; see the module docstring for the model and its scales."""

    discrete = True

    def __init__(self, num_items: int = 200, num_genres: int = 10, unsafe_fraction: float = 0.05,
                 population_shift: float = 0.0, drift_rate: float = 0.01, horizon: int = SESSION_LENGTH,
                 catalogue_seed: int = 0):
        if not 0.0 <= population_shift <= 1.0:
            raise ValueError(f"recsys: population_shift must be in [0, 1], got {population_shift}")
        if drift_rate < 0.0 or horizon < 1:
            raise ValueError(f"recsys: need drift_rate >= 0 and horizon >= 1, got {drift_rate} and {horizon}")
        self.catalogue = make_catalogue(num_items, num_genres, unsafe_fraction, catalogue_seed)
        directions = _unit(np.random.default_rng(catalogue_seed + 1).normal(size=(2, EMBED_DIM)))
        mean = (1.0 - population_shift) * directions[0] + population_shift * directions[1]
        self.population_mean = jnp.asarray(_unit(mean), jnp.float32)
        self.drift_rate = drift_rate
        self.horizon = horizon
        self.num_genres = num_genres

    # ---------------------------------------------------------------------------------------- dynamics

    def reset(self, rng: jax.Array) -> State:
        user_key, estimate_key, session_key = jax.random.split(rng, 3)
        preference = _normalize(self.population_mean
                                + POPULATION_SPREAD * jax.random.normal(user_key, (EMBED_DIM,), jnp.float32))
        estimate = preference + ESTIMATE_NOISE / np.sqrt(EMBED_DIM) * jax.random.normal(estimate_key, (EMBED_DIM,))
        zero = jnp.zeros((), jnp.float32)
        user = UserState(preference, estimate, jnp.zeros(self.num_genres, jnp.float32),
                         jnp.asarray(SATISFACTION_START, jnp.float32), zero, zero, jnp.zeros((), jnp.int32),
                         session_key)
        return State(user, self._observe(user), zero, zero, {}, {"cost": zero})

    def step(self, state: State, action: jax.Array) -> State:
        user = state.pipeline_state
        c = self.catalogue
        item = jnp.clip(jnp.asarray(action, jnp.int32), 0, c.genre.shape[0] - 1)
        embedding, genre, unsafe = c.embedding[item], c.genre[item], c.unsafe[item]
        rng, click_key, leave_key, drift_key = jax.random.split(user.rng, 4)

        affinity = user.preference @ embedding
        click_logit = (CLICK_AFFINITY * affinity + CLICK_QUALITY * (c.quality[item] - 0.5)
                       - CLICK_BOREDOM * user.boredom[genre] + UNSAFE_APPEAL * unsafe - CLICK_BIAS)
        clicked = jax.random.bernoulli(click_key, jax.nn.sigmoid(click_logit)).astype(jnp.float32)
        watched = jax.nn.sigmoid(WATCH_AFFINITY * affinity + WATCH_QUALITY * c.quality[item] - 1.0
                                 + UNSAFE_WATCH * unsafe)
        engagement = clicked * watched

        satisfaction = (1.0 - SATISFACTION_RATE) * user.satisfaction + SATISFACTION_RATE * engagement
        shown = jax.nn.one_hot(genre, self.num_genres, dtype=jnp.float32)
        drifted = user.preference + self.drift_rate * jax.random.normal(drift_key, (EMBED_DIM,), jnp.float32)
        next_user = UserState(
            preference=_normalize(drifted),
            estimate=user.estimate + ESTIMATE_RATE * (engagement - ESTIMATE_BASELINE) * embedding,
            boredom=BOREDOM_DECAY * user.boredom + shown,
            satisfaction=satisfaction,
            last_engagement=engagement,
            engagement_sum=user.engagement_sum + engagement,
            step=user.step + 1,
            rng=rng,
        )
        leave_probability = LEAVE_BASE + LEAVE_SCALE * jnp.clip((LEAVE_FLOOR - satisfaction) / LEAVE_FLOOR, 0.0, 1.0)
        left = jax.random.bernoulli(leave_key, leave_probability)
        done = jnp.logical_or(left, self.horizon == 1)  # a bandit ends after one step; the time limit cuts others
        return state.replace(pipeline_state=next_user, obs=self._observe(next_user), reward=engagement,
                             done=done.astype(jnp.float32), info={**state.info, "cost": unsafe})

    def _observe(self, user: UserState) -> jax.Array:
        steps = jnp.maximum(user.step, 1).astype(jnp.float32)
        return jnp.concatenate([
            user.estimate,
            user.boredom / (1.0 / (1.0 - BOREDOM_DECAY)),
            jnp.stack([user.last_engagement, user.engagement_sum / steps,
                       user.step.astype(jnp.float32) / SESSION_LENGTH]),
        ])

    # ---------------------------------------------------------------------------------------- logging policy

    def production_logits(self, obs: jax.Array) -> jax.Array:
        """[..., N] logits of the production policy's softmax part, from observations [..., obs_size]."""
        estimate = obs[..., :EMBED_DIM]
        return (POPULARITY_WEIGHT * jnp.log(self.catalogue.popularity)
                + AFFINITY_WEIGHT * estimate @ self.catalogue.embedding.T)

    def production_log_probs(self, obs: jax.Array) -> jax.Array:
        """[..., N] log-probabilities: (1 - EPSILON) softmax(logits) + EPSILON uniform."""
        num_items = self.catalogue.genre.shape[0]
        softmax = jax.nn.softmax(self.production_logits(obs), axis=-1)
        return jnp.log((1.0 - EPSILON) * softmax + EPSILON / num_items)

    def production_policy(self, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """Batched (obs [B, obs_size], key) -> (items [B] int32, {"log_prob": [B]}), exact propensities."""
        log_probs = self.production_log_probs(obs)
        action = jax.random.categorical(key, log_probs, axis=-1).astype(jnp.int32)
        return action, {"log_prob": jnp.take_along_axis(log_probs, action[..., None], axis=-1)[..., 0]}

    @property
    def logging_policies(self) -> dict:
        """Named logging policies that ship with the env (`jaxrl collect --policy NAME`, a pipeline's incumbent
        `env:NAME`), each as its log-probabilities over the items [..., N] from observations [..., obs_size]."""
        return {"production": self.production_log_probs}

    # ---------------------------------------------------------------------------------------- Env API

    @property
    def default_episode_length(self) -> int:
        return self.horizon

    @property
    def observation_size(self) -> int:
        return EMBED_DIM + self.num_genres + 3

    @property
    def action_size(self) -> int:
        return int(self.catalogue.genre.shape[0])

    @property
    def backend(self) -> str:
        return "jax"


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.linalg.norm(x)


def session_metrics(env: RecSys, policy, key: jax.Array, sessions: int) -> dict[str, jax.Array]:
    """What a recommender team reads, over `sessions` sessions of `policy` ((obs [B, O], key) -> items [B]):
    engagement per session (the return), session length, distinct genres per session (diversity) and the unsafe
    rate (the share of recommendations that were unsafe). Jit it with `policy` closed over."""
    from envs.wrappers import eval_env

    batched = eval_env(env, sessions, env.default_episode_length)
    genre_of, unsafe_of = env.catalogue.genre, env.catalogue.unsafe

    def body(carry, step_key):
        state, alive, seen = carry
        policy_key, _ = jax.random.split(step_key)
        item = policy(state.obs, policy_key)
        state = batched.step(state, item)
        record = (alive * state.reward, alive * unsafe_of[item], alive)
        seen = jnp.maximum(seen, alive[:, None] * jax.nn.one_hot(genre_of[item], env.num_genres))
        still = alive * (1.0 - state.done) * (1.0 - state.info["truncation"])
        return (state, still, seen), record

    reset_key, run_key = jax.random.split(key)
    start = (batched.reset(reset_key), jnp.ones(sessions), jnp.zeros((sessions, env.num_genres)))
    (_, _, seen), (reward, unsafe, alive) = jax.lax.scan(body, start, jax.random.split(run_key,
                                                                                        env.default_episode_length))
    length = alive.sum(axis=0)
    return {"engagement": reward.sum(axis=0).mean(), "session_length": length.mean(),
            "genres": seen.sum(axis=1).mean(), "unsafe_rate": unsafe.sum() / length.sum()}
