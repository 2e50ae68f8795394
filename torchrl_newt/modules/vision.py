"""Frozen DINOv2 frame features for Newt's optional RGB observations.

Newt feeds 224x224 RGB frames through a frozen DINOv2-base (``facebook/dinov2-base``) and
concatenates the 768-d CLS feature with the state observation (and the task embedding) at the input
of the ordinary MLP encoder; there is no CNN. This module loads the frozen backbone
(:func:`load_dinov2`, :func:`build_tiny_dinov2`) and normalises frames (:func:`normalize_frames`);
the TorchRL transform that applies it on the environment side,
:class:`~torchrl_newt.envs.vision.DINOv2Features`, lives with the other env transforms in
:mod:`torchrl_newt.envs.vision` (``torchrl_newt.modules.vision.DINOv2Features`` still works).

Frames are used as they come (224x224, no resize or crop): scaled to ``[0, 1]``, normalised with the
ImageNet mean/std, and the CLS token of the final (layer-normed) hidden state is taken.

Needs :mod:`transformers` (``pip install -e .[vision]``). Weights load from a local directory, from
``TORCHRL_NEWT_DINOV2_PATH`` (for the default id) or from the Hugging Face cache, never from the
network unless ``allow_download=True``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import torch

from torchrl_newt.modules.language import (
    ModelUnavailable,
    _check_download_flags,
    _require_transformers,
    _resolve_pretrained,
    _unavailable_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import Dinov2Model

__all__ = [
    "DEFAULT_DINOV2_MODEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VisionModelUnavailable",
    "build_tiny_dinov2",
    "load_dinov2",
    "normalize_frames",
]

logger = logging.getLogger(__name__)

DEFAULT_DINOV2_MODEL = "facebook/dinov2-base"
DINOV2_PATH_ENV = "TORCHRL_NEWT_DINOV2_PATH"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel (RGB) mean of ImageNet, used by DINOv2's preprocessing."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel (RGB) standard deviation of ImageNet, used by DINOv2's preprocessing."""


class VisionModelUnavailable(ModelUnavailable):
    """The DINOv2 weights are not available offline (and downloading was not allowed)."""


def normalize_frames(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Channels-last frames ``[..., H, W, 3]`` to normalised channels-first ``[..., 3, H, W]``.

    ``uint8`` frames are scaled by ``1/255``; floating frames are assumed to be in ``[0, 1]``
    already. Each channel is then standardised with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`.

    Examples:
        >>> frame = torch.full((1, 1, 3), 255, dtype=torch.uint8)
        >>> normalize_frames(frame).flatten()
        tensor([2.2489, 2.4286, 2.6400])
    """
    if pixels.shape[-1] != 3:
        raise ValueError(f"expected channels-last RGB frames [..., H, W, 3], got shape {tuple(pixels.shape)}")
    if pixels.dtype == torch.uint8:
        x = pixels.to(dtype) / 255.0
    elif pixels.is_floating_point():
        x = pixels.to(dtype)
    else:
        raise TypeError(f"expected uint8 or floating frames, got {pixels.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=x.device)
    std = torch.tensor(IMAGENET_STD, dtype=dtype, device=x.device)
    return ((x - mean) / std).movedim(-1, -3)


def load_dinov2(
    model: str | os.PathLike = DEFAULT_DINOV2_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    local_files_only: bool = True,
    allow_download: bool = False,
    hf_cache_dir: str | os.PathLike | None = None,
) -> Dinov2Model:
    """Load a frozen :class:`transformers.Dinov2Model` (eval mode, no gradients) without network.

    Args:
        model: a local directory or a Hugging Face id (``TORCHRL_NEWT_DINOV2_PATH`` overrides the
            default id).
        device: where to put the model (default: CPU; ``DINOv2Features`` follows ``.to()``).
        dtype: parameter dtype (default: float32).
        revision: hub revision to look up in the Hugging Face cache.
        local_files_only: kept for parity with :mod:`transformers`; downloads only ever happen
            with ``allow_download=True``.
        allow_download: permit downloading the weights from the Hugging Face Hub.
        hf_cache_dir: the Hugging Face cache to search (default: the standard one).

    Raises:
        VisionModelUnavailable: the weights are not on this machine and downloading is off.
        MissingDependencyError: :mod:`transformers` is not installed (``pip install -e .[vision]``).

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp()
        >>> build_tiny_dinov2().save_pretrained(path)
        >>> backbone = load_dinov2(path)
        >>> backbone.training, any(p.requires_grad for p in backbone.parameters())
        (False, False)
    """
    download = _check_download_flags(local_files_only, allow_download)
    transformers = _require_transformers("vision")
    directory, model_id = _resolve_pretrained(
        model, revision=revision, hf_cache_dir=hf_cache_dir, env_var=DINOV2_PATH_ENV, default_id=DEFAULT_DINOV2_MODEL
    )
    if directory is None:
        if not download:
            raise VisionModelUnavailable(_unavailable_message("DINOv2", model_id, hf_cache_dir, DINOV2_PATH_ENV))
        logger.warning("downloading %s from the Hugging Face Hub (allow_download=True)", model_id)
        backbone = transformers.Dinov2Model.from_pretrained(
            model_id, revision=revision, cache_dir=hf_cache_dir, local_files_only=False
        )
    else:
        logger.info("loading DINOv2 from %s", directory)
        try:
            backbone = transformers.Dinov2Model.from_pretrained(directory, local_files_only=True)
        except OSError as err:  # e.g. a partial cache snapshot without the weights
            raise VisionModelUnavailable(
                f"DINOv2 {model_id!r} was found at {directory} but could not be loaded offline ({err}); "
                "re-download it or point model= to a complete checkout"
            ) from err
    backbone = backbone.eval().requires_grad_(False)
    return backbone.to(device=device or "cpu", dtype=dtype or torch.float32)


def build_tiny_dinov2(hidden_size: int = 32, *, num_layers: int = 1, seed: int = 0, **config: Any) -> Dinov2Model:
    """A randomly initialised small :class:`transformers.Dinov2Model` for tests and examples.

    ``build_tiny_dinov2(768, num_layers=12, num_attention_heads=12, image_size=518)`` has the
    DINOv2-base architecture (same compute as the real model, random weights).

    Examples:
        >>> build_tiny_dinov2(16).config.hidden_size
        16
    """
    transformers = _require_transformers("vision")
    kwargs: dict[str, Any] = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "mlp_ratio": 4,
        "image_size": 224,
        "patch_size": 14,
    }
    kwargs.update(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = transformers.Dinov2Model(transformers.Dinov2Config(**kwargs))
    return backbone.eval().requires_grad_(False)


def __getattr__(name: str) -> Any:
    # DINOv2Features is an env transform and lives in torchrl_newt.envs.vision; importing it lazily
    # keeps this old import path working without an import cycle (envs.vision imports this module).
    if name == "DINOv2Features":
        from torchrl_newt.envs.vision import DINOv2Features

        return DINOv2Features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
