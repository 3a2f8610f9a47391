"""The recommender-session env: shapes, determinism, the click and leave models against numpy, costs only on
unsafe items, the shifted population, the bandit mode, and the production policy's exact propensities."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import recsys
from jaxrl import collect as collect_lib
from jaxrl.cli import main
from jaxrl.data import storage


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_spec_and_batched_shapes():
    env = envs.make("recsys")
    spec = envs.spec("recsys", env)
    assert spec.discrete and spec.action_size == 200 and spec.obs_size == 21 and spec.episode_length == 50
    batched = envs.training_env(env, 16, spec.episode_length)
    state = batched.reset(jax.random.PRNGKey(0))
    state = batched.step(state, jnp.arange(16, dtype=jnp.int32))
    chex.assert_shape(state.obs, (16, 21))
    chex.assert_shape([state.reward, state.done, state.info["cost"]], (16,))
    chex.assert_tree_all_finite(state.obs)
    assert int(env.catalogue.unsafe.sum()) == 10  # 5% of 200
    np.testing.assert_allclose(float(env.catalogue.popularity.sum()), 1.0, rtol=1e-5)


def _rollout(env_name: str, key, steps: int = 30, num_envs: int = 8):
    """The raw env (no wrappers: cheaper to compile) vmapped and stepped with random items: obs, reward, done."""
    env = envs.make(env_name)

    def body(state, k):
        state = jax.vmap(env.step)(state, jax.random.randint(k, (num_envs,), 0, env.action_size))
        return state, (state.obs, state.reward, state.done)

    start = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    return jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps))[1])(start, key)


def test_same_key_same_session_other_key_another():
    first, again, other = (_rollout("recsys", jax.random.PRNGKey(k)) for k in (3, 3, 4))
    chex.assert_trees_all_equal(first, again)
    assert not np.allclose(first[0], other[0])


def test_cost_is_one_exactly_on_unsafe_items():
    env = envs.make("recsys")
    state = env.reset(jax.random.PRNGKey(0))
    items = jnp.arange(env.action_size, dtype=jnp.int32)
    costs = jax.vmap(lambda item: env.step(state, item).info["cost"])(items)
    np.testing.assert_array_equal(np.asarray(costs), np.asarray(env.catalogue.unsafe))
    assert float(env.reset(jax.random.PRNGKey(1)).info["cost"]) == 0.0


def test_engagement_follows_the_documented_click_and_watch_model():
    """Mean reward of one recommendation over many sessions' randomness against the formula in numpy."""
    env = envs.make("recsys")
    state = env.reset(jax.random.PRNGKey(0))
    user = state.pipeline_state
    boredom = np.zeros(10, np.float32)
    boredom[3] = 2.0
    c = env.catalogue
    for item in (3, 13, int(np.argmax(np.asarray(c.unsafe)))):  # genre 3 twice (boredom 2), then an unsafe item
        start = state.replace(pipeline_state=user.replace(boredom=jnp.asarray(boredom)))
        keys = jax.random.split(jax.random.PRNGKey(item), 20000)
        rewards = jax.vmap(lambda k, s=start, i=item: env.step(s.replace(pipeline_state=s.pipeline_state.replace(
            rng=k)), jnp.int32(i)).reward)(keys)
        affinity = float(np.asarray(user.preference) @ np.asarray(c.embedding[item]))
        quality, unsafe, genre = float(c.quality[item]), float(c.unsafe[item]), int(c.genre[item])
        click = _sigmoid(4 * affinity + 2 * (quality - 0.5) - 0.6 * boredom[genre] + 2.5 * unsafe - 0.5)
        watch = _sigmoid(2 * affinity + 2 * quality - 1 + 1.5 * unsafe)
        np.testing.assert_allclose(float(rewards.mean()), click * watch, atol=4 * watch * 0.5 / np.sqrt(20000))
        clicked = np.asarray(rewards) > 0
        np.testing.assert_allclose(np.asarray(rewards)[clicked], watch, rtol=1e-5)


def test_unhappy_users_leave_at_the_documented_rate_and_happy_ones_rarely():
    env = envs.make("recsys")
    state = env.reset(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 20000)
    worst_item = int(jnp.argmin(env.catalogue.embedding @ state.pipeline_state.preference))
    for satisfaction in (0.0, 0.9):
        start = state.replace(pipeline_state=state.pipeline_state.replace(satisfaction=jnp.float32(satisfaction)))
        done, reward = jax.vmap(lambda k, s=start: (lambda n: (n.done, n.reward))(env.step(
            s.replace(pipeline_state=s.pipeline_state.replace(rng=k)), jnp.int32(worst_item))))(keys)
        after = (1 - 0.15) * satisfaction + 0.15 * np.asarray(reward)  # satisfaction after the step, per sample
        expected = np.mean(0.01 + 0.3 * np.clip((0.35 - after) / 0.35, 0.0, 1.0))
        np.testing.assert_allclose(float(done.mean()), expected, atol=0.01)
    assert expected < 0.02  # a satisfied user stays


