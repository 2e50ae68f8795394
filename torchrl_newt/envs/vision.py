"""Frozen DINOv2 frame features as a TorchRL env transform: :class:`DINOv2Features`.

Newt concatenates the 768-d CLS feature of a frozen DINOv2-base with the state observation at the
input of its MLP encoder. :class:`DINOv2Features` computes it on the environment side, so the world
model only ever sees flat observations and the replay buffer stores 768 floats per frame instead of
150,528 bytes. The backbone helpers (:func:`~torchrl_newt.modules.vision.load_dinov2`,
:func:`~torchrl_newt.modules.vision.build_tiny_dinov2`) live in :mod:`torchrl_newt.modules.vision`;
``torchrl_newt.modules.DINOv2Features`` re-exports this class.

Needs :mod:`transformers` (``pip install -e .[vision]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import Composite, Unbounded
from torchrl.envs.transforms import Transform

from torchrl_newt.modules.vision import (  # build_tiny_dinov2: used by the doctests
    DEFAULT_DINOV2_MODEL,
    build_tiny_dinov2,  # noqa: F401
    load_dinov2,
    normalize_frames,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import Dinov2Model

__all__ = ["DINOv2Features"]

logger = logging.getLogger(__name__)


class DINOv2Features(Transform):
    """Replaces RGB frames by frozen DINOv2 CLS features (TorchRL transform).

    Reads channels-last frames ``[*batch, H, W, 3]`` (``uint8``, e.g. the ``"pixels"`` of
    ``make_env(..., from_pixels=True)``), normalises them with the ImageNet statistics, runs the
    frozen backbone once on all lanes (no gradients, in chunks of ``max_batch_size`` if set) and
    takes the CLS token of ``last_hidden_state`` (``[*batch, hidden_size]``, 768 for DINOv2-base).
    The features are appended to ``out_key`` (default ``"observation"``) or, with
    ``append=False``, written to ``out_key`` as a new entry; the frames are then deleted so replay
    buffers store features, not frames. Observation specs are updated accordingly.

    The backbone runs on the device of its parameters: move the transform (or the transformed env)
    to the training device with ``.to(device)``; inputs are moved there and the features come back
    on the device of the frames. By default the frozen backbone is left out of ``state_dict()``
    (it is reloaded from its pretrained weights), keeping checkpoints small.

    Args:
        model: a :class:`transformers.Dinov2Model`, or a path / hub id for :func:`load_dinov2`.
        in_key: the frames' key.
        out_key: the observation to append features to, or the new key (``append=False``).
        append: concatenate the features to ``out_key`` (which must exist) along the last dim.
        del_frames: delete ``in_key`` after computing the features.
        max_batch_size: largest number of frames per backbone forward (``None``: all at once).
        persistent_backbone: include the backbone's weights in ``state_dict()``.
        **load_kwargs: forwarded to :func:`load_dinov2` when ``model`` is a path or id.

    Examples:
        >>> from tensordict import TensorDict
        >>> t = DINOv2Features(build_tiny_dinov2(hidden_size=32))
        >>> td = TensorDict(
        ...     observation=torch.zeros(4, 128),
        ...     pixels=torch.randint(0, 256, (4, 224, 224, 3), dtype=torch.uint8),
        ...     batch_size=[4],
        ... )
        >>> out = t(td)
        >>> out["observation"].shape, "pixels" in out.keys()
        (torch.Size([4, 160]), False)
    """

    def __init__(
        self,
        model: Dinov2Model | str | os.PathLike = DEFAULT_DINOV2_MODEL,
        *,
        in_key: NestedKey = "pixels",
        out_key: NestedKey = "observation",
        append: bool = True,
        del_frames: bool = True,
        max_batch_size: int | None = None,
        persistent_backbone: bool = False,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(in_keys=[in_key], out_keys=[out_key])
        if isinstance(model, (str, os.PathLike)):
            model = load_dinov2(model, **load_kwargs)
        elif load_kwargs:
            raise TypeError(f"unexpected arguments for an already built model: {sorted(load_kwargs)}")
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be positive, got {max_batch_size}")
        self.backbone = model.eval().requires_grad_(False)
        self.in_key = in_key
        self.out_key = out_key
        self.append = append
        self.del_frames = del_frames
        self.max_batch_size = max_batch_size
        self.persistent_backbone = persistent_backbone
        if not persistent_backbone:
            self.register_state_dict_post_hook(_drop_backbone_from_state_dict)
            self.register_load_state_dict_pre_hook(_fill_backbone_in_state_dict)

    @property
    def feature_dim(self) -> int:
        """Size of the feature vector (the backbone's hidden size)."""
        return int(self.backbone.config.hidden_size)

    def train(self, mode: bool = True) -> DINOv2Features:
        super().train(mode)
        self.backbone.eval()  # frozen: dropout / drop-path stay off whatever the container does
        return self

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """CLS features of frames ``[*batch, H, W, 3]`` -> ``[*batch, feature_dim]`` (float32).

        The result lives on the device of ``frames``.
        """
        param = next(self.backbone.parameters())
        batch_shape = frames.shape[:-3]
        flat = frames.reshape(-1, *frames.shape[-3:])
        if flat.shape[0] == 0:
            return torch.zeros(*batch_shape, self.feature_dim, device=frames.device)
        flat = flat.to(param.device, non_blocking=True)
        step = self.max_batch_size or flat.shape[0]
        out = []
        for start in range(0, flat.shape[0], step):
            x = normalize_frames(flat[start : start + step]).to(param.dtype)
            out.append(self.backbone(pixel_values=x).last_hidden_state[:, 0].float())
        feats = torch.cat(out) if len(out) > 1 else out[0]
        return feats.reshape(*batch_shape, self.feature_dim).to(frames.device)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        frames = next_tensordict.get(self.in_key, None)
        if frames is None:
            if self.missing_tolerance:
                return next_tensordict
            raise KeyError(f"{type(self).__name__}: {self.in_key!r} not found in {next_tensordict}")
        feats = self.features(frames)
        if self.append:
            obs = next_tensordict.get(self.out_key, None)
            if obs is None:
                raise KeyError(
                    f"{type(self).__name__}(append=True) needs {self.out_key!r} to append to; "
                    "pass append=False to write the features to a new key"
                )
            feats = torch.cat([obs, feats.to(obs.dtype)], dim=-1)
        next_tensordict.set(self.out_key, feats)
        if self.del_frames and self.in_key != self.out_key:
            next_tensordict.del_(self.in_key)
        return next_tensordict

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Apply to any tensordict holding frames (offline data, replay-buffer samples...)."""
        return self._call(tensordict)

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        if self.in_key not in observation_spec.keys(True):
            raise KeyError(
                f"{type(self).__name__}: the env has no {self.in_key!r} observation "
                "(build it with make_env(..., from_pixels=True))"
            )
        frames_spec = observation_spec[self.in_key]
        batch_shape = frames_spec.shape[:-3]
        if self.append:
            obs_spec = observation_spec[self.out_key]
            new_spec = Unbounded(
                shape=(*obs_spec.shape[:-1], obs_spec.shape[-1] + self.feature_dim),
                dtype=obs_spec.dtype,
                device=obs_spec.device,
            )
        else:
            new_spec = Unbounded(shape=(*batch_shape, self.feature_dim), dtype=torch.float32, device=frames_spec.device)
        observation_spec[self.out_key] = new_spec
        if self.del_frames and self.in_key != self.out_key:
            del observation_spec[self.in_key]
        return observation_spec

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_key={self.in_key!r}, out_key={self.out_key!r}, append={self.append}, "
            f"feature_dim={self.feature_dim}, device={next(self.backbone.parameters()).device})"
        )


def _drop_backbone_from_state_dict(module: DINOv2Features, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "backbone.")]:
        del state_dict[key]


def _fill_backbone_in_state_dict(
    module: DINOv2Features,
    state_dict: dict,
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: Sequence[str],
    unexpected_keys: Sequence[str],
    error_msgs: Sequence[str],
) -> None:
    # checkpoints saved without the frozen backbone keep its current (pretrained) weights
    for key, value in module.backbone.state_dict(prefix=prefix + "backbone.").items():
        state_dict.setdefault(key, value)
