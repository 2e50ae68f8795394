"""Building blocks of the Newt world model: SimNorm, task-conditioned MLPs and fused ensembles.

Every Newt component concatenates a task embedding to its input. For a task id ``k`` the first
layer computes ``W [x; e_k] + b = W_x x + (W_e e_k) + b``; :class:`TaskMLP` keeps the single
weight ``W`` (same parameters, same gradients as the concatenation) but evaluates the task part
once per *task* (``E W_e^T``, ``num_tasks x out``) and gathers it per sample, which removes
most of the first layer's cost when the embedding is wide (512-d CLIP features vs a 384-d latent).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SimNorm", "TaskMLP", "dropout", "mish", "simnorm"]


def simnorm(x: torch.Tensor, dim: int = 8) -> torch.Tensor:
    """Simplicial normalisation: a softmax over consecutive groups of ``dim`` features.

    Examples:
        >>> z = simnorm(torch.randn(2, 16), dim=8)
        >>> torch.allclose(z.view(2, 2, 8).sum(-1), torch.ones(2, 2))
        True
    """
    shape = x.shape
    if shape[-1] % dim:
        raise ValueError(f"SimNorm group size {dim} does not divide the feature size {shape[-1]}")
    return F.softmax(x.unflatten(-1, (-1, dim)), dim=-1).flatten(-2)


class SimNorm(nn.Module):
    """Module form of :func:`simnorm`.

    Args:
        dim: size of each simplex group.

    Examples:
        >>> SimNorm(4)(torch.zeros(1, 8))
        tensor([[0.2500, 0.2500, 0.2500, 0.2500, 0.2500, 0.2500, 0.2500, 0.2500]])
    """

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return simnorm(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish, ``x * tanh(softplus(x))``; without autograd it uses a one-``exp`` in-place form.

    ``tanh(log(1 + e^x)) = n / (n + 2)`` with ``n = e^x (e^x + 2)``: a single transcendental
    instead of three, about 1.6x faster than ``F.mish`` on CPU in the planner's inner loop
    (identical up to float rounding; ``x`` is clamped inside ``exp`` where ``tanh`` saturates).

    Examples:
        >>> x = torch.linspace(-30, 30, 101)
        >>> with torch.no_grad():
        ...     torch.allclose(mish(x), F.mish(x), atol=1e-6)
        True
        >>> x.requires_grad_()
        tensor(...)
        >>> torch.autograd.gradcheck(mish, x[45:55].double().detach().requires_grad_())
        True
    """
    if torch.is_grad_enabled() and x.requires_grad:
        if torch.compiler.is_compiling():  # let the compiler derive and fuse the backward
            return F.mish(x)
        return _Mish.apply(x)
    e = torch.exp(x.clamp(max=20.0))
    n = (e + 2).mul_(e)
    return n.div_(n + 2).mul_(x)


