"""Monte-Carlo returns-to-go of a dataset's logged episodes: the value of the behavior policy along each episode,
which Cal-QL uses as a lower bound of the learned Q on the policy's actions."""

from __future__ import annotations

import numpy as np

from jaxrl.types import MCTransition, Transition


def returns_to_go(transition: Transition, gamma: float) -> np.ndarray:
    """G_t = r_t + γ G_{t+1} along each episode (rows of one episode_id are contiguous and in order; the loader
    validates that), float32 [N].

    Where an episode terminated (discount 0 on its last row) nothing follows: G_T = 0. Where it was cut by a
    time limit, or the data ends mid-episode, the behavior policy would have gone on: its tail is valued as the
    episode's mean reward forever, G_T = mean(r) / (1 - γ) (0 when γ = 1). Cal-QL's reference code adds nothing
    after a cut (G_T = 0), which on a task with negative rewards (pendulum) lifts the last steps' returns-to-go
    toward 0, the top of the reward range, above anything the behavior policy earned: the "lower bound" would
    push Q up there.
    """
    reward = np.asarray(transition.reward, np.float64)
    episode = np.asarray(transition.episode_id)
    discount = np.asarray(transition.discount, np.float64)
    out = np.empty_like(reward)
    ends = np.flatnonzero(np.append(episode[1:] != episode[:-1], True))  # last row of each episode
    starts = np.append(0, ends[:-1] + 1)
    for start, end in zip(starts, ends, strict=True):
        rewards = reward[start:end + 1]
        following = 0.0 if discount[end] == 0.0 or gamma >= 1.0 else rewards.mean() / (1.0 - gamma)
        for row in range(end, start - 1, -1):
            following = reward[row] + gamma * following
            out[row] = following
    return out.astype(np.float32)


def with_returns_to_go(transition: Transition, gamma: float) -> MCTransition:
    """The dataset's rows with their returns-to-go attached."""
    return MCTransition(*transition, mc_return=returns_to_go(transition, gamma))


def episode_returns_to_go(rewards, length, terminated, gamma: float):
    """On device, the returns-to-go of episodes held row-wise: `rewards` [E, T] with each row's first `length[e]`
    entries one episode's rewards in order (the rest ignored), `terminated` [E] whether it ended in a terminal
    state. The same values as `returns_to_go` (a cut episode's tail is its mean reward forever), [E, T] float32,
    0 past each episode's end.

    G_t = b_t + a_t G_{t+1} is solved by an associative scan over affine maps (no division by γ^t, which underflows
    on long episodes): a_t = γ inside the episode, 0 on its last row, where b = r + γ · tail."""
    import jax
    import jax.numpy as jnp

    steps = jnp.arange(rewards.shape[-1])
    inside = steps[None, :] < length[:, None]  # [E, T]
    last = steps[None, :] == length[:, None] - 1
    rewards = jnp.where(inside, rewards, 0.0)
    mean = rewards.sum(axis=-1) / jnp.maximum(length, 1)
    tail = 0.0 if gamma >= 1.0 else jnp.where(terminated, 0.0, mean / (1.0 - gamma))  # [E]
    tail = jnp.broadcast_to(tail, length.shape)
    offset = jnp.where(last, rewards + gamma * tail[:, None], rewards)
    scale = jnp.where(inside & ~last, gamma, 0.0)

    def compose(later, earlier):  # the reverse scan applies `earlier` after the maps to its right: G = b + a · G'
        (a_later, b_later), (a_earlier, b_earlier) = later, earlier
        return a_earlier * a_later, b_earlier + a_earlier * b_later

    return jax.lax.associative_scan(compose, (scale, offset), reverse=True, axis=1)[1]
