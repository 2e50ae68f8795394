"""Interoperability with Newt's released checkpoints (``nicklashansen/newt``, ``tdmpc2/``).

Newt checkpoint format
----------------------
Newt's agent writes ``torch.save({"model": ..., "optim": ..., "pi_optim": ..., "scale": ...})``
where ``"model"`` is its ``WorldModel`` state dict (keys possibly prefixed with ``module.`` when
it was trained with DDP) and ``"scale"`` the running Q scale's state dict (``{"value": [1],
"_percentiles": [2]}``). Every network is an ``nn.Sequential`` of ``NormedLinear`` blocks
(``Linear`` + ``ln`` LayerNorm + Mish, or SimNorm for the last encoder/dynamics block, which has
no parameters) ending in a plain ``Linear`` for the reward, policy and Q heads::

    _task_emb.weight            [num_tasks, task_dim]   frozen CLIP table (absent single-task)
    _action_masks               [num_tasks, action_dim] valid action dims of each task
    _encoder.state.{i}.weight/.bias/.ln.weight/.ln.bias input [obs, e]
    _dynamics.{0,1,2}.*         (all three with .ln)                 input [z, e, a]
    _reward.{0,1}.*, _reward.2.weight/.bias                          input [z, e, a]
    _pi.{0,1}.*, _pi.2.weight/.bias                                  input [z, e]
    _Qs.online._Qs.{q}.{0,1}.*, _Qs.online._Qs.{q}.2.weight/.bias    input [z, e, a]
    _Qs.target._Qs.{q}.*        the target copy of every Q head (same layout)
    log_std_min, log_std_dif    scalar buffers of the policy

Differences handled by the converter: :class:`~torchrl_newt.modules.layers.TaskMLP` orders the
first layer's input columns ``[z, a, e]`` (Newt: ``[z, e, a]``), so the columns of the first
weight of the dynamics, reward and Q networks are permuted; our Q heads are one stacked
``[num_q, ...]`` ensemble (Newt: ``num_q`` separate ``Sequential`` heads); our target Q
parameters live in the loss (``TDMPC2WorldModelLoss.target_qvalue_network_params``, TorchRL's
``convert_to_functional``), not in the model.

What the loaders return
-----------------------
:func:`load_newt_checkpoint` and :func:`load_world_model` return a :class:`LoadedWorldModel`:
the :class:`~torchrl_newt.modules.NewtWorldModel` plus what does not live in it (running Q scale,
target Q parameters in our ``qnet`` layout, action masks, inferred size and task count). Apply
the scale and the target Q to losses built around ``result.world_model`` with
:meth:`LoadedWorldModel.apply_to`; :func:`target_q_state` / :func:`load_target_q_state` read and
write a loss's target Q parameters directly.

Optimizer states are not converted (Newt's parameter groups and per-head Q tensors do not map
one to one onto ours): ``LoadedWorldModel.extra`` keeps Newt's raw ``optim``/``pi_optim``.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDictBase
from torch import nn

from torchrl_newt.checkpoint import atomic_save
from torchrl_newt.modules.world_model import MODEL_SIZES, NewtWorldModel

__all__ = [
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "InteropError",
    "LoadedWorldModel",
    "NewtArchitecture",
    "detect_checkpoint_format",
    "inspect_newt_state_dict",
    "load_newt_checkpoint",
    "load_target_q_state",
    "load_world_model",
    "newt_state_dict",
    "save_newt_checkpoint",
    "target_q_state",
    "transfer_weights",
]

logger = logging.getLogger(__name__)

_NEWT_ENC_KEY = "_encoder.state.0.weight"
_OURS_ENC_KEY = "encoder.weights.0"
_STRIP_PREFIXES = ("module.", "_orig_mod.")
# (our attribute, Newt prefix, SimNorm last block, first-layer input has an action part)
_COMPONENTS = (
    ("encoder", "_encoder.state", True, False),
    ("dynamics", "_dynamics", True, True),
    ("reward_head", "_reward", False, True),
    ("policy", "_pi", False, False),
)


class InteropError(ValueError):
    """Base class of the checkpoint conversion errors."""


class CheckpointFormatError(InteropError):
    """The file (or object) is neither a Newt checkpoint nor a torchrl_newt checkpoint."""


class CheckpointMismatchError(InteropError):
    """The checkpoint holds another model size or task count than the caller asked for."""


# ---------------------------------------------------------------------------------- architecture
@dataclass(frozen=True)
class NewtArchitecture:
    """The hyper-parameters of a world model, read from the shapes of its state dict.

    Attributes:
        obs_dim, action_dim: observation and action sizes (Newt pads to 128 and 16).
        task_dim: task embedding size (0 for a single-task model).
        num_tasks: rows of the task table (1 for a single-task model).
        enc_dim, mlp_dim, latent_dim, num_enc_layers, num_q, num_bins: network sizes.
        log_std_min, log_std_max: the policy's log-std range.
        size: ``"S"``, ``"B"``, ``"L"`` or ``"XL"`` when the sizes match
            :data:`~torchrl_newt.modules.MODEL_SIZES`, else ``None`` (a custom size).

    Examples:
        >>> arch = NewtArchitecture(128, 16, 512, 200, 256, 512, 512, 2, 5, 101)
        >>> arch.size, arch.sizes
        ('B', (256, 512, 512, 2, 5))
    """

    obs_dim: int
    action_dim: int
    task_dim: int
    num_tasks: int
    enc_dim: int
    mlp_dim: int
    latent_dim: int
    num_enc_layers: int
    num_q: int
    num_bins: int
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    @property
    def sizes(self) -> tuple[int, int, int, int, int]:
        """``(enc_dim, mlp_dim, latent_dim, num_enc_layers, num_q)``, as in ``MODEL_SIZES``."""
        return (self.enc_dim, self.mlp_dim, self.latent_dim, self.num_enc_layers, self.num_q)

    @property
    def size(self) -> str | None:
        for name, sizes in MODEL_SIZES.items():
            if sizes == self.sizes:
                return name
        return None

    def describe(self) -> str:
        """A one-line human-readable summary."""
        size = f"size {self.size}" if self.size else "a custom size"
        tasks = f"{self.num_tasks} tasks (task_dim {self.task_dim})" if self.task_dim else "single-task"
        return (
            f"{size} (enc_dim={self.enc_dim}, mlp_dim={self.mlp_dim}, latent_dim={self.latent_dim}, "
            f"num_enc_layers={self.num_enc_layers}, num_q={self.num_q}), {tasks}, "
            f"obs_dim={self.obs_dim}, action_dim={self.action_dim}"
        )


def _strip(state: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        for prefix in _STRIP_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _count_layers(state: Mapping[str, Any], prefix: str, template: str = "{prefix}.{i}.weight") -> int:
    n = 0
    while template.format(prefix=prefix, i=n) in state:
        n += 1
    return n


def _shape(state: Mapping[str, Any], key: str, where: str) -> torch.Size:
    try:
        return state[key].shape
    except KeyError:
        raise CheckpointFormatError(f"{where}: the state dict lacks {key!r}; is it a complete Newt world model?") from None


def inspect_newt_state_dict(state_dict: Mapping[str, Any], *, where: str = "state dict") -> NewtArchitecture:
    """Infers the architecture of a Newt ``WorldModel`` state dict from its shapes only.

    Works on meta tensors (no data is read), so it can size-check a file cheaply.

    Args:
        state_dict: Newt's ``"model"`` entry (``module.`` prefixes are accepted).
        where: a name for error messages (e.g. the file).

    Raises:
        CheckpointFormatError: keys are missing or shapes are inconsistent.

    Examples:
        >>> from torchrl_newt.modules import MODEL_SIZES
        >>> def newt_shapes(enc, mlp, lat, n_enc, n_q, tasks=200, obs=128, act=16, emb=512):
        ...     m = lambda *s: torch.empty(*s, device="meta")
        ...     sd = {"_task_emb.weight": m(tasks, emb), "_action_masks": m(tasks, act)}
        ...     dims = [obs + emb] + [enc] * max(n_enc - 1, 1) + [lat]
        ...     for i in range(len(dims) - 1):
        ...         sd[f"_encoder.state.{i}.weight"] = m(dims[i + 1], dims[i])
        ...     sd["_dynamics.0.weight"] = m(mlp, lat + emb + act)
        ...     sd["_dynamics.2.weight"] = m(lat, mlp)
        ...     sd["_reward.2.weight"] = m(101, mlp)
        ...     sd["_pi.0.weight"] = m(mlp, lat + emb)
        ...     for q in range(n_q):
        ...         sd[f"_Qs.online._Qs.{q}.0.weight"] = m(mlp, lat + emb + act)
        ...     return sd
        >>> [inspect_newt_state_dict(newt_shapes(*MODEL_SIZES[s])).size for s in ("S", "B", "L", "XL")]
        ['S', 'B', 'L', 'XL']
    """
    sd = _strip(state_dict)
    n_enc = _count_layers(sd, "_encoder.state")
    if n_enc < 2:
        raise CheckpointFormatError(f"{where}: no Newt encoder ('_encoder.state.0.weight', '_encoder.state.1.weight').")
    enc_dim, enc_in = _shape(sd, "_encoder.state.0.weight", where)
    latent_dim = _shape(sd, f"_encoder.state.{n_enc - 1}.weight", where)[0]
    mlp_dim, pi_in = _shape(sd, "_pi.0.weight", where)
    task_dim = pi_in - latent_dim
    dyn_in = _shape(sd, "_dynamics.0.weight", where)[1]
    action_dim = dyn_in - latent_dim - task_dim
    num_q = _count_layers(sd, "_Qs.online._Qs", "{prefix}.{i}.0.weight")
    if num_q == 0:
        raise CheckpointFormatError(f"{where}: no Q heads ('_Qs.online._Qs.0.0.weight').")
    num_bins = _shape(sd, "_reward.2.weight", where)[0]
    if "_task_emb.weight" in sd:
        num_tasks, emb_dim = sd["_task_emb.weight"].shape
        if emb_dim != task_dim:
            raise CheckpointFormatError(
                f"{where}: the task table is {emb_dim}-d but the policy's input implies task_dim={task_dim}."
            )
    elif task_dim:
        raise CheckpointFormatError(f"{where}: the networks are task-conditioned (task_dim={task_dim}) but there is no '_task_emb.weight'.")
    else:
        num_tasks = 1
    if "_action_masks" in sd and sd["_action_masks"].shape[-1] != action_dim:
        raise CheckpointFormatError(
            f"{where}: '_action_masks' has {sd['_action_masks'].shape[-1]} columns but the dynamics imply action_dim={action_dim}."
        )
    if action_dim <= 0 or task_dim < 0 or enc_in - task_dim <= 0:
        raise CheckpointFormatError(f"{where}: inconsistent layer shapes (action_dim={action_dim}, task_dim={task_dim}).")
    log_std_min, log_std_max = -10.0, 2.0
    if "log_std_min" in sd and sd["log_std_min"].device.type != "meta":
        log_std_min = float(sd["log_std_min"])
        if "log_std_dif" in sd:
            log_std_max = log_std_min + float(sd["log_std_dif"])
    return NewtArchitecture(
        obs_dim=int(enc_in - task_dim), action_dim=int(action_dim), task_dim=int(task_dim), num_tasks=int(num_tasks),
        enc_dim=int(enc_dim), mlp_dim=int(mlp_dim), latent_dim=int(latent_dim), num_enc_layers=n_enc,
        num_q=num_q, num_bins=int(num_bins), log_std_min=log_std_min, log_std_max=log_std_max,
    )


def _inspect_ours(sd: Mapping[str, Any], where: str) -> NewtArchitecture:
    n_enc = _count_layers(sd, "encoder.weights", "{prefix}.{i}")
    if n_enc < 2 or "qnet.weights.0" not in sd or "policy.weights.0" not in sd:
        raise CheckpointFormatError(f"{where}: not a complete torchrl_newt world model state dict.")
    if "task_embeddings" in sd:
        num_tasks, task_dim = sd["task_embeddings"].shape
    elif "task_embedding.weight" in sd:
        num_tasks, task_dim = sd["task_embedding.weight"].shape
    else:
        num_tasks, task_dim = 1, 0
    enc_dim, enc_in = sd["encoder.weights.0"].shape
    latent_dim = sd[f"encoder.weights.{n_enc - 1}"].shape[0]
    mlp_dim, dyn_in = sd["dynamics.weights.0"].shape
    num_q = sd["qnet.weights.0"].shape[0]
    n_rew = _count_layers(sd, "reward_head.weights", "{prefix}.{i}")
    return NewtArchitecture(
        obs_dim=int(enc_in - task_dim), action_dim=int(dyn_in - latent_dim - task_dim), task_dim=int(task_dim),
        num_tasks=int(num_tasks), enc_dim=int(enc_dim), mlp_dim=int(mlp_dim), latent_dim=int(latent_dim),
        num_enc_layers=n_enc, num_q=int(num_q), num_bins=int(sd[f"reward_head.weights.{n_rew - 1}"].shape[0]),
    )


def _check(arch: NewtArchitecture, size: str | None, num_tasks: int | None, obs_dim: int | None, where: str) -> None:
    if size is not None:
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {list(MODEL_SIZES)}")
        if arch.size != size:
            enc, mlp, lat, n_enc, n_q = MODEL_SIZES[size]
            raise CheckpointMismatchError(
                f"{where}: expected a size-{size} world model (enc_dim={enc}, mlp_dim={mlp}, latent_dim={lat}, "
                f"num_enc_layers={n_enc}, num_q={n_q}) but the file holds {arch.describe()}."
            )
    if num_tasks is not None and arch.num_tasks != num_tasks:
        raise CheckpointMismatchError(
            f"{where}: expected a world model for {num_tasks} tasks but the file holds {arch.describe()}."
        )
    if obs_dim is not None and arch.obs_dim != obs_dim:
        raise CheckpointMismatchError(
            f"{where}: expected obs_dim={obs_dim} but the encoder's input implies {arch.obs_dim} "
            "(an RGB-feature checkpoint also counts its image features here; only state checkpoints convert)."
        )


# ---------------------------------------------------------------------------------- conversion
def _to_ours_cols(w: torch.Tensor, latent: int, task_dim: int) -> torch.Tensor:
    """Newt's first-layer columns ``[z, e, a]`` -> ours ``[z, a, e]``."""
    if not task_dim:
        return w
    return torch.cat([w[..., :latent], w[..., latent + task_dim :], w[..., latent : latent + task_dim]], -1)


