"""The six Gymnasium MuJoCo tasks (domain ``"mujoco"``) as raw tasks and through the full stack."""

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks  # noqa: E402
from torchrl_newt.envs import make_env, make_lane_env  # noqa: E402
from torchrl_newt.envs.domains._gym import ClipReward, GymRawTask, resize_frame  # noqa: E402
from torchrl_newt.envs.domains.gym_mujoco import HealthyOrPenalty, ZeroAfterTermination  # noqa: E402

pytestmark = pytest.mark.mujoco

MUJOCO_TASKS = list_tasks("mujoco")


def test_domain_lists_six_tasks():
    assert MUJOCO_TASKS == [
        "mujoco-ant",
        "mujoco-halfcheetah",
        "mujoco-hopper",
        "mujoco-inverted-pendulum",
        "mujoco-reacher",
        "mujoco-walker",
    ]


@pytest.mark.parametrize("task", MUJOCO_TASKS)
def test_raw_task_dims_and_step(task):
    spec = get_task(task)
    raw = build_raw_task(task)
    try:
        assert (raw.obs_dim, raw.action_dim, raw.action_repeat) == (spec.obs_dim, spec.action_dim, spec.action_repeat)
        obs = raw.reset(seed=0)
        assert obs.dtype == np.float32 and obs.shape == (spec.obs_dim,)
        obs, reward, info = raw.step(np.ones(spec.action_dim, np.float32))
        assert obs.shape == (spec.obs_dim,) and isinstance(reward, float) and info == {}
    finally:
        raw.close()


def test_full_stack_check_env_specs_all_tasks():
    env = make_env(MUJOCO_TASKS, seed=0)
    try:
        check_env_specs(env)
        td = env.rollout(3)
        dims = [get_task(t).action_dim for t in MUJOCO_TASKS]
        assert td["action_mask"][:, 0].sum(-1).tolist() == dims
        for i, t in enumerate(MUJOCO_TASKS):
            assert (td["observation"][i, :, get_task(t).obs_dim :] == 0).all()
    finally:
        env.close()


def _gym_reference(env_id, **kwargs):
    import gymnasium as gym

    return gym.make(env_id, **kwargs).unwrapped


def test_default_envs_are_newts_v4():
    """Newt (tdmpc2/envs/mujoco.py) builds the -v4 envs; v5 stays available on request."""
    ids = {"mujoco-ant": "Ant-v4", "mujoco-halfcheetah": "HalfCheetah-v4", "mujoco-hopper": "Hopper-v4",
           "mujoco-inverted-pendulum": "InvertedPendulum-v4", "mujoco-reacher": "Reacher-v4",
           "mujoco-walker": "Walker2d-v4"}
    for task, env_id in ids.items():
        raw = build_raw_task(task)
        assert raw.env.spec.id == env_id
        raw.close()
    raw = build_raw_task("mujoco-hopper", version="v5")
    assert raw.env.spec.id == "Hopper-v5"
    raw.close()
    with pytest.raises(ValueError, match="version"):
        build_raw_task("mujoco-hopper", version="v3")


def test_builder_seed_seeds_the_first_reset():
    a = build_raw_task("mujoco-walker", seed=5)
    b = build_raw_task("mujoco-walker")
    np.testing.assert_array_equal(a.reset(), b.reset(seed=5))
    assert not np.array_equal(a.reset(), b.reset(seed=5))  # only the first reset uses it
    a.close()
    b.close()


def test_hopper_matches_gymnasium_with_shaping():
    """Action scaling, repeat 2 and the healthy-or-penalty rule against plain Gymnasium stepping."""
    ref = _gym_reference("Hopper-v4", terminate_when_unhealthy=False)
    raw = build_raw_task("mujoco-hopper")
    ref_obs, _ = ref.reset(seed=3)
    np.testing.assert_allclose(raw.reset(seed=3), ref_obs.astype(np.float32))
    rng = np.random.default_rng(0)
    saw_unhealthy = False
    for _ in range(60):
        action = rng.uniform(-1, 1, 3).astype(np.float32)
        expected = 0.0
        for _ in range(2):
            ref_obs, r, *_ = ref.step(action * ref.action_space.high)
            expected += max(0.0, r) if ref.is_healthy else -1.0
            saw_unhealthy |= not ref.is_healthy
        obs, reward, _ = raw.step(action)
        np.testing.assert_allclose(obs, ref_obs.astype(np.float32), atol=1e-6)
        assert reward == pytest.approx(expected)
    assert saw_unhealthy  # random actions topple the hopper: the -1 branch was exercised
    raw.close()
    ref.close()


