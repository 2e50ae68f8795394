"""A task list resolved once: :class:`TaskSet`.

A run names its tasks once (``--tasks``); every piece then needs facts about them: the env (specs,
padding, score rules), the world model (how many task ids), the planner and the losses (per-task
discounts), the demo loader (names and action dimensions). :class:`TaskSet` resolves the names
against the registry a single time (unknown names, duplicates, padding, installed simulators) and
hands every piece the same object, so nothing re-resolves or re-checks the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import torch
from tensordict import TensorDict

from torchrl_newt.envs.registry import ScoreRule, TaskSpec, require_installed

__all__ = ["TaskSet"]


class TaskSet(Sequence[TaskSpec]):
    """An ordered, checked list of tasks and their per-task constants.

    Index ``i`` is the task id the env writes into ``"task"`` and the row of the world model's task
    table. Iterating yields :class:`~torchrl_newt.envs.TaskSpec` objects, so a ``TaskSet`` can be
    passed wherever a list of tasks is accepted (:func:`~torchrl_newt.envs.make_env`,
    :func:`~torchrl_newt.envs.task_tensors`, :func:`~torchrl_newt.data.load_demos`); those accept it
    without resolving or checking the tasks again.

    Build it with :meth:`resolve`.

    Attributes:
        specs: the task specs, in order.
        obs_pad: the padded observation size the tasks were checked against.
        action_pad: the padded action size.

    Examples:
        >>> tasks = TaskSet.resolve(["cartpole-swingup", "walker-walk"])
        >>> tasks.names, len(tasks), tasks.index("walker-walk")
        (['cartpole-swingup', 'walker-walk'], 2, 1)
        >>> tasks.discount, tasks.action_dim, tasks.episode_length
        (tensor([0.9900, 0.9900]), tensor([1, 6]), tensor([500, 500]))
        >>> tasks.action_mask.sum(-1)
        tensor([1, 6])
        >>> tasks.subset(["walker-walk"]).names
        ['walker-walk']
    """

    def __init__(self, specs: Sequence[TaskSpec], obs_pad: int = 128, action_pad: int = 16) -> None:
        self.specs: tuple[TaskSpec, ...] = tuple(specs)
        if not all(isinstance(s, TaskSpec) for s in self.specs):
            raise TypeError("TaskSet holds TaskSpec objects; build one from names with TaskSet.resolve(names)")
        self.obs_pad, self.action_pad = int(obs_pad), int(action_pad)
        self._index = {s.name: i for i, s in enumerate(self.specs)}
        #: whether :meth:`resolve` checked that every simulator is installed
        self.installed_checked = False

    @classmethod
    def resolve(
        cls,
        tasks: str | TaskSpec | Iterable[str | TaskSpec],
        obs_pad: int = 128,
        action_pad: int = 16,
        *,
        check_installed: bool = True,
    ) -> TaskSet:
        """Resolve task names (or specs) once and check them.

        Args:
            tasks: task names or specs (or a single one), in lane/task-id order.
            obs_pad: padded observation size every task must fit. Defaults to ``128``.
            action_pad: padded action size every task must fit. Defaults to ``16``.

        Keyword Args:
            check_installed: also check that every task's simulator is installed. Defaults to
                ``True``.

        Raises:
            UnknownTaskError: a name is not registered (the message lists close matches).
            ValueError: the list is empty, names a task twice, or a task does not fit the padding.
            MissingDependencyError: a simulator is missing (the message names the pip extra).

        Examples:
            >>> try:
            ...     TaskSet.resolve(["walker-walk", "walker-walk"])
            ... except ValueError as err:
            ...     print(str(err)[:50])
            TaskSet: task(s) 'walker-walk' given more than onc
        """
        if isinstance(tasks, TaskSet):
            if (tasks.obs_pad, tasks.action_pad) == (int(obs_pad), int(action_pad)):
                return tasks
            tasks = tasks.specs
        from torchrl_newt.envs.vector import resolve_padded_specs

        specs = resolve_padded_specs(tasks, obs_pad, action_pad, cls.__name__)
        if check_installed:
            require_installed(specs)
        out = cls(specs, obs_pad, action_pad)
        out.installed_checked = check_installed
        return out

    # -- sequence protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.specs)

    @overload
    def __getitem__(self, i: int) -> TaskSpec: ...

    @overload
    def __getitem__(self, i: slice) -> TaskSet: ...

    def __getitem__(self, i: int | slice) -> TaskSpec | TaskSet:
        if isinstance(i, slice):
            return self.subset(s.name for s in self.specs[i])
        return self.specs[i]

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self.specs)

    def __contains__(self, item: Any) -> bool:
        name = item.name if isinstance(item, TaskSpec) else item
        return name in self._index

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TaskSet):
            return self.names == other.names and (self.obs_pad, self.action_pad) == (other.obs_pad, other.action_pad)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((tuple(self.names), self.obs_pad, self.action_pad))

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:6]) + (", ..." if len(self) > 6 else "")
        return f"TaskSet([{shown}], n={len(self)}, obs_pad={self.obs_pad}, action_pad={self.action_pad})"

    def index(self, name: str | TaskSpec, *args: Any) -> int:  # noqa: D102 - Sequence.index, by name
        key = name.name if isinstance(name, TaskSpec) else name
        try:
            return self._index[key]
        except KeyError:
            raise ValueError(f"task {key!r} is not in this TaskSet ({', '.join(self.names)})") from None

    def subset(self, names: Iterable[str | TaskSpec]) -> TaskSet:
        """The tasks ``names`` (in that order), already checked: e.g. one rank's share."""
        out = TaskSet([self.specs[self.index(n)] for n in names], self.obs_pad, self.action_pad)
        out.installed_checked = self.installed_checked
        return out

    # -- per-task facts ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Task names, in task-id order."""
        return [s.name for s in self.specs]

    @property
    def discount(self) -> torch.Tensor:
        """Per-task discount factors, float32 ``[T]``."""
        return torch.tensor([s.discount for s in self.specs], dtype=torch.float32)

    @property
    def action_dim(self) -> torch.Tensor:
        """Real action dimensions, int64 ``[T]``."""
        return torch.tensor([s.action_dim for s in self.specs], dtype=torch.int64)

    @property
    def action_mask(self) -> torch.Tensor:
        """Valid action dimensions, bool ``[T, action_pad]``."""
        from torchrl_newt.envs.transforms import mask_from_dims

        return mask_from_dims(self.action_dim, self.action_pad)

    @property
    def episode_length(self) -> torch.Tensor:
        """Agent steps per episode, int64 ``[T]``."""
        return torch.tensor([s.episode_length for s in self.specs], dtype=torch.int64)

    @property
    def max_episode_length(self) -> int:
        """The longest episode of the set."""
        return max(s.episode_length for s in self.specs)

    @property
    def score_rules(self) -> list[ScoreRule]:
        """Each task's score rule."""
        return [s.score for s in self.specs]

    def tensors(self) -> TensorDict:
        """The per-task constants as one TensorDict of batch size ``[T]`` (see
        :func:`~torchrl_newt.envs.task_tensors`)."""
        return TensorDict(
            discount=self.discount,
            action_mask=self.action_mask,
            action_dim=self.action_dim,
            episode_length=self.episode_length,
            batch_size=[len(self)],
        )