def _to_newt_cols(w: torch.Tensor, latent: int, action_dim: int) -> torch.Tensor:
    """Our first-layer columns ``[z, a, e]`` -> Newt's ``[z, e, a]``."""
    if w.shape[-1] == latent + action_dim:  # no task part
        return w
    return torch.cat([w[..., :latent], w[..., latent + action_dim :], w[..., latent : latent + action_dim]], -1)


def _layer_keys(n_layers: int, simnorm_last: bool):
    """(our name, Newt suffix) pairs of one task MLP with ``n_layers`` Linear layers."""
    for i in range(n_layers):
        yield f"weights.{i}", f"{i}.weight"
        yield f"biases.{i}", f"{i}.bias"
        if i < n_layers - 1 or simnorm_last:
            yield f"norm_weights.{i}", f"{i}.ln.weight"
            yield f"norm_biases.{i}", f"{i}.ln.bias"


def _q_from_newt(sd: Mapping[str, torch.Tensor], which: str, arch: NewtArchitecture) -> dict[str, torch.Tensor]:
    heads = [f"_Qs.{which}._Qs.{q}" for q in range(arch.num_q)]
    out = {}
    for ours, suffix in _layer_keys(3, False):
        stacked = torch.stack([sd[f"{h}.{suffix}"] for h in heads])
        if ours == "weights.0":
            stacked = _to_ours_cols(stacked, arch.latent_dim, arch.task_dim)
        out[ours] = stacked
    return out


