"""Tests of demonstration files and of adding demos to replay."""

from __future__ import annotations

import os

import pytest
import torch
from tensordict import TensorDict

from torchrl_newt.data import (
    DemoTaskError,
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


# ------------------------------------------------------------------ Newt's per-task files
NAN = float("nan")


def newt_file(path, lengths, act_dim=6, ids=None, extra=True, seed=0):
    """A Newt demo file written by hand: T + 1 rows per episode, NaN action/reward in row 0.

    Row values encode (episode, step): obs[:, 0] = 100 * e + t, action[:, 0] = e + t / 10,
    reward = 10 * e + t (steps t >= 1; row t holds what led to o_t).
    """
    g = torch.Generator().manual_seed(seed)
    ids = list(range(len(lengths))) if ids is None else ids
    obs, act, rew, epi = [], [], [], []
    for e, T in zip(ids, lengths):
        t = torch.arange(T + 1, dtype=torch.float32)
        o = torch.zeros(T + 1, 128)
        o[:, 0] = 100 * e + t
        o[:, 1:5] = torch.randn(T + 1, 4, generator=g)
        a = torch.zeros(T + 1, 16)
        a[:, :act_dim] = torch.rand(T + 1, act_dim, generator=g) * 2 - 1
        a[:, 0] = e + t / 10
        r = 10 * e + t
        a[0], r[0] = NAN, NAN
        obs.append(o), act.append(a), rew.append(r), epi.append(torch.full((T + 1,), e, dtype=torch.long))
    n = sum(T + 1 for T in lengths)
    data = {"obs": torch.cat(obs), "action": torch.cat(act), "reward": torch.cat(rew), "episode": torch.cat(epi)}
    if extra:
        data.update(value=torch.randn(n, generator=g), terminated=torch.zeros(n, dtype=torch.bool),
                    feat=torch.randn(n, 8, generator=g))
    torch.save(TensorDict(data, batch_size=[n]), path)
    return data


def test_load_newt_file(tmp_path):
    # episode 1 stored before episode 0: episodes come back in id order
    raw = newt_file(tmp_path / "walker-walk.pt", [4, 2], ids=[1, 0])
    demos = load_demos(tmp_path / "walker-walk.pt", ["cheetah-run", "walker-walk"])
    assert demos.shape == (2,) and demos["task"].tolist() == [1, 1]
    assert demos["length"].tolist() == [2, 4]
    assert demos["observation"].shape == (2, 5, 128) and demos["action"].shape == (2, 4, 16)
    assert demos["observation"][0, :3, 0].tolist() == [0.0, 1.0, 2.0]  # episode 0: o_0 .. o_2
    assert demos["observation"][1, :, 0].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert torch.allclose(demos["action"][1, :, 0], torch.tensor([1.1, 1.2, 1.3, 1.4]))  # a_t led to o_{t+1}
    assert torch.allclose(demos["action"][0, :2, 0], torch.tensor([0.1, 0.2]))
    assert demos["reward"][1].tolist() == [11.0, 12.0, 13.0, 14.0] and demos["reward"][0].tolist() == [1.0, 2.0, 0.0, 0.0]
    assert torch.equal(demos["action"][1], raw["action"][1:5])  # rows 1..4 of the file
    assert (demos["observation"][0, 3:] == 0).all() and (demos["action"][0, 2:] == 0).all()  # padding
    assert demos["action_mask"].tolist() == [[i < 6 for i in range(16)]] * 2  # walker-walk: 6 dims
    assert set(demos.keys()) == {"observation", "action", "reward", "action_mask", "task", "length"}
    # and it mixes with our own format
    ours = save_demos(tmp_path / "ours.pt", [make_episode(7, 0)], ["cheetah-run"])
    both = load_demos([ours, tmp_path / "walker-walk.pt"], ["cheetah-run", "walker-walk"])
    assert both["task"].tolist() == [0, 1, 1] and both["action"].shape == (3, 7, 16)


def test_newt_round_trip(tmp_path):
    episodes = [make_episode(5, 1), make_episode(3, 0, act_dim=1), make_episode(6, 1)]
    tasks = ["cartpole-swingup", "walker-walk"]  # 1 and 6 action dims, as the episodes' masks
    paths = save_demos(tmp_path / "newt", episodes, tasks, format="newt")
    assert [p.name for p in paths] == ["cartpole-swingup.pt", "walker-walk.pt"]
    assert not [f for f in os.listdir(tmp_path / "newt") if f.endswith(".tmp")]
    raw = torch.load(paths[1], weights_only=False)  # what Newt's train.py reads
    assert isinstance(raw, TensorDict) and raw.shape == (6 + 7,)
    assert raw["episode"].tolist() == [0] * 6 + [1] * 7 and raw["episode"].max().item() + 1 == 2
    assert raw["action"][0].isnan().all() and raw["reward"][6].isnan() and not raw["terminated"].any()
    assert torch.equal(raw["action"][1:6], episodes[0]["action"]) and torch.equal(raw["reward"][7:], episodes[2]["reward"])
    assert torch.equal(raw["obs"][6:], episodes[2]["observation"])
    demos = load_demos(paths, tasks)
    assert demos["task"].tolist() == [0, 1, 1] and demos["length"].tolist() == [3, 5, 6]
    for i, ep in enumerate([episodes[1], episodes[0], episodes[2]]):
        T = ep["action"].shape[0]
        assert torch.equal(demos["observation"][i, : T + 1], ep["observation"])
        assert torch.equal(demos["action"][i, :T], ep["action"])
        assert torch.equal(demos["reward"][i, :T], ep["reward"])
        assert torch.equal(demos["action_mask"][i], ep["action_mask"])
    with pytest.raises(ValueError, match="format"):
        save_demos(tmp_path, episodes, tasks, format="hdf5")


def test_newt_maniskill_cut(tmp_path):
    newt_file(tmp_path / "ms-pick-cube.pt", [2] * 25, act_dim=4, extra=False)
    newt_file(tmp_path / "mw-reach.pt", [2] * 25, act_dim=4, extra=False)
    tasks = ["ms-pick-cube", "mw-reach"]
    cut = load_demos(tmp_path / "ms-pick-cube.pt", tasks)
    assert cut.shape == (20,) and cut["observation"][:, 0, 0].tolist() == [100.0 * e for e in range(20)]
    assert load_demos(tmp_path / "ms-pick-cube.pt", tasks, maniskill_episodes=None).shape == (25,)
    assert load_demos(tmp_path / "ms-pick-cube.pt", tasks, maniskill_episodes=5).shape == (5,)
    assert load_demos(tmp_path / "mw-reach.pt", tasks).shape == (25,)  # only ManiSkill files are cut


def test_newt_bad_names_and_files(tmp_path):
    newt_file(tmp_path / "walker-wlk.pt", [3])
    with pytest.raises(DemoTaskError, match=r"walker-wlk\.pt.*not a task.*Did you mean: walker-walk") as err:
        load_demos(tmp_path / "walker-wlk.pt", ["walker-walk", "walker-run"])
    assert isinstance(err.value, KeyError)
    newt_file(tmp_path / "cheetah-run.pt", [3])
    with pytest.raises(DemoTaskError, match="cheetah-run.*not in the given task list"):
        load_demos(tmp_path / "cheetah-run.pt", ["walker-walk"])
    # a task outside the registry: allowed when the run lists it; mask from the non-zero columns
    newt_file(tmp_path / "demo-only-task-xyz.pt", [3], act_dim=5)
    assert load_demos(tmp_path / "demo-only-task-xyz.pt", ["demo-only-task-xyz"])["action_mask"][0].sum() == 5
    # rows that break Newt's layout
    data = newt_file(tmp_path / "walker-walk.pt", [3, 3])
    data["action"][4] = 0.0  # first row of episode 1 is not NaN
    torch.save(TensorDict(data, batch_size=[8]), tmp_path / "walker-walk.pt")
    with pytest.raises(ValueError, match="episode 1 does not start with a NaN"):
        load_demos(tmp_path / "walker-walk.pt", ["walker-walk"])
    (tmp_path / "hopper-hop.pt").write_text("garbage")
    with pytest.raises(ValueError, match="not a demo file"):
        load_demos(tmp_path / "hopper-hop.pt", ["hopper-hop"])


def _unpadded_newt_file(path, lengths, obs_dim, act_dim, feat_dim=None):
    """Newt's real layout: unpadded observation/action widths; obs[:, 0] = 10 * e + t, feat = -obs[:, 0]."""
    obs, act, rew, epi, feat = [], [], [], [], []
    for e, T in enumerate(lengths):
        t = torch.arange(T + 1, dtype=torch.float32)
        o = torch.ones(T + 1, obs_dim)
        o[:, 0] = 10 * e + t
        a = torch.full((T + 1, act_dim), 0.5)
        r = t.clone()
        a[0], r[0] = NAN, NAN
        obs.append(o), act.append(a), rew.append(r), epi.append(torch.full((T + 1,), e, dtype=torch.long))
        if feat_dim:
            feat.append(-o[:, :1].expand(T + 1, feat_dim))
    data = {"obs": torch.cat(obs), "action": torch.cat(act), "reward": torch.cat(rew), "episode": torch.cat(epi)}
    if feat_dim:
        data["feat"] = torch.cat(feat)
    n = data["obs"].shape[0]
    torch.save(TensorDict(data, batch_size=[n]), path)


def test_newt_files_of_different_sizes_pad_to_the_task_set(tmp_path):
    from torchrl_newt.envs import TaskSet

    # cartpole-swingup: 5 observation / 1 action dims; finger-spin: 9 / 2 (Newt stores them unpadded)
    _unpadded_newt_file(tmp_path / "cartpole-swingup.pt", [3], obs_dim=5, act_dim=1)
    _unpadded_newt_file(tmp_path / "finger-spin.pt", [2, 2], obs_dim=9, act_dim=2)
    tasks = TaskSet.resolve(["finger-spin", "cartpole-swingup"], obs_pad=16, action_pad=4)
    demos = load_demos([tmp_path / "cartpole-swingup.pt", tmp_path / "finger-spin.pt"], tasks)
    assert demos["observation"].shape == (3, 4, 16) and demos["action"].shape == (3, 3, 4)
    assert demos["task"].tolist() == [1, 0, 0]
    # state in the first dims, zeros after; masked action dims zero and False
    assert demos["observation"][0, 0, :6].tolist() == [0.0, 1, 1, 1, 1, 0]
    assert demos["observation"][1, 0, 8:10].tolist() == [1.0, 0.0]
    assert demos["action"][0, 0].tolist() == [0.5, 0, 0, 0] and demos["action"][1, 0].tolist() == [0.5, 0.5, 0, 0]
    assert demos["action_mask"].tolist() == [[True, False, False, False]] + [[True, True, False, False]] * 2
    with pytest.raises(ValueError, match="more than the padding"):
        load_demos(tmp_path / "finger-spin.pt", tasks, obs_pad=8)


def test_newt_image_features_follow_the_padded_state(tmp_path):
    _unpadded_newt_file(tmp_path / "cartpole-swingup.pt", [2], obs_dim=5, act_dim=1, feat_dim=3)
    demos = load_demos(tmp_path / "cartpole-swingup.pt", ["cartpole-swingup"], obs_pad=8, action_pad=2, features=3)
    assert demos["observation"].shape == (1, 3, 11)
    # o_t = [10e + t, 1, 1, 1, 1, 0, 0, 0 | -(10e + t) x 3]
    assert demos["observation"][0, 2].tolist() == [2.0, 1, 1, 1, 1, 0, 0, 0, -2.0, -2.0, -2.0]
    with pytest.raises(ValueError, match="3-d image features"):
        load_demos(tmp_path / "cartpole-swingup.pt", ["cartpole-swingup"], obs_pad=8, features=4)
    _unpadded_newt_file(tmp_path / "finger-spin.pt", [2], obs_dim=9, act_dim=2)
    with pytest.raises(ValueError, match="no 'feat' entry"):
        load_demos(tmp_path / "finger-spin.pt", ["finger-spin"], obs_pad=16, features=3)
