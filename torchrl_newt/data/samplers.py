"""Slice sampling of multitask sub-trajectories on 2-D (time x lanes) TorchRL storages.

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

import math
from pathlib import Path
from typing import Any

import torch
from tensordict.utils import NestedKey
from torchrl.data.replay_buffers.samplers import Sampler
from torchrl.data.replay_buffers.storages import Storage

from torchrl_newt.data.sum_tree import SumTree

__all__ = ["SAMPLING_MODES", "MultitaskSliceSampler"]

SAMPLING_MODES = ("uniform", "balanced", "prioritized")


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
        weight_key (str): info key of the importance weights. Defaults to ``"priority_weight"``
            (TorchRL's key, which the losses of :mod:`torchrl_newt.objectives` read).

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
        weight_key: str = "priority_weight",
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
