"""The 27 Atari MMBench games (ALE continuous actions, RAM observations) through the full stack."""

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

pytest.importorskip("ale_py")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains.atari import map_action

pytestmark = pytest.mark.atari

ATARI_TASKS = list_tasks("atari")


def test_task_list_and_score_rules():
    assert len(ATARI_TASKS) == 27
    for task in ATARI_TASKS:
        spec = get_task(task)
        assert spec.score.kind == "return_clip" and not spec.success_defined
        assert (spec.obs_dim, spec.action_dim, spec.episode_length) == (128, 3, 1000)
    pong = get_task("atari-pong").score
    assert (pong.low, pong.high) == (-21.0, 21.0)
    assert pong(-21.0) == 0.0 and pong(0.0) == 0.5 and pong(30.0) == 1.0


def test_action_mapping():
    low = np.array([0.0, -np.pi, 0.0], np.float32)
    high = np.array([1.0, np.pi, 1.0], np.float32)
    np.testing.assert_allclose(map_action(-np.ones(3)), low)
    np.testing.assert_allclose(map_action(np.ones(3)), high)
    np.testing.assert_allclose(map_action(np.zeros(3)), (low + high) / 2)
    np.testing.assert_allclose(map_action(np.full(3, 5.0)), high)  # clipped


@pytest.mark.parametrize("tasks", [ATARI_TASKS[::5], pytest.param(ATARI_TASKS, marks=pytest.mark.slow)], ids=["sample", "all"])
def test_tasks_build_with_registry_dims(tasks):
    for task in tasks:
        raw = build_raw_task(task, seed=0)
        obs = raw.reset()
        assert obs.shape == (128,) and obs.dtype == np.float32 and 0.0 <= obs.min() and obs.max() <= 1.0
        for _ in range(3):
            obs, reward, info = raw.step(np.random.uniform(-1, 1, 3))
        assert info == {} and np.isfinite(reward)
        raw.close()


def test_raw_task_matches_ale():
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    from torchrl_newt.envs.domains.atari import AtariRawTask

    kwargs = {"obs_type": "ram", "continuous": True, "repeat_action_probability": 0.0}
    ref = gym.make("ALE/Breakout-v5", **kwargs)
    raw = AtariRawTask(gym.make("ALE/Breakout-v5", **kwargs).unwrapped)
    ram, _ = ref.reset(seed=4)
    np.testing.assert_allclose(raw.reset(seed=4), ram / 255.0, atol=1e-7)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.uniform(-1, 1, 3)
        ram, r, *_ = ref.step(map_action(action))
        obs, reward, _ = raw.step(action)
        np.testing.assert_allclose(obs, ram / 255.0, atol=1e-7)
        assert reward == r
    raw.close()
    ref.close()


def test_check_env_specs_and_full_episode():
    env = make_lane_env("atari-pong", seed=0)
    check_env_specs(env)
    td = env.rollout(1010)
    assert td.shape == (1000,)
    assert td["next", "truncated"][-1].item() and not td["next", "done"][:-1].any()
    assert not td["next", "terminated"].any()  # game over is ignored
    ret = td["next", "reward"].sum().item()
    score = td["next", "score"][-1].item()
    assert 0.0 <= score <= 1.0 and score == pytest.approx((min(max(ret, -21), 21) + 21) / 42, abs=1e-6)
    assert (td["next", "success"] == 0).all()
    env.close()


def test_same_seed_same_episode(same_seed_same_episode):
    same_seed_same_episode("atari-boxing", steps=50, seeds=(1, 1))


def test_render_centres_frame():
    raw = build_raw_task("atari-space-invaders", seed=0)
    raw.reset()
    frame = raw.render()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8
    assert (frame[:7] == 0).all() and (frame[:, :32] == 0).all()  # 210x160 game centred on black
    small = raw.render(100, 80)
    assert small.shape == (80, 100, 3)
    raw.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", ATARI_TASKS)
def test_all_tasks_full_stack(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    td = env.rollout(spec.episode_length + 5)
    assert td.shape == (spec.episode_length,)
    ret = td["next", "reward"].sum().item()
    assert td["next", "score"][-1].item() == pytest.approx(spec.score(ret), abs=1e-5)
    env.close()
