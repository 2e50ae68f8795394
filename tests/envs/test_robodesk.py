"""The 6 RoboDesk MMBench tasks (state observations, no per-step rendering) through the full stack."""

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

pytest.importorskip("robodesk")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains.robodesk import RoboDeskRawTask, patch_pillow

pytestmark = pytest.mark.robodesk

RD_TASKS = list_tasks("robodesk")


def test_task_list():
    assert len(RD_TASKS) == 6
    assert all(get_task(t).success_defined and get_task(t).action_repeat == 10 for t in RD_TASKS)


def test_all_tasks_build_with_registry_dims():
    for task in RD_TASKS:
        raw = build_raw_task(task, seed=0)
        obs = raw.reset()
        assert obs.shape == (73,) and obs.dtype == np.float32
        obs, reward, info = raw.step(np.random.uniform(-1, 1, 5))
        assert set(info) == {"success"} and 0.0 <= reward <= 10.0  # 10 sub-steps of a [0, 1] reward
        raw.close()


def test_no_per_step_rendering(monkeypatch):
    raw = build_raw_task("rd-open-slide", seed=0)
    raw.reset()

    def boom(*args, **kwargs):
        raise AssertionError("RoboDesk rendered during a step")

    monkeypatch.setattr(raw.env, "render", boom)
    raw.step(np.zeros(5))
    monkeypatch.undo()
    frame = raw.render(64, 48)  # rendering still works on demand (needs the Pillow fix)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 1.0
    raw.close()


def test_pillow_fix():
    patch_pillow()
    from PIL import Image

    assert Image.ANTIALIAS == Image.LANCZOS


def test_raw_task_matches_robodesk_observation_layout():
    """Newt flattens RoboDesk's gym Dict space, whose keys are sorted: end_effector (3),
    qpos_objects (26, RoboDesk fills it with velocities), qpos_robot (9), qvel_objects (26),
    qvel_robot (9)."""
    raw = build_raw_task("rd-push-green", seed=0)
    raw.reset(seed=0)
    obs, _, _ = raw.step(np.zeros(5))
    data = raw.env.physics.data
    np.testing.assert_allclose(obs[:3], raw.env.physics.named.data.site_xpos["end_effector"].astype(np.float32))
    np.testing.assert_allclose(obs[3:29], data.qvel[9:].astype(np.float32))
    np.testing.assert_allclose(obs[29:38], data.qpos[:9].astype(np.float32))
    np.testing.assert_allclose(obs[38:64], data.qvel[9:].astype(np.float32))
    np.testing.assert_allclose(obs[64:], data.qvel[:9].astype(np.float32))
    assert raw.env.num_steps == 20  # Newt's zero-action step after reset + one agent step, 10 sub-steps each
    raw.close()


def test_actions_reach_robodesk_as_float32(monkeypatch):
    raw = build_raw_task("rd-push-red", seed=0)
    raw.reset(seed=0)
    seen = []
    convert = raw.env._convert_action

    def spy(action):
        seen.append(np.asarray(action).dtype)
        return convert(action)

    monkeypatch.setattr(raw.env, "_convert_action", spy)
    raw.step(np.full(5, 0.3, np.float64))
    assert seen and all(d == np.float32 for d in seen)
    raw.close()


def test_global_rng_untouched_and_seeding():
    raw = RoboDeskRawTask("push_red", seed=0)
    np.random.seed(7)
    expected = np.random.random()
    np.random.seed(7)
    a = raw.reset(seed=3)
    assert np.random.random() == expected
    np.testing.assert_array_equal(raw.reset(seed=3), a)
    assert not np.array_equal(raw.reset(seed=4), a)
    raw.close()


def test_check_env_specs_and_episode():
    env = make_lane_env("rd-open-drawer", seed=0)
    check_env_specs(env)
    T = get_task("rd-open-drawer").episode_length
    td = env.rollout(T + 5)
    assert td.shape == (T,) and td["next", "truncated"][-1].item()
    assert not td["next", "done"][:-1].any()
    score = td["next", "score"][-1].item()
    assert score in (0.0, 1.0) and score == td["next", "success"][-1].item()
    env.close()


def test_same_seed_same_episode(same_seed_same_episode):
    same_seed_same_episode("rd-push-blue", steps=3, seeds=(1, 1))


@pytest.mark.slow
@pytest.mark.parametrize("task", RD_TASKS)
def test_all_tasks_full_stack(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    td = env.rollout(spec.episode_length + 5)
    assert td.shape == (spec.episode_length,)
    assert 0.0 <= td["next", "score"][-1].item() <= 1.0
    env.close()
