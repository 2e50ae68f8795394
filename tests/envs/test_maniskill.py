"""The 36 ManiSkill3 MMBench tasks through the raw-task API and the full stack.

ManiSkill needs a Vulkan driver even for state observations on CPU: run
``bash scripts/setup_vulkan.sh`` once. Tasks needing asset packs that are not downloaded (YCB
objects, xArm6, ANYmal-C) are checked to fail with the download command and skipped otherwise.
"""

import importlib.util
import json

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains import maniskill as ms

pytestmark = pytest.mark.maniskill

MS_TASKS = list_tasks("maniskill")
MS_HELD_OUT = [t for t in list_tasks("held-out") if get_task(t).base_domain == "maniskill"]
NEEDS_ASSETS = [t for t in MS_TASKS + MS_HELD_OUT if ms.required_assets(t)]
BUILTIN = [t for t in MS_TASKS if not ms.required_assets(t)]
HAVE_MANISKILL = importlib.util.find_spec("mani_skill") is not None and importlib.util.find_spec("sapien") is not None


@pytest.fixture(scope="module")
def simulator():
    """Skip unless ManiSkill imports and can create an environment (i.e. a Vulkan driver works)."""
    if not HAVE_MANISKILL:
        pytest.skip("mani_skill / sapien not installed (pip install torchrl_newt[maniskill])")
    pytest.importorskip("sapien")
    pytest.importorskip("mani_skill.envs")
    try:
        raw = build_raw_task("ms-cartpole-balance", seed=0)
    except RuntimeError as err:  # SAPIEN: "failed to find a rendering device"
        pytest.skip(f"ManiSkill cannot start (run scripts/setup_vulkan.sh for a CPU Vulkan driver): {err}")
    raw.close()


def test_task_lists():
    assert len(MS_TASKS) == 36
    assert len(BUILTIN) == 20 and len(NEEDS_ASSETS) == 27  # 13 YCB + 3 robot-asset soup tasks, 11 held-out
    assert ms.required_assets("ms-reach-xarm6") == ("xarm6",)


def test_configure_vulkan(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHRL_NEWT_VULKAN_DIR", str(tmp_path))
    monkeypatch.delenv("VK_ICD_FILENAMES", raising=False)
    monkeypatch.setattr(ms, "_gpu_vulkan_driver_present", lambda: False)
    assert ms.configure_vulkan() is None  # no driver unpacked yet
    icd = tmp_path / "lvp_icd.json"
    icd.write_text(json.dumps({"file_format_version": "1.0.0", "ICD": {"library_path": "x.so"}}))
    assert ms.configure_vulkan() == str(icd)
    import os

    assert os.environ["VK_ICD_FILENAMES"] == str(icd)
    monkeypatch.setenv("VK_ICD_FILENAMES", "/custom.json")
    assert ms.configure_vulkan() is None and os.environ["VK_ICD_FILENAMES"] == "/custom.json"
    monkeypatch.delenv("VK_ICD_FILENAMES")
    monkeypatch.setattr(ms, "_gpu_vulkan_driver_present", lambda: True)
    assert ms.configure_vulkan() is None  # a GPU driver wins


@pytest.mark.parametrize("task", ["ms-pick-apple", "ms-anymal-reach", "ms-push-can"])
def test_missing_assets_error_names_download_command(task, monkeypatch, tmp_path):
    if not HAVE_MANISKILL:
        pytest.skip("mani_skill not installed")
    monkeypatch.setenv("MS_ASSET_DIR", str(tmp_path))  # an empty asset folder
    with pytest.raises(ms.ManiSkillAssetError, match=r"python -m mani_skill\.utils\.download_asset"):
        build_raw_task(task)


@pytest.mark.parametrize("tasks", [["ms-push-cube", "ms-reach", "ms-pick-cube-so"], pytest.param(BUILTIN, marks=pytest.mark.slow)], ids=["sample", "all"])
def test_tasks_build_with_registry_dims(simulator, tasks):
    for task in tasks:
        spec = get_task(task)
        raw = build_raw_task(task, seed=0)
        obs = raw.reset()
        assert obs.shape == (spec.obs_dim,) and obs.dtype == np.float32
        obs, reward, info = raw.step(np.random.uniform(-1, 1, spec.action_dim))
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert ("success" in info) == spec.success_defined
        raw.close()


def test_custom_reach_env(simulator):
    raw = build_raw_task("ms-reach", seed=0)
    raw.reset(seed=0)
    base = raw.env.unwrapped
    obs, reward, info = raw.step(np.zeros(4))
    tcp_to_goal = (base.goal_site.pose.p - base.agent.tcp_pose.p)[0].numpy()
    np.testing.assert_allclose(obs[-3:], tcp_to_goal, atol=1e-5)  # obs ends with tcp_to_goal_pos
    d = np.linalg.norm(tcp_to_goal)
    assert info["success"] == float(d <= base.goal_thresh)
    assert 0.0 <= reward <= 2 * 2.0  # two sub-steps of a normalised reward in [0, 2]
    raw.close()


def test_sparse_cartpole_reward(simulator):
    raw = build_raw_task("ms-cartpole-balance-sparse", seed=0)
    raw.reset(seed=0)
    _, reward, info = raw.step(np.zeros(1))
    assert reward in (0.0, 1.0, 2.0) and info == {}
    raw.close()


def test_check_env_specs_and_episode(simulator):
    env = make_lane_env("ms-push-cube", seed=0)
    check_env_specs(env)
    T = get_task("ms-push-cube").episode_length
    td = env.rollout(T + 5)
    assert td.shape == (T,) and td["next", "truncated"][-1].item()
    assert not td["next", "done"][:-1].any()
    score = td["next", "score"][-1].item()
    assert score in (0.0, 1.0) and score == td["next", "success"][-1].item()
    env.close()


def test_return_scored_episode(simulator):
    env = make_lane_env("ms-hopper-stand", seed=0)
    td = env.rollout(300)
    assert td.shape == (250,)
    ret = td["next", "reward"].sum().item()
    assert td["next", "score"][-1].item() == pytest.approx(ret / 600.0, rel=1e-4)  # R / 600, no clip
    env.close()


def test_same_seed_same_episode(simulator, same_seed_same_episode):
    same_seed_same_episode("ms-pick-cube", steps=4, seeds=(1, 1, 2), compare_first_only=True)


@pytest.mark.slow  # the first lavapipe render compiles shaders (~15 s on 2 CPU cores)
def test_render(simulator):
    raw = build_raw_task("ms-pick-cube", seed=0)
    raw.reset()
    frame = raw.render()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8 and frame.std() > 1.0
    assert raw.render(64, 32).shape == (32, 64, 3)
    raw.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", MS_TASKS + MS_HELD_OUT)
def test_all_tasks_full_stack(simulator, task):
    spec = get_task(task)
    if ms.missing_assets(task):
        pytest.skip(f"{task} needs ManiSkill assets {ms.missing_assets(task)} (not downloaded)")
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    td = env.rollout(spec.episode_length + 5)
    assert td.shape == (spec.episode_length,)
    assert 0.0 <= td["next", "score"][-1].item() <= 1.0
    env.close()
