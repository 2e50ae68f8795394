"""The masked multitask stack on a toy numpy task (no simulator needed)."""

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import Compose, RewardSum, StepCounter, TransformedEnv
from torchrl.envs.utils import check_env_specs

from torchrl_newt.envs import (
    EpisodeScore,
    PadAction,
    PadObservation,
    RawTaskEnv,
    ScoreRule,
    TaskId,
    get_task,
    make_env,
    make_lane_env,
    mask_from_dims,
    register_domain,
    register_task,
    task_tensors,
)


class CounterTask:
    """Observation = [t, t+1, ...]; reward 1 per step; records the last action; success after 3 steps."""

    def __init__(self, obs_dim, action_dim):
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.t = 0
        self.last_action = None

    def _obs(self):
        return np.arange(self.t, self.t + self.obs_dim, dtype=np.float32) + 1.0

    def reset(self, seed=None):
        self.t = 0
        return self._obs()

    def step(self, action):
        self.last_action = np.array(action, copy=True)
        self.t += 1
        return self._obs(), 1.0, {"success": self.t >= 3}

    def render(self, width=224, height=224):
        return np.full((height, width, 3), self.t % 256, np.uint8)

    def close(self):
        pass


register_domain("test-counter", lambda spec, **kw: CounterTask(spec.obs_dim, spec.action_dim), extra="test")
for _name, _obs, _act, _T, _score, _succ in [
    ("test-counter-a", 3, 2, 5, ScoreRule("return_clip", 0.0, 10.0), False),
    ("test-counter-a2", 3, 2, 5, ScoreRule("return_clip", 0.0, 10.0), False),
    ("test-counter-b", 7, 5, 4, ScoreRule("success"), True),
    ("test-counter-wide", 130, 1, 5, ScoreRule("return", 0.0, 5.0), False),
    ("test-counter-many-actions", 3, 17, 5, ScoreRule("return", 0.0, 5.0), False),
]:
    register_task(
        _name, domain="test-counter", instruction="Count", embodiment="A counter", obs_dim=_obs,
        action_dim=_act, episode_length=_T, score=_score, success_defined=_succ, overwrite=True,
    )


def test_padding_is_exact_zeros():
    env = make_lane_env("test-counter-a", obs_pad=8, action_pad=4)
    td = env.reset()
    assert td["observation"].shape == (8,)
    torch.testing.assert_close(td["observation"][:3], torch.tensor([1.0, 2.0, 3.0]))
    assert (td["observation"][3:] == 0).all()
    td = env.rollout(3)
    assert (td["next", "observation"][:, 3:] == 0).all()
    torch.testing.assert_close(td["next", "observation"][:, 0], torch.tensor([2.0, 3.0, 4.0]))


def test_masked_action_dims_are_dropped():
    env = make_lane_env("test-counter-a", obs_pad=8, action_pad=4)
    td = env.reset()
    assert td["action_mask"].tolist() == [True, True, False, False]
    td["action"] = torch.tensor([0.25, -0.5, 0.9, -0.9])
    td = env.step(td)
    raw = env.base_env.raw
    np.testing.assert_array_equal(raw.last_action, np.array([0.25, -0.5], np.float32))
    # the caller's tensordict keeps the padded action
    assert td["action"].shape == (4,)
    assert td["next", "action_mask"].tolist() == [True, True, False, False]
    assert env.full_action_spec["action"].shape == (4,)


def test_score_at_episode_end_and_truncation():
    env = make_lane_env("test-counter-a", obs_pad=8, action_pad=4)
    td = env.rollout(12, break_when_any_done=False)
    done = td["next", "done"].squeeze(-1)
    assert done.nonzero().squeeze(-1).tolist() == [4, 9]  # T = 5, auto-reset after each end
    assert not td["next", "terminated"].any()
    assert td["next", "truncated"].squeeze(-1).tolist() == done.tolist()
    assert td["step_count"].squeeze(-1).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    ep = td["next", "episode_reward"].squeeze(-1)
    assert ep[4] == 5.0 and ep[9] == 5.0 and ep[5] == 1.0
    score = td["next", "score"].squeeze(-1)
    assert score[4].item() == pytest.approx(0.5)  # return_clip(5, 0, 10)
    assert (td["next", "success"] == 0).all()  # success undefined for this task -> 0


def test_success_score():
    env = make_lane_env("test-counter-b", obs_pad=8, action_pad=8)
    td = env.rollout(4)
    assert td["next", "done"][-1].item()
    assert td["next", "success"].squeeze(-1).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert td["next", "score"][-1].item() == 1.0
    assert td["next", "success"].dtype == torch.float32


def test_reset_writes_zero_score_and_task_id():
    env = make_lane_env("test-counter-a", task_index=3, num_tasks=5, obs_pad=8, action_pad=4)
    td = env.reset()
    assert td["task"].item() == 3 and td["task"].dtype == torch.int64 and td["task"].shape == ()
    assert td["score"].item() == 0.0 and td["success"].item() == 0.0 and td["episode_reward"].item() == 0.0


