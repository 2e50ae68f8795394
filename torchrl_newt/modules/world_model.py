"""The Newt / TD-MPC2 world model: encoder, latent dynamics, reward, policy prior and Q ensemble.

All components are task-conditioned MLPs (:class:`~torchrl_newt.modules.layers.TaskMLP`) over a
SimNorm latent. Rewards and values are categorical (two-hot) over ``num_bins`` bins spaced
uniformly in symlog space on ``[vmin, vmax]``. The target Q copy lives in the loss
(:class:`~torchrl_newt.objectives.TDMPC2WorldModelLoss`), TorchRL style.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.objectives import symexp, symlog, two_hot_cross_entropy

from torchrl_newt.modules.layers import TaskMLP

__all__ = ["NewtWorldModel", "PolicyOutput", "MODEL_SIZES"]

#: (enc_dim, mlp_dim, latent_dim, num_enc_layers, num_q) per model size.
MODEL_SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "S": (128, 256, 384, 2, 3),
    "B": (256, 512, 512, 2, 5),
    "L": (1024, 1024, 512, 3, 5),
    "XL": (2048, 2048, 704, 4, 7),
}

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class PolicyOutput(NamedTuple):
    """What :meth:`NewtWorldModel.pi` returns (all ``[*batch, action_dim]`` or ``[*batch, 1]``)."""

    action: torch.Tensor
    mean: torch.Tensor
    log_std: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor
    scaled_entropy: torch.Tensor


class _Call(nn.Module):
    """Adapter exposing one method of the world model as a module (for TensorDictModule)."""

    def __init__(self, world_model: "NewtWorldModel", method: str) -> None:
        super().__init__()
        self.world_model = world_model
        self.method = method

    def forward(self, *args: torch.Tensor):
        wm = self.world_model
        if self.method == "q":
            return wm.q_value(*args, reduce="avg")
        if self.method == "reward":
            return wm.decode(wm.reward(*args))
        return getattr(wm, self.method)(*args)


class NewtWorldModel(nn.Module):
    """Newt's implicit, language-conditioned world model (TD-MPC2 architecture).

    Components (MLPs with LayerNorm and Mish; inputs concatenated with the task embedding):
    encoder ``h(o, e) -> z`` (SimNorm), dynamics ``d(z, a, e) -> z'`` (SimNorm), reward
    ``R(z, a, e)`` (two-hot logits), policy prior ``pi(z, e)`` (tanh-Gaussian) and an ensemble of
    ``num_q`` Q heads ``Q_i(z, a, e)`` (two-hot logits).

    Task conditioning: pass ``task_embeddings`` (a ``[num_tasks, D]`` tensor, e.g. CLIP text
    features; kept frozen as a buffer), or ``num_tasks`` for a learnable ``task_dim``-d embedding
    (TD-MPC2 multitask style, norm clipped to 1), or neither for a single-task model.

    Args:
        obs_dim: observation size (Newt pads to 128).
        action_dim: action size (Newt pads to 16).
        size: ``"S"``, ``"B"``, ``"L"`` or ``"XL"`` (see :data:`MODEL_SIZES`); explicit
            ``enc_dim``/``mlp_dim``/``latent_dim``/``num_enc_layers``/``num_q`` override it.
        task_embeddings: frozen ``[num_tasks, D]`` task table.
        num_tasks: number of tasks for a learnable table (ignored if ``task_embeddings`` given).
        task_dim: width of the learnable table.
        simnorm_dim: SimNorm group size.
        num_bins, vmin, vmax: two-hot support (symlog space).
        log_std_min, log_std_max: range of the policy's log standard deviation.
        q_dropout: dropout after the first layer of each Q head. Newt uses none (the default;
            reference ``common/layers.py:55-67``); TD-MPC2 used ``0.01``.

    Examples:
        >>> wm = NewtWorldModel(obs_dim=128, action_dim=16, size="S", task_embeddings=torch.randn(4, 512))
        >>> sum(p.numel() for p in wm.parameters() if p.requires_grad)
        2143284
        >>> obs, task = torch.randn(5, 128), torch.tensor([0, 1, 2, 3, 0])
        >>> z = wm.encode(obs, task)
        >>> a = wm.pi(z, task).action
        >>> wm.next(z, a, task).shape, wm.q(z, a, task).shape
        (torch.Size([5, 384]), torch.Size([3, 5, 101]))
    """

    def __init__(
        self,
        obs_dim: int = 128,
        action_dim: int = 16,
        *,
        size: str = "S",
        task_embeddings: torch.Tensor | None = None,
        num_tasks: int | None = None,
        task_dim: int = 96,
        enc_dim: int | None = None,
        mlp_dim: int | None = None,
        latent_dim: int | None = None,
        num_enc_layers: int | None = None,
        num_q: int | None = None,
        simnorm_dim: int = 8,
        num_bins: int = 101,
        vmin: float = -10.0,
        vmax: float = 10.0,
        log_std_min: float = -10.0,
        log_std_max: float = 2.0,
        q_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {list(MODEL_SIZES)}")
        d_enc, d_mlp, d_lat, n_enc, n_q = MODEL_SIZES[size]
        enc_dim = enc_dim or d_enc
        mlp_dim = mlp_dim or d_mlp
        latent_dim = latent_dim or d_lat
        num_enc_layers = num_enc_layers or n_enc
        num_q = num_q or n_q
        if num_q < 2:
            raise ValueError("the Q ensemble needs at least 2 heads (planning and TD targets use 2)")
        if latent_dim % simnorm_dim:
            raise ValueError(f"latent_dim {latent_dim} must be a multiple of simnorm_dim {simnorm_dim}")
        self.obs_dim, self.action_dim, self.latent_dim = obs_dim, action_dim, latent_dim
        self.num_q, self.num_bins = num_q, num_bins
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.size = size

        if task_embeddings is not None:
            if task_embeddings.dim() != 2:
                raise ValueError(f"task_embeddings must be [num_tasks, dim], got shape {tuple(task_embeddings.shape)}")
            self.register_buffer("task_embeddings", task_embeddings.detach().float().clone())
            self.task_embedding = None
            task_dim = task_embeddings.shape[1]
            num_tasks = task_embeddings.shape[0]
        elif num_tasks is not None:
            self.task_embeddings = None
            self.task_embedding = nn.Embedding(num_tasks, task_dim)
            nn.init.uniform_(self.task_embedding.weight, -1.0, 1.0)
        else:
            self.task_embeddings = None
            self.task_embedding = None
            task_dim = 0
        self.num_tasks = num_tasks
        self.task_dim = task_dim

        kw = dict(task_dim=task_dim, simnorm_dim=simnorm_dim)
        self.encoder = TaskMLP(obs_dim, [enc_dim] * max(num_enc_layers - 1, 1), latent_dim, out_act="simnorm", **kw)
        self.dynamics = TaskMLP(latent_dim + action_dim, [mlp_dim, mlp_dim], latent_dim, out_act="simnorm", **kw)
        self.reward_head = TaskMLP(latent_dim + action_dim, [mlp_dim, mlp_dim], num_bins, zero_last=True, **kw)
        self.policy = TaskMLP(latent_dim, [mlp_dim, mlp_dim], 2 * action_dim, **kw)
        self.qnet = TaskMLP(
            latent_dim + action_dim, [mlp_dim, mlp_dim], num_bins, num_members=num_q, dropout=q_dropout,
            zero_last=True, **kw,
        )
        self.register_buffer("bins", torch.linspace(vmin, vmax, num_bins), persistent=False)

    def parameter_groups(self, lr: float = 3e-4, enc_lr_scale: float = 0.3) -> list[dict]:
        """Newt's optimiser parameter groups: encoder (``lr * enc_lr_scale``), the rest of the
        model (dynamics, reward, Q, a learnable task table) and the policy prior, each at ``lr``.

        Frozen parameters are left out. The policy group is last, so an optimiser built on all
        groups trains the prior jointly during demo pretraining (Newt puts it in the model
        optimiser); the online max-Q step uses its own optimiser on :attr:`policy`.

        Examples:
            >>> wm = NewtWorldModel(4, 2, size="S", num_tasks=3)
            >>> [round(g["lr"], 6) for g in wm.parameter_groups(1e-3)]
            [0.0003, 0.001, 0.001]
            >>> opt = torch.optim.Adam(wm.parameter_groups())
        """
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        return [
            {"params": [p for n, p in trainable if n.startswith("encoder.")], "lr": lr * enc_lr_scale, "name": "encoder"},
            {"params": [p for n, p in trainable if not n.startswith(("encoder.", "policy."))], "lr": lr, "name": "model"},
            {"params": [p for n, p in trainable if n.startswith("policy.")], "lr": lr, "name": "policy"},
        ]

    # ------------------------------------------------------------------ task conditioning
    def task_table(self) -> torch.Tensor | None:
        """The ``[num_tasks, task_dim]`` embedding table (None for a single-task model)."""
        if self.task_embeddings is not None:
            return self.task_embeddings
        if self.task_embedding is not None:
            w = self.task_embedding.weight
            return w * w.norm(dim=-1, keepdim=True).clamp_min(1.0).reciprocal()
        return None

    def _cond(self, task: torch.Tensor | None, table: torch.Tensor | None = None) -> dict:
        if self.task_dim == 0:
            return {}
        if task is None:
            raise ValueError("this world model is task-conditioned: a task id tensor is required")
        if task.dtype not in (torch.int64, torch.int32):
            task = task.long()
        return {"task_table": self.task_table() if table is None else table, "task": task}

    # ------------------------------------------------------------------ components
    def encode(self, obs: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """Encode observations ``[*B, obs_dim]`` to SimNorm latents ``[*B, latent_dim]``."""
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"expected observations with {self.obs_dim} features, got shape {tuple(obs.shape)}")
        self.check_task_ids(task)
        return self.encoder(obs, **self._cond(task))

    def check_task_ids(self, task: torch.Tensor | None) -> None:
        """Raise ``ValueError`` if a task id falls outside ``[0, num_tasks)`` (no-op when compiling).

        :meth:`encode` calls it, so every pass of the planner and the losses checks its ids once.

        Examples:
            >>> wm = NewtWorldModel(obs_dim=4, action_dim=2, size="S", num_tasks=3)
            >>> try:
            ...     wm.check_task_ids(torch.tensor([0, 3]))
            ... except ValueError as err:
            ...     print(err)
            task id 3 is out of range: this world model has 3 tasks (ids 0..2)
        """
        if task is None or self.num_tasks is None or task.numel() == 0 or torch.compiler.is_compiling():
            return
        lo, hi = torch.stack([task.min(), task.max()]).tolist()
        if lo < 0 or hi >= self.num_tasks:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"task id {bad} is out of range: this world model has {self.num_tasks} tasks (ids 0..{self.num_tasks - 1})"
            )

    def next(self, z: torch.Tensor, action: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """One latent dynamics step."""
        return self.dynamics((z, action), **self._cond(task))

    def reward(self, z: torch.Tensor, action: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """Reward logits ``[*B, num_bins]`` (decode with :meth:`decode`)."""
        return self.reward_head((z, action), **self._cond(task))

    def q(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        task: torch.Tensor | None = None,
        *,
        heads: torch.Tensor | None = None,
        task_table: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Q logits of the ensemble heads: ``[num_heads, *B, num_bins]``."""
        return self.qnet((z, action), members=heads, **self._cond(task, task_table))

    def q_value(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        task: torch.Tensor | None = None,
        *,
        reduce: str = "avg",
        num_heads: int = 2,
        task_table: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scalar Q ``[*B, 1]``: mean (``"avg"``) or min (``"min"``) of ``num_heads`` random heads."""
        heads = torch.randperm(self.num_q, device=z.device)[:num_heads]
        values = self.decode(self.q(z, action, task, heads=heads, task_table=task_table))
        if reduce == "avg":
            return values.mean(0)
        if reduce == "min":
            return values.min(0).values
        raise ValueError(f"reduce must be 'avg' or 'min', got {reduce!r}")

    def pi(
        self,
        z: torch.Tensor,
        task: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
        *,
        deterministic: bool = False,
        task_table: torch.Tensor | None = None,
    ) -> PolicyOutput:
        """Sample from the tanh-Gaussian policy prior (Newt's definitions, exactly).

        The mean, log-std and noise are multiplied by the action mask, so masked dimensions are
        exactly zero in ``action`` and ``mean``. Log-probabilities follow the reference
        (nicklashansen/newt ``common/world_model.py:160-194``, ``common/math.py:13-30``):

        * ``log_prob``: the Gaussian log-density of the noise summed over *all* padded dims (a
          masked dim contributes the constant ``-log(sqrt(2 pi))``), minus the tanh correction
          ``sum log(relu(1 - action^2) + 1e-6)``; ``entropy = -log_prob``;
        * ``scaled_entropy = -log_prob * (n_valid * log_prob_pre) / (log_prob + 1e-8)``, where
          ``log_prob_pre`` is the pre-squash Gaussian log-probability and ``n_valid`` the number
          of valid dims: numerically ``-n_valid * log_prob_pre``, with the reference's gradient
          paths through both factors.

        Examples:
            >>> wm = NewtWorldModel(obs_dim=4, action_dim=3, size="S")
            >>> out = wm.pi(wm.encode(torch.randn(2, 4)), action_mask=torch.tensor([[1., 1., 0.]] * 2),
            ...             deterministic=True)
            >>> bool((out.action[:, 2] == 0).all())
            True
        """
        if action_mask is not None and action_mask.shape[-1] != self.action_dim:
            raise ValueError(
                f"action_mask has width {action_mask.shape[-1]}, but the world model's action_dim is "
                f"{self.action_dim}; pad the mask to {self.action_dim}"
            )
        out = self.policy(z, **self._cond(task, task_table))
        mean, log_std = out.chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        eps = torch.zeros_like(mean) if deterministic else torch.randn_like(mean)
        if action_mask is not None:
            mask = action_mask.to(mean.dtype)
            mean, log_std, eps = mean * mask, log_std * mask, eps * mask
            n_valid = mask.sum(-1, keepdim=True)
        else:
            n_valid = mean.shape[-1]
        log_prob_pre = (-0.5 * eps.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1, keepdim=True)
        scaled_log_prob = log_prob_pre * n_valid
        action = torch.tanh(mean + eps * log_std.exp())
        log_prob = log_prob_pre - torch.log(F.relu(1 - action.pow(2)) + 1e-6).sum(-1, keepdim=True)
        entropy_scale = scaled_log_prob / (log_prob + 1e-8)
        return PolicyOutput(action, torch.tanh(mean), log_std, log_prob, -log_prob, -log_prob * entropy_scale)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Two-hot logits -> scalar values ``[*B, 1]`` (expectation in symlog space, then symexp)."""
        # softmax @ bins: one small matmul (cheaper in the planner's inner loop than the
        # bin-pairing reduction of torchrl's two_hot_decode, which matters for exact zeros only)
        return symexp(torch.softmax(logits, -1) @ self.bins.to(logits.dtype)).unsqueeze(-1)

    def two_hot_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Soft cross-entropy between logits and scalar targets (encoded two-hot in symlog space)."""
        return two_hot_cross_entropy(logits, symlog(target), self.bins).unsqueeze(-1)

    # ------------------------------------------------------------------ TensorDict views
    def _keys(self, *keys: NestedKey, task_key: NestedKey | None) -> list:
        keys = list(keys)
        if self.task_dim and task_key is not None:
            keys.append(task_key)
        return keys

    def encoder_module(
        self, obs_key: NestedKey = "observation", task_key: NestedKey = "task", out_key: NestedKey = "latent"
    ) -> TensorDictModule:
        """The encoder as a :class:`~tensordict.nn.TensorDictModule` (shares parameters)."""
        return TensorDictModule(_Call(self, "encode"), self._keys(obs_key, task_key=task_key), [out_key])

    def dynamics_module(
        self,
        latent_key: NestedKey = "latent",
        action_key: NestedKey = "action",
        task_key: NestedKey = "task",
        out_key: NestedKey = ("next", "latent"),
    ) -> TensorDictModule:
        """The latent dynamics as a TensorDictModule."""
        return TensorDictModule(_Call(self, "next"), self._keys(latent_key, action_key, task_key=task_key), [out_key])

    def reward_module(
        self,
        latent_key: NestedKey = "latent",
        action_key: NestedKey = "action",
        task_key: NestedKey = "task",
        out_key: NestedKey = "reward_pred",
    ) -> TensorDictModule:
        """The (decoded, scalar) reward head as a TensorDictModule."""
        return TensorDictModule(_Call(self, "reward"), self._keys(latent_key, action_key, task_key=task_key), [out_key])

    def policy_module(
        self,
        latent_key: NestedKey = "latent",
        task_key: NestedKey = "task",
        mask_key: NestedKey | None = "action_mask",
        out_keys: Sequence[NestedKey] = ("action", "loc", "log_std"),
        deterministic: bool = False,
    ) -> TensorDictModule:
        """The policy prior as a TensorDictModule (writes the action, its mean and log-std)."""
        in_keys = self._keys(latent_key, task_key=task_key)
        if mask_key is not None:
            in_keys.append(mask_key)
        module = _Policy(self, has_task=bool(self.task_dim), has_mask=mask_key is not None, deterministic=deterministic)
        return TensorDictModule(module, in_keys, list(out_keys))

    def qvalue_module(
        self,
        latent_key: NestedKey = "latent",
        action_key: NestedKey = "action",
        task_key: NestedKey = "task",
        out_key: NestedKey = "state_action_value",
    ) -> TensorDictModule:
        """Q (mean of two random heads, decoded) as a TensorDictModule."""
        return TensorDictModule(_Call(self, "q"), self._keys(latent_key, action_key, task_key=task_key), [out_key])


class _Policy(nn.Module):
    """Adapter for :meth:`NewtWorldModel.policy_module`: positional inputs (z, [task], [mask])."""

    def __init__(self, world_model: NewtWorldModel, has_task: bool, has_mask: bool, deterministic: bool) -> None:
        super().__init__()
        self.world_model = world_model
        self.has_task, self.has_mask, self.deterministic = has_task, has_mask, deterministic

    def forward(self, z: torch.Tensor, *rest: torch.Tensor):
        task = rest[0] if self.has_task else None
        mask = rest[-1] if self.has_mask else None
        out = self.world_model.pi(z, task, mask, deterministic=self.deterministic)
        return out.action, out.mean, out.log_std
