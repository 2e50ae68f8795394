"""The 21 stock DeepMind Control Suite tasks through the full multitask stack."""

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

pytest.importorskip("dm_control")

from torchrl_newt.envs import RawTaskEnv, build_raw_task, get_task, list_tasks, make_env, make_lane_env  # noqa: E402
from torchrl_newt.envs.domains.dmcontrol import DMControlRawTask  # noqa: E402

pytestmark = pytest.mark.dmc

DMC_TASKS = list_tasks("dmcontrol")


def _dm_obs(time_step):
    return np.concatenate([np.ravel(v) for v in time_step.observation.values()]).astype(np.float32)


def test_raw_task_matches_dm_control_stepping():
    from dm_control import suite

    ref = suite.load("walker", "walk", task_kwargs={"random": 5, "time_limit": float("inf")})
    raw = build_raw_task("walker-walk", seed=5)
    np.testing.assert_array_equal(raw.reset(), _dm_obs(ref.reset()))
    spec = ref.action_spec()
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, raw.action_dim)
        scaled = spec.minimum + (action + 1) / 2 * (spec.maximum - spec.minimum)
        first, last = ref.step(scaled), ref.step(scaled)  # action repeat 2
        obs, raw_reward, info = raw.step(action)
        np.testing.assert_allclose(obs, _dm_obs(last), atol=1e-6)
        assert raw_reward == pytest.approx(first.reward + last.reward)
        assert info == {}


def test_raw_task_rescales_and_reports_success():
    from dm_control import suite

    env = suite.load("cartpole", "swingup", task_kwargs={"random": 0})
    raw = DMControlRawTask(env, action_repeat=3, success_fn=lambda e: e.physics.data.time > 0.0)
    raw.reset()
    _, reward, info = raw.step(np.array([2.0]))  # clipped to 1 -> max force
    assert env.physics.data.ctrl[0] == pytest.approx(env.action_spec().maximum[0])
    assert info == {"success": 1.0} and 0.0 <= reward <= 3.0
    raw.step(np.array([-1.0]))
    assert env.physics.data.ctrl[0] == pytest.approx(env.action_spec().minimum[0])
    with pytest.raises(ValueError):
        DMControlRawTask(env, action_repeat=0)


@pytest.mark.parametrize("task", ["cartpole-swingup", "cheetah-run", "finger-spin"])
def test_check_env_specs(task):
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", DMC_TASKS)
def test_check_env_specs_all(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    assert env.base_env.obs_dim == spec.obs_dim and env.base_env.action_dim == spec.action_dim
    td = env.rollout(3)
    assert td["action_mask"][0].sum().item() == spec.action_dim
    assert (td["observation"][:, spec.obs_dim:] == 0).all()
    env.close()


def test_random_episode_truncates_at_episode_length():
    env = make_lane_env("cartpole-swingup", seed=1)
    T = get_task("cartpole-swingup").episode_length
    td = env.rollout(T + 10)  # stops at the first done
    assert td.shape == (T,)
    assert td["next", "truncated"][-1].item() and td["next", "done"][-1].item()
    assert not td["next", "done"][:-1].any() and not td["next", "terminated"].any()
    score = td["next", "score"][-1].item()
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(td["next", "reward"].sum().item() / 1000.0, rel=1e-4)
    env.close()


def test_same_seed_same_episode():
    def run(seed):
        env = make_lane_env("reacher-easy", seed=seed)
        torch.manual_seed(0)
        td = env.rollout(5)
        env.close()
        return td

    a, b, c = run(3), run(3), run(4)
    torch.testing.assert_close(a["observation"], b["observation"])
    torch.testing.assert_close(a["next", "reward"], b["next", "reward"])
    assert not torch.equal(a["observation"][0], c["observation"][0])


def test_reseed_on_reset_reproduces_episode():
    env = RawTaskEnv("walker-walk")
    env.set_seed(7)
    first = env.reset()["observation"]
    env.rollout(4)
    env.set_seed(7)
    torch.testing.assert_close(env.reset()["observation"], first)
    env.close()


def test_render_headless_frame():
    env = RawTaskEnv("cartpole-swingup", from_pixels=True)
    frame = env.reset()["pixels"]
    assert frame.shape == (224, 224, 3) and frame.dtype == torch.uint8
    assert frame.float().std() > 1.0  # an actual picture, not a blank buffer
    env.close()


_FOUR = ["cartpole-swingup", "reacher-easy", "hopper-stand", "walker-walk"]  # action dims 1, 2, 4, 6


def _check_batch(env, tasks):
    assert env.task_names == tasks
    check_env_specs(env)
    td = env.rollout(4)
    assert td.batch_size == (len(tasks), 4)
    assert td["observation"].shape[-1] == 128 and td["action"].shape[-1] == 16
    dims = [get_task(t).action_dim for t in tasks]
    assert td["action_mask"][:, 0].sum(-1).tolist() == dims
    assert td["task"][:, 0].tolist() == list(range(len(tasks)))
    for i, t in enumerate(tasks):
        assert (td["observation"][i, :, get_task(t).obs_dim:] == 0).all()


def test_make_env_serial_four_tasks():
    env = make_env(_FOUR, seed=0)
    _check_batch(env, _FOUR)
    env.close()


@pytest.mark.parametrize(
    "start_method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)]  # spawn re-imports torch: ~30 s here
)
def test_make_env_parallel_two_lanes(start_method):
    tasks = ["cartpole-swingup", "walker-walk"]
    env = make_env(tasks, parallel=True, seed=0, mp_start_method=start_method)
    try:
        _check_batch(env, tasks)
    finally:
        env.close()


def test_make_env_unknown_task_fails_before_spawning():
    with pytest.raises(KeyError, match="walker-walk"):
        make_env(["cartpole-swingup", "walker-wakl"], parallel=True)