def test_too_large_observation_names_task():
    with pytest.raises(ValueError, match="test-counter-wide"):
        make_lane_env("test-counter-wide")
    env = TransformedEnv(RawTaskEnv("test-counter-wide"), PadObservation(pad_dim=128))
    with pytest.raises(ValueError, match="test-counter-wide.*130"):
        env.observation_spec
    with pytest.raises(ValueError, match="pad_dim=4"):
        PadObservation(pad_dim=4)(TensorDict(observation=torch.ones(5), batch_size=[]))


def test_too_many_actions_names_task():
    with pytest.raises(ValueError, match="test-counter-many-actions"):
        make_env(["test-counter-a", "test-counter-many-actions"])
    env = TransformedEnv(RawTaskEnv("test-counter-many-actions"), PadAction(pad_dim=16))
    with pytest.raises(ValueError, match="test-counter-many-actions.*17"):
        env.action_spec


def test_empty_action_mask_errors():
    with pytest.raises(ValueError, match="at least one valid dim"):
        mask_from_dims([2, 0], pad_dim=4)
    with pytest.raises(ValueError, match="no action dims"):
        PadAction(pad_dim=4, action_dim=0)
    with pytest.raises(ValueError, match="exceed"):
        mask_from_dims(5, pad_dim=4)


def test_mask_from_dims_and_task_tensors():
    assert mask_from_dims(torch.tensor([1, 3]), 4).tolist() == [[True, False, False, False], [True, True, True, False]]
    td = task_tensors(["test-counter-a", "test-counter-b", "walker-walk"], action_pad=8)
    assert td.batch_size == (3,)
    assert td["action_dim"].tolist() == [2, 5, 6]
    assert td["episode_length"].tolist() == [5, 4, 500]
    assert td["action_mask"].sum(-1).tolist() == [2, 5, 6]
    torch.testing.assert_close(td["discount"][2], torch.tensor(get_task("walker-walk").discount))


def test_transforms_compose_with_custom_keys():
    base = RawTaskEnv("test-counter-a", observation_key="state")
    env = TransformedEnv(
        base,
        Compose(
            StepCounter(max_steps=5),
            RewardSum(in_keys=["reward"], out_keys=["ret"]),
            PadObservation(pad_dim=6, in_keys=["state"], out_keys=["state_padded"]),
            PadAction(pad_dim=3, mask_key="mask"),
            TaskId(1, out_key="tid"),
            EpisodeScore(ScoreRule("return", 0.0, 5.0), return_key="ret", score_key="perf"),
        ),
    )
    check_env_specs(env)
    td = env.rollout(5)
    assert td["state"].shape == (5, 3) and td["state_padded"].shape == (5, 6)
    assert td["mask"][0].tolist() == [True, True, False]
    assert td["tid"].unique().tolist() == [1]
    assert td["next", "perf"][-1].item() == pytest.approx(1.0)


def test_make_env_toy_batch():
    env = make_env(["test-counter-b", "test-counter-a", "test-counter-a2"], obs_pad=8, action_pad=8, seed=0)
    assert env.task_names == ["test-counter-b", "test-counter-a", "test-counter-a2"]
    check_env_specs(env)
    td = env.rollout(6, break_when_any_done=False)
    assert td.batch_size == (3, 6)
    assert td["task"][:, 0].tolist() == [0, 1, 2]
    assert td["action_mask"][:, 0].sum(-1).tolist() == [5, 2, 2]
    assert td["is_init"][:, 0].all()
    # lane 0 (T=4) restarts at step 4, the others (T=5) at step 5
    assert td["next", "done"][0, :, 0].nonzero().squeeze(-1).tolist() == [3]
    assert td["next", "done"][1, :, 0].nonzero().squeeze(-1).tolist() == [4]
    assert td["is_init"][0, 4].item() and not td["is_init"][1, 4].item()
    env.close()


def test_raw_task_env_pixels_and_seed_plumbing():
    env = RawTaskEnv("test-counter-a", from_pixels=True, frame_size=(16, 8))
    td = env.reset()
    assert td["pixels"].shape == (16, 8, 3) and td["pixels"].dtype == torch.uint8
    td["action"] = torch.zeros(2)
    assert env.step(td)["next", "pixels"].float().mean().item() == 1.0
    with pytest.raises(TypeError, match="task name"):
        RawTaskEnv(CounterTask(1, 1), seed=3)


def test_task_index_map_lives_with_the_env_transforms():
    from torchrl_newt.envs import TaskIndexMap
    from torchrl_newt.envs.transforms import TaskIndexMap as in_transforms
    from torchrl_newt.launch import TaskIndexMap as old_path
    from torchrl_newt.launch.envs import TaskIndexMap as old_module

    assert TaskIndexMap is in_transforms is old_path is old_module
    t = TaskIndexMap([2, 0], num_tasks=3)
    assert t(TensorDict(task=torch.tensor([0, 1, 1]), batch_size=[3]))["task"].tolist() == [2, 0, 0]
    env = make_env(["cartpole-balance", "walker-stand"], seed=0).append_transform(TaskIndexMap([2, 0], num_tasks=3))
    try:
        check_env_specs(env)
        assert env.observation_spec["task"].space.n == 3
        assert env.rollout(2)["task"][:, 0].tolist() == [2, 0]
    finally:
        env.close()
    with pytest.raises(ValueError, match="out of range"):
        TaskIndexMap([0, 3], num_tasks=3)
