"""TensorDict modules of Newt: the world model, the MPPI planner actor, language and vision features.

The language (CLIP) and vision (DINOv2) helpers import ``transformers`` lazily, only when used; MMBench
task embeddings come from Newt's shipped CLIP table (:func:`newt_task_embeddings`) without it.
"""

from torchrl_newt.modules.layers import SimNorm, TaskMLP, simnorm
from torchrl_newt.modules.planner import TDMPC2Planner, constraint_weight
from torchrl_newt.modules.world_model import MODEL_SIZES, NewtWorldModel, PolicyOutput
from torchrl_newt.modules.language import (
    CLIP_TEXT_DIM,
    DEFAULT_CLIP_MODEL,
    CLIPTextEmbedder,
    LanguageModelUnavailable,
    MissingTaskEmbeddingError,
    ModelUnavailable,
    NEWT_TABLE_FILE,
    NewtTextTable,
    build_tiny_clip_text,
    default_cache_dir,
    load_newt_table,
    load_task_table,
    mean_pool,
    model_fingerprint,
    newt_task_embeddings,
    save_task_table,
    task_embeddings,
    task_embeddings_or_none,
    task_texts,
)
from torchrl_newt.modules.vision import (
    DEFAULT_DINOV2_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VisionModelUnavailable,
    build_tiny_dinov2,
    load_dinov2,
    normalize_frames,
)

__all__ = [
    "CLIPTextEmbedder",
    "CLIP_TEXT_DIM",
    "DEFAULT_CLIP_MODEL",
    "DEFAULT_DINOV2_MODEL",
    "DINOv2Features",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LanguageModelUnavailable",
    "MODEL_SIZES",
    "MissingTaskEmbeddingError",
    "ModelUnavailable",
    "NEWT_TABLE_FILE",
    "NewtTextTable",
    "NewtWorldModel",
    "PolicyOutput",
    "SimNorm",
    "TDMPC2Planner",
    "TaskMLP",
    "VisionModelUnavailable",
    "build_tiny_clip_text",
    "constraint_weight",
    "build_tiny_dinov2",
    "default_cache_dir",
    "load_dinov2",
    "load_newt_table",
    "load_task_table",
    "mean_pool",
    "model_fingerprint",
    "newt_task_embeddings",
    "normalize_frames",
    "save_task_table",
    "simnorm",
    "task_embeddings",
    "task_embeddings_or_none",
    "task_texts",
]


def __getattr__(name: str):
    # DINOv2Features moved to torchrl_newt.envs.vision (an env transform); resolved lazily to avoid an
    # import cycle (envs.vision imports torchrl_newt.modules.vision).
    if name == "DINOv2Features":
        from torchrl_newt.envs.vision import DINOv2Features

        return DINOv2Features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
