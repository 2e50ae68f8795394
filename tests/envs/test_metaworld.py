"""The 49 Meta-World MMBench tasks (v3 environments) through the raw-task API and the full stack."""

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

pytest.importorskip("metaworld")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains.metaworld import MetaWorldRawTask, v3_env_name

pytestmark = pytest.mark.metaworld

MW_TASKS = list_tasks("metaworld")


def test_task_list():
    assert len(MW_TASKS) == 49
    assert all(get_task(t).success_defined and get_task(t).score.kind == "success" for t in MW_TASKS)


@pytest.mark.parametrize("tasks", [MW_TASKS[::8], pytest.param(MW_TASKS, marks=pytest.mark.slow)], ids=["sample", "all"])
def test_tasks_build_with_registry_dims(tasks):
    for task in tasks:
        raw = build_raw_task(task, seed=0)  # build_raw_task checks obs_dim/action_dim
        obs = raw.reset()
        assert obs.shape == (39,) and obs.dtype == np.float32
        obs, reward, info = raw.step(np.zeros(4, np.float32))
        assert np.isfinite(reward) and set(info) == {"success"}
        raw.close()


def test_raw_task_matches_metaworld_stepping():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as ENVS

    raw = build_raw_task("mw-push", seed=3)
    ref = ENVS[v3_env_name("push-v2-goal-observable")](seed=3)
    ref._freeze_rand_vec, ref.seeded_rand_vec = False, True
    ref.seed(11)
    ref.reset()
    ref_obs, *_ = ref.step(np.zeros(4, np.float32))  # Newt's extra zero-action step after reset
    np.testing.assert_allclose(raw.reset(seed=11), ref_obs.astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        _, r1, *_ = ref.step(action)
        o2, r2, _, _, info = ref.step(action)
        obs, reward, raw_info = raw.step(action)
        np.testing.assert_allclose(obs, o2.astype(np.float32), atol=1e-6)
        assert reward == pytest.approx(r1 + r2)
        assert raw_info == {"success": float(info["success"])}


def test_positions_rerandomised_and_seeded():
    raw = build_raw_task("mw-reach", seed=0)
    goal_a = raw.reset(seed=1)[-3:]
    goal_b = raw.reset()[-3:]
    assert not np.allclose(goal_a, goal_b)  # new goal each episode (Newt: _freeze_rand_vec=False)
    np.testing.assert_array_equal(raw.reset(seed=1)[-3:], goal_a)
    raw.close()


def test_long_episode_past_metaworld_limit():
    raw = build_raw_task("mw-reach", seed=0)
    raw.reset()
    for _ in range(260):  # 520 simulator steps > max_path_length = 500
        raw.step(np.zeros(4, np.float32))
    raw.close()


def test_check_env_specs_and_episode():
    env = make_lane_env("mw-drawer-close", seed=0)
    check_env_specs(env)
    T = get_task("mw-drawer-close").episode_length
    td = env.rollout(T + 10)
    assert td.shape == (T,)
    assert td["next", "truncated"][-1].item() and not td["next", "done"][:-1].any()
    score = td["next", "score"][-1].item()
    assert score in (0.0, 1.0) and score == td["next", "success"][-1].item()
    env.close()


def test_same_seed_same_episode(same_seed_same_episode):
    same_seed_same_episode("mw-button-press", steps=6, seeds=(2, 2, 3), compare_first_only=True)


def test_render():
    raw = build_raw_task("mw-reach", seed=0)
    raw.reset()
    frame = raw.render(96, 64)
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8 and frame.std() > 1.0
    raw.close()
    with pytest.raises(ValueError):
        MetaWorldRawTask(None, action_repeat=0)


@pytest.mark.slow
@pytest.mark.parametrize("task", MW_TASKS)
def test_all_tasks_full_stack(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    td = env.rollout(spec.episode_length + 5)
    assert td.shape == (spec.episode_length,)
    assert 0.0 <= td["next", "score"][-1].item() <= 1.0
    env.close()
