"""A pure-torch segment tree (sum or min) for weighted sampling on any device.

:class:`SumTree` draws an index with probability proportional to its leaf weight in
``O(batch * log(size))`` tensor ops and refreshes changed leaves in ``O(changed * log(size))``;
:class:`~torchrl_newt.data.MultitaskSliceSampler` keeps one over its slice starts (and a ``"min"``
tree for the importance weights of prioritized replay).
"""

from __future__ import annotations

import math

import torch

__all__ = ["SumTree"]


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