class _Mish(torch.autograd.Function):
    """Mish with the one-``exp`` form in both passes (~1.35x faster than ``F.mish`` fwd+bwd on CPU).

    ``d/dx mish(x) = t + x * sigmoid(x) * (1 - t^2)`` with ``t = tanh(softplus(x))``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(x.clamp(max=20.0))
        n = (e + 2).mul_(e)
        t = n.div_(n + 2)
        ctx.save_for_backward(x, e, t)
        return x * t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, e, t = ctx.saved_tensors
        sig = e / (e + 1)
        return grad * (1 - t * t).mul_(sig).mul_(x).add_(t)


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dim with (possibly per-ensemble-member, broadcast) affine params."""
    if weight.dim() == 1:
        return F.layer_norm(x, x.shape[-1:], weight, bias, 1e-5)
    return torch.addcmul(bias, F.layer_norm(x, x.shape[-1:], None, None, 1e-5), weight)


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout (training mode) that draws ~``p * numel`` random numbers instead of ``numel``.

    The number of dropped entries is drawn from ``Binomial(numel, p)`` and their positions as a
    uniformly random subset, which is exactly i.i.d. ``Bernoulli(p)`` dropping; for Newt's
    ``p = 0.01`` on a ``[3, 768, 256]`` activation this is ~10x cheaper than ``F.dropout`` on CPU,
    where generating one random number per entry dominates. Falls back to ``F.dropout`` for
    ``p > 0.1`` or small tensors.

    Examples:
        >>> x = torch.ones(200_000)
        >>> y = dropout(x, 0.01)
        >>> dropped = (y == 0).float().mean().item()
        >>> 0.008 < dropped < 0.012, abs(y.max().item() - 1 / 0.99) < 1e-6
        (True, True)
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    n = x.numel()
    if p == 0.0:
        return x
    if p > 0.1 or n < 4096 or torch.compiler.is_compiling():  # compiled: fused RNG kernels, static shapes
        return F.dropout(x, p, training=True)
    k = int(torch.binomial(torch.tensor(float(n)), torch.tensor(p)).item())
    out = x * (1.0 / (1.0 - p))
    if k == 0:
        return out
    # a uniform k-subset: draw with replacement, keep distinct positions, subsample k of them
    idx = torch.randint(n, (k + k // 8 + 16,), device=x.device)
    idx = torch.unique(idx)
    while idx.numel() < k:  # rare: too many collisions
        idx = torch.unique(torch.cat([idx, torch.randint(n, (k,), device=x.device)]))
    idx = idx[torch.randperm(idx.numel(), device=x.device)[:k]]
    return out.reshape(-1).index_fill(0, idx, 0.0).view_as(x)


def _accumulate(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``h + y``, in place when ``h`` already has the broadcast shape."""
    if h.shape == torch.broadcast_shapes(h.shape, y.shape):
        return h.add_(y)
    return h + y


class TaskMLP(nn.Module):
    """An MLP (Linear -> LayerNorm -> Mish blocks) conditioned on a task embedding, optionally a
    fused ensemble of identically shaped members.

    The hidden blocks are ``Linear -> [Dropout] -> LayerNorm -> Mish``; the last layer is a plain
    ``Linear`` unless ``out_act`` is ``"simnorm"``, in which case it is
    ``Linear -> LayerNorm -> SimNorm`` (TD-MPC2's encoder/dynamics heads). Weights are
    initialised with a truncated normal (std 0.02) and zero biases; ``zero_last`` zero-initialises
    the last layer (reward and Q heads).

    Args:
        in_dim: size of the non-task input.
        hidden_dims: widths of the hidden blocks (at least one).
        out_dim: output size.
        task_dim: size of the task embedding concatenated to the input (0 for none).
        num_members: ``None`` for a single MLP, else the ensemble size (outputs get a leading
            member dimension).
        out_act: ``None`` or ``"simnorm"``.
        simnorm_dim: group size of SimNorm.
        dropout: dropout probability after the first linear layer (only in training mode with
            gradients enabled: planning and TD targets, computed under ``no_grad``, are
            deterministic).
        zero_last: zero-initialise the last layer's weights.

    Examples:
        >>> mlp = TaskMLP(10, [32], 5, task_dim=4, num_members=3)
        >>> table = torch.randn(7, 4)  # 7 tasks
        >>> out = mlp(torch.randn(2, 6, 10), task_table=table, task=torch.randint(7, (2, 6)))
        >>> out.shape
        torch.Size([3, 2, 6, 5])
        >>> sum(p.numel() for p in mlp.parameters()) == 3 * ((14 * 32 + 32) + 64 + (32 * 5 + 5))
        True
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        *,
        task_dim: int = 0,
        num_members: int | None = None,
        out_act: str | None = None,
        simnorm_dim: int = 8,
        dropout: float = 0.0,
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        if not hidden_dims:
            raise ValueError("TaskMLP needs at least one hidden layer")
        if out_act not in (None, "simnorm"):
            raise ValueError(f"out_act must be None or 'simnorm', got {out_act!r}")
        self.in_dim, self.task_dim, self.out_dim = in_dim, task_dim, out_dim
        self.num_members = num_members
        self.out_act, self.simnorm_dim, self.dropout = out_act, simnorm_dim, dropout
        lead = () if num_members is None else (num_members,)
        dims = [in_dim + task_dim, *hidden_dims, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norm_weights = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        n_layers = len(dims) - 1
        for i in range(n_layers):
            w = torch.empty(*lead, dims[i + 1], dims[i])
            nn.init.trunc_normal_(w, std=0.02)
            if zero_last and i == n_layers - 1:
                w.zero_()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(*lead, dims[i + 1])))
            if i < n_layers - 1 or out_act == "simnorm":
                self.norm_weights.append(nn.Parameter(torch.ones(*lead, dims[i + 1])))
                self.norm_biases.append(nn.Parameter(torch.zeros(*lead, dims[i + 1])))

    def _first(
        self, parts: tuple[torch.Tensor, ...], task_table: torch.Tensor | None, task: torch.Tensor | None, members
    ) -> torch.Tensor:
        w, b = self.weights[0], self.biases[0]
        if members is not None:
            w, b = w[members], b[members]
        offsets = [0]
        for part in parts:
            offsets.append(offsets[-1] + part.shape[-1])
        # W [x1; x2] = W_1 x1 + W_2 x2: no concatenation, and parts broadcast. The largest part
        # goes first (with the bias fused); the others are added in place (the outputs of
        # linear/einsum are not needed by their backward, so in-place adds are safe).
        rows = [part[..., :1].numel() for part in parts]
        first = rows.index(max(rows))
        order = [first] + [i for i in range(len(parts)) if i != first]
        h = None
        for i in order:
            part, w_p = parts[i], w[..., offsets[i] : offsets[i + 1]]
            if w.dim() == 2:
                y = F.linear(part, w_p, b if h is None else None)
            else:  # ensemble: [M, out, in] -> x @ W^T for every member, member dim leading
                y = torch.einsum("...i,moi->m...o", part, w_p)
                if h is None:
                    y = y + b.view(b.shape[0], *([1] * (y.dim() - 2)), -1)
            h = y if h is None else _accumulate(h, y)
        if self.task_dim:
            if task_table is None or task is None:
                raise ValueError("this network is task-conditioned: pass task_table and task")
            w_e = w[..., self.in_dim :]
            # F.embedding gathers the rows: its backward is ~3x cheaper than indexing's index_put on CPU
            if w.dim() == 2:
                proj = task_table @ w_e.T  # [num_tasks, out]
                h = _accumulate(h, F.embedding(task, proj))
            else:
                proj = torch.einsum("ke,moe->kmo", task_table, w_e)  # [num_tasks, M, out]
                m, o = proj.shape[1:]
                gathered = F.embedding(task, proj.reshape(proj.shape[0], m * o)).unflatten(-1, (m, o))  # [*b, M, out]
                h = _accumulate(h, gathered.movedim(-2, 0))
        return h

    def forward(
        self,
        x: torch.Tensor,
        *,
        task_table: torch.Tensor | None = None,
        task: torch.Tensor | None = None,
        members: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Evaluate the network.

        Args:
            x: input ``[*batch, in_dim]``, or a tuple of parts whose sizes add up to ``in_dim``
                (the first layer applies the matching column blocks of its weight to each part and
                sums, so parts broadcast: e.g. one latent ``[N, 1, L]`` against ``[N, S, A]``
                actions computes the latent's share once per row instead of once per sample).
            task_table: ``[num_tasks, task_dim]`` embeddings (required when ``task_dim > 0``).
            task: integer task ids indexing ``task_table``, of shape ``[*batch]`` or any shape that
                broadcasts against it (e.g. ``[N, 1]`` for ``[N, S]`` samples that share a task,
                which avoids gathering one row per sample).
            members: for an ensemble, indices of the members to evaluate (default: all).

        Returns:
            ``[*batch, out_dim]`` or ``[M, *batch, out_dim]`` for an ensemble.
        """
        parts = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        if sum(p.shape[-1] for p in parts) != self.in_dim:
            shapes = [tuple(p.shape) for p in parts] if isinstance(x, (tuple, list)) else tuple(x.shape)
            raise ValueError(f"expected input of size {self.in_dim} in the last dim, got shape {shapes}")
        h = self._first(parts, task_table, task, members)
        n = len(self.weights)
        ensemble = self.weights[0].dim() == 3
        for i in range(n):
            if i > 0:
                w, b = self.weights[i], self.biases[i]
                if members is not None:
                    w, b = w[members], b[members]
                if ensemble:
                    shape = h.shape
                    h = torch.baddbmm(b.unsqueeze(1), h.reshape(shape[0], -1, shape[-1]), w.transpose(1, 2))
                    h = h.view(*shape[:-1], -1)
                else:
                    h = F.linear(h, w, b)
            if i == 0 and self.dropout and self.training and torch.is_grad_enabled():
                h = dropout(h, self.dropout)
            if i < n - 1 or self.out_act == "simnorm":
                nw, nb = self.norm_weights[i], self.norm_biases[i]
                if members is not None:
                    nw, nb = nw[members], nb[members]
                if ensemble:
                    view = (nw.shape[0], *([1] * (h.dim() - 2)), nw.shape[-1])
                    nw, nb = nw.view(view), nb.view(view)
                h = _layer_norm(h, nw, nb)
                h = mish(h) if i < n - 1 else simnorm(h, self.simnorm_dim)
        return h

    def extra_repr(self) -> str:
        dims = [self.in_dim + self.task_dim] + [w.shape[-2] for w in self.weights]
        ens = f", members={self.num_members}" if self.num_members else ""
        return f"dims={dims}, task_dim={self.task_dim}{ens}, out_act={self.out_act}, dropout={self.dropout}"

