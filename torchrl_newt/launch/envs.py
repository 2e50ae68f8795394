"""Per-rank environments of data-parallel training: a subset of the tasks, global task ids.

Every rank's world model holds the task table of *all* tasks, while its environment steps only
the rank's subset (:func:`~torchrl_newt.launch.split_tasks`). :func:`~torchrl_newt.envs.make_env`
numbers its lanes ``0..n-1`` within its own list, so :class:`TaskIndexMap` rewrites the
``"task"`` entry to the lanes' *global* indices; the planner, the replay buffer and the losses
then see the same ids as in a single-process run. :func:`make_shard_env` composes the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import Categorical, Composite
from torchrl.envs import TransformedEnv
from torchrl.envs.transforms import Transform

from torchrl_newt.launch.distributed import split_tasks

__all__ = ["TaskIndexMap", "make_shard_env"]


class TaskIndexMap(Transform):
    """Maps lane-local task indices to global ones: ``task <- index_map[task]``.

    Applied to the env's outputs (reset and step), so the collected data and the policy's input
    carry global ids.

    Args:
        index_map: global index of each local index (``index_map[i]`` for lane ``i``).
        num_tasks: size of the global task set (the ``Categorical`` spec's ``n``). Defaults to
            ``max(index_map) + 1``.
        key: the task-id entry. Defaults to ``"task"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> t = TaskIndexMap([1, 3], num_tasks=4)
        >>> t(TensorDict(task=torch.tensor([0, 1]), batch_size=[2]))["task"]
        tensor([1, 3])
    """

    def __init__(self, index_map: Sequence[int], num_tasks: int | None = None, key: NestedKey = "task") -> None:
        index_map = [int(i) for i in index_map]
        if not index_map:
            raise ValueError("index_map must not be empty")
        num_tasks = max(index_map) + 1 if num_tasks is None else int(num_tasks)
        if min(index_map) < 0 or max(index_map) >= num_tasks:
            raise ValueError(f"index_map {index_map} is out of range for num_tasks={num_tasks}")
        super().__init__(in_keys=[key], out_keys=[key])
        self.key = key
        self.num_tasks = num_tasks
        self.register_buffer("index_map", torch.tensor(index_map, dtype=torch.int64))

    def _map(self, tensordict: TensorDictBase) -> TensorDictBase:
        task = tensordict.get(self.key, None)
        if task is not None:
            table = self.index_map.to(task.device)
            tensordict.set(self.key, table[task.long()].to(task.dtype))
        return tensordict

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        return self._map(next_tensordict)

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._map(tensordict_reset)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._map(tensordict)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        if self.key in observation_spec.keys(True):
            old = observation_spec[self.key]
            observation_spec[self.key] = Categorical(
                self.num_tasks, shape=old.shape, dtype=old.dtype, device=old.device
            )
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index_map={self.index_map.tolist()}, num_tasks={self.num_tasks})"


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
        tasks: all tasks, in the global order used by the world model's task table.
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

    tasks = list(tasks)
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be unique, got {tasks}")
    local = split_tasks(tasks, rank, world_size)
    env = make_env(local, **make_env_kwargs)
    indices = [tasks.index(t) for t in local]
    env.append_transform(TaskIndexMap(indices, num_tasks=len(tasks)))
    env.task_names = local
    env.task_indices = indices
    return env
