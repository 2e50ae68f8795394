"""Scaling out: data-parallel training on ``torch.distributed`` and Slurm launching with submitit.

* :mod:`torchrl_newt.launch.distributed`: process-group setup from torchrun/Slurm/submitit,
  round-robin task sharding, gradient all-reduce, result gathering.
* :mod:`torchrl_newt.launch.envs`: per-rank environments carrying global task ids.
* :mod:`torchrl_newt.launch.slurm`: submitit executors, a preemption-safe (requeueing) training
  job, multi-node training and single-task array submissions.

``torchrl_newt.launch.slurm`` imports ``submitit`` lazily (only when a job is built).
"""

from torchrl_newt.launch.distributed import (
    DistributedContext,
    LaunchEnv,
    all_reduce_grads,
    barrier,
    broadcast_module,
    cleanup,
    gather_objects,
    gather_results,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main,
    read_launch_env,
    split_batch_size,
    split_tasks,
)
from torchrl_newt.launch.envs import TaskIndexMap, make_shard_env

__all__ = [
    "DistributedContext",
    "LaunchEnv",
    "TaskIndexMap",
    "all_reduce_grads",
    "barrier",
    "broadcast_module",
    "cleanup",
    "gather_objects",
    "gather_results",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main",
    "make_shard_env",
    "read_launch_env",
    "split_batch_size",
    "split_tasks",
]
