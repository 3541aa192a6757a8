"""Vector environments: autoreset semantics, seeding, shapes."""

import numpy as np
import pytest

import shoplab
from shoplab import _native


def test_copies_autoreset_on_the_next_step():
    """Next-step autoreset: the step after copy i's episode ends resets it
    (reward 0, no flags, its action ignored) to the episode of seed
    derive_seed(seed + i, "autoreset", 1), which a single env replays."""
    venv = shoplab.vector_env("pricing", num_envs=3)
    assert venv.metadata["autoreset_mode"].value == "NextStep" or str(venv.autoreset_mode) == "next_step"
    obs, _ = venv.reset(seed=10)
    single = shoplab.PricingEnv()
    for i in range(3):
        assert np.array_equal(obs[i], single.reset(seed=10 + i)[0])
    actions = np.full(3, 5)
    ended_at = None
    for t in range(200):
        obs, rewards, terminated, truncated, infos = venv.step(actions)
        done = terminated | truncated
        if done.any():
            ended_at = t
            assert "reference" in infos and infos["_reference"][done].all()
            break
    assert ended_at is not None
    obs, rewards, terminated, truncated, _ = venv.step(actions)
    for i in np.flatnonzero(done):
        assert rewards[i] == 0.0 and not terminated[i] and not truncated[i]
        first, _ = single.reset(seed=_native.derive_seed(10 + int(i), "autoreset", 1))
        assert np.array_equal(obs[i], first)


def test_the_batch_env_resets_its_sessions_in_the_same_step():
    """Same-step autoreset for the recommendation batch: a departed
    shopper's slot shows a new shopper at once (session step 0); when the
    ticks run out every slot is truncated and the batch restarts, the last
    observations in final_obs."""
    venv = shoplab.vector_env("recommendation", overrides={"recommendation.ticks": 6})
    assert venv.num_envs == 200 and venv.autoreset_mode == "same_step"
    obs, _ = venv.reset(seed=4)
    assert obs.shape == (200, 7) and obs.dtype == np.float32
    step = venv.feature_names.index("session_step")
    rng = np.random.default_rng(0)
    for t in range(6):
        actions = rng.integers(0, 100, 200)
        obs, rewards, terminated, truncated, infos = venv.step(actions)
        assert not (terminated & truncated).any()
        if t < 5:
            assert (obs[terminated, step] == 0).all()
            assert not truncated.any() and "final_obs" not in infos
    assert (truncated | terminated).all() and truncated.any()
    assert infos["final_obs"].shape == (200, 7) and infos["_final_obs"].all()
    assert (obs[:, step] == 0).all(), "a new batch episode starts every session afresh"


def test_vector_seeding_is_deterministic():
    def trace(seed):
        venv = shoplab.vector_env("recommendation", overrides={"recommendation.ticks": 5})
        out = [venv.reset(seed=seed)[0]]
        rng = np.random.default_rng(1)
        for _ in range(5):
            o, r, *_ = venv.step(rng.integers(0, 100, venv.num_envs))
            out += [o, r]
        return out

    a, b, c = trace(3), trace(3), trace(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_vector_actions_are_checked():
    venv = shoplab.vector_env("pricing", num_envs=2)
    with pytest.raises(Exception) as e:
        venv.step(np.array([0, 1]))
    assert "reset" in str(e.value)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        venv.step(np.array([0, 8]))
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="num_envs"):
        shoplab.vector_env("recommendation", num_envs=3)


def test_make_vec_builds_copies_or_the_batch():
    import gymnasium as gym

    copies = gym.make_vec("shoplab/Pricing-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert copies.num_envs == 4 and copies.autoreset_mode == "next_step"
    obs, _ = copies.reset(seed=0)
    assert obs.shape == (4, 3)
    batch = gym.make_vec("shoplab/Recommendation-v0", num_envs=50, vectorization_mode="vector_entry_point")
    assert batch.num_envs == 50 and batch.autoreset_mode == "same_step"
    assert batch.reset(seed=0)[0].shape == (50, 7)
    with pytest.raises(ValueError, match="not pricing"):
        gym.make_vec("shoplab/Pricing-v0", num_envs=2, vectorization_mode="vector_entry_point", scenario="ads")


def test_vector_infos_carry_the_env_s_metrics():
    """Copies: one array per metric, equal to a single env's info on the
    same episode, masked where a copy reset instead of stepping. A batch:
    its totals over the sessions, the reward among them when it counts it."""
    venv = shoplab.vector_env("pricing", num_envs=2)
    single = shoplab.PricingEnv()
    venv.reset(seed=3)
    single.reset(seed=3)
    names = list(shoplab.Scenario("pricing").metric_names)
    for _ in range(5):
        _, _, _, _, infos = venv.step(np.array([4, 2]))
        _, _, _, _, info = single.step(4)
        for name in names:
            assert infos[f"_{name}"].all()
            assert infos[name][0] == pytest.approx(info[name]), name
    batch = shoplab.vector_env("recommendation")
    batch.reset(seed=1)
    _, rewards, _, _, infos = batch.step(np.zeros(batch.num_envs, dtype=np.int64))
    totals = infos["batch_metrics"]
    assert set(totals) == set(shoplab.Scenario("recommendation").metric_names)
    assert totals["clicks"] == pytest.approx(rewards.sum())
