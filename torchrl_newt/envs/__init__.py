"""MMBench tasks as TorchRL environments: registry, domains and the masked multitask stack."""

from torchrl_newt.envs.registry import (
    MMBENCH_DOMAINS,
    SCORE_KINDS,
    MissingDependencyError,
    RawTask,
    ScoreRule,
    TaskSpec,
    UnknownTaskError,
    build_raw_task,
    discount_heuristic,
    get_domain,
    get_task,
    list_domains,
    list_tasks,
    register_domain,
    register_task,
    require_installed,
    score_episodes,
)
from torchrl_newt.envs.base import RawTaskEnv
from torchrl_newt.envs.factory import make_env, make_lane_env
from torchrl_newt.envs.transforms import (
    EpisodeScore,
    PadAction,
    PadObservation,
    TaskId,
    TaskIndexMap,
    mask_from_dims,
    task_tensors,
)
from torchrl_newt.envs.taskset import TaskSet
from torchrl_newt.envs.vector import MultitaskVecEnv

__all__ = [
    "DINOv2Features",
    "EpisodeScore",
    "MMBENCH_DOMAINS",
    "MissingDependencyError",
    "MultitaskVecEnv",
    "PadAction",
    "PadObservation",
    "RawTask",
    "RawTaskEnv",
    "SCORE_KINDS",
    "ScoreRule",
    "TaskId",
    "TaskIndexMap",
    "TaskSet",
    "TaskSpec",
    "UnknownTaskError",
    "build_raw_task",
    "discount_heuristic",
    "get_domain",
    "get_task",
    "list_domains",
    "list_tasks",
    "make_env",
    "make_lane_env",
    "mask_from_dims",
    "register_domain",
    "register_task",
    "require_installed",
    "score_episodes",
    "task_tensors",
]


def __getattr__(name: str):
    # DINOv2Features (torchrl_newt.envs.vision) imports torchrl_newt.modules: load it on first use
    if name == "DINOv2Features":
        from torchrl_newt.envs.vision import DINOv2Features

        return DINOv2Features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