def test_shifted_population_and_faster_drift():
    base, shifted = envs.make("recsys"), envs.make("recsys-shifted")
    keys = jax.random.split(jax.random.PRNGKey(0), 4096)
    users = {name: jax.vmap(env.reset)(keys).pipeline_state.preference for name, env in
             (("base", base), ("shifted", shifted))}
    for name, env in (("base", base), ("shifted", shifted)):
        mean = np.asarray(users[name]).mean(axis=0)
        own = mean @ np.asarray(env.population_mean)
        other = mean @ np.asarray((shifted if name == "base" else base).population_mean)
        assert own > other + 0.2, (name, own, other)
    # one step moves a preference by about drift_rate * sqrt(8) before renormalizing
    for env, rate in ((base, 0.01), (shifted, 0.05)):
        states = jax.vmap(env.reset)(keys[:512])
        moved = jax.vmap(env.step)(states, jnp.zeros(512, jnp.int32)).pipeline_state.preference
        distance = float(jnp.linalg.norm(moved - states.pipeline_state.preference, axis=-1).mean())
        assert 0.5 * rate * np.sqrt(8) < distance < 1.2 * rate * np.sqrt(8), (rate, distance)


def test_bandit_mode_ends_every_episode_after_one_step():
    env = envs.make("recsys-bandit")
    assert envs.spec("recsys-bandit", env).episode_length == 1
    _, _, done = _rollout("recsys-bandit", jax.random.PRNGKey(0), steps=5, num_envs=64)
    np.testing.assert_array_equal(np.asarray(done), 1.0)
    _, _, done = _rollout("recsys", jax.random.PRNGKey(0), steps=5, num_envs=64)
    assert float(done.mean()) < 0.5


def test_production_policy_propensities_are_exact():
    env = envs.make("recsys")
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 4)).obs
    log_probs = env.production_log_probs(obs)
    np.testing.assert_allclose(np.asarray(jax.nn.logsumexp(log_probs, axis=-1)), 0.0, atol=1e-5)
    assert float(jnp.exp(log_probs).min()) >= recsys.EPSILON / 200 * (1 - 1e-5)  # epsilon exploration floor
    # independent: numpy softmax of the documented logits
    estimate = np.asarray(obs)[:, :8]
    logits = np.log(np.asarray(env.catalogue.popularity)) + 3.0 * estimate @ np.asarray(env.catalogue.embedding).T
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(np.asarray(log_probs)), 0.9 * softmax + 0.1 / 200, rtol=1e-4)
    # sampled actions follow them, and the returned log-prob is the sampled action's
    many = jnp.repeat(obs[:1], 50000, axis=0)
    action, info = env.production_policy(many, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(info["log_prob"]), np.asarray(log_probs[0])[np.asarray(action)], rtol=1e-6)
    frequency = np.bincount(np.asarray(action), minlength=200) / 50000
    probs = np.exp(np.asarray(log_probs[0]))
    assert np.all(np.abs(frequency - probs) < 5 * np.sqrt(probs * (1 - probs) / 50000) + 1e-4)


def test_collect_production_logs_true_propensities(tmp_path):
    data = collect_lib.collect(collect_lib.env_behavior("recsys", "production"), "recsys", 2000, 16, seed=0)
    assert data.action.dtype == np.int32 and data.action.shape == (2000,)
    assert data.action.min() >= 0 and data.action.max() < 200
    env = envs.make("recsys")
    expected = np.asarray(env.production_log_probs(jnp.asarray(data.obs)))[np.arange(2000), data.action]
    np.testing.assert_allclose(data.behavior_log_prob, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(data.cost, np.asarray(env.catalogue.unsafe)[data.action])
    assert main(["collect", "--env", "recsys", "--policy", "production", "--steps", "512", "--num-envs", "8",
                 "--out", str(tmp_path / "logs")]) == 0
    _, metadata = storage.load(tmp_path / "logs")
    assert metadata.discrete and metadata.action_size == 200
    assert "production" in metadata.provenance.behavior_policy


def test_collect_refuses_an_unknown_logging_policy(tmp_path, capsys):
    with pytest.raises(ValueError, match="ships: production"):
        collect_lib.env_behavior("recsys", "greedy")
    assert main(["collect", "--env", "recsys", "--policy", "greedy", "--steps", "64", "--out",
                 str(tmp_path / "x")]) != 0
    assert "'production'" in capsys.readouterr().err


def test_session_metrics_of_a_constant_policy_by_hand():
    env = envs.make("recsys")
    unsafe_item = int(np.argmax(np.asarray(env.catalogue.unsafe)))
    for item, unsafe_rate in ((0, 0.0), (unsafe_item, 1.0)):
        policy = lambda obs, key, item=item: jnp.full((obs.shape[0],), item, jnp.int32)
        metrics = jax.jit(lambda k, p=policy: recsys.session_metrics(env, p, k, 256))(jax.random.PRNGKey(0))
        assert float(metrics["genres"]) == 1.0  # one item, one genre
        assert float(metrics["unsafe_rate"]) == unsafe_rate
        assert 1.0 <= float(metrics["session_length"]) <= 50.0
    # engagement per session is the return the shared evaluator reports for the same sessions
    random_policy = lambda obs, key: jax.random.randint(key, (obs.shape[0],), 0, 200)
    metrics = jax.jit(lambda k: recsys.session_metrics(env, random_policy, k, 2048))(jax.random.PRNGKey(1))
    assert 3.5 < float(metrics["engagement"]) < 6.0  # uniform random: about 4.6 (module docstring)
    assert 5.0 < float(metrics["genres"]) < 9.0
    np.testing.assert_allclose(float(metrics["unsafe_rate"]), 0.05, atol=0.01)  # 10 unsafe items of 200
