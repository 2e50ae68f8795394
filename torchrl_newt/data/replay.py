"""The multitask sub-trajectory replay buffer, on a 2-D TorchRL storage.

:class:`MultitaskReplayBuffer` stores a batched multitask env's ``[N, T]`` collector batches
(time x lanes, see :mod:`torchrl_newt.data.samplers` for the layout) and samples
``[batch, slice_len]`` sub-trajectories with a :class:`~torchrl_newt.data.MultitaskSliceSampler`.
The sum tree lives in :mod:`torchrl_newt.data.sum_tree`, the sampler in
:mod:`torchrl_newt.data.samplers` and the demo/online mix in :mod:`torchrl_newt.data.mixed`; their
names stay importable from here.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import LazyTensorStorage, ReplayBuffer, TensorDictReplayBuffer

from torchrl_newt.data.mixed import MixedReplayBuffer
from torchrl_newt.data.samplers import SAMPLING_MODES, MultitaskSliceSampler
from torchrl_newt.data.sum_tree import SumTree

__all__ = [
    "SAMPLING_MODES",
    "MixedReplayBuffer",
    "MultitaskReplayBuffer",
    "MultitaskSliceSampler",
    "SumTree",
]

# Keys written by the buffer into samples: never stored back.
_SAMPLE_META_KEYS = ("index", "_weight", "priority_weight")


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
        weight_key (str): key of importance weights in samples. Defaults to ``"priority_weight"``
            (TorchRL's key, which the losses of :mod:`torchrl_newt.objectives` read).
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
        weight_key: str = "priority_weight",
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

    def update_tensordict_priority(self, data: TensorDictBase, priority: torch.Tensor | None = None) -> None:
        """Sets the priorities of the slices of a sample ``data`` (read from its ``"index"``).

        Args:
            data: a sample of this buffer.
            priority: per-slice priorities ``[B]`` (e.g. the world-model loss's ``td_error``), or
                per step ``[B, slice_len(, 1)]`` (the maximum over time is used). Defaults to
                ``data[priority_key]``.

        Examples:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> rb = MultitaskReplayBuffer(40, slice_len=2, mode="prioritized", batch_size=4)
            >>> data = TensorDict({"task": torch.zeros(1, 10, dtype=torch.long),
            ...     "step_count": torch.arange(10)[None], ("collector", "traj_ids"): torch.zeros(1, 10, dtype=torch.long)},
            ...     batch_size=[1, 10])
            >>> _ = rb.extend(data)
            >>> batch = rb.sample()
            >>> rb.update_tensordict_priority(batch, torch.full((4,), 2.0))
        """
        if priority is None:
            priority = data.get(self.priority_key)
        priority = torch.as_tensor(priority)
        if priority.ndim > 1:
            priority = priority.reshape(priority.shape[0], -1).amax(-1)
        self.update_priority(data.get("index"), priority)

