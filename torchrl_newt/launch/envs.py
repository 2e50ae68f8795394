"""Per-rank environments of data-parallel training: a subset of the tasks, global task ids.

Every rank's world model holds the task table of *all* tasks, while its environment steps only
the rank's subset (:func:`~torchrl_newt.launch.split_tasks`). :func:`~torchrl_newt.envs.make_env`
numbers its lanes ``0..n-1`` within its own list, so :class:`TaskIndexMap` rewrites the
``"task"`` entry to the lanes' *global* indices (the transform lives in :mod:`torchrl_newt.envs.transforms`); the planner, the replay buffer and the losses
then see the same ids as in a single-process run. :func:`make_shard_env` composes the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchrl.envs import TransformedEnv

from torchrl_newt.envs.transforms import TaskIndexMap  # moved to the env transforms; re-exported here
from torchrl_newt.launch.distributed import split_tasks

__all__ = ["TaskIndexMap", "make_shard_env"]


def make_shard_env(
    tasks: Sequence[str],
    rank: int,
    world_size: int,
    **make_env_kwargs: Any,
) -> TransformedEnv:
    """The environment of ``rank``: its round-robin share of ``tasks``, with global task ids.

    ``env.task_names`` lists the rank's tasks (lane order) and ``env.task_indices`` their global
    indices in ``tasks``.

    Args:
        tasks: all tasks (names, or a :class:`~torchrl_newt.envs.TaskSet`), in the global order used by
            the world model's task table.
        rank: this rank.
        world_size: number of ranks.
        **make_env_kwargs: forwarded to :func:`torchrl_newt.envs.make_env` (``seed``,
            ``parallel``...).

    Examples:
        >>> env = make_shard_env(["cartpole-balance", "reacher-easy", "walker-stand"], 1, 2, seed=0)
        >>> env.task_names, env.task_indices
        (['reacher-easy'], [1])
        >>> env.rollout(2)["task"]
        tensor([[1, 1]])
        >>> env.close()
    """
    from torchrl_newt.envs import make_env

    from torchrl_newt.envs import TaskSet

    taskset = tasks if isinstance(tasks, TaskSet) else None
    tasks = taskset.names if taskset is not None else list(tasks)
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be unique, got {tasks}")
    local = split_tasks(tasks, rank, world_size)
    env = make_env(taskset.subset(local) if taskset is not None else local, **make_env_kwargs)
    indices = [tasks.index(t) for t in local]
    env.append_transform(TaskIndexMap(indices, num_tasks=len(tasks)))
    env.task_names = local
    env.task_indices = indices
    return env
