"""Multitask sub-trajectory replay on TorchRL storages.

Layout
------
A batched multitask env with ``N`` lanes (one lane per task in Newt) is collected by
:class:`torchrl.collectors.Collector` into tensordicts of shape ``[N, T]``. The buffer
stores them in a 2-D :class:`~torchrl.data.LazyTensorStorage` of shape ``[rows, N]``
(time x lanes, ``rows = ceil(capacity / N)``) written round-robin along time, so each
lane's steps are contiguous in time (modulo the circular cursor) and an episode longer
than one collector batch is stored contiguously across batches.

A *slice start* is a storage cell ``(row, lane)``. It is valid when the ``slice_len``
cells ``(row + k) % rows, k = 0..slice_len-1`` of the same lane

* are all written and in write order (the window does not span the write cursor),
* share one trajectory id (``traj_key``, non-negative) and
* have consecutive step counters (``step_key``).

Validity is recomputed lazily, at the next :meth:`~MultitaskSliceSampler.sample`, only
for the starts whose window touches rows written since the previous call
(``O((T + slice_len) * N)`` per collector batch, never the whole storage).

Sampling
--------
Every mode draws slice starts from a pure-torch sum tree (:class:`SumTree`) whose
leaves hold one weight per start (zero for invalid starts); a draw costs
``O(batch * log(capacity))`` on CPU and CUDA alike. ``benchmarks/replay_sampling.py``
compares it with ``cumsum + searchsorted`` and :func:`torch.multinomial`, which cost
``O(capacity)`` whenever the weights change (priorities change every update).

* ``"uniform"``: weight 1 per valid start (Newt's default).
* ``"balanced"``: weight ``1 / n_task`` per valid start of a task with ``n_task`` valid
  starts, so every task present is equally likely, then uniform within the task. The
  leaves are rebuilt (``O(capacity)``, vectorised) at the first sample after the
  per-task counts changed.
* ``"prioritized"``: weight ``p ** alpha`` (PER); new slices get the largest priority
  seen so far; importance weights ``(p_i / p_min) ** (-beta)`` (i.e.
  ``(N P(i)) ** -beta`` normalised by its maximum over the buffer) come under
  ``weight_key``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import LazyTensorStorage, ReplayBuffer, TensorDictReplayBuffer
from torchrl.data.replay_buffers.samplers import Sampler
from torchrl.data.replay_buffers.storages import Storage

__all__ = [
    "SAMPLING_MODES",
    "MixedReplayBuffer",
    "MultitaskReplayBuffer",
    "MultitaskSliceSampler",
    "SumTree",
]

logger = logging.getLogger(__name__)

SAMPLING_MODES = ("uniform", "balanced", "prioritized")

# Keys written by the buffer into samples: never stored back.
_SAMPLE_META_KEYS = ("index", "_weight")


class SumTree:
    """A pure-torch segment tree (sum or min) over a fixed number of leaves.

    The tree lives in one flat tensor of ``2 * cap`` entries (``cap`` = the next power
    of two >= ``size``); node ``i`` has children ``2i`` and ``2i+1`` and the root is node
    ``1``. All operations are batched tensor ops, so the tree works on any device.

    Args:
        size (int): number of leaves.

    Keyword Args:
        op (str): ``"sum"`` (default) or ``"min"``.
        device (torch.device, optional): where the tree lives. Defaults to CPU.
        dtype (torch.dtype): defaults to ``torch.float64`` (sums over 1e7 leaves).

    Examples:
        >>> import torch
        >>> tree = SumTree(5)
        >>> tree.update(torch.tensor([0, 3]), torch.tensor([1.0, 3.0]))
        >>> float(tree.total())
        4.0
        >>> tree.find(torch.tensor([0.5, 1.0, 3.9])).tolist()
        [0, 3, 3]
        >>> mins = SumTree(5, op="min")
        >>> mins.build(torch.tensor([4.0, 2.0, 7.0, 5.0, 9.0]))
        >>> float(mins.total())
        2.0
    """

    def __init__(
        self,
        size: int,
        *,
        op: str = "sum",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if size < 1:
            raise ValueError(f"SumTree needs at least one leaf, got size={size}.")
        if op not in ("sum", "min"):
            raise ValueError(f"op must be 'sum' or 'min', got {op!r}.")
        self.size = int(size)
        self.op = op
        self.depth = max(0, (self.size - 1).bit_length())
        self.cap = 1 << self.depth
        self._neutral = 0.0 if op == "sum" else math.inf
        self.tree = torch.full((2 * self.cap,), self._neutral, dtype=dtype, device=device)

    @property
    def leaves(self) -> torch.Tensor:
        """A view on the leaf values (length ``size``)."""
        return self.tree[self.cap : self.cap + self.size]

    def _combine(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return left + right if self.op == "sum" else torch.minimum(left, right)

    def update(self, index: torch.Tensor, value: torch.Tensor | float) -> None:
        """Sets leaves ``index`` to ``value`` and refreshes their ancestors.

        Duplicated indices are allowed (one of the values wins). Large updates fall back
        to a full :meth:`build`.
        """
        index = torch.as_tensor(index, device=self.tree.device).reshape(-1).long()
        if not index.numel():
            return
        value = torch.as_tensor(value, dtype=self.tree.dtype, device=self.tree.device)
        if index.numel() * 4 > self.size:
            leaves = self.leaves.clone()
            leaves[index] = value.expand_as(index) if value.ndim == 0 else value.reshape(-1)
            self.build(leaves)
            return
        # index_select / index_copy_ rather than advanced indexing: much cheaper on CPU
        tree = self.tree
        pos = index + self.cap
        tree.index_copy_(0, pos, value.expand(pos.shape) if value.ndim == 0 else value.reshape(-1))
        for _ in range(self.depth):
            pos = pos // 2
            left = tree.index_select(0, 2 * pos)
            right = tree.index_select(0, 2 * pos + 1)
            tree.index_copy_(0, pos, self._combine(left, right))

    def build(self, leaves: torch.Tensor) -> None:
        """Replaces all leaves at once (``O(size)``, vectorised)."""
        if leaves.numel() != self.size:
            raise ValueError(f"Expected {self.size} leaves, got {leaves.numel()}.")
        tree = self.tree
        tree[self.cap : self.cap + self.size] = leaves.reshape(-1).to(tree)
        tree[self.cap + self.size :] = self._neutral
        lo = self.cap  # level [lo, 2 lo) -> parents [lo / 2, lo); strided ops beat a size-2 reduction
        while lo > 1:
            left, right = tree[lo : 2 * lo : 2], tree[lo + 1 : 2 * lo : 2]
            if self.op == "sum":
                torch.add(left, right, out=tree[lo // 2 : lo])
            else:
                torch.minimum(left, right, out=tree[lo // 2 : lo])
            lo //= 2

    def total(self) -> torch.Tensor:
        """The reduction over all leaves (a 0-d tensor, kept on the tree's device)."""
        return self.tree[1]

    def find(self, mass: torch.Tensor) -> torch.Tensor:
        """For a sum tree, returns for each ``mass`` in ``[0, total)`` the leaf whose prefix interval holds it.

        The descent never enters an empty subtree, so the returned leaves always have a
        positive weight (as long as the total is positive), even under rounding.
        """
        if self.op != "sum":
            raise RuntimeError("find() needs a sum tree.")
        tree = self.tree
        mass = mass.to(tree)
        pos = torch.ones(mass.shape, dtype=torch.long, device=tree.device)
        for _ in range(self.depth):
            left = pos * 2
            left_mass = tree.index_select(0, left)
            go_right = (mass >= left_mass) & (tree.index_select(0, left + 1) > 0)
            mass = torch.where(go_right, mass - left_mass, mass)
            pos = left + go_right.long()
        return pos - self.cap


def _as_cells(index: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalises an index (tuple of rows/lanes, or ``[..., 2]`` tensor) into start cells."""
    if isinstance(index, tuple):
        rows, lanes = (torch.as_tensor(i) for i in index)
        if rows.ndim == 2:  # [B, slice_len] -> slice starts
            rows, lanes = rows[:, 0], lanes[:, 0]
        return rows.reshape(-1).long(), lanes.reshape(-1).long()
    index = torch.as_tensor(index)
    if index.shape[-1] != 2:
        raise ValueError(
            "Expected a 2-D storage index of shape [B, 2] or [B, slice_len, 2] (row, lane), "
            f"got shape {tuple(index.shape)}."
        )
    if index.ndim == 3:
        index = index[:, 0]
    index = index.reshape(-1, 2).long()
    return index[:, 0], index[:, 1]


class MultitaskSliceSampler(Sampler):
    """Samples sub-trajectories of ``slice_len`` steps that never cross an episode boundary.

    Works on 2-D (time x lanes) storages such as ``LazyTensorStorage(capacity, ndim=2)``
    written round-robin along time (see the module docstring). Returns, for a batch of
    ``B`` slices, the storage index ``(rows, lanes)`` as two ``[B, slice_len]`` tensors.

    Args:
        slice_len (int): steps per sub-trajectory (``H + 1``). Defaults to 4 (H = 3).

    Keyword Args:
        mode (str): ``"uniform"`` (default), ``"balanced"`` or ``"prioritized"``.
        alpha (float): priority exponent (prioritized mode). Defaults to 0.6.
        beta (float): importance-sampling exponent (prioritized mode). Defaults to 0.4.
        eps (float): added to ``|priority|`` in :meth:`update_priority`. Defaults to 1e-6.
        traj_key (NestedKey): trajectory id key. Defaults to ``("collector", "traj_ids")``.
        step_key (NestedKey): step counter key. Defaults to ``"step_count"``.
        task_key (NestedKey): task id key (balanced mode). Defaults to ``"task"``.
        weight_key (str): info key of the importance weights. Defaults to ``"_weight"``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
        >>> rb = TensorDictReplayBuffer(
        ...     storage=LazyTensorStorage(40, ndim=2),
        ...     sampler=MultitaskSliceSampler(3, traj_key="traj"),
        ...     dim_extend=1,
        ... )
        >>> steps = torch.arange(10).repeat(2, 1)  # 2 lanes, one 10-step episode each
        >>> data = TensorDict(
        ...     {"traj": torch.tensor([[0], [1]]).expand(2, 10), "step_count": steps,
        ...      "task": torch.tensor([[0], [1]]).expand(2, 10)},
        ...     batch_size=[2, 10],
        ... )
        >>> _ = rb.extend(data)
        >>> sample = rb.sample(8)
        >>> sample.shape
        torch.Size([8, 3])
        >>> bool((sample["step_count"].diff(dim=1) == 1).all())
        True
    """

    def __init__(
        self,
        slice_len: int = 4,
        *,
        mode: str = "uniform",
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        traj_key: NestedKey = ("collector", "traj_ids"),
        step_key: NestedKey = "step_count",
        task_key: NestedKey = "task",
        weight_key: str = "_weight",
    ) -> None:
        if int(slice_len) < 1:
            raise ValueError(f"slice_len must be >= 1, got {slice_len}.")
        if mode not in SAMPLING_MODES:
            raise ValueError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}.")
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}.")
        self.slice_len = int(slice_len)
        self.mode = mode
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
        self.traj_key = traj_key
        self.step_key = step_key
        self.task_key = task_key
        self.weight_key = weight_key
        self._max_priority = 1.0
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self._shape: tuple[int, int] | None = None  # (rows, lanes)
        self._valid: torch.Tensor | None = None  # bool [rows * lanes]
        self._start_task: torch.Tensor | None = None  # int64 [rows * lanes] (balanced)
        self._task_counts: torch.Tensor | None = None  # int64 [num_tasks] (balanced)
        self._priority: torch.Tensor | None = None  # float32 [rows * lanes] (prioritized)
        self._sum_tree: SumTree | None = None
        self._min_tree: SumTree | None = None
        self._num_valid: torch.Tensor | None = None
        self._pending_rows: list[torch.Tensor] = []
        self._newest_row = -1
        self._needs_rebuild = False  # full validity recomputation (after load_state_dict)
        self._balanced_dirty = False
        self._loaded_priority: torch.Tensor | None = None

    def _empty(self) -> None:
        self._reset_state()
        self._max_priority = 1.0

    def _maybe_init(self, storage: Storage) -> None:
        shape = getattr(storage, "_total_shape", None)
        if shape is None or len(shape) != 2:
            raise RuntimeError(
                f"{type(self).__name__} needs an initialised 2-D storage "
                "(e.g. LazyTensorStorage(capacity, ndim=2)) filled with [lanes, time] data."
            )
        shape = (int(shape[0]), int(shape[1]))
        if self._shape == shape:
            return
        if shape[0] < self.slice_len:
            raise ValueError(
                f"slice_len={self.slice_len} exceeds the {shape[0]} time steps per lane that the "
                f"storage can hold (capacity / lanes): increase the capacity."
            )
        device = storage.device if storage.device not in (None, "auto") else None
        n = shape[0] * shape[1]
        self._shape = shape
        self._valid = torch.zeros(n, dtype=torch.bool, device=device)
        self._num_valid = torch.zeros((), dtype=torch.long, device=device)
        self._sum_tree = SumTree(n, device=device)
        if self.mode == "balanced":
            self._start_task = torch.zeros(n, dtype=torch.long, device=device)
            self._task_counts = torch.zeros(0, dtype=torch.long, device=device)
        if self.mode == "prioritized":
            self._priority = torch.zeros(n, dtype=torch.float32, device=device)
            self._min_tree = SumTree(n, op="min", device=device)
            self._maybe_restore_priority()

    @property
    def device(self) -> torch.device | None:
        """Device of the sampler's bookkeeping (the storage's), ``None`` before the first sample."""
        return None if self._valid is None else self._valid.device

    # ---------------------------------------------------------------- writing
    def add(self, index: Any) -> None:
        self.extend(torch.as_tensor(index).reshape(-1, 2))

    def extend(self, index: torch.Tensor | tuple) -> None:
        if isinstance(index, tuple):
            rows = torch.as_tensor(index[0]).reshape(-1)
        else:
            index = torch.as_tensor(index)
            if index.ndim != 2 or index.shape[-1] != 2:
                raise RuntimeError(
                    f"{type(self).__name__} expects [M, 2] (row, lane) indices from a 2-D storage, "
                    f"got shape {tuple(index.shape)}."
                )
            rows = index[:, 0]
        if rows.numel():
            self._pending_rows.append(rows)
            self._newest_row = int(rows[-1])

    def _sync(self, storage: Storage) -> None:
        """Brings validity (and tree leaves) up to date with the storage."""
        self._maybe_init(storage)
        n_rows = self._shape[0]
        if self._needs_rebuild:
            self._pending_rows = []
            self._needs_rebuild = False
            self._recompute(storage, torch.arange(n_rows, device=self._valid.device), fresh=False)
        elif self._pending_rows:
            written = torch.cat(self._pending_rows).to(self._valid.device).unique()
            self._pending_rows = []
            offsets = torch.arange(self.slice_len, device=written.device)
            starts = ((written[:, None] - offsets) % n_rows).reshape(-1).unique()
            self._recompute(storage, starts, fresh=True)
        if self.mode == "balanced" and self._balanced_dirty:
            counts = self._task_counts.clamp_min(1).to(torch.float64)
            leaves = self._valid.to(torch.float64) / counts.index_select(0, self._start_task)
            self._sum_tree.build(leaves)
            self._balanced_dirty = False

    def _read(self, storage: Storage, key: NestedKey, what: str) -> torch.Tensor:
        try:
            value = storage._storage.get(key)
        except KeyError:
            raise KeyError(
                f"{type(self).__name__} needs the {what} key {key!r} in the stored data; "
                f"pass the right key to the constructor (stored keys: "
                f"{list(storage._storage.keys(True, True))})."
            ) from None
        if value.ndim == 3 and value.shape[-1] == 1:
            value = value.squeeze(-1)
        return value

    def _recompute(self, storage: Storage, start_rows: torch.Tensor, *, fresh: bool) -> None:
        n_rows, n_lanes = self._shape
        S = self.slice_len
        len_rows = storage._len_along_dim0
        full = len_rows >= n_rows
        oldest = (self._newest_row + 1) % n_rows if full else 0
        traj_all = self._read(storage, self.traj_key, "trajectory id")
        step_all = self._read(storage, self.step_key, "step counter")
        task_all = self._read(storage, self.task_key, "task") if self.mode == "balanced" else None
        offsets = torch.arange(S, device=start_rows.device)
        chunk = max(1, (1 << 21) // (S * n_lanes))
        for lo in range(0, start_rows.numel(), chunk):
            rows = start_rows[lo : lo + chunk]
            window = (rows[:, None] + offsets) % n_rows  # [M, S]
            in_order = ((rows - oldest) % n_rows) + (S - 1) <= len_rows - 1  # [M]
            traj = traj_all.index_select(0, window.reshape(-1)).view(*window.shape, n_lanes)  # [M, S, L]
            step = step_all.index_select(0, window.reshape(-1)).view(*window.shape, n_lanes)
            valid = (
                in_order[:, None]
                & (traj[:, 0] >= 0)
                & (traj == traj[:, :1]).all(1)
                & (step == step[:, :1] + offsets[:, None].to(step.dtype)).all(1)
            )  # [M, L]
            flat = (rows[:, None] * n_lanes + torch.arange(n_lanes, device=rows.device)).reshape(-1)
            valid = valid.reshape(-1)
            old_valid = self._valid[flat]
            self._valid[flat] = valid
            self._num_valid += valid.sum() - old_valid.sum()
            if self.mode == "uniform":
                self._sum_tree.update(flat, valid.to(torch.float64))
            elif self.mode == "balanced":
                task = task_all.index_select(0, rows).reshape(-1).long()
                self._count_tasks(self._start_task[flat][old_valid], -1)
                self._count_tasks(task[valid], 1)
                self._start_task[flat] = torch.where(valid, task, 0)  # unwritten cells hold garbage
                self._balanced_dirty = True
            else:
                if fresh:
                    self._priority[flat] = torch.where(
                        valid, torch.full_like(self._priority[flat], self._max_priority), 0.0
                    )
                self._set_priority_leaves(flat)

    def _count_tasks(self, tasks: torch.Tensor, sign: int) -> None:
        if not tasks.numel():
            return
        if (tasks < 0).any():
            raise ValueError("Task ids must be non-negative for balanced sampling.")
        counts = torch.bincount(tasks)
        if counts.numel() > self._task_counts.numel():
            grown = torch.zeros(counts.numel(), dtype=torch.long, device=counts.device)
            grown[: self._task_counts.numel()] = self._task_counts
            self._task_counts = grown
        self._task_counts[: counts.numel()] += sign * counts

    def _set_priority_leaves(self, flat: torch.Tensor) -> None:
        valid = self._valid[flat]
        powered = self._priority[flat].double().pow(self.alpha)
        self._sum_tree.update(flat, torch.where(valid, powered, 0.0))
        self._min_tree.update(flat, torch.where(valid, powered, math.inf))

    # --------------------------------------------------------------- sampling
    def num_valid(self, storage: Storage) -> int:
        """Number of valid slice starts currently in ``storage``."""
        if len(storage) == 0:
            return 0
        self._sync(storage)
        return int(self._num_valid)

    def _sampleable_count(self, storage: Storage, batch_size: int) -> int:
        return self.num_valid(storage)

    def sample(self, storage: Storage, batch_size: int) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        if len(storage) == 0:
            raise RuntimeError("Cannot sample from an empty storage.")
        self._sync(storage)
        total = self._sum_tree.total()
        if not bool(total > 0):
            raise RuntimeError(
                f"No valid sub-trajectory of slice_len={self.slice_len} in the buffer "
                f"({len(storage)} stored steps): every stored episode segment is shorter than "
                f"slice_len consecutive steps of one trajectory. Collect more data or lower slice_len."
            )
        device = self._valid.device
        mass = torch.rand(batch_size, generator=self._rng, device=device, dtype=torch.float64) * total
        start = self._sum_tree.find(mass)
        n_rows, n_lanes = self._shape
        row, lane = start // n_lanes, start % n_lanes
        offsets = torch.arange(self.slice_len, device=device)
        rows = (row[:, None] + offsets) % n_rows
        lanes = lane[:, None].expand(-1, self.slice_len)
        info: dict[str, Any] = {}
        if self.mode == "prioritized":
            # (N P(i))^-beta / max_j (N P(j))^-beta  ==  (p_i / p_min) ** -beta
            leaf = self._sum_tree.leaves[start]
            info[self.weight_key] = (leaf / self._min_tree.total()).pow(-self.beta).to(torch.float32)
        return (rows, lanes), info

    # ------------------------------------------------------------- priorities
    @property
    def default_priority(self) -> float:
        return self._max_priority

    def update_priority(
        self,
        index: Any,
        priority: float | torch.Tensor,
        *,
        storage: Storage | None = None,
    ) -> None:
        """Sets the priority of the slices starting at ``index``.

        Args:
            index: ``(rows, lanes)`` tensors of shape ``[B]`` or ``[B, slice_len]``, or a
                ``[B, 2]`` / ``[B, slice_len, 2]`` tensor (the sample's ``"index"`` entry).
            priority: ``[B]`` (or ``[B, 1]``) per-slice priorities, e.g. TD errors.
        """
        if self.mode != "prioritized":
            raise RuntimeError(f"update_priority needs mode='prioritized', this sampler uses {self.mode!r}.")
        if self._shape is None:
            raise RuntimeError("update_priority called before anything was sampled.")
        rows, lanes = _as_cells(index)
        priority = torch.as_tensor(priority, dtype=torch.float32)
        if priority.numel() == 1:
            priority = priority.reshape(1).expand(rows.numel())
        if priority.numel() != rows.numel():
            raise ValueError(
                f"Got {priority.numel()} priorities for {rows.numel()} slices: pass one priority per slice."
            )
        device = self._valid.device
        flat = (rows * self._shape[1] + lanes).to(device)
        priority = priority.reshape(-1).to(device).abs() + self.eps
        if not bool(torch.isfinite(priority).all()):
            raise ValueError("Priorities must be finite.")
        self._priority[flat] = priority
        self._max_priority = max(self._max_priority, float(priority.max()))
        self._set_priority_leaves(flat)

    # ---------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "slice_len": self.slice_len,
            "mode": self.mode,
            "max_priority": self._max_priority,
            "newest_row": self._newest_row,
        }
        if self._priority is not None:
            state["priority"] = self._priority.clone()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("slice_len", self.slice_len) != self.slice_len or state_dict.get("mode", self.mode) != self.mode:
            raise ValueError(
                f"Sampler state for slice_len={state_dict.get('slice_len')}, mode={state_dict.get('mode')!r} "
                f"cannot be loaded into slice_len={self.slice_len}, mode={self.mode!r}."
            )
        self._reset_state()
        self._max_priority = float(state_dict["max_priority"])
        self._newest_row = int(state_dict["newest_row"])
        self._loaded_priority = state_dict.get("priority")
        self._needs_rebuild = self._newest_row >= 0

    def _maybe_restore_priority(self) -> None:
        if self._loaded_priority is not None and self._priority is not None:
            self._priority.copy_(self._loaded_priority.to(self._priority.device))
            self._loaded_priority = None

    def dumps(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path / "sampler_state.pt")

    def loads(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(Path(path) / "sampler_state.pt", weights_only=True))

    def __repr__(self) -> str:
        extra = f", alpha={self.alpha}, beta={self.beta}" if self.mode == "prioritized" else ""
        return f"{type(self).__name__}(slice_len={self.slice_len}, mode={self.mode!r}{extra})"


class MultitaskReplayBuffer(TensorDictReplayBuffer):
    """Sub-trajectory replay for a batched multitask env, on a 2-D TorchRL storage.

    Stores collector batches of shape ``[N, T]`` (or flat ``[N * T]``, lane-major, when
    ``num_lanes`` is known) in ``LazyTensorStorage(capacity, ndim=2, device=device)``
    and samples ``[batch, slice_len]`` tensordicts of consecutive steps from one episode
    (see :class:`MultitaskSliceSampler`). Samples carry ``"index"`` (``[B, slice_len, 2]``
    storage cells) and, in prioritized mode, ``weight_key`` importance weights.

    Args:
        capacity (int): number of steps stored (all lanes together). Defaults to 10M.

    Keyword Args:
        slice_len (int): steps per sub-trajectory, ``H + 1``. Defaults to 4.
        mode (str): ``"uniform"``, ``"balanced"`` or ``"prioritized"``.
        alpha, beta, eps (float): PER parameters (prioritized mode).
        device: the training device: storage and samples live there. Defaults to CPU.
        batch_size (int, optional): default number of slices per :meth:`sample`.
        num_lanes (int, optional): lanes of the env; needed only to accept flat batches
            before the first ``[N, T]`` batch.
        traj_key, step_key, task_key (NestedKey): keys of the trajectory id, step counter
            and task id.
        weight_key (str): key of importance weights in samples. Defaults to ``"_weight"``.
        priority_key (str): key read by :meth:`update_tensordict_priority`.
            Defaults to ``"td_error"``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> rb = MultitaskReplayBuffer(64, slice_len=4, batch_size=5)
        >>> N, T = 2, 8
        >>> data = TensorDict(
        ...     {"observation": torch.randn(N, T, 128), "task": torch.tensor([[0], [1]]).expand(N, T),
        ...      "step_count": torch.arange(T).expand(N, T).unsqueeze(-1),
        ...      ("collector", "traj_ids"): torch.tensor([[0], [1]]).expand(N, T)},
        ...     batch_size=[N, T],
        ... )
        >>> _ = rb.extend(data)
        >>> batch = rb.sample()
        >>> batch.shape, batch["observation"].shape
        (torch.Size([5, 4]), torch.Size([5, 4, 128]))
        >>> bool((batch[("collector", "traj_ids")] == batch[("collector", "traj_ids")][:, :1]).all())
        True
    """

    def __init__(
        self,
        capacity: int = 10_000_000,
        *,
        slice_len: int = 4,
        mode: str = "uniform",
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        device: torch.device | str | None = None,
        batch_size: int | None = None,
        num_lanes: int | None = None,
        traj_key: NestedKey = ("collector", "traj_ids"),
        step_key: NestedKey = "step_count",
        task_key: NestedKey = "task",
        weight_key: str = "_weight",
        priority_key: str = "td_error",
        **kwargs: Any,
    ) -> None:
        if capacity < slice_len:
            raise ValueError(f"capacity={capacity} is smaller than slice_len={slice_len}.")
        sampler = MultitaskSliceSampler(
            slice_len,
            mode=mode,
            alpha=alpha,
            beta=beta,
            eps=eps,
            traj_key=traj_key,
            step_key=step_key,
            task_key=task_key,
            weight_key=weight_key,
        )
        storage = LazyTensorStorage(capacity, ndim=2, device=torch.device(device) if device is not None else "cpu")
        super().__init__(
            storage=storage,
            sampler=sampler,
            batch_size=batch_size,
            dim_extend=1,
            priority_key=priority_key,
            **kwargs,
        )
        self._num_lanes = num_lanes
        self.traj_key = traj_key
        self.step_key = step_key
        self.task_key = task_key
        self.weight_key = weight_key

    @property
    def slice_len(self) -> int:
        """Steps per sampled sub-trajectory."""
        return self._sampler.slice_len

    @property
    def mode(self) -> str:
        """The sampling mode."""
        return self._sampler.mode

    @property
    def num_lanes(self) -> int | None:
        """Lanes of the stored data (``None`` until known)."""
        shape = self._storage._total_shape if self._storage.initialized else None
        return int(shape[1]) if shape is not None else self._num_lanes

    @property
    def device(self) -> torch.device:
        """The storage's device (where samples come out)."""
        return torch.device(self._storage.device)

    def num_valid_slices(self) -> int:
        """Number of distinct sub-trajectories that can currently be sampled."""
        return self._sampler.num_valid(self._storage)

    def _check_and_shape(self, data: TensorDictBase) -> TensorDictBase:
        if not isinstance(data, TensorDictBase):
            raise TypeError(f"{type(self).__name__}.extend expects a TensorDict, got {type(data).__name__}.")
        missing = [k for k in (self.traj_key, self.step_key, self.task_key) if k not in data.keys(True)]
        if missing:
            raise KeyError(
                f"Data lacks the key(s) {missing} that slice sampling needs; set traj_key/step_key/task_key "
                f"to the keys your collector writes."
            )
        lanes = self.num_lanes
        if data.ndim == 1:
            if lanes is None:
                raise ValueError(
                    "Got a flat [N*T] batch but the number of lanes is unknown: pass num_lanes=N to the "
                    "constructor or extend with [N, T] batches."
                )
            if data.shape[0] % lanes:
                raise ValueError(f"A flat batch of {data.shape[0]} steps cannot be split into {lanes} lanes.")
            data = data.reshape(lanes, -1)
        elif data.ndim != 2:
            raise ValueError(f"Expected data of shape [N, T] (lanes x time) or flat [N*T], got {tuple(data.shape)}.")
        if lanes is not None and data.shape[0] != lanes:
            raise ValueError(f"This buffer stores {lanes} lanes, got a batch of shape {tuple(data.shape)}.")
        if self._storage.initialized:
            rows = int(self._storage._total_shape[0])
            if data.shape[1] > rows:
                raise ValueError(
                    f"A batch of {data.shape[1]} time steps exceeds the {rows} steps per lane of this buffer."
                )
        elif -(-self._storage.max_size // data.shape[0]) < self.slice_len:
            raise ValueError(
                f"capacity={self._storage.max_size} holds fewer than slice_len={self.slice_len} steps per lane "
                f"for {data.shape[0]} lanes."
            )
        meta = [k for k in _SAMPLE_META_KEYS + (self.weight_key, self.priority_key) if k in data.keys()]
        if meta:
            data = data.exclude(*meta)
        return data

    def extend(self, tensordicts: TensorDictBase, *, update_priority: bool | None = None) -> torch.Tensor:
        """Writes a ``[N, T]`` (or flat ``[N*T]``) collector batch; returns the ``[N*T, 2]`` cells written.

        New slices get the current maximum priority in prioritized mode; ``update_priority``
        is accepted for signature compatibility and ignored.
        """
        data = self._check_and_shape(tensordicts)
        if self._transform is not None and len(self._transform):
            data = self._transform.inv(data)
        return ReplayBuffer._extend(self, data)

    def add(self, data: TensorDictBase) -> torch.Tensor:
        raise RuntimeError(f"{type(self).__name__} stores whole [N, T] batches: use extend().")

    def _sample(self, batch_size: int) -> tuple[TensorDictBase, dict]:
        # Same as TensorDictReplayBuffer._sample, but gathers through a flat index_select per
        # leaf: on CPU, advanced indexing with (rows, lanes) tensors is ~50x slower.
        with self._replay_lock, self._write_lock:
            index, info = self._sampler.sample(self._storage, batch_size)
            info["index"] = index
            rows, lanes = index
            flat = (rows * self._storage._total_shape[1] + lanes).reshape(-1)
            data = self._storage._storage.apply(
                lambda x: x.flatten(0, 1).index_select(0, flat).unflatten(0, rows.shape),
                batch_size=rows.shape,
            )
        if self._transform is not None and len(self._transform):
            with data.unlock_():
                data = self._transform(data)
        return data, info

    def update_priority(self, index: Any, priority: float | torch.Tensor) -> None:
        """Sets per-slice priorities; ``index`` is a sample's ``"index"`` entry (``[B, slice_len, 2]``).

        Examples:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> rb = MultitaskReplayBuffer(40, slice_len=2, mode="prioritized", batch_size=4)
            >>> data = TensorDict({"task": torch.zeros(1, 10, dtype=torch.long),
            ...     "step_count": torch.arange(10)[None], ("collector", "traj_ids"): torch.zeros(1, 10, dtype=torch.long)},
            ...     batch_size=[1, 10])
            >>> _ = rb.extend(data)
            >>> batch = rb.sample()
            >>> rb.update_priority(batch["index"], torch.rand(4))
        """
        with self._replay_lock, self._write_lock:
            self._sampler.update_priority(index, priority, storage=self._storage)

    def update_tensordict_priority(self, data: TensorDictBase) -> None:
        """Reads ``priority_key`` (``[B]``, ``[B, 1]`` or ``[B, slice_len(, 1)]``, max over time) and ``"index"``."""
        priority = data.get(self.priority_key)
        if priority.ndim > 1:
            priority = priority.reshape(priority.shape[0], -1).amax(-1)
        self.update_priority(data.get("index"), priority)


class MixedReplayBuffer:
    """Samples one batch whose first part comes from demonstrations, the rest from online data.

    Newt samples half of every batch from demonstrations when demos are present. Both
    buffers must produce slices of the same length; only the keys common to both are
    kept, importance weights are filled with ones for a non-prioritized side, and
    ``source_key`` marks the demo rows.

    Args:
        online (MultitaskReplayBuffer): where collected data goes (:meth:`extend`).
        demos (MultitaskReplayBuffer): demonstrations (see :func:`~torchrl_newt.data.add_demos`).

    Keyword Args:
        demo_fraction (float): fraction of each batch drawn from ``demos``. Defaults to 0.5.
        batch_size (int, optional): default batch size.
        source_key (str): boolean key, ``True`` on demo rows. Defaults to ``"is_demo"``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> def episode(traj):
        ...     return TensorDict({"observation": torch.randn(1, 6, 128), "task": torch.zeros(1, 6, dtype=torch.long),
        ...         "step_count": torch.arange(6)[None], ("collector", "traj_ids"): torch.full((1, 6), traj)},
        ...         batch_size=[1, 6])
        >>> online, demos = MultitaskReplayBuffer(12), MultitaskReplayBuffer(12)
        >>> _ = online.extend(episode(0)); _ = demos.extend(episode(1))
        >>> mixed = MixedReplayBuffer(online, demos, demo_fraction=0.5, batch_size=8)
        >>> batch = mixed.sample()
        >>> batch.shape, batch["is_demo"][:, 0].tolist()
        (torch.Size([8, 4]), [True, True, True, True, False, False, False, False])
    """

    def __init__(
        self,
        online: MultitaskReplayBuffer,
        demos: MultitaskReplayBuffer | None,
        *,
        demo_fraction: float = 0.5,
        batch_size: int | None = None,
        source_key: str = "is_demo",
    ) -> None:
        if not 0.0 <= demo_fraction <= 1.0:
            raise ValueError(f"demo_fraction must lie in [0, 1], got {demo_fraction}.")
        if demos is not None and demos.slice_len != online.slice_len:
            raise ValueError(
                f"online and demo buffers sample different slice lengths ({online.slice_len} vs {demos.slice_len})."
            )
        self.online = online
        self.demos = demos
        self.demo_fraction = float(demo_fraction)
        self.batch_size = batch_size
        self.source_key = source_key

    def __len__(self) -> int:
        return len(self.online) + (len(self.demos) if self.demos is not None else 0)

    def extend(self, data: TensorDictBase) -> torch.Tensor:
        """Adds collected data to the online buffer."""
        return self.online.extend(data)

    def num_demo(self, batch_size: int) -> int:
        """How many rows of a batch of ``batch_size`` come from demos."""
        if self.demos is None or len(self.demos) == 0:
            return 0
        return round(batch_size * self.demo_fraction)

    def sample(self, batch_size: int | None = None) -> TensorDictBase:
        """Returns ``[batch_size, slice_len]``: demo rows first, then online rows."""
        batch_size = batch_size if batch_size is not None else self.batch_size
        if batch_size is None:
            raise RuntimeError("batch_size not given to the constructor nor to sample().")
        n_demo = self.num_demo(batch_size)
        parts = []
        if n_demo:
            parts.append(self.demos.sample(n_demo))
        if batch_size - n_demo:
            parts.append(self.online.sample(batch_size - n_demo))
        weight_keys = {b.weight_key for b in (self.online, self.demos) if b is not None}
        if len(parts) == 2:
            for key in weight_keys:
                if (key in parts[0].keys()) != (key in parts[1].keys()):
                    for part in parts:
                        if key not in part.keys():
                            part.set(key, torch.ones(part.shape, dtype=torch.float32, device=part.device))
            common = set(parts[0].keys(True, True)) & set(parts[1].keys(True, True))
            parts = [part.select(*common) for part in parts]
        out = torch.cat(parts, 0)
        is_demo = torch.zeros(out.shape, dtype=torch.bool, device=out.device)
        is_demo[:n_demo] = True
        out.set(self.source_key, is_demo)
        return out

    def update_tensordict_priority(self, data: TensorDictBase) -> None:
        """Routes priorities of a mixed batch to the buffer each row came from (prioritized ones only)."""
        is_demo = data.get(self.source_key)[:, 0]
        for buffer, rows in ((self.demos, is_demo), (self.online, ~is_demo)):
            if buffer is not None and buffer.mode == "prioritized" and bool(rows.any()):
                buffer.update_tensordict_priority(data[rows])

    def state_dict(self) -> dict[str, Any]:
        """Both buffers' states."""
        return {
            "online": self.online.state_dict(),
            "demos": self.demos.state_dict() if self.demos is not None else None,
            "demo_fraction": self.demo_fraction,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores both buffers."""
        self.online.load_state_dict(state_dict["online"])
        if self.demos is not None and state_dict.get("demos") is not None:
            self.demos.load_state_dict(state_dict["demos"])
        self.demo_fraction = float(state_dict["demo_fraction"])