def _from_newt(sd: Mapping[str, torch.Tensor], arch: NewtArchitecture, where: str):
    """Newt model state dict -> (our world-model state dict, our target qnet state, action masks)."""
    ours: dict[str, torch.Tensor] = {}
    try:
        for name, prefix, simnorm, has_action in _COMPONENTS:
            n = arch.num_enc_layers if name == "encoder" else 3
            for key, suffix in _layer_keys(n, simnorm):
                value = sd[f"{prefix}.{suffix}"]
                if key == "weights.0" and has_action:
                    value = _to_ours_cols(value, arch.latent_dim, arch.task_dim)
                ours[f"{name}.{key}"] = value
        ours.update({f"qnet.{k}": v for k, v in _q_from_newt(sd, "online", arch).items()})
        target = _q_from_newt(sd, "target", arch) if "_Qs.target._Qs.0.0.weight" in sd else None
    except KeyError as err:
        raise CheckpointFormatError(f"{where}: the Newt state dict lacks {err.args[0]!r}.") from None
    if arch.task_dim:
        ours["task_embeddings"] = sd["_task_emb.weight"]
    masks = sd.get("_action_masks")
    return ours, target, masks


def _default_masks(world_model: NewtWorldModel, tasks) -> torch.Tensor:
    rows = world_model.num_tasks or 1
    if tasks is None:
        return torch.ones(rows, world_model.action_dim)
    from torchrl_newt.envs.registry import get_task

    names = [t if isinstance(t, str) else t.name for t in tasks]
    if len(names) != rows:
        raise ValueError(f"got {len(names)} task names for a world model with {rows} task rows")
    dims = torch.tensor([get_task(n).action_dim for n in names])
    return (torch.arange(world_model.action_dim)[None, :] < dims[:, None]).float()


