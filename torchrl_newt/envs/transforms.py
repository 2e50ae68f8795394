"""The masked multitask transform stack.

Each MMBench lane is a :class:`~torchrl_newt.envs.RawTaskEnv` with its own observation and action
sizes. These transforms make every lane look alike so that lanes can be batched:

* :class:`PadObservation` zero-pads state observations to a common length (128 in Newt);
* :class:`PadAction` exposes a padded action (16 in Newt), drops the padded dims before the
  simulator sees them and writes the boolean ``action_mask`` of real dims;
* :class:`TaskId` writes the lane's task index, and :class:`TaskIndexMap` maps lane-local task
  indices to global ones (data-parallel shards);
* :class:`EpisodeScore` turns the running episode return (TorchRL's
  :class:`~torchrl.envs.transforms.RewardSum`) into the task's benchmark score.

Truncation at the task's episode length is TorchRL's :class:`~torchrl.envs.transforms.StepCounter`.
:func:`task_tensors` gathers the per-task constants (discounts, masks...) used by planners and
losses.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs.transforms import ObservationTransform, Transform

from torchrl_newt.envs.registry import ScoreRule, TaskSpec, get_task

__all__ = [
    "EpisodeScore",
    "PadAction",
    "PadObservation",
    "TaskId",
    "TaskIndexMap",
    "mask_from_dims",
    "task_tensors",
]


def _lane_name(transform: Transform) -> str:
    """A readable name of the task a transform is attached to, for error messages."""
    parent = transform.parent
    base = getattr(parent, "base_env", parent)
    name = getattr(base, "task_name", None) if base is not None else None
    return f"task {name!r}" if name else "the environment"


def mask_from_dims(action_dims: int | Sequence[int] | torch.Tensor, pad_dim: int = 16) -> torch.Tensor:
    """Boolean masks of the real action dims (the first ``action_dim`` of ``pad_dim``).

    Args:
        action_dims: one action dim or a sequence/tensor of them.
        pad_dim: the padded action size. Defaults to ``16``.

    Returns:
        a bool tensor of shape ``[*action_dims.shape, pad_dim]``.

    Raises:
        ValueError: an action dim is below 1 (the mask would have no valid dim) or above ``pad_dim``.

    Examples:
        >>> mask_from_dims(3, pad_dim=5)
        tensor([ True,  True,  True, False, False])
        >>> mask_from_dims([1, 2], pad_dim=3)
        tensor([[ True, False, False],
                [ True,  True, False]])
    """
    dims = torch.as_tensor(action_dims, dtype=torch.int64)
    if dims.numel() and int(dims.min()) < 1:
        raise ValueError(f"an action mask needs at least one valid dim, got action dims {dims.tolist()}")
    if dims.numel() and int(dims.max()) > pad_dim:
        raise ValueError(f"action dims {dims.tolist()} exceed the action padding size {pad_dim}")
    return torch.arange(pad_dim) < dims.unsqueeze(-1)


class PadObservation(ObservationTransform):
    """Zero-pads the last dim of observations to ``pad_dim``.

    Args:
        pad_dim: the padded size. Defaults to ``128`` (Newt's state size).
        in_keys: observation keys to pad. Defaults to ``["observation"]``.
        out_keys: where to write the padded observations. Defaults to ``in_keys``.

    Raises:
        ValueError: (when the specs are built or at call time) an observation is longer than
            ``pad_dim``; the message names the task.

    Examples:
        >>> t = PadObservation(pad_dim=4)
        >>> t(TensorDict(observation=torch.ones(2, 3), batch_size=[2]))["observation"]
        tensor([[1., 1., 1., 0.],
                [1., 1., 1., 0.]])
    """

    def __init__(
        self,
        pad_dim: int = 128,
        in_keys: Sequence[NestedKey] | None = None,
        out_keys: Sequence[NestedKey] | None = None,
    ) -> None:
        if pad_dim < 1:
            raise ValueError(f"pad_dim must be positive, got {pad_dim}")
        if in_keys is None:
            in_keys = ["observation"]
        if out_keys is None:
            out_keys = in_keys
        super().__init__(in_keys=in_keys, out_keys=out_keys)
        self.pad_dim = int(pad_dim)

    def _apply_transform(self, obs: torch.Tensor) -> torch.Tensor:
        size = obs.shape[-1]
        if size == self.pad_dim:
            return obs
        if size > self.pad_dim:
            raise ValueError(self._too_large(size))
        return torch.nn.functional.pad(obs, (0, self.pad_dim - size))

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def _too_large(self, size: int) -> str:
        where = _lane_name(self) if self.parent is not None else "the input"
        return f"{where} has observation size {size} > pad_dim={self.pad_dim}; raise the observation padding"

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            spec = observation_spec[in_key]
            size = spec.shape[-1]
            if size > self.pad_dim:
                raise ValueError(self._too_large(size))
            observation_spec[out_key] = Unbounded(
                shape=(*spec.shape[:-1], self.pad_dim), dtype=spec.dtype, device=spec.device
            )
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pad_dim={self.pad_dim}, in_keys={self.in_keys})"


class PadAction(Transform):
    """Exposes a zero-padded action of size ``pad_dim`` and an ``action_mask`` of the real dims.

    The policy writes a ``[pad_dim]`` action; before the step, the padded dims are dropped so the
    wrapped env receives its ``[action_dim]`` action. The boolean mask (``True`` on the first
    ``action_dim`` entries) is written at reset and after every step.

    Args:
        pad_dim: the padded action size. Defaults to ``16``.
        action_key: the action key. Defaults to ``"action"``.
        mask_key: where to write the mask. Defaults to ``"action_mask"``.
        action_dim: the real action size; read from the parent env's action spec when omitted
            (needed only to use the transform outside an env).

    Raises:
        ValueError: the real action size is above ``pad_dim`` or below 1 (empty mask).

    Examples:
        >>> t = PadAction(pad_dim=4, action_dim=2)
        >>> t.inv(TensorDict(action=torch.tensor([0.5, -0.5, 0.9, 0.9]), batch_size=[]))["action"]
        tensor([ 0.5000, -0.5000])
        >>> t._mask
        tensor([ True,  True, False, False])
    """

    def __init__(
        self,
        pad_dim: int = 16,
        action_key: NestedKey = "action",
        mask_key: NestedKey = "action_mask",
        action_dim: int | None = None,
    ) -> None:
        super().__init__(in_keys=[], out_keys=[mask_key], in_keys_inv=[action_key], out_keys_inv=[action_key])
        self.pad_dim = int(pad_dim)
        self.action_key = action_key
        self.mask_key = mask_key
        self._action_dim: int | None = None
        self.register_buffer("_mask", None, persistent=False)
        if action_dim is not None:
            self._set_action_dim(int(action_dim))

    @property
    def action_dim(self) -> int | None:
        """The real action size (``None`` until known)."""
        return self._action_dim

    def _set_action_dim(self, action_dim: int) -> None:
        if action_dim > self.pad_dim:
            where = _lane_name(self) if self.parent is not None else "the action"
            raise ValueError(f"{where} has {action_dim} action dims > pad_dim={self.pad_dim}; raise the action padding")
        if action_dim < 1:
            where = _lane_name(self) if self.parent is not None else "the action"
            raise ValueError(f"{where} has no action dims: its action mask would have no valid dim")
        self._action_dim = action_dim
        self._mask = mask_from_dims(action_dim, self.pad_dim)

    def _ensure_action_dim(self) -> int:
        # the specs of a batched env's lanes may come from a sibling, so read the size lazily
        if self._action_dim is None:
            parent = self.parent
            if parent is None:
                raise RuntimeError("PadAction does not know the real action size: attach it to an env or pass action_dim")
            self._set_action_dim(int(parent.full_action_spec[self.action_key].shape[-1]))
        return self._action_dim

    def _inv_apply_transform(self, action: torch.Tensor) -> torch.Tensor:
        return action[..., : self._ensure_action_dim()]

    def _write_mask(self, tensordict: TensorDictBase) -> TensorDictBase:
        self._ensure_action_dim()
        mask = self._mask
        if tensordict.batch_dims:
            mask = mask.expand(*tensordict.batch_size, self.pad_dim)
        tensordict.set(self.mask_key, mask.clone())
        return tensordict

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        return self._write_mask(next_tensordict)

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._write_mask(tensordict_reset)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._write_mask(tensordict)

    def transform_action_spec(self, action_spec: Composite) -> Composite:
        spec = action_spec[self.action_key]
        self._set_action_dim(int(spec.shape[-1]))
        pad = self.pad_dim - self._action_dim
        lead = spec.shape[:-1]
        low = spec.space.low if isinstance(spec, Bounded) else torch.full(spec.shape, -1.0, device=spec.device)
        high = spec.space.high if isinstance(spec, Bounded) else torch.full(spec.shape, 1.0, device=spec.device)
        low = torch.cat([low, torch.full((*lead, pad), -1.0, dtype=low.dtype, device=low.device)], -1)
        high = torch.cat([high, torch.full((*lead, pad), 1.0, dtype=high.dtype, device=high.device)], -1)
        action_spec[self.action_key] = Bounded(low=low, high=high, shape=(*lead, self.pad_dim), dtype=spec.dtype, device=spec.device)
        return action_spec

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        observation_spec[self.mask_key] = Binary(
            n=self.pad_dim, shape=(*observation_spec.shape, self.pad_dim), dtype=torch.bool, device=observation_spec.device
        )
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pad_dim={self.pad_dim}, action_dim={self._action_dim}, mask_key={self.mask_key!r})"


class TaskId(Transform):
    """Writes a constant integer task index (int64, one scalar per env) at reset and each step.

    Args:
        task_id: the index to write (usually the lane's position in the task list).
        out_key: where to write it. Defaults to ``"task"``.
        num_tasks: if given, the spec is ``Categorical(num_tasks)``; otherwise an unbounded int64.

    Examples:
        >>> TaskId(3)(TensorDict(batch_size=[2]))["task"]
        tensor([3, 3])
    """

    def __init__(self, task_id: int, out_key: NestedKey = "task", num_tasks: int | None = None) -> None:
        if task_id < 0 or (num_tasks is not None and task_id >= num_tasks):
            raise ValueError(f"task_id={task_id} is out of range for num_tasks={num_tasks}")
        super().__init__(in_keys=[], out_keys=[out_key])
        self.task_id = int(task_id)
        self.out_key = out_key
        self.num_tasks = num_tasks
        self.register_buffer("_value", torch.tensor(self.task_id, dtype=torch.int64), persistent=False)

    def _write(self, tensordict: TensorDictBase) -> TensorDictBase:
        tensordict.set(self.out_key, self._value.expand(tensordict.batch_size).clone())
        return tensordict

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        return self._write(next_tensordict)

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._write(tensordict_reset)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._write(tensordict)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        shape, device = observation_spec.shape, observation_spec.device
        if self.num_tasks is None:
            spec = Unbounded(shape=shape, dtype=torch.int64, device=device)
        else:
            spec = Categorical(self.num_tasks, shape=shape, dtype=torch.int64, device=device)
        observation_spec[self.out_key] = spec
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task_id={self.task_id}, out_key={self.out_key!r})"


class EpisodeScore(Transform):
    """Applies a task's :class:`~torchrl_newt.envs.ScoreRule` to the running episode.

    After every step, writes the score of the episode so far (meaningful where the episode ends)
    from the running return (e.g. :class:`~torchrl.envs.transforms.RewardSum`'s
    ``"episode_reward"``) and the step's success flag, and rewrites the success flag as float32
    (``0`` where the task does not define success). Both are ``0`` after a reset.

    Args:
        score_rule: the rule, or a task name/spec whose rule (and ``success_defined``) to use.
        return_key: the running episode return. Defaults to ``"episode_reward"``.
        success_key: the success flag (read and rewritten). Defaults to ``"success"``.
        score_key: where to write the score. Defaults to ``"score"``.
        success_defined: whether the task's success flag is meaningful; when ``False``, success
            is written as ``0``. Defaults to ``True`` (or the task's fact when a task is given).

    Examples:
        >>> t = EpisodeScore(ScoreRule("return_clip", 0.0, 200.0))
        >>> td = TensorDict(episode_reward=torch.tensor([[100.0], [300.0]]),
        ...                 success=torch.zeros(2, 1), batch_size=[2])
        >>> t(td)["score"]
        tensor([[0.5000],
                [1.0000]])
    """

    def __init__(
        self,
        score_rule: ScoreRule | TaskSpec | str,
        return_key: NestedKey = "episode_reward",
        success_key: NestedKey = "success",
        score_key: NestedKey = "score",
        success_defined: bool | None = None,
    ) -> None:
        if isinstance(score_rule, (str, TaskSpec)):
            spec = get_task(score_rule)
            score_rule = spec.score
            if success_defined is None:
                success_defined = spec.success_defined
        if not isinstance(score_rule, ScoreRule):
            raise TypeError(f"score_rule must be a ScoreRule, a TaskSpec or a task name, got {type(score_rule)}")
        super().__init__(in_keys=[return_key, success_key], out_keys=[score_key, success_key])
        self.score_rule = score_rule
        self.return_key = return_key
        self.success_key = success_key
        self.score_key = score_key
        self.success_defined = True if success_defined is None else bool(success_defined)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        episode_return = next_tensordict.get(self.return_key)
        success = next_tensordict.get(self.success_key, None)
        if success is None or not self.success_defined:
            success = torch.zeros_like(episode_return, dtype=torch.float32)
        else:
            success = success.to(torch.float32)
        score = self.score_rule.torch(episode_return.to(torch.float32), success)
        next_tensordict.set(self.score_key, score)
        next_tensordict.set(self.success_key, success)
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        zeros = torch.zeros((*tensordict_reset.batch_size, 1), dtype=torch.float32, device=tensordict_reset.device)
        tensordict_reset.set(self.score_key, zeros)
        tensordict_reset.set(self.success_key, zeros.clone())
        return tensordict_reset

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        shape, device = (*observation_spec.shape, 1), observation_spec.device
        observation_spec[self.score_key] = Unbounded(shape=shape, dtype=torch.float32, device=device)
        observation_spec[self.success_key] = Unbounded(shape=shape, dtype=torch.float32, device=device)
        return observation_spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(score_rule={self.score_rule}, score_key={self.score_key!r})"


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


def task_tensors(tasks: Iterable[str | TaskSpec] | str, action_pad: int = 16) -> TensorDict:
    """Per-task constants, stacked in the given order (index = the ``"task"`` entry of the env).

    Args:
        tasks: task names or specs.
        action_pad: the padded action size. Defaults to ``16``.

    Returns:
        a TensorDict of batch size ``[T]`` with ``discount`` float32 ``[T]``, ``action_mask`` bool
        ``[T, action_pad]``, ``action_dim`` int64 ``[T]`` and ``episode_length`` int64 ``[T]``.

    Examples:
        >>> td = task_tensors(["walker-walk", "cartpole-swingup"])
        >>> td["discount"], td["action_dim"], td["action_mask"].sum(-1)
        (tensor([0.9900, 0.9900]), tensor([6, 1]), tensor([6, 1]))
    """
    from torchrl_newt.envs.taskset import TaskSet

    if isinstance(tasks, TaskSet) and tasks.action_pad == action_pad:
        return tasks.tensors()
    if isinstance(tasks, (str, TaskSpec)):
        tasks = [tasks]
    specs = [get_task(t) for t in tasks]
    if not specs:
        raise ValueError("task_tensors needs at least one task")
    action_dim = torch.tensor([s.action_dim for s in specs], dtype=torch.int64)
    return TensorDict(
        discount=torch.tensor([s.discount for s in specs], dtype=torch.float32),
        action_mask=mask_from_dims(action_dim, action_pad),
        action_dim=action_dim,
        episode_length=torch.tensor([s.episode_length for s in specs], dtype=torch.int64),
        batch_size=[len(specs)],
    )
