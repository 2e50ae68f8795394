"""TaskSet: a task list resolved once, and the pieces that take it without resolving it again."""

from __future__ import annotations

import pytest
import torch

from torchrl_newt.envs import TaskSet, make_env, task_tensors
from torchrl_newt.envs import vector as vector_module
from torchrl_newt.envs.registry import UnknownTaskError


def test_facts_follow_the_registry_by_hand():
    # walker-walk: 6 actions, 500 steps; cartpole-swingup: 1 action, 500 steps; finger-spin: 2 actions
    tasks = TaskSet.resolve(["walker-walk", "cartpole-swingup", "finger-spin"], obs_pad=64, action_pad=8)
    assert tasks.names == ["walker-walk", "cartpole-swingup", "finger-spin"]
    assert tasks.action_dim.tolist() == [6, 1, 2]
    assert tasks.episode_length.tolist() == [500, 500, 500] and tasks.max_episode_length == 500
    assert torch.allclose(tasks.discount, torch.tensor([0.99, 0.99, 0.99]))
    assert tasks.action_mask.tolist()[1] == [True] + [False] * 7
    assert tasks.action_mask.sum(-1).tolist() == [6, 1, 2]
    assert tasks.index("finger-spin") == 2 and "cartpole-swingup" in tasks and "hopper-hop" not in tasks
    assert [s.name for s in tasks] == tasks.names  # iterates specs
    assert tasks[1:].names == ["cartpole-swingup", "finger-spin"]
    assert tasks.subset(["finger-spin", "walker-walk"]).names == ["finger-spin", "walker-walk"]
    assert tasks.subset(["finger-spin"]).action_pad == 8
    td = task_tensors(tasks, action_pad=8)
    assert td["action_dim"].tolist() == [6, 1, 2] and td.batch_size == torch.Size([3])


def test_bad_lists_fail_once_with_a_clear_error():
    with pytest.raises(UnknownTaskError, match="walker-wlak"):
        TaskSet.resolve(["walker-wlak"])
    with pytest.raises(ValueError, match="more than once"):
        TaskSet.resolve(["walker-walk", "walker-walk"])
    with pytest.raises(ValueError, match="action_dim=6 > action_pad=4"):
        TaskSet.resolve(["walker-walk"], action_pad=4)
    with pytest.raises(ValueError, match="at least one task"):
        TaskSet.resolve([])
    with pytest.raises(ValueError, match="not in this TaskSet"):
        TaskSet.resolve(["walker-walk"]).index("cartpole-swingup")
    with pytest.raises(TypeError, match="TaskSet.resolve"):
        TaskSet(["walker-walk"])


def test_make_env_does_not_resolve_a_taskset_again(monkeypatch):
    tasks = TaskSet.resolve(["cartpole-balance", "finger-spin"])

    def fail(*args, **kwargs):
        raise AssertionError("the task list was resolved or checked again")

    monkeypatch.setattr(vector_module, "get_task", fail)
    monkeypatch.setattr(vector_module, "require_installed", fail)
    env = make_env(tasks, seed=0)
    try:
        td = env.reset()
        assert env.task_names == ["cartpole-balance", "finger-spin"]
        assert td["action_mask"].sum(-1).tolist() == [1, 2]
    finally:
        env.close()
