"""Misuse gives one readable error naming the problem (not a raw traceback, not silent acceptance)."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from torchrl_newt.envs import MultitaskVecEnv, make_env
from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner

pytestmark = pytest.mark.filterwarnings("ignore:TDMPC2Planner. no warm-start state")


def _small_planner(wm: NewtWorldModel, **kwargs) -> TDMPC2Planner:
    return TDMPC2Planner(wm, num_samples=16, num_elites=4, num_pi_trajs=2, iterations=1, **kwargs)


@pytest.mark.parametrize("backend", ["vector", "transforms"])
def test_make_env_same_task_twice(backend):
    with pytest.raises(ValueError, match=r"'cartpole-balance' given more than once"):
        make_env(["cartpole-balance", "walker-stand", "cartpole-balance"], backend=backend)


@pytest.mark.parametrize("discount", [0.0, -0.5, 1.5, float("nan"), torch.tensor([0.99, 1.2])])
def test_planner_discount_outside_unit_interval(discount):
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S", num_tasks=2)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        _small_planner(wm, discount=discount)


def test_planner_discount_one_is_allowed():
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S")
    assert float(_small_planner(wm, discount=1.0).discount) == 1.0


def test_planner_per_task_discount_length():
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S", num_tasks=3)
    with pytest.raises(ValueError, match="per-task discount has 2 entries but the world model has 3 tasks"):
        _small_planner(wm, discount=torch.tensor([0.99, 0.95]))
    _small_planner(wm, discount=torch.tensor([0.99, 0.95, 0.9]))  # the right length is fine


@pytest.mark.parametrize("table", ["learned", "frozen"])
def test_task_id_outside_the_model(table):
    kwargs = {"num_tasks": 3} if table == "learned" else {"task_embeddings": torch.randn(3, 8)}
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S", **kwargs)
    with pytest.raises(ValueError, match=r"task id 3 is out of range: this world model has 3 tasks \(ids 0\.\.2\)"):
        wm.encode(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="task id -1 is out of range"):
        wm.encode(torch.randn(2, 4), torch.tensor([-1, 0]))
    planner = _small_planner(wm, discount=torch.tensor([0.9, 0.9, 0.9]))
    td = TensorDict(observation=torch.randn(2, 4), task=torch.tensor([1, 5]), batch_size=[2])
    with pytest.raises(ValueError, match="task id 5 is out of range"):
        planner(td)


def test_action_mask_of_the_wrong_width():
    wm = NewtWorldModel(obs_dim=4, action_dim=3, size="S")
    z = wm.encode(torch.randn(2, 4))
    with pytest.raises(ValueError, match="action_mask has width 2, but the world model's action_dim is 3"):
        wm.pi(z, action_mask=torch.ones(2, 2))
    planner = _small_planner(wm)
    td = TensorDict(observation=torch.randn(2, 4), action_mask=torch.ones(2, 5, dtype=torch.bool), batch_size=[2])
    with pytest.raises(ValueError, match="action_mask has width 5, but the world model's action_dim is 3"):
        planner(td)


def test_planner_rejects_nan_observations():
    wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S")
    obs = torch.randn(3, 4)
    obs[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"observation contains NaN or inf \(env rows \[1\]\)"):
        _small_planner(wm)(TensorDict(observation=obs, batch_size=[3]))
    obs[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        _small_planner(wm).plan(obs)


def test_vec_env_step_rejects_action_of_wrong_shape():
    env = MultitaskVecEnv(["walker-stand"])
    try:
        td = env.reset()
        with pytest.raises(ValueError, match=r"expected an action of shape \[1, 16\].*got \[1, 1\]"):
            env.step(td.set("action", torch.ones(1, 1)))
        env.step(td.set("action", torch.zeros(1, 16)))  # the padded action still works
    finally:
        env.close()