def _as_target_state(target_q: Any) -> dict[str, torch.Tensor] | None:
    if target_q is None:
        return None
    if hasattr(target_q, "target_qvalue_network_params"):
        return target_q_state(target_q)
    if isinstance(target_q, TensorDictBase):
        return {k: v.detach() for k, v in target_q.flatten_keys(".").items(True, True)}
    if isinstance(target_q, Mapping):
        return {k: v.detach() for k, v in target_q.items()}
    raise TypeError(
        "target_q must be None, a loss with target_qvalue_network_params, a TensorDict or a qnet-style state dict, "
        f"got {type(target_q).__name__}"
    )


def newt_state_dict(
    world_model: NewtWorldModel,
    *,
    target_q: Any = None,
    action_masks: torch.Tensor | None = None,
    tasks: list | None = None,
) -> dict[str, torch.Tensor]:
    """Our world model's parameters under Newt's ``WorldModel`` keys (loads with ``strict=True``).

    Args:
        world_model: the model to convert.
        target_q: the target Q parameters: ``None`` (copy the online heads, as Newt does at
            initialisation), a :class:`~torchrl_newt.objectives.TDMPC2WorldModelLoss` (its
            ``target_qvalue_network_params``), or a ``qnet``-style state dict / TensorDict
            (keys ``"weights.0"``..., as :func:`target_q_state` returns).
        action_masks: ``[num_tasks, action_dim]`` valid action dims; default from ``tasks``
            (registry action dims) or all ones.
        tasks: task names giving the default ``action_masks``.

    Returns:
        A flat ``dict`` of CPU tensors.

    Examples:
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2,
        ...                     task_embeddings=torch.randn(3, 4))
        >>> sd = newt_state_dict(wm)
        >>> sd["_dynamics.0.weight"].shape, sd["_Qs.target._Qs.1.2.weight"].shape, sd["_action_masks"].shape
        (torch.Size([16, 22]), torch.Size([101, 16]), torch.Size([3, 2]))
    """
    wm = world_model
    L, A = wm.latent_dim, wm.action_dim
    own = {k: v.detach().cpu() for k, v in wm.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    table = wm.task_table()
    if table is not None:
        out["_task_emb.weight"] = table.detach().cpu().float().clone()
    if action_masks is None:
        action_masks = _default_masks(wm, tasks)
    action_masks = torch.as_tensor(action_masks).float().cpu()
    if action_masks.dim() != 2 or action_masks.shape[1] != A:
        raise ValueError(f"action_masks must be [num_tasks, {A}], got {tuple(action_masks.shape)}")
    out["_action_masks"] = action_masks
    for name, prefix, simnorm, has_action in _COMPONENTS:
        n = len(getattr(wm, name).weights)
        for key, suffix in _layer_keys(n, simnorm):
            value = own[f"{name}.{key}"]
            if key == "weights.0" and has_action:
                value = _to_newt_cols(value, L, A)
            out[f"{prefix}.{suffix}"] = value.clone()
    online = {k[len("qnet.") :]: v for k, v in own.items() if k.startswith("qnet.")}
    target = _as_target_state(target_q)
    if target is None:
        target = online
    elif set(target) != set(online) or any(target[k].shape != online[k].shape for k in online):
        raise ValueError(f"target_q does not match the Q ensemble's parameters {sorted(online)}")
    for which, params in (("online", online), ("target", target)):
        for q in range(wm.num_q):
            for key, suffix in _layer_keys(3, False):
                value = params[key][q].detach().cpu()
                if key == "weights.0":
                    value = _to_newt_cols(value, L, A)
                out[f"_Qs.{which}._Qs.{q}.{suffix}"] = value.clone()
    out["log_std_min"] = torch.tensor(float(wm.log_std_min))
    out["log_std_dif"] = torch.tensor(float(wm.log_std_max - wm.log_std_min))
    return out


# ---------------------------------------------------------------------------------- results
@dataclass
class LoadedWorldModel:
    """A world model loaded from a checkpoint file, with the state that lives outside it.

    Attributes:
        world_model: the :class:`~torchrl_newt.modules.NewtWorldModel` (eval mode, CPU unless
            ``map_location`` said otherwise).
        scale: the running Q scale of the actor loss (1.0 when the file has none).
        target_q: target Q parameters in our ``qnet`` layout (``{"weights.0": [num_q, ...]}``),
            or ``None`` when the file has none.
        action_masks: ``[rows, action_dim]`` from a Newt file (``None`` for ours).
        format: ``"newt"`` or ``"torchrl_newt"``.
        architecture: the inferred :class:`NewtArchitecture`.
        tasks: task names of the table rows when known: ours store them; a 200-row Newt soup
            table is assumed to follow the MMBench order (``torchrl_newt.envs.list_tasks()``,
            Newt's ``TASK_SET["soup"]``); otherwise ``None``.
        extra: other entries of the file (Newt's raw ``optim``/``pi_optim``; our ``state``...).
    """

    world_model: NewtWorldModel
    scale: float = 1.0
    target_q: dict[str, torch.Tensor] | None = None
    action_masks: torch.Tensor | None = None
    format: str = "newt"
    architecture: NewtArchitecture | None = None
    tasks: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str | None:
        """``"S"``/``"B"``/``"L"``/``"XL"``, or ``None`` for a custom size."""
        return self.architecture.size if self.architecture else None

    @property
    def num_tasks(self) -> int:
        """Rows of the task table (1 for a single-task model)."""
        return self.architecture.num_tasks if self.architecture else (self.world_model.num_tasks or 1)

    def apply_to(self, wm_loss: nn.Module | None = None, actor_loss: nn.Module | None = None) -> None:
        """Copies the target Q parameters into ``wm_loss`` and the Q scale into ``actor_loss``.

        Both losses must be built around :attr:`world_model` (or an identically shaped model).
        Without stored target parameters the loss's target is set to the online Q heads.
        """
        if wm_loss is not None:
            target = self.target_q
            if target is None:
                target = {k: v.detach() for k, v in self.world_model.qnet.state_dict().items()}
            load_target_q_state(wm_loss, target)
        if actor_loss is not None:
            actor_loss.running_scale.value.fill_(self.scale)


def target_q_state(loss: nn.Module) -> dict[str, torch.Tensor]:
    """The target Q parameters of a loss built with ``convert_to_functional`` (detached copies).

    Keys follow ``world_model.qnet.state_dict()`` (``"weights.0"``, ``"biases.0"``...).

    Examples:
        >>> from torchrl_newt.objectives import TDMPC2WorldModelLoss
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
        >>> loss = TDMPC2WorldModelLoss(wm)
        >>> state = target_q_state(loss)
        >>> load_target_q_state(loss, {k: v + 1 for k, v in state.items()})
        >>> bool((target_q_state(loss)["biases.0"] == 1).all())
        True
    """
    params = loss.target_qvalue_network_params
    return {k: v.detach().clone() for k, v in params.flatten_keys(".").items(True, True)}


@torch.no_grad()
def load_target_q_state(loss: nn.Module, state: Mapping[str, torch.Tensor] | TensorDictBase) -> None:
    """Copies ``state`` (``qnet``-style keys) into the loss's target Q parameters, in place."""
    state = _as_target_state(state)
    params = loss.target_qvalue_network_params.flatten_keys(".")
    expected = set(params.keys(True, True))
    if set(state) != expected:
        raise ValueError(f"target Q state keys {sorted(state)} do not match the loss's {sorted(expected)}")
    for key, value in state.items():
        dest = loss.target_qvalue_network_params.get(tuple(key.split(".")))
        if dest.shape != value.shape:
            raise ValueError(f"target Q {key!r}: shape {tuple(value.shape)} != {tuple(dest.shape)}")
        dest.data.copy_(value.to(dest.device, dest.dtype))


# ---------------------------------------------------------------------------------- files
def _read(source: str | os.PathLike | Mapping, map_location: Any) -> tuple[Any, str]:
    if isinstance(source, Mapping):
        return source, "checkpoint"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights only" not in str(err).lower():
                raise
            # our example's checkpoints pickle a few Python objects (args, RNG states)
            logger.debug("%s holds pickled objects; loading it with weights_only=False", path)
            obj = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointFormatError(f"{path} is not a torch checkpoint file ({reason}).") from None
    return obj, str(path)


def _newt_model_dict(obj: Any) -> dict | None:
    if not isinstance(obj, Mapping):
        return None
    model = obj.get("model", obj)
    if isinstance(model, Mapping) and _NEWT_ENC_KEY in _strip({k: None for k in model if isinstance(k, str)}):
        return _strip(model)
    return None


def _ours_model_dict(obj: Any) -> tuple[dict, dict] | None:
    """(world-model state dict, loss-side entries) of our checkpoint layouts."""
    if not isinstance(obj, Mapping):
        return None
    for key, prefix in (("agent", "world_model."), ("world_model", ""), (None, "")):
        sd = obj if key is None else obj.get(key)
        if not isinstance(sd, Mapping):
            continue
        sd = _strip(sd)
        if prefix + _OURS_ENC_KEY in sd:
            wm = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
            rest = {k: v for k, v in sd.items() if not k.startswith(prefix)}
            return wm, rest
    return None


def detect_checkpoint_format(obj: Any, *, where: str = "checkpoint") -> str:
    """``"newt"`` or ``"torchrl_newt"`` for a loaded checkpoint object.

    Raises:
        CheckpointFormatError: it is neither.

    Examples:
        >>> detect_checkpoint_format({"model": {"module._encoder.state.0.weight": torch.zeros(1)}})
        'newt'
        >>> try:
        ...     detect_checkpoint_format({"weights": 1}, where="x.pt")
        ... except CheckpointFormatError as err:
        ...     print(err)
        x.pt is neither a Newt checkpoint (a dict with "model" holding '_encoder.state.0.weight'...) nor a torchrl_newt checkpoint (a dict with "agent" holding 'world_model.encoder.weights.0'..., or a world model state dict); top-level keys: ['weights'].
    """
    if _newt_model_dict(obj) is not None:
        return "newt"
    if _ours_model_dict(obj) is not None:
        return "torchrl_newt"
    keys = sorted(map(str, obj.keys()))[:10] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointFormatError(
        f"{where} is neither a Newt checkpoint (a dict with \"model\" holding '{_NEWT_ENC_KEY}'...) nor a "
        f"torchrl_newt checkpoint (a dict with \"agent\" holding 'world_model.{_OURS_ENC_KEY}'..., or a world model "
        f"state dict); top-level keys: {keys}."
    )


def _scale_value(scale: Any) -> float:
    if scale is None:
        return 1.0
    if isinstance(scale, Mapping):
        scale = scale.get("value", 1.0)
    return float(torch.as_tensor(scale).reshape(-1)[0])


def _build(arch: NewtArchitecture, table: torch.Tensor | None, learnable: bool, model_kwargs: dict) -> NewtWorldModel:
    kwargs = dict(
        size=arch.size or "S", enc_dim=arch.enc_dim, mlp_dim=arch.mlp_dim, latent_dim=arch.latent_dim,
        num_enc_layers=arch.num_enc_layers, num_q=arch.num_q, num_bins=arch.num_bins,
        log_std_min=arch.log_std_min, log_std_max=arch.log_std_max,
    )
    if arch.task_dim and learnable:
        kwargs.update(num_tasks=arch.num_tasks, task_dim=arch.task_dim)
    elif arch.task_dim:
        kwargs.update(task_embeddings=table)
    kwargs.update(model_kwargs)
    return NewtWorldModel(arch.obs_dim, arch.action_dim, **kwargs)


def _soup_tasks(table: torch.Tensor) -> list[str] | None:
    from torchrl_newt.envs.registry import list_tasks

    soup = list_tasks()
    if table.shape[0] != len(soup) or torch.equal(table, table[:1].expand_as(table)):
        return None  # not the soup (or a fine-tuning file: one embedding repeated)
    return soup


def load_newt_checkpoint(
    path: str | os.PathLike | Mapping,
    *,
    size: str | None = None,
    num_tasks: int | None = None,
    obs_dim: int | None = None,
    map_location: Any = "cpu",
    **model_kwargs: Any,
) -> LoadedWorldModel:
    """Loads one of Newt's official checkpoints into a :class:`~torchrl_newt.modules.NewtWorldModel`.

    The model size (S/B/L/XL or custom), task count, observation and action sizes are read from
    the tensor shapes; the frozen CLIP table becomes the model's ``task_embeddings``.

    Args:
        path: the ``.pt`` file (or the already loaded dict).
        size: if given, the size the file must hold.
        num_tasks: if given, the task count the file must hold (1 for single-task files).
        obs_dim: if given, the observation size the encoder must take.
        map_location: passed to :func:`torch.load`.
        **model_kwargs: extra :class:`~torchrl_newt.modules.NewtWorldModel` arguments
            (``simnorm_dim``, ``vmin``, ``vmax``... which shapes do not record). ``q_dropout``
            defaults to 0, as Newt's Q heads have no dropout.

    Returns:
        A :class:`LoadedWorldModel` (``format="newt"``, running Q ``scale``, ``target_q``,
        ``action_masks``).

    Raises:
        CheckpointFormatError: the file is not a Newt checkpoint.
        CheckpointMismatchError: ``size``, ``num_tasks`` or ``obs_dim`` differ from the file's.

    Examples:
        >>> import tempfile
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2,
        ...                     task_embeddings=torch.randn(3, 4))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = save_newt_checkpoint(wm, f"{d}/newt.pt", scale=2.5)
        ...     loaded = load_newt_checkpoint(f"{d}/newt.pt", num_tasks=3)
        >>> loaded.size, loaded.num_tasks, loaded.scale, loaded.world_model.latent_dim
        (None, 3, 2.5, 16)
        >>> z = torch.rand(1, 16)
        >>> torch.allclose(loaded.world_model.next(z, torch.ones(1, 2), torch.tensor([1])),
        ...                wm.next(z, torch.ones(1, 2), torch.tensor([1])))
        True
    """
    obj, where = _read(path, map_location)
    sd = _newt_model_dict(obj)
    if sd is None:
        detect_checkpoint_format(obj, where=where)  # raises for neither
        raise CheckpointFormatError(f"{where} is a torchrl_newt checkpoint, not a Newt one: use load_world_model().")
    arch = inspect_newt_state_dict(sd, where=where)
    _check(arch, size, num_tasks, obs_dim, where)
    ours, target, masks = _from_newt(sd, arch, where)
    model_kwargs.setdefault("q_dropout", 0.0)
    wm = _build(arch, ours.get("task_embeddings"), False, model_kwargs)
    wm.load_state_dict(ours, strict=True)
    wm.eval()
    extra = {k: v for k, v in obj.items() if k not in ("model", "scale")} if "model" in obj else {}
    logger.info("loaded a Newt checkpoint from %s: %s", where, arch.describe())
    return LoadedWorldModel(
        world_model=wm,
        scale=_scale_value(obj.get("scale") if "model" in obj else None),
        target_q=target,
        action_masks=None if masks is None else masks.clone(),
        format="newt",
        architecture=arch,
        tasks=_soup_tasks(sd["_task_emb.weight"]) if arch.task_dim else None,
        extra=extra,
    )


def load_world_model(
    path: str | os.PathLike | Mapping,
    *,
    size: str | None = None,
    num_tasks: int | None = None,
    obs_dim: int | None = None,
    map_location: Any = "cpu",
    **model_kwargs: Any,
) -> LoadedWorldModel:
    """Loads a world model from a Newt checkpoint or from one of ours, whichever the file is.

    Ours: the example's ``checkpoint.pt`` (``{"agent": ..., "tasks": ..., ...}``; the target Q
    and Q scale are read from the agent's losses), ``{"world_model": state_dict}`` or a bare
    :class:`~torchrl_newt.modules.NewtWorldModel` state dict. Arguments as in
    :func:`load_newt_checkpoint` (``q_dropout`` keeps the model default for our files).

    Raises:
        CheckpointFormatError: the file is neither format.
        CheckpointMismatchError: ``size``, ``num_tasks`` or ``obs_dim`` differ from the file's.

    Examples:
        >>> import tempfile
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, num_tasks=5)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     torch.save({"world_model": wm.state_dict()}, f"{d}/ours.pt")
        ...     _ = save_newt_checkpoint(wm, f"{d}/newt.pt")
        ...     a, b = load_world_model(f"{d}/ours.pt"), load_world_model(f"{d}/newt.pt")
        >>> a.format, b.format, a.num_tasks, b.num_tasks
        ('torchrl_newt', 'newt', 5, 5)
    """
    obj, where = _read(path, map_location)
    fmt = detect_checkpoint_format(obj, where=where)
    if fmt == "newt":
        return load_newt_checkpoint(obj, size=size, num_tasks=num_tasks, obs_dim=obs_dim, **model_kwargs)
    sd, rest = _ours_model_dict(obj)
    arch = _inspect_ours(sd, where)
    _check(arch, size, num_tasks, obs_dim, where)
    sd = {k: v for k, v in sd.items() if k != "bins"}
    wm = _build(arch, sd.get("task_embeddings"), "task_embedding.weight" in sd, model_kwargs)
    wm.load_state_dict(sd, strict=True)
    wm.eval()
    tgt_prefix = "wm_loss.target_qvalue_network_params."
    target = {k[len(tgt_prefix) :]: v for k, v in rest.items() if k.startswith(tgt_prefix)} or None
    scale = rest.get("actor_loss.running_scale.value")
    tasks = obj.get("tasks") if isinstance(obj.get("tasks"), list) else None
    extra = {k: v for k, v in obj.items() if k not in ("agent", "world_model")} if "agent" in obj or "world_model" in obj else {}
    logger.info("loaded a torchrl_newt checkpoint from %s: %s", where, arch.describe())
    return LoadedWorldModel(
        world_model=wm, scale=_scale_value(scale), target_q=target, action_masks=None, format="torchrl_newt",
        architecture=arch, tasks=tasks, extra=extra,
    )


def save_newt_checkpoint(
    world_model: NewtWorldModel,
    path: str | os.PathLike,
    *,
    target_q: Any = None,
    scale: float | torch.Tensor | nn.Module = 1.0,
    action_masks: torch.Tensor | None = None,
    tasks: list | None = None,
    optim: dict | None = None,
    pi_optim: dict | None = None,
) -> Path:
    """Writes ``world_model`` in Newt's checkpoint format, atomically.

    The file is ``{"model", "optim", "pi_optim", "scale"}``; ``"model"`` loads into Newt's
    ``WorldModel`` with ``load_state_dict(strict=True)`` (see :func:`newt_state_dict`).
    Optimizer states are not converted: ``"optim"``/``"pi_optim"`` are whatever you pass
    (``None`` by default), so Newt can load the file to evaluate or fine-tune, not to resume.

    Args:
        world_model: the model to write.
        path: destination file (parents are created).
        target_q: see :func:`newt_state_dict` (``None`` copies the online Q heads).
        scale: the running Q scale (a float, a tensor, or a module with a ``value`` buffer such
            as ``TDMPC2ActorLoss.running_scale``).
        action_masks, tasks: see :func:`newt_state_dict`.
        optim, pi_optim: stored as given.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ckpt = torch.load(save_newt_checkpoint(wm, f"{d}/a.pt", scale=3.0), weights_only=True)
        >>> sorted(ckpt), ckpt["scale"]["value"], "_task_emb.weight" in ckpt["model"]
        (['model', 'optim', 'pi_optim', 'scale'], tensor([3.]), False)
    """
    if isinstance(scale, nn.Module):
        scale = getattr(scale, "running_scale", scale).value
    payload = {
        "model": newt_state_dict(world_model, target_q=target_q, action_masks=action_masks, tasks=tasks),
        "optim": optim,
        "pi_optim": pi_optim,
        "scale": {
            "value": torch.tensor([_scale_value(scale)], dtype=torch.float32),
            "_percentiles": torch.tensor([5.0, 95.0]),
        },
    }
    path = atomic_save(payload, path)
    logger.info("wrote a Newt checkpoint to %s", path)
    return path


def transfer_weights(
    loaded: LoadedWorldModel,
    world_model: NewtWorldModel,
    tasks: list[str] | None = None,
    *,
    wm_loss: nn.Module | None = None,
    actor_loss: nn.Module | None = None,
) -> None:
    """Initialise ``world_model`` (and its losses) from a loaded checkpoint, for another task list.

    Every network weight is copied; the task conditioning is matched by task name:

    * a frozen task table (Newt's CLIP vectors) stays the target model's own: its rows are the
      instruction embeddings of ``tasks``, so a task unseen in training (finetuning) simply gets
      its own instruction vector, as Newt does (reference ``common/world_model.py:17-31``);
    * a learnable table takes the loaded rows of the same task names (every task in ``tasks``
      must be in ``loaded.tasks``).

    The target Q parameters and running Q scale go to ``wm_loss``/``actor_loss`` when given.

    Raises:
        CheckpointMismatchError: the networks' shapes differ (size, padded dims), or a learnable
            table cannot be matched to ``tasks``.

    Examples:
        >>> src = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, task_embeddings=torch.randn(3, 4))
        >>> dst = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, task_embeddings=torch.randn(1, 4))
        >>> transfer_weights(LoadedWorldModel(src, tasks=["a", "b", "c"]), dst, ["d"])
        >>> torch.equal(dst.encoder.weights[0], src.encoder.weights[0])
        True
    """
    src = loaded.world_model
    src_sd = src.state_dict()
    dst_sd = world_model.state_dict()
    table_keys = ("task_embeddings", "task_embedding.weight")
    new_sd = {}
    for key, value in dst_sd.items():
        if key in table_keys or key == "bins":
            new_sd[key] = value
            continue
        if key not in src_sd or src_sd[key].shape != value.shape:
            have = tuple(src_sd[key].shape) if key in src_sd else "missing"
            raise CheckpointMismatchError(
                f"cannot initialise from {loaded.format} checkpoint: parameter {key!r} has shape {have} there, "
                f"{tuple(value.shape)} here (model size and padded obs/action dims must match)"
            )
        new_sd[key] = src_sd[key]
    if "task_embedding.weight" in dst_sd:  # learnable rows, matched by name
        if "task_embedding.weight" not in src_sd or loaded.tasks is None or tasks is None:
            raise CheckpointMismatchError(
                "this model learns its task embeddings but the checkpoint has no named learnable rows to start "
                "from; use the frozen instruction table (the default for MMBench tasks) instead"
            )
        missing = [t for t in tasks if t not in loaded.tasks]
        if missing:
            raise CheckpointMismatchError(f"the checkpoint has no learned embedding for tasks {missing}")
        rows = torch.tensor([loaded.tasks.index(t) for t in tasks])
        new_sd["task_embedding.weight"] = src_sd["task_embedding.weight"][rows]
    world_model.load_state_dict(new_sd, strict=True)
    loaded.apply_to(wm_loss, actor_loss)
