"""Tests of demonstration files and of adding demos to replay."""

from __future__ import annotations

import os

import pytest
import torch

from torchrl_newt.data import (
    MixedReplayBuffer,
    MultitaskReplayBuffer,
    add_demos,
    demos_to_transitions,
    load_demos,
    save_demos,
)
from torchrl_newt.data import demos as demos_module

TASKS = ["walker-walk", "cheetah-run", "mw-reach", "hopper-hop"]


def make_episode(T: int, task: int, act_dim: int = 6) -> dict:
    obs = torch.zeros(T + 1, 128)
    obs[:, 0] = torch.arange(T + 1)  # step index
    obs[:, 1] = task
    obs[:, 2:10] = torch.randn(T + 1, 8)
    mask = torch.arange(16) < act_dim
    return {
        "observation": obs,
        "action": (torch.rand(T, 16) * 2 - 1) * mask,
        "reward": torch.rand(T),
        "action_mask": mask,
        "task": task,
    }


def test_round_trip_and_remap(tmp_path):
    episodes = [make_episode(7, 1), make_episode(4, 2), make_episode(9, 1)]
    path = save_demos(tmp_path / "demos.pt", episodes, TASKS)
    raw = torch.load(path, weights_only=True)
    assert raw["tasks"] == ["cheetah-run", "mw-reach"]  # only the tasks used, by name
    assert raw["observation"].shape == (3, 10, 128) and raw["action"].shape == (3, 9, 16)
    new_tasks = ["mw-reach", "something-else", "cheetah-run"]
    demos = load_demos(path, new_tasks)
    assert demos.shape == (3,)
    assert demos["task"].tolist() == [2, 0, 2]
    assert demos["length"].tolist() == [7, 4, 9]
    for i, ep in enumerate(episodes):
        T = demos["length"][i]
        assert torch.equal(demos["observation"][i, : T + 1], ep["observation"])
        assert torch.equal(demos["action"][i, :T], ep["action"])
        assert torch.equal(demos["reward"][i, :T], ep["reward"])
        assert torch.equal(demos["action_mask"][i], ep["action_mask"])
        assert (demos["observation"][i, T + 1 :] == 0).all() and (demos["action"][i, T:] == 0).all()
    # a padded TensorDict round-trips too, and several files concatenate
    path2 = save_demos(tmp_path / "again.pt", demos, new_tasks)
    both = load_demos([path, path2], new_tasks)
    assert both.shape == (6,) and torch.equal(both[3:]["observation"], demos["observation"])
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_unknown_task_is_a_clear_error(tmp_path):
    path = save_demos(tmp_path / "d.pt", [make_episode(3, 3)], TASKS)
    with pytest.raises(KeyError, match="hopper-hop"):
        load_demos(path, TASKS[:3])


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="index"):
        save_demos(tmp_path / "d.pt", [make_episode(3, 7)], TASKS)
    bad = make_episode(3, 0)
    bad["observation"] = bad["observation"][:3]
    with pytest.raises(ValueError, match="Episode 0"):
        save_demos(tmp_path / "d.pt", [bad], TASKS)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a"):
        load_demos(tmp_path / "other.pt", TASKS)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = save_demos(tmp_path / "d.pt", [make_episode(3, 0)], TASKS)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(demos_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_demos(path, [make_episode(5, 1)], TASKS)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["d.pt"]


def test_transitions_layout_and_padding():
    demos = load_demos_in_memory([5, 3, 6])
    tr = demos_to_transitions(demos, num_lanes=3)
    assert tr.shape == (3, 5)  # 14 steps -> 3 lanes of 5, one padding step
    traj = tr["collector", "traj_ids"].reshape(-1)
    assert traj[-1] == -1 and (traj[:-1] >= 0).all()
    flat = tr.reshape(-1)[:14]
    assert torch.equal(flat["observation"][:, 0], flat["step_count"].squeeze(-1).float())
    assert torch.equal(flat["next", "observation"][:, 0], flat["observation"][:, 0] + 1)
    assert flat["next", "done"].squeeze(-1).nonzero().squeeze(-1).tolist() == [4, 7, 13]
    assert flat["is_init"].squeeze(-1).nonzero().squeeze(-1).tolist() == [0, 5, 8]


def load_demos_in_memory(lengths):
    from torchrl_newt.data.demos import _pad_episodes

    return _pad_episodes([make_episode(T, i % 2) for i, T in enumerate(lengths)])


@pytest.mark.parametrize("lanes", [1, 3])
def test_add_demos_then_sample_mixture(tmp_path, lanes):
    lengths = [12, 5, 30, 3, 8]
    path = save_demos(tmp_path / "d.pt", [make_episode(T, i % 2) for i, T in enumerate(lengths)], TASKS)
    demos = load_demos(path, TASKS)
    rb = MultitaskReplayBuffer(300, slice_len=4, num_lanes=lanes, mode="balanced")
    add_demos(rb, demos)
    expected = sum(max(0, T - 3) for T in lengths)
    if lanes == 1:
        assert rb.num_valid_slices() == expected
    else:  # episodes cut at lane ends lose the starts whose window crosses the cut
        assert 0 < rb.num_valid_slices() < expected
    batch = rb.sample(512)
    step = batch["observation"][..., 0]
    assert (step == step[:, :1] + torch.arange(4)).all()
    assert (batch["collector", "traj_ids"] == batch["collector", "traj_ids"][:, :1]).all()
    assert torch.equal(batch["next", "observation"][..., 0], step + 1)
    freq = torch.bincount(batch["task"][:, 0], minlength=2).float() / 512
    assert torch.allclose(freq, torch.full((2,), 0.5), atol=0.08)
    online = MultitaskReplayBuffer(100, slice_len=4)
    online.extend(demos_to_transitions(demos[:1]))
    mixed = MixedReplayBuffer(online, rb, demo_fraction=0.5)
    assert mixed.sample(32)["is_demo"][:, 0].sum() == 16


def test_add_demos_too_large_and_twice():
    demos = load_demos_in_memory([10, 10])
    with pytest.raises(ValueError, match="capacity"):
        add_demos(MultitaskReplayBuffer(15, slice_len=4), demos)
    rb = MultitaskReplayBuffer(100, slice_len=4)
    add_demos(rb, demos)
    add_demos(rb, demos)  # trajectory ids stay unique across calls
    assert rb.num_valid_slices() == 4 * 7
    assert rb[:]["collector", "traj_ids"].unique().numel() == 4