def test_inverted_pendulum_scales_actions_and_latches_zero_reward():
    raw = build_raw_task("mujoco-inverted-pendulum")
    raw.reset(seed=0)
    raw.step(np.array([1.0], np.float32))
    assert raw.env.data.ctrl[0] == pytest.approx(3.0)  # [-1, 1] -> the env's [-3, 3]
    rewards = [raw.step(np.array([1.0], np.float32))[1] for _ in range(100)]
    first_zero = rewards.index(0.0)
    assert all(r == 2.0 for r in rewards[:first_zero]) and all(r == 0.0 for r in rewards[first_zero:])
    raw.reset(seed=0)
    assert raw.step(np.zeros(1, np.float32))[1] == 2.0  # the latch clears on reset
    raw.close()


@pytest.mark.parametrize("task, same_reward", [("mujoco-ant", True), ("mujoco-reacher", False)])
def test_v5_matches_v4_observations_and_rewards(task, same_reward):
    """Our v5 arguments (ant: no contact forces/cost; reacher: padded z) reproduce the v4 task.

    Reacher-v5 measures the distance reward after the physics step (v4: before), so only its
    observations match exactly.
    """
    v4 = build_raw_task(task)
    v5 = build_raw_task(task, version="v5")
    np.testing.assert_allclose(v4.reset(seed=1), v5.reset(seed=1), atol=1e-6)
    rng = np.random.default_rng(1)
    for _ in range(10):
        action = rng.uniform(-1, 1, v4.action_dim).astype(np.float32)
        o4, r4, _ = v4.step(action)
        o5, r5, _ = v5.step(action)
        np.testing.assert_allclose(o4, o5, atol=1e-5)
        if same_reward:
            assert r4 == pytest.approx(r5, abs=1e-5)
    v4.close()
    v5.close()


def test_random_episode_truncates_with_score(random_episode):
    random_episode("mujoco-reacher", seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("task", MUJOCO_TASKS)
def test_random_episode_all_tasks(task, random_episode):
    random_episode(task, seed=0)


@pytest.mark.parametrize("task", ["mujoco-walker", "mujoco-inverted-pendulum"])
def test_same_seed_same_episode(task, same_seed_same_episode):
    same_seed_same_episode(task, compare_first_only=True)


def test_render_headless_frame():
    env = make_lane_env("mujoco-halfcheetah", seed=0, from_pixels=True)
    frame = env.reset()["pixels"]
    assert frame.shape == (224, 224, 3) and frame.dtype == torch.uint8
    assert frame.float().std() > 1.0  # an actual picture, not a blank buffer
    raw = env.base_env.raw
    assert raw.render(width=96, height=64).shape == (64, 96, 3)  # other sizes are resized
    env.close()


# -- the shared Gymnasium helper -------------------------------------------------------------
def test_gym_raw_task_validates_inputs():
    raw = build_raw_task("mujoco-reacher")
    raw.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        raw.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="length 2"):
        raw.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        GymRawTask(raw.env, action_repeat=0)
    raw.close()
    raw.close()  # idempotent


def test_reward_rules():
    clip = ClipReward(-1.0, 10.0)
    assert clip(-100.0, True, {}, None) == -1.0 and clip(3.0, False, {}, None) == 3.0
    with pytest.raises(ValueError):
        ClipReward(1.0, 0.0)
    latch = ZeroAfterTermination()
    assert [latch(1.0, t, {}, None) for t in (False, True, False)] == [1.0, 0.0, 0.0]
    assert isinstance(HealthyOrPenalty(), object)


def test_resize_frame_bilinear_keeps_constant_images():
    frame = np.full((400, 600, 3), 123, np.uint8)
    out = resize_frame(frame, 224, 224)
    assert out.shape == (224, 224, 3) and (out == 123).all()
    assert resize_frame(frame, 400, 600) is frame
