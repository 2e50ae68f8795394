"""MMBench tasks as TorchRL environments: registry, domains and the masked multitask stack."""

from torchrl_newt.envs.registry import (
    MMBENCH_DOMAINS,
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
)
from torchrl_newt.envs.base import RawTaskEnv
from torchrl_newt.envs.factory import make_env, make_lane_env
from torchrl_newt.envs.transforms import (
    EpisodeScore,
    PadAction,
    PadObservation,
    TaskId,
    mask_from_dims,
    task_tensors,
)
from torchrl_newt.envs.vector import MultitaskVecEnv

__all__ = [
    "EpisodeScore",
    "MMBENCH_DOMAINS",
    "MissingDependencyError",
    "MultitaskVecEnv",
    "PadAction",
    "PadObservation",
    "RawTask",
    "RawTaskEnv",
    "ScoreRule",
    "TaskId",
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
    "task_tensors",
]
