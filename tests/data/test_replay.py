"""Tests of the multitask sub-trajectory replay buffer."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from torchrl_newt.data import MixedReplayBuffer, MultitaskReplayBuffer, SumTree

TRAJ = ("collector", "traj_ids")


class FakeCollector:
    """Yields [N, T] batches like torchrl's Collector over a batched env.

    Each lane runs episodes whose lengths cycle through ``lengths[lane]``. Observations
    encode (lane, traj id, step, global time) so tests can check slices exactly.
    """

    def __init__(self, lengths: list[list[int]], tasks: list[int], T: int):
        self.lengths, self.tasks, self.T = lengths, tasks, T
        self.N = len(lengths)
        self.time = 0
        self.step = [0] * self.N
        self.ep = [0] * self.N
        self.next_traj = self.N
        self.traj = list(range(self.N))

    def batch(self) -> TensorDict:
        N, T = self.N, self.T
        traj = torch.zeros(N, T, dtype=torch.long)
        step = torch.zeros(N, T, dtype=torch.long)
        done = torch.zeros(N, T, dtype=torch.bool)
        for n in range(N):
            for t in range(T):
                traj[n, t], step[n, t] = self.traj[n], self.step[n]
                length = self.lengths[n][self.ep[n] % len(self.lengths[n])]
                self.step[n] += 1
                if self.step[n] == length:
                    done[n, t] = True
                    self.step[n], self.ep[n] = 0, self.ep[n] + 1
                    self.traj[n], self.next_traj = self.next_traj, self.next_traj + 1
        gtime = torch.arange(self.time, self.time + T).expand(N, T)
        self.time += T
        obs = torch.zeros(N, T, 128)
        obs[..., 0] = torch.arange(N)[:, None].float()
        obs[..., 1], obs[..., 2], obs[..., 3] = traj.float(), step.float(), gtime.float()
        task = torch.as_tensor(self.tasks)[:, None].expand(N, T)
        mask = torch.zeros(N, T, 16, dtype=torch.bool)
        mask[..., :4] = True
        return TensorDict(
            {
                "observation": obs,
                "action": torch.rand(N, T, 16) * 2 - 1,
                "action_mask": mask,
                "task": task.clone(),
                "step_count": step[..., None],
                "is_init": (step == 0)[..., None],
                TRAJ: traj,
                "next": {
                    "observation": obs + 0.5,
                    "reward": torch.randn(N, T, 1),
                    "done": done[..., None],
                    "terminated": torch.zeros(N, T, 1, dtype=torch.bool),
                    "truncated": done[..., None],
                    "score": torch.zeros(N, T, 1),
                    "success": torch.zeros(N, T, 1),
                    "episode_reward": torch.zeros(N, T, 1),
                },
            },
            batch_size=[N, T],
        )


def brute_force_valid(history: list[TensorDict], rows: int, slice_len: int) -> int:
    """Counts valid slices among the last ``rows`` steps of each lane, from the raw batches."""
    data = torch.cat(history, 1)[:, -rows:]
    traj, step = data[TRAJ], data["step_count"].squeeze(-1)
    count = 0
    for n in range(data.shape[0]):
        for t in range(data.shape[1] - slice_len + 1):
            window_traj, window_step = traj[n, t : t + slice_len], step[n, t : t + slice_len]
            if (window_traj == window_traj[0]).all() and (window_step == window_step[0] + torch.arange(slice_len)).all():
                count += 1
    return count


def check_slices(batch: TensorDict, slice_len: int) -> None:
    obs = batch["observation"]
    lane, traj, step, gtime = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
    assert (lane == lane[:, :1]).all(), "slice spans lanes"
    assert (traj == traj[:, :1]).all(), "slice crosses an episode boundary"
    assert (batch[TRAJ] == batch[TRAJ][:, :1]).all()
    ar = torch.arange(slice_len, dtype=obs.dtype)
    assert (step == step[:, :1] + ar).all(), "steps are not consecutive"
    assert (gtime == gtime[:, :1] + ar).all(), "slice spans the write cursor"
    assert (batch["next", "observation"][..., 1] == traj + 0.5).all()


@pytest.mark.parametrize("mode", ["uniform", "balanced", "prioritized"])
def test_slices_never_cross_episodes_with_wraparound(mode):
    torch.manual_seed(0)
    lengths = [[3, 7, 2, 9], [5, 4], [12, 1, 6], [2, 2, 8]]
    col = FakeCollector(lengths, tasks=[0, 1, 2, 1], T=5)
    rows, slice_len = 13, 4  # capacity 52 with 4 lanes: wraps every 13 steps, mid-batch
    rb = MultitaskReplayBuffer(rows * 4, slice_len=slice_len, mode=mode, batch_size=256)
    history = []
    for i in range(25):
        history.append(col.batch())
        rb.extend(history[-1])
        expected = brute_force_valid(history, rows, slice_len)
        assert rb.num_valid_slices() == expected, f"batch {i}"
        if expected:
            batch = rb.sample()
            check_slices(batch, slice_len)
            if mode == "prioritized":
                rb.update_priority(batch["index"], torch.rand(256) * 5)
    assert len(rb) == rows * 4


def test_slices_span_collector_batches():
    col = FakeCollector([[20], [30]], tasks=[0, 1], T=4)
    rb = MultitaskReplayBuffer(400, slice_len=4, batch_size=512)
    history = [col.batch() for _ in range(10)]
    for batch in history:
        rb.extend(batch)
    batch = rb.sample()
    check_slices(batch, 4)
    gtime = batch["observation"][..., 3]
    spans = (gtime[:, 0] // 4) != (gtime[:, -1] // 4)
    assert spans.any(), "no slice spans two collector batches"
    assert rb.num_valid_slices() == brute_force_valid(history, 200, 4)


def test_sample_shapes_dtypes_device():
    col = FakeCollector([[10], [10], [10]], tasks=[0, 1, 2], T=10)
    rb = MultitaskReplayBuffer(300, slice_len=4, device="cpu")
    rb.extend(col.batch())
    batch = rb.sample(7)
    assert batch.shape == (7, 4)
    assert batch["observation"].shape == (7, 4, 128) and batch["observation"].dtype == torch.float32
    assert batch["action"].shape == (7, 4, 16)
    assert batch["action_mask"].dtype == torch.bool
    assert batch["task"].dtype == torch.long and batch["task"].shape == (7, 4)
    assert batch["next", "reward"].shape == (7, 4, 1)
    assert batch["index"].shape == (7, 4, 2)
    assert batch.device == torch.device("cpu") and rb.device == torch.device("cpu")
    assert rb.sample(3).shape == (3, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["uniform", "balanced", "prioritized"])
def test_cuda_storage_and_samples(mode):
    col = FakeCollector([[10, 7], [6]], tasks=[0, 1], T=8)
    rb = MultitaskReplayBuffer(64, slice_len=4, mode=mode, device="cuda", batch_size=32)
    for _ in range(6):
        rb.extend(col.batch())
    batch = rb.sample()
    assert batch.device.type == "cuda" and batch["observation"].is_cuda
    check_slices(batch.cpu(), 4)
    if mode == "prioritized":
        assert batch["priority_weight"].is_cuda
        rb.update_priority(batch["index"], torch.rand(32, device="cuda"))


def test_flat_batches_and_bad_input():
    col = FakeCollector([[6], [6]], tasks=[0, 1], T=6)
    rb = MultitaskReplayBuffer(60, slice_len=3, num_lanes=2, batch_size=16)
    rb.extend(col.batch().reshape(-1))  # flat [N*T], lane-major
    check_slices(rb.sample(), 3)
    assert rb.num_valid_slices() == 2 * 4
    with pytest.raises(ValueError, match="lanes"):
        rb.extend(col.batch()[:1])
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        rb.extend(col.batch().unsqueeze(0))
    with pytest.raises(ValueError, match="split"):
        rb.extend(col.batch().reshape(-1)[:5])
    with pytest.raises(KeyError, match="traj_ids"):
        rb.extend(col.batch().exclude(TRAJ))
    with pytest.raises(ValueError, match="exceeds"):
        rb.extend(torch.cat([col.batch() for _ in range(6)], 1))
    flat_rb = MultitaskReplayBuffer(60, slice_len=3)
    with pytest.raises(ValueError, match="num_lanes"):
        flat_rb.extend(col.batch().reshape(-1))
    with pytest.raises(ValueError, match="mode"):
        MultitaskReplayBuffer(60, mode="greedy")


def test_slice_len_longer_than_every_episode_errors():
    col = FakeCollector([[3, 2], [2]], tasks=[0, 1], T=5)
    rb = MultitaskReplayBuffer(100, slice_len=4, batch_size=8)
    for _ in range(3):
        rb.extend(col.batch())
    assert rb.num_valid_slices() == 0
    with pytest.raises(RuntimeError, match="No valid sub-trajectory"):
        rb.sample()
    with pytest.raises(RuntimeError, match="empty"):
        MultitaskReplayBuffer(100, batch_size=2).sample()


def test_balanced_gives_equal_task_frequencies():
    torch.manual_seed(1)
    # task 0: five lanes of long episodes; task 1: one lane; task 2: one lane of 5-step episodes
    col = FakeCollector([[50]] * 5 + [[50], [5]], tasks=[0, 0, 0, 0, 0, 1, 2], T=25)
    balanced = MultitaskReplayBuffer(7 * 100, mode="balanced", batch_size=6000)
    uniform = MultitaskReplayBuffer(7 * 100, mode="uniform", batch_size=6000)
    for _ in range(4):
        batch = col.batch()
        balanced.extend(batch)
        uniform.extend(batch)
    freq = torch.bincount(balanced.sample()["task"][:, 0], minlength=3).float() / 6000
    assert torch.allclose(freq, torch.full((3,), 1 / 3), atol=0.03), freq
    freq_u = torch.bincount(uniform.sample()["task"][:, 0], minlength=3).float() / 6000
    # uniform over starts: 5*94 : 94 : 40 valid starts
    assert freq_u[0] > 0.7 and freq_u[2] < 0.1, freq_u


def test_balanced_counts_follow_overwrites():
    col = FakeCollector([[40], [4]], tasks=[0, 1], T=10)
    rb = MultitaskReplayBuffer(40, mode="balanced", batch_size=4000)
    for _ in range(7):  # wraps several times
        rb.extend(col.batch())
    freq = torch.bincount(rb.sample()["task"][:, 0], minlength=2).float() / 4000
    assert torch.allclose(freq, torch.full((2,), 0.5), atol=0.04), freq
    counts = rb.sampler._task_counts
    assert counts.sum() == rb.num_valid_slices()


def _single_episode(length: int, traj: int = 0) -> TensorDict:
    return TensorDict(
        {
            "observation": torch.arange(length, dtype=torch.float32)[None, :, None].expand(1, length, 128),
            "task": torch.zeros(1, length, dtype=torch.long),
            "step_count": torch.arange(length)[None, :, None],
            TRAJ: torch.full((1, length), traj),
        },
        batch_size=[1, length],
    )


def test_prioritized_weights_hand_computed():
    rb = MultitaskReplayBuffer(20, slice_len=3, mode="prioritized", alpha=1.0, beta=0.5, eps=0.0, batch_size=20000)
    rb.extend(_single_episode(6))  # valid starts: rows 0..3
    # new data gets max priority (1.0): uniform at first, unit weights
    batch = rb.sample()
    assert torch.allclose(batch["priority_weight"], torch.ones(()))
    start = torch.stack([torch.arange(4), torch.zeros(4, dtype=torch.long)], -1)
    rb.update_priority(start, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    batch = rb.sample()
    rows = batch["index"][:, 0, 0]
    freq = torch.bincount(rows, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.02), freq
    # w_i = (N P(i))^-beta / max_j (N P(j))^-beta = (p_i / p_min)^-beta
    expected = torch.tensor([1.0, 2.0, 3.0, 4.0]).pow(-0.5)
    assert torch.allclose(batch["priority_weight"][:, 0], expected[rows])
    assert torch.allclose(batch["priority_weight"][:, 1], batch["priority_weight"][:, 0])
    # new slices get the largest priority seen so far (4.0)
    rb.extend(_single_episode(4, traj=1))
    batch = rb.sample()
    new = batch["index"][:, 0, 0] >= 6
    assert new.any()
    assert torch.allclose(batch["priority_weight"][new, 0], torch.tensor(0.5))
    assert rb.num_valid_slices() == 6


def test_prioritized_favours_high_priority_and_tensordict_update():
    rb = MultitaskReplayBuffer(100, slice_len=2, mode="prioritized", alpha=1.0, beta=1.0, batch_size=2000)
    rb.extend(_single_episode(11))  # 10 starts
    batch = rb.sample()
    td_error = torch.where(batch["index"][:, 0, 0] == 7, 100.0, 1.0)
    batch["td_error"] = td_error[:, None].expand(-1, 2)  # per-slice priority, reduced by max over time
    rb.update_tensordict_priority(batch)
    rows = rb.sample()["index"][:, 0, 0]
    share = (rows == 7).float().mean()
    assert abs(share - 100 / 109) < 0.03, share
    with pytest.raises(RuntimeError, match="prioritized"):
        uniform = MultitaskReplayBuffer(100, slice_len=2)
        uniform.extend(_single_episode(5))
        uniform.update_priority(torch.zeros(1, 2, dtype=torch.long), 1.0)


def test_sum_tree_against_cumsum():
    torch.manual_seed(0)
    w = torch.rand(1000, dtype=torch.float64)
    w[::3] = 0
    tree = SumTree(1000)
    tree.build(w)
    assert math.isclose(float(tree.total()), float(w.sum()), rel_tol=1e-12)
    mass = torch.rand(5000, dtype=torch.float64) * w.sum()
    expected = torch.searchsorted(w.cumsum(0), mass, right=True)
    assert (tree.find(mass) == expected).all()
    idx = torch.randint(1000, (50,))
    tree.update(idx, torch.ones(50, dtype=torch.float64))
    w[idx] = 1.0
    assert math.isclose(float(tree.total()), float(w.sum()), rel_tol=1e-12)
    assert (w[tree.find(torch.rand(5000, dtype=torch.float64) * w.sum())] > 0).all()


def test_mixture_halves_and_marks_source():
    online = MultitaskReplayBuffer(100, slice_len=4, mode="prioritized")
    online.extend(FakeCollector([[20]], tasks=[0], T=20).batch())
    demos = MultitaskReplayBuffer(100, slice_len=4)
    demo_data = _single_episode(30, traj=5)
    demo_data["observation"] = torch.full_like(demo_data["observation"], -1.0)
    demos.extend(demo_data)
    mixed = MixedReplayBuffer(online, demos, demo_fraction=0.5, batch_size=64)
    batch = mixed.sample()
    assert batch.shape == (64, 4)
    assert batch["is_demo"][:32].all() and not batch["is_demo"][32:].any()
    assert (batch["observation"][:32] == -1).all() and (batch["observation"][32:, :, 0] == 0).all()
    assert (batch["priority_weight"][:32] == 1).all()  # demo side is not prioritized
    assert "next" not in batch.keys()  # only keys common to both sides
    batch["td_error"] = torch.ones(64, 4)
    mixed.update_tensordict_priority(batch)
    assert mixed.sample(10)["is_demo"][:, 0].sum() == 5
    assert not MixedReplayBuffer(online, None).sample(8)["is_demo"].any()


def _prioritized_pair(length: int = 200):
    online = MultitaskReplayBuffer(length, slice_len=4, mode="prioritized")
    online.extend(_single_episode(length, traj=0))
    demos = MultitaskReplayBuffer(length, slice_len=4, mode="prioritized")
    demo_data = _single_episode(length, traj=5)
    demo_data["observation"] = -1 - demo_data["observation"]  # demo rows are recognisable by sign
    demos.extend(demo_data)
    return online, demos


@pytest.mark.parametrize("batch_size", [3, 5, 7])
@pytest.mark.parametrize("how", ["tensordict", "index"])
def test_mixture_routes_priorities_row_by_row(batch_size, how):
    """Every row's priority lands in the buffer it came from, at its own start cell.

    ``round(B / 2)`` demo rows come first; for B = 3 and 7 (3 mod 4) that is one more than
    ``B // 2``, so splitting the batch by hand at ``B // 2`` would send a demo row to the online
    buffer.
    """
    torch.manual_seed(batch_size)
    online, demos = _prioritized_pair()
    mixed = MixedReplayBuffer(online, demos, demo_fraction=0.5)
    batch = mixed.sample(batch_size)
    n_demo = round(batch_size * 0.5)
    assert batch["is_demo"][:, 0].tolist() == [True] * n_demo + [False] * (batch_size - n_demo)
    assert (batch["observation"][:n_demo] < 0).all() and (batch["observation"][n_demo:] >= 0).all()
    priority = 10.0 + torch.arange(batch_size, dtype=torch.float32)  # distinct, above the initial 1.0
    if how == "tensordict":
        mixed.update_tensordict_priority(batch, priority)
    else:
        mixed.update_priority(batch["index"], priority)  # the default demo-first layout
    start = batch["index"][:, 0]  # [B, 2] (row, lane) start cells
    is_demo = batch["is_demo"][:, 0]
    for i in range(batch_size):
        own, other = (demos, online) if is_demo[i] else (online, demos)
        flat = int(start[i, 0] * own.num_lanes + start[i, 1])
        same = [j for j in range(batch_size) if is_demo[j] == is_demo[i] and torch.equal(start[j], start[i])]
        stored = float(own.sampler._priority[flat])
        # duplicates of one cell within a buffer: one of their priorities wins
        assert any(stored == pytest.approx(float(priority[j]) + own.sampler.eps) for j in same), (i, stored)
        # the other buffer's cell holds either its untouched initial priority or one of its own rows'
        others = [j for j in range(batch_size) if is_demo[j] != is_demo[i] and torch.equal(start[j], start[i])]
        allowed = [1.0] + [float(priority[j]) + other.sampler.eps for j in others]
        assert any(float(other.sampler._priority[flat]) == pytest.approx(a) for a in allowed), (i, "misrouted")
    # cells nobody sampled keep the initial priority in both buffers
    for buffer, rows in ((demos, is_demo), (online, ~is_demo)):
        touched = {int(r * buffer.num_lanes + c) for r, c in start[rows].tolist()}
        valid = buffer.sampler._valid.nonzero().squeeze(-1).tolist()
        assert all(float(buffer.sampler._priority[f]) == 1.0 for f in valid if f not in touched)


def test_mixture_update_priority_explicit_source_and_errors():
    online, demos = _prioritized_pair()
    mixed = MixedReplayBuffer(online, demos, demo_fraction=0.5)
    batch = mixed.sample(5)
    # an explicit is_demo overrides the default layout, per step flags work too
    mixed.update_priority(batch["index"], torch.full((5, 4), 3.0), is_demo=batch["is_demo"])
    with pytest.raises(ValueError, match="one priority per slice"):
        mixed.update_priority(batch["index"], torch.ones(4))
    with pytest.raises(ValueError, match="is_demo"):
        mixed.update_priority(batch["index"], torch.ones(5), is_demo=torch.ones(4, dtype=torch.bool))
    # a one-sided mixture routes everything to the online buffer
    solo = MixedReplayBuffer(online, None)
    batch = solo.sample(3)
    solo.update_tensordict_priority(batch, torch.full((3,), 42.0))
    start = batch["index"][:, 0]
    assert torch.allclose(online.sampler._priority[start[:, 0] * online.num_lanes + start[:, 1]], torch.tensor(42.0))


def test_state_dict_round_trip():
    col = FakeCollector([[7, 3], [9]], tasks=[0, 1], T=5)
    rb = MultitaskReplayBuffer(40, slice_len=3, mode="prioritized", batch_size=64)
    for _ in range(6):
        rb.extend(col.batch())
    batch = rb.sample()
    rb.update_priority(batch["index"], torch.rand(64) + 0.5)
    state = rb.state_dict()
    clone = MultitaskReplayBuffer(40, slice_len=3, mode="prioritized", batch_size=64)
    clone.load_state_dict(state)
    assert clone.num_valid_slices() == rb.num_valid_slices()
    assert torch.allclose(clone.sampler._sum_tree.leaves, rb.sampler._sum_tree.leaves)
    check_slices(clone.sample(), 3)
    next_batch = col.batch()
    clone.extend(next_batch)  # keeps writing at the writer's restored cursor
    rb.extend(next_batch)
    assert clone.num_valid_slices() == rb.num_valid_slices()
    check_slices(clone.sample(), 3)


def _lane(traj: list[int], step: list[int]) -> TensorDict:
    T = len(traj)
    return TensorDict(
        {
            "observation": torch.zeros(1, T, 128),
            "task": torch.zeros(1, T, dtype=torch.long),
            "step_count": torch.tensor(step)[None, :, None],
            TRAJ: torch.tensor(traj)[None],
        },
        batch_size=[1, T],
    )


def test_each_validity_rule_matters_on_its_own():
    # trajectory ids alone separate two episodes whose step counters happen to continue
    rb = MultitaskReplayBuffer(20, slice_len=3)
    rb.extend(_lane([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]))
    assert rb.num_valid_slices() == 2
    # step counters alone reveal a gap inside one trajectory id
    rb = MultitaskReplayBuffer(20, slice_len=3)
    rb.extend(_lane([0] * 6, [0, 1, 2, 5, 6, 7]))
    assert rb.num_valid_slices() == 2
    # the write cursor alone: after wrap-around, rows 0..3 read steps 2, 3, 4, 5 of one
    # trajectory, but rows 0-1 are the newest data and rows 2-3 the oldest
    rb = MultitaskReplayBuffer(8, slice_len=3, batch_size=200)
    rb.extend(_lane([0] * 6, [2, 3, 4, 5, 6, 7]))  # rows 0..5
    rb.extend(_lane([0] * 4, [0, 1, 2, 3]))  # rows 6, 7, 0, 1
    # in write order: steps 4 5 6 7 | 0 1 2 3 -> 2 + 2 valid starts
    assert rb.num_valid_slices() == 4
    rows = rb.sample()["index"][:, 0, 0]
    assert set(rows.tolist()) <= {2, 3, 6, 7}
