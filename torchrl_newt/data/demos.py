"""Demonstration files: format, writing, loading and adding to a replay buffer.

File format (version 1)
-----------------------
One file holds whole episodes of any tasks. It is a :func:`torch.save` archive of a
plain ``dict`` (readable with ``torch.load(path, weights_only=True)``, no pickled
classes) with the entries::

    "format":       "torchrl_newt.demos"
    "version":      1
    "tasks":        list[str]      task names used in this file (the file's own table)
    "task":         int64   [E]    index of each episode's task in "tasks"
    "length":       int64   [E]    number of actions T_e of each episode
    "observation":  float32 [E, T_max + 1, 128]   o_0 .. o_T, zero-padded after T_e + 1
    "action":       float32 [E, T_max, 16]        a_0 .. a_{T-1}, zero-padded
    "reward":       float32 [E, T_max]            r_0 .. r_{T-1} (r_t follows a_t), zero-padded
    "action_mask":  bool    [E, 16]               the task's valid action dims

Tasks are stored by *name*: :func:`load_demos` maps them onto whatever task list the
run uses, so files survive changes of the task set or of its order. Files are written
atomically (temporary file in the same folder, then :func:`os.replace`).

In memory, episodes are a ``TensorDict`` of batch size ``[E]`` with the same entries
(``"task"`` indexing the run's task list, no ``"tasks"`` table).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey

from torchrl_newt.checkpoint import atomic_save

__all__ = ["DEMO_FORMAT", "DEMO_VERSION", "add_demos", "demos_to_transitions", "load_demos", "save_demos"]

logger = logging.getLogger(__name__)

DEMO_FORMAT = "torchrl_newt.demos"
DEMO_VERSION = 1
_EPISODE_KEYS = ("observation", "action", "reward", "action_mask", "task", "length")


def _task_names(tasks: Sequence[Any]) -> list[str]:
    names = [t if isinstance(t, str) else getattr(t, "name", None) for t in tasks]
    if any(not isinstance(n, str) for n in names):
        raise TypeError("tasks must be task names (str) or objects with a .name attribute.")
    if len(set(names)) != len(names):
        raise ValueError(f"Duplicated task names in {names}.")
    return names


def _pad_episodes(episodes: Sequence[Mapping[str, Any]]) -> TensorDict:
    """Stacks variable-length episodes into the padded ``[E]`` layout."""
    if not len(episodes):
        raise ValueError("No episodes given.")
    lengths = []
    for i, ep in enumerate(episodes):
        obs, act = torch.as_tensor(ep["observation"]), torch.as_tensor(ep["action"])
        rew = torch.as_tensor(ep["reward"]).reshape(-1)
        if obs.ndim != 2 or act.ndim != 2 or obs.shape[0] != act.shape[0] + 1 or rew.shape[0] != act.shape[0]:
            raise ValueError(
                f"Episode {i}: expected observation [T+1, obs_dim], action [T, act_dim], reward [T]; got "
                f"{tuple(obs.shape)}, {tuple(act.shape)}, {tuple(torch.as_tensor(ep['reward']).shape)}."
            )
        lengths.append(act.shape[0])
    E, T = len(episodes), max(lengths)
    obs_dim = torch.as_tensor(episodes[0]["observation"]).shape[-1]
    act_dim = torch.as_tensor(episodes[0]["action"]).shape[-1]
    out = TensorDict(
        {
            "observation": torch.zeros(E, T + 1, obs_dim),
            "action": torch.zeros(E, T, act_dim),
            "reward": torch.zeros(E, T),
            "action_mask": torch.zeros(E, act_dim, dtype=torch.bool),
            "task": torch.zeros(E, dtype=torch.long),
            "length": torch.as_tensor(lengths, dtype=torch.long),
        },
        batch_size=[E],
    )
    for i, (ep, t) in enumerate(zip(episodes, lengths)):
        out["observation"][i, : t + 1] = torch.as_tensor(ep["observation"], dtype=torch.float32)
        out["action"][i, :t] = torch.as_tensor(ep["action"], dtype=torch.float32)
        out["reward"][i, :t] = torch.as_tensor(ep["reward"], dtype=torch.float32).reshape(-1)
        mask = torch.as_tensor(ep["action_mask"]).bool()
        out["action_mask"][i] = mask if mask.ndim == 1 else mask[0]
        out["task"][i] = int(torch.as_tensor(ep["task"]).reshape(-1)[0])
    return out


def _validate(demos: TensorDictBase) -> None:
    missing = [k for k in _EPISODE_KEYS if k not in demos.keys()]
    if missing:
        raise KeyError(f"Demonstrations lack the entries {missing} (expected {list(_EPISODE_KEYS)}).")
    if demos.ndim != 1:
        raise ValueError(f"Demonstrations must have batch size [E], got {tuple(demos.shape)}.")
    T = demos["action"].shape[1]
    if demos["observation"].shape[1] != T + 1 or demos["reward"].shape[1] != T:
        raise ValueError(
            f"Inconsistent episode padding: observation {tuple(demos['observation'].shape)}, "
            f"action {tuple(demos['action'].shape)}, reward {tuple(demos['reward'].shape)}."
        )
    length = demos["length"]
    if bool((length < 1).any()) or bool((length > T).any()):
        raise ValueError(f"Episode lengths must lie in [1, {T}], got min {int(length.min())}, max {int(length.max())}.")


def save_demos(
    path: str | os.PathLike,
    episodes: TensorDictBase | Sequence[Mapping[str, Any]],
    tasks: Sequence[Any],
) -> Path:
    """Writes demonstration episodes to ``path`` atomically (format in the module docstring).

    Args:
        path: destination file (parents are created).
        episodes: a padded ``TensorDict`` ``[E]`` (entries of the module docstring), or a
            sequence of episodes, each a mapping with ``"observation"`` ``[T+1, obs_dim]``,
            ``"action"`` ``[T, act_dim]``, ``"reward"`` ``[T]`` (or ``[T, 1]``),
            ``"action_mask"`` ``[act_dim]`` and ``"task"`` (an int).
        tasks: the task list that ``"task"`` indexes (names or objects with ``.name``);
            the file stores the names.

    Returns:
        The path written.

    Examples:
        >>> import tempfile, torch
        >>> ep = {"observation": torch.randn(6, 128), "action": torch.rand(5, 16) * 2 - 1,
        ...       "reward": torch.ones(5), "action_mask": torch.arange(16) < 6, "task": 1}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = save_demos(f"{d}/walker.pt", [ep, ep], ["cheetah-run", "walker-walk"])
        ...     demos = load_demos(path, ["walker-walk"])
        >>> demos["task"].tolist(), demos["length"].tolist()
        ([0, 0], [5, 5])
    """
    names = _task_names(tasks)
    demos = episodes if isinstance(episodes, TensorDictBase) else _pad_episodes(episodes)
    _validate(demos)
    task = demos["task"].long().cpu()
    if bool((task < 0).any()) or bool((task >= len(names)).any()):
        raise ValueError(f"Episode task ids must index the {len(names)} given tasks, got {task.unique().tolist()}.")
    used = task.unique()
    remap = torch.full((len(names),), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    payload = {
        "format": DEMO_FORMAT,
        "version": DEMO_VERSION,
        "tasks": [names[i] for i in used.tolist()],
        "task": remap[task],
        "length": demos["length"].long().cpu(),
        "observation": demos["observation"].float().cpu(),
        "action": demos["action"].float().cpu(),
        "reward": demos["reward"].float().reshape(demos.shape[0], -1).cpu(),
        "action_mask": demos["action_mask"].bool().cpu(),
    }
    path = atomic_save(payload, path)
    logger.info("Wrote %d demonstration episodes (%d tasks) to %s", demos.shape[0], used.numel(), path)
    return path


def _load_one(path: Path, names: list[str]) -> TensorDict:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != DEMO_FORMAT:
        raise ValueError(f"{path} is not a {DEMO_FORMAT} file.")
    if payload.get("version") != DEMO_VERSION:
        raise ValueError(f"{path}: unsupported demo format version {payload.get('version')} (expected {DEMO_VERSION}).")
    file_tasks = list(payload["tasks"])
    unknown = [t for t in file_tasks if t not in names]
    if unknown:
        raise KeyError(
            f"{path} holds demonstrations of task(s) {unknown} that are not in the given task list "
            f"({len(names)} tasks); add them to the task list or drop the file."
        )
    lookup = torch.as_tensor([names.index(t) for t in file_tasks], dtype=torch.long)
    demos = TensorDict(
        {k: payload[k] for k in ("observation", "action", "reward", "action_mask", "length")},
        batch_size=[payload["length"].shape[0]],
    )
    demos["task"] = lookup[payload["task"]]
    _validate(demos)
    return demos


def _pad_time(demos: TensorDict, T: int) -> TensorDict:
    extra = T - demos["action"].shape[1]
    if not extra:
        return demos
    out = demos.clone(False)
    out["observation"] = torch.nn.functional.pad(demos["observation"], (0, 0, 0, extra))
    out["action"] = torch.nn.functional.pad(demos["action"], (0, 0, 0, extra))
    out["reward"] = torch.nn.functional.pad(demos["reward"], (0, extra))
    return out


def load_demos(paths: str | os.PathLike | Sequence[str | os.PathLike], tasks: Sequence[Any]) -> TensorDict:
    """Loads one or several demo files and maps their tasks onto ``tasks`` by name.

    Args:
        paths: a file or a sequence of files (episodes are concatenated, padded to the
            longest one).
        tasks: the run's task list (names or objects with ``.name``); ``"task"`` in the
            result indexes it.

    Returns:
        A ``TensorDict`` of batch size ``[E]`` (entries of the module docstring).

    Raises:
        KeyError: if a file holds a task that is not in ``tasks``.

    Examples:
        >>> import tempfile, torch
        >>> ep = {"observation": torch.zeros(4, 128), "action": torch.zeros(3, 16),
        ...       "reward": torch.zeros(3), "action_mask": torch.ones(16, dtype=torch.bool), "task": 0}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = save_demos(f"{d}/a.pt", [ep], ["hopper-hop"])
        ...     try:
        ...         load_demos(f"{d}/a.pt", ["walker-walk"])
        ...     except KeyError as err:
        ...         print("hopper-hop" in str(err))
        True
    """
    names = _task_names(tasks)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = [_load_one(Path(p), names) for p in paths]
    if not parts:
        raise ValueError("No demo files given.")
    T = max(p["action"].shape[1] for p in parts)
    return torch.cat([_pad_time(p, T) for p in parts], 0)


def demos_to_transitions(
    demos: TensorDictBase,
    *,
    num_lanes: int = 1,
    traj_key: NestedKey = ("collector", "traj_ids"),
    step_key: NestedKey = "step_count",
    task_key: NestedKey = "task",
    traj_offset: int = 0,
) -> TensorDict:
    """Turns padded episodes into collector-style transitions of shape ``[num_lanes, S]``.

    All valid steps of all episodes are laid end to end and cut into ``num_lanes``
    contiguous chunks; the tail is padded with steps whose trajectory id is ``-1``
    (never sampled). Episode ``e`` gets the trajectory id ``traj_offset + e``.

    Keys: ``"observation"``, ``"action"``, ``"action_mask"``, ``task_key``, ``step_key``
    ``[., 1]``, ``"is_init"`` ``[., 1]``, ``traj_key`` and under ``"next"``:
    ``"observation"``, ``"reward"`` ``[., 1]``, ``"done"``/``"terminated"``/``"truncated"``
    ``[., 1]`` (episodes end by truncation).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> demos = TensorDict({"observation": torch.arange(2 * 4.0)[:, None].expand(8, 128).reshape(2, 4, 128),
        ...     "action": torch.zeros(2, 3, 16), "reward": torch.ones(2, 3),
        ...     "action_mask": torch.ones(2, 16, dtype=torch.bool), "task": torch.tensor([0, 1]),
        ...     "length": torch.tensor([3, 2])}, batch_size=[2])
        >>> tr = demos_to_transitions(demos)
        >>> tr.shape, tr["step_count"].squeeze(-1).tolist(), tr["next", "done"].squeeze(-1).tolist()
        (torch.Size([1, 5]), [[0, 1, 2, 0, 1]], [[False, False, True, False, True]])
    """
    _validate(demos)
    if num_lanes < 1:
        raise ValueError(f"num_lanes must be >= 1, got {num_lanes}.")
    length = demos["length"].long()
    T = demos["action"].shape[1]
    t = torch.arange(T, device=length.device)
    keep = t[None, :] < length[:, None]  # [E, T]
    ep = torch.arange(demos.shape[0], device=length.device)[:, None].expand(-1, T)[keep]
    step = t[None, :].expand(demos.shape[0], -1)[keep]
    done = (step == length[ep] - 1)[:, None]
    S = int(keep.sum())
    flat = TensorDict(
        {
            "observation": demos["observation"][:, :-1][keep],
            "action": demos["action"][keep],
            "action_mask": demos["action_mask"][ep],
            task_key: demos["task"].long()[ep],
            step_key: step[:, None],
            "is_init": (step == 0)[:, None],
            traj_key: ep + traj_offset,
            "next": {
                "observation": demos["observation"][:, 1:][keep],
                "reward": demos["reward"].reshape(demos.shape[0], -1)[keep][:, None],
                "done": done,
                "terminated": torch.zeros_like(done),
                "truncated": done.clone(),
            },
        },
        batch_size=[S],
    )
    per_lane = -(-S // num_lanes)
    pad = per_lane * num_lanes - S
    if pad:
        filler = torch.zeros_like(flat[:pad])
        filler[traj_key] = torch.full_like(filler[traj_key], -1)
        flat = torch.cat([flat, filler], 0)
    return flat.reshape(num_lanes, per_lane)


def add_demos(buffer: Any, demos: TensorDictBase) -> torch.Tensor:
    """Writes demonstration episodes into a :class:`~torchrl_newt.data.MultitaskReplayBuffer`.

    Uses the buffer's keys and lane count (one lane for a fresh buffer); use a buffer
    dedicated to demos (its keys differ from collected data) and combine both with
    :class:`~torchrl_newt.data.MixedReplayBuffer`.

    Raises:
        ValueError: if the demos do not fit in the buffer without overwriting themselves.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_newt.data import MultitaskReplayBuffer
        >>> demos = TensorDict({"observation": torch.randn(3, 11, 128), "action": torch.zeros(3, 10, 16),
        ...     "reward": torch.ones(3, 10), "action_mask": torch.ones(3, 16, dtype=torch.bool),
        ...     "task": torch.tensor([0, 1, 1]), "length": torch.tensor([10, 10, 7])}, batch_size=[3])
        >>> rb = MultitaskReplayBuffer(100, slice_len=4)
        >>> _ = add_demos(rb, demos)
        >>> len(rb), rb.num_valid_slices()  # 27 steps; 7 + 7 + 4 starts
        (27, 18)
    """
    lanes = buffer.num_lanes or 1
    transitions = demos_to_transitions(
        demos.to("cpu"),
        num_lanes=lanes,
        traj_key=buffer.traj_key,
        step_key=buffer.step_key,
        task_key=buffer.task_key,
        traj_offset=buffer.write_count,  # unique ids across successive calls
    )
    capacity = buffer._storage.max_size
    rows = -(-capacity // lanes)
    if transitions.shape[1] > rows:
        raise ValueError(
            f"{int(demos['length'].sum())} demonstration steps need {transitions.shape[1]} steps per lane "
            f"x {lanes} lanes, more than this buffer's capacity ({capacity}): enlarge it."
        )
    return buffer.extend(transitions)
