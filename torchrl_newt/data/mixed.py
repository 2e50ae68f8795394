"""Demonstration + online replay: one batch, part demos, part collected data.

:class:`MixedReplayBuffer` draws Newt's half-demo, half-online batches from two
:class:`~torchrl_newt.data.MultitaskReplayBuffer` s and routes priority updates of such a batch
back, row by row, to the buffer each row came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDictBase

if TYPE_CHECKING:  # pragma: no cover
    from torchrl_newt.data.replay import MultitaskReplayBuffer

__all__ = ["MixedReplayBuffer"]


def _split_cells(index: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, lanes)`` of a sample's index, each ``[B, ...]`` (a ``[B, ..., 2]`` tensor is split)."""
    if isinstance(index, tuple):
        rows, lanes = (torch.as_tensor(i) for i in index)
        return rows, lanes
    index = torch.as_tensor(index)
    if index.shape[-1] != 2 or index.ndim < 2:
        raise ValueError(
            "Expected a 2-D storage index of shape [B, 2] or [B, slice_len, 2] (row, lane), "
            f"got shape {tuple(index.shape)}."
        )
    return index[..., 0], index[..., 1]


class MixedReplayBuffer:
    """Samples one batch whose first part comes from demonstrations, the rest from online data.

    Newt samples half of every batch from demonstrations when demos are present. Both
    buffers must produce slices of the same length; only the keys common to both are
    kept, importance weights are filled with ones for a non-prioritized side, and
    ``source_key`` marks the demo rows. The demo rows come first: ``round(B * demo_fraction)``
    of them (Python's rounding: 2 of 3, 4 of 7), so a batch cannot be split by hand at ``B // 2``;
    :meth:`update_tensordict_priority` and :meth:`update_priority` route each row's priority to
    the buffer it came from.

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
        >>> from torchrl_newt.data import MultitaskReplayBuffer
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

    def update_priority(
        self,
        index: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        priority: float | torch.Tensor,
        *,
        is_demo: torch.Tensor | None = None,
    ) -> None:
        """Sets the priorities of a mixed sample's slices, each in the buffer its row came from.

        Rows of a buffer that does not sample by priority are skipped.

        Args:
            index: the mixed sample's ``"index"`` entry (``[B, slice_len, 2]`` or ``[B, 2]``
                cells, or a ``(rows, lanes)`` pair of ``[B]`` / ``[B, slice_len]`` tensors).
            priority: ``[B]`` per-slice priorities (e.g. the world-model loss's ``td_error``), per
                step ``[B, slice_len(, 1)]`` (the maximum over time is used), or one number.
            is_demo: ``[B]`` (or ``[B, slice_len]``) flags of the demo rows, i.e. the sample's
                ``source_key`` entry. Defaults to the layout :meth:`sample` produces now: the
                first :meth:`num_demo` ``(B)`` rows are demos.

        Examples:
            >>> import torch
            >>> from tensordict import TensorDict
            >>> from torchrl_newt.data import MultitaskReplayBuffer
        >>> from torchrl_newt.data import MultitaskReplayBuffer
            >>> def episode(traj):
            ...     return TensorDict({"task": torch.zeros(1, 6, dtype=torch.long), "step_count": torch.arange(6)[None],
            ...         ("collector", "traj_ids"): torch.full((1, 6), traj)}, batch_size=[1, 6])
            >>> online = MultitaskReplayBuffer(12, mode="prioritized")
            >>> demos = MultitaskReplayBuffer(12, mode="prioritized")
            >>> _ = online.extend(episode(0)); _ = demos.extend(episode(1))
            >>> mixed = MixedReplayBuffer(online, demos, batch_size=3)
            >>> batch = mixed.sample()  # round(3 * 0.5) = 2 demo rows, then 1 online row
            >>> mixed.update_priority(batch["index"], torch.tensor([6.0, 6.0, 7.0]))
            >>> round(float(online._sampler._priority.max()), 3), round(float(demos._sampler._priority.max()), 3)
            (7.0, 6.0)
        """
        rows, lanes = _split_cells(index)
        B = rows.shape[0]
        priority = torch.as_tensor(priority)
        if priority.numel() == 1:
            priority = priority.reshape(1).expand(B)
        elif priority.ndim > 1:
            priority = priority.reshape(priority.shape[0], -1).amax(-1)
        if priority.shape[0] != B:
            raise ValueError(f"Got {priority.shape[0]} priorities for {B} slices: pass one priority per slice.")
        if is_demo is None:
            is_demo = torch.zeros(B, dtype=torch.bool)
            is_demo[: self.num_demo(B)] = True
        else:
            is_demo = torch.as_tensor(is_demo)
            is_demo = is_demo.reshape(is_demo.shape[0], -1)[:, 0] if is_demo.ndim > 1 else is_demo
            if is_demo.shape[0] != B:
                raise ValueError(f"Got {is_demo.shape[0]} is_demo flags for {B} slices.")
        is_demo = is_demo.to(torch.bool)
        for buffer, select in ((self.demos, is_demo), (self.online, ~is_demo)):
            if buffer is None or buffer.mode != "prioritized" or not bool(select.any()):
                continue
            which = select.nonzero().squeeze(-1)
            cells = (rows.index_select(0, which.to(rows.device)), lanes.index_select(0, which.to(lanes.device)))
            buffer.update_priority(cells, priority.index_select(0, which.to(priority.device)))

    def update_tensordict_priority(self, data: TensorDictBase, priority: torch.Tensor | None = None) -> None:
        """Routes the priorities of a mixed sample ``data`` to the buffer each row came from.

        Reads the rows' origin from ``data[source_key]`` and their cells from ``data["index"]``
        (see :meth:`update_priority`); only prioritized buffers are updated.

        Args:
            data: a sample of :meth:`sample` (any batch size).
            priority: ``[B]`` or ``[B, slice_len(, 1)]`` priorities, e.g. the world-model loss's
                ``td_error``. Defaults to ``data[priority_key]`` of the online buffer.
        """
        if priority is None:
            priority = data.get(self.online.priority_key)
        self.update_priority(data.get("index"), priority, is_demo=data.get(self.source_key))

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
