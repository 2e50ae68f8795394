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

Newt's format
-------------
Newt (``nicklashansen/newt``) stores one file per task, ``DIR/{task}.pt``: a pickled flat
``TensorDict`` of batch size ``[N]`` holding whole episodes of ``T + 1`` consecutive rows::

    "obs"         float32 [N, obs_dim]   o_0 .. o_T
    "action"      float32 [N, act_dim]   NaN in the episode's first row, then a_0 .. a_{T-1}
    "reward"      float32 [N]            NaN in the episode's first row, then r_0 .. r_{T-1}
    "episode"     int64   [N]            episode id (0, 1, ... within the file)
    optional: "value" [N], "terminated" [N], "feat" [N, F] (image features)

Row ``t`` holds the action and reward that *led to* ``o_t``. The task is the file name.
:func:`load_demos` reads these files too (the format is detected per file); like Newt it keeps
only the first 20 episodes of ManiSkill (``ms-*``) files by default, and it drops ``value``,
``terminated`` and (unless asked for image observations with ``features=F``, which appends them
after the padded state) ``feat``. :func:`save_demos` writes them with ``format="newt"``.
"""

from __future__ import annotations

import difflib
import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey

from torchrl_newt.checkpoint import atomic_save

__all__ = [
    "DEMO_FORMAT",
    "DEMO_VERSION",
    "NEWT_MANISKILL_EPISODES",
    "DemoTaskError",
    "add_demos",
    "demos_to_transitions",
    "load_demos",
    "save_demos",
]

logger = logging.getLogger(__name__)

DEMO_FORMAT = "torchrl_newt.demos"
DEMO_VERSION = 1
_EPISODE_KEYS = ("observation", "action", "reward", "action_mask", "task", "length")
#: Newt keeps this many episodes of each ManiSkill (``ms-*``) demo file.
NEWT_MANISKILL_EPISODES = 20
_NEWT_KEYS = ("obs", "action", "reward", "episode")


class DemoTaskError(KeyError):
    """A demo file holds a task that is not in the run's task list (the message says which)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


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
    *,
    format: str = "torchrl_newt",
) -> Path | list[Path]:
    """Writes demonstration episodes atomically, in our format or in Newt's (module docstring).

    Args:
        path: destination file (parents are created); with ``format="newt"``, the folder
            that receives one ``{task}.pt`` file per task.
        episodes: a padded ``TensorDict`` ``[E]`` (entries of the module docstring), or a
            sequence of episodes, each a mapping with ``"observation"`` ``[T+1, obs_dim]``,
            ``"action"`` ``[T, act_dim]``, ``"reward"`` ``[T]`` (or ``[T, 1]``),
            ``"action_mask"`` ``[act_dim]`` and ``"task"`` (an int).
        tasks: the task list that ``"task"`` indexes (names or objects with ``.name``);
            the file stores the names.
        format: ``"torchrl_newt"`` (one file, any tasks) or ``"newt"`` (one file per task,
            readable by Newt's ``train.py``; episodes of a task get ids 0, 1, ... in order).

    Returns:
        The path written, or with ``format="newt"`` the list of files written (one per task
        that has episodes).

    Examples:
        >>> import tempfile, torch
        >>> ep = {"observation": torch.randn(6, 128), "action": torch.rand(5, 16) * 2 - 1,
        ...       "reward": torch.ones(5), "action_mask": torch.arange(16) < 6, "task": 1}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = save_demos(f"{d}/walker.pt", [ep, ep], ["cheetah-run", "walker-walk"])
        ...     demos = load_demos(path, ["walker-walk"])
        >>> demos["task"].tolist(), demos["length"].tolist()
        ([0, 0], [5, 5])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = save_demos(d, [ep, ep], ["cheetah-run", "walker-walk"], format="newt")
        ...     newt = torch.load(paths[0], weights_only=False)
        ...     back = load_demos(paths, ["walker-walk"])
        >>> [p.name for p in paths], newt.shape, newt["episode"].tolist()
        (['walker-walk.pt'], torch.Size([12]), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
        >>> bool(newt["action"][0].isnan().all()), torch.equal(back["action"], demos["action"])
        (True, True)
    """
    if format not in ("torchrl_newt", "newt"):
        raise ValueError(f"format must be 'torchrl_newt' or 'newt', got {format!r}")
    names = _task_names(tasks)
    demos = episodes if isinstance(episodes, TensorDictBase) else _pad_episodes(episodes)
    _validate(demos)
    task = demos["task"].long().cpu()
    if bool((task < 0).any()) or bool((task >= len(names)).any()):
        raise ValueError(f"Episode task ids must index the {len(names)} given tasks, got {task.unique().tolist()}.")
    used = task.unique()
    if format == "newt":
        demos = demos.to("cpu")
        return [_save_newt(Path(path) / f"{names[t]}.pt", demos[task == t]) for t in used.tolist()]
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


def _save_newt(path: Path, demos: TensorDictBase) -> Path:
    """Writes the episodes of one task as Newt's flat ``[N]`` TensorDict (``T + 1`` rows each)."""
    E, T = demos.shape[0], demos["action"].shape[1]
    length = demos["length"].long().cpu()
    rows = torch.arange(T + 1)[None, :] <= length[:, None]  # [E, T + 1]
    action = demos["action"].float().cpu()
    reward = demos["reward"].float().reshape(E, -1).cpu()
    nan = float("nan")
    action = torch.cat([torch.full((E, 1, action.shape[-1]), nan), action], 1)[rows]
    reward = torch.cat([torch.full((E, 1), nan), reward], 1)[rows]
    n = int(rows.sum())
    flat = TensorDict(
        {
            "obs": demos["observation"].float().cpu()[rows],
            "action": action,
            "reward": reward,
            "episode": torch.arange(E)[:, None].expand(E, T + 1)[rows],
            "terminated": torch.zeros(n, dtype=torch.bool),
        },
        batch_size=[n],
    )
    path = atomic_save(flat, path)
    logger.info("Wrote %d demonstration episodes (%d rows) to %s (Newt format)", E, n, path)
    return path


def _read_demo_file(path: Path) -> Any:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights only" not in str(err).lower():
                raise
            # Newt's files pickle a TensorDict: they need weights_only=False (trusted files only)
            return torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is not a demo file ({reason}).") from None


def _is_newt(payload: Any) -> bool:
    if isinstance(payload, TensorDictBase):
        return all(k in payload.keys() for k in _NEWT_KEYS)
    return isinstance(payload, Mapping) and all(k in payload for k in _NEWT_KEYS)


def _task_error(path: Path, name: str, names: list[str]) -> DemoTaskError:
    from torchrl_newt.envs.registry import list_tasks

    known = list_tasks(include_held_out=True)
    if name in known:
        return DemoTaskError(
            f"Newt demo file {path} holds task {name!r} (its file name), which is not in the given task list "
            f"({len(names)} tasks); add it to the task list or drop the file."
        )
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    close += [c for c in difflib.get_close_matches(name, known, n=5, cutoff=0.5) if c not in close]
    hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
    return DemoTaskError(
        f"Newt demo file {path}: its name {name!r} is not a task (Newt names each demo file after its task, "
        f"DIR/TASK.pt).{hint}"
    )


def _action_mask(name: str, task: Any, action: torch.Tensor) -> torch.Tensor:
    """The task's valid action dims: from its spec, the registry, or the non-zero action columns."""
    A = action.shape[-1]
    dim = getattr(task, "action_dim", None)
    if dim is None:
        from torchrl_newt.envs.registry import UnknownTaskError, get_task

        try:
            dim = get_task(name).action_dim
        except UnknownTaskError:
            used = (action.abs() > 0).any(0).nonzero()
            dim = int(used.max()) + 1 if used.numel() else A
    return torch.arange(A) < min(int(dim), A)


def _load_newt(
    path: Path, payload: Any, names: list[str], tasks: Sequence[Any], maniskill_episodes: int | None,
    features: int | None = None,
) -> TensorDict:
    name = path.stem
    if name not in names:
        raise _task_error(path, name, names)
    obs = payload["obs"]
    if isinstance(obs, TensorDictBase):
        raise ValueError(f"{path}: observations are a TensorDict ({list(obs.keys())}); only state demos are supported.")
    obs = torch.as_tensor(obs).float().reshape(obs.shape[0], -1)
    action = torch.as_tensor(payload["action"]).float().reshape(obs.shape[0], -1)
    reward = torch.as_tensor(payload["reward"]).float().reshape(-1)
    episode = torch.as_tensor(payload["episode"]).long().reshape(-1)
    feat = None
    if features:
        if "feat" not in payload.keys():
            raise ValueError(f"{path}: no 'feat' entry (image features); image observations (--obs rgb) need "
                             "demos recorded with images")
        feat = torch.as_tensor(payload["feat"]).float().reshape(obs.shape[0], -1)
        if feat.shape[-1] != features:
            raise ValueError(f"{path}: 'feat' holds {feat.shape[-1]}-d image features; the vision model gives {features}")
    if not (obs.shape[0] == action.shape[0] == reward.shape[0] == episode.shape[0]):
        raise ValueError(
            f"{path}: obs, action, reward and episode must have one row each, got {obs.shape[0]}, "
            f"{action.shape[0]}, {reward.shape[0]}, {episode.shape[0]} rows."
        )
    order = torch.sort(episode, stable=True).indices  # episodes in id order, rows in file order
    obs, action, reward, episode = obs[order], action[order], reward[order], episode[order]
    feat = feat[order] if feat is not None else None
    ids, counts = torch.unique_consecutive(episode, return_counts=True)
    if name.startswith("ms-") and maniskill_episodes is not None and ids.numel() > maniskill_episodes:
        logger.info("%s: keeping the first %d of %d ManiSkill episodes", path, maniskill_episodes, ids.numel())
        ids, counts = ids[:maniskill_episodes], counts[:maniskill_episodes]
        n = int(counts.sum())
        obs, action, reward, episode = obs[:n], action[:n], reward[:n], episode[:n]
        feat = feat[:n] if feat is not None else None
    if not ids.numel():
        raise ValueError(f"{path}: no episodes.")
    if bool((counts < 2).any()):
        bad = int(ids[counts < 2][0])
        raise ValueError(f"{path}: episode {bad} has a single row; an episode of T steps has T + 1 rows.")
    E, T = ids.numel(), int(counts.max()) - 1
    starts = torch.cumsum(counts, 0) - counts
    ep = torch.repeat_interleave(torch.arange(E), counts)
    pos = torch.arange(ep.numel()) - starts[ep]
    first, rest = pos == 0, pos > 0
    ok_first = action[first].isnan().all(-1) & reward[first].isnan()
    if not bool(ok_first.all()):
        bad = int(ids[~ok_first][0])
        raise ValueError(
            f"{path}: episode {bad} does not start with a NaN action and reward; Newt's demo files hold "
            "T + 1 rows per episode with the first row's action and reward NaN."
        )
    if not (bool(torch.isfinite(action[rest]).all()) and bool(torch.isfinite(reward[rest]).all())):
        raise ValueError(f"{path}: non-finite actions or rewards after an episode's first row.")
    if "terminated" in payload.keys() and bool(torch.as_tensor(payload["terminated"]).any()):
        logger.warning("%s: terminations are not kept (episodes end by truncation in this format)", path)
    observation = torch.zeros(E, T + 1, obs.shape[-1])
    observation[ep, pos] = obs
    act = torch.zeros(E, T, action.shape[-1])
    act[ep[rest], pos[rest] - 1] = action[rest]
    rew = torch.zeros(E, T)
    rew[ep[rest], pos[rest] - 1] = reward[rest]
    index = names.index(name)
    mask = _action_mask(name, tasks[index], action[rest])
    demos = TensorDict(
        {
            "observation": observation,
            "action": act,
            "reward": rew,
            "action_mask": mask.expand(E, -1).clone(),
            "task": torch.full((E,), index, dtype=torch.long),
            "length": counts - 1,
        },
        batch_size=[E],
    )
    _validate(demos)
    if feat is not None:  # per step, like the observations; popped (and appended) by _load_one
        steps = torch.zeros(E, T + 1, feat.shape[-1])
        steps[ep, pos] = feat
        demos.set("feat", steps)
    logger.info("Loaded %d Newt demonstration episodes of %s from %s", E, name, path)
    return demos


def _load_one(path: Path, names: list[str], tasks: Sequence[Any], maniskill_episodes: int | None,
              obs_pad: int | None = None, action_pad: int | None = None, features: int | None = None) -> TensorDict:
    payload = _read_demo_file(path)
    if _is_newt(payload):
        demos = _load_newt(path, payload, names, tasks, maniskill_episodes, features)
        feat = demos.pop("feat") if features else None
        return _pad_width(demos, obs_pad, action_pad, path, feat)
    if not isinstance(payload, dict) or payload.get("format") != DEMO_FORMAT:
        raise ValueError(f"{path} is not a {DEMO_FORMAT} file nor a Newt demo file (a TensorDict with {list(_NEWT_KEYS)}).")
    if payload.get("version") != DEMO_VERSION:
        raise ValueError(f"{path}: unsupported demo format version {payload.get('version')} (expected {DEMO_VERSION}).")
    file_tasks = list(payload["tasks"])
    unknown = [t for t in file_tasks if t not in names]
    if unknown:
        raise DemoTaskError(
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
    if features:
        want = (obs_pad or 0) + features
        if obs_pad is None or demos["observation"].shape[-1] != want:
            raise ValueError(
                f"{path}: image observations need {want}-wide observations (padded state + {features} image "
                f"features), got {demos['observation'].shape[-1]}; save demos recorded with --obs rgb"
            )
        return _pad_width(demos, None, action_pad, path)
    return _pad_width(demos, obs_pad, action_pad, path)


def _pad_time(demos: TensorDict, T: int) -> TensorDict:
    extra = T - demos["action"].shape[1]
    if not extra:
        return demos
    out = demos.clone(False)
    out["observation"] = torch.nn.functional.pad(demos["observation"], (0, 0, 0, extra))
    out["action"] = torch.nn.functional.pad(demos["action"], (0, 0, 0, extra))
    out["reward"] = torch.nn.functional.pad(demos["reward"], (0, extra))
    return out


def _pad_width(demos: TensorDict, obs_pad: int | None, action_pad: int | None, path: Path,
               features: torch.Tensor | None = None) -> TensorDict:
    """Zero-pad observations to ``obs_pad`` and actions/masks to ``action_pad``, then append
    per-step image features (``[E, T + 1, F]``) after the padded state."""
    obs_dim, act_dim = demos["observation"].shape[-1], demos["action"].shape[-1]
    if obs_pad is not None and obs_dim > obs_pad:
        raise ValueError(f"{path}: observations have {obs_dim} features, more than the padding ({obs_pad}).")
    if action_pad is not None and act_dim > action_pad:
        raise ValueError(f"{path}: actions have {act_dim} dims, more than the padding ({action_pad}).")
    out = demos.clone(False)
    if obs_pad is not None and obs_dim < obs_pad:
        out["observation"] = torch.nn.functional.pad(demos["observation"], (0, obs_pad - obs_dim))
    if action_pad is not None and act_dim < action_pad:
        out["action"] = torch.nn.functional.pad(demos["action"], (0, action_pad - act_dim))
        out["action_mask"] = torch.nn.functional.pad(demos["action_mask"], (0, action_pad - act_dim), value=False)
    if features is not None:
        out["observation"] = torch.cat([out["observation"], features.to(out["observation"].dtype)], -1)
    return out


def load_demos(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tasks: Sequence[Any],
    *,
    maniskill_episodes: int | None = NEWT_MANISKILL_EPISODES,
    obs_pad: int | None = None,
    action_pad: int | None = None,
    features: int | None = None,
) -> TensorDict:
    """Loads demo files (ours or Newt's, detected per file) and maps their tasks onto ``tasks``.

    Args:
        paths: a file or a sequence of files (episodes are concatenated, padded to the
            longest one).
        tasks: the run's task list (names or objects with ``.name``); ``"task"`` in the
            result indexes it. A Newt file's task is its file name (``DIR/TASK.pt``); its
            action mask comes from the task's ``action_dim`` (the object's, else the registry's,
            else the non-zero action columns).
        maniskill_episodes: keep only this many episodes (the lowest ids) of each Newt file of
            a ManiSkill task (``ms-*``), as Newt does; ``None`` keeps them all.
        obs_pad: zero-pad every file's observations to this width (so files of tasks with
            different sizes concatenate, and match the env's padded observations). Defaults to
            the ``obs_pad`` of a :class:`~torchrl_newt.envs.TaskSet`, else no padding.
        action_pad: the same for actions and action masks (padded dims masked out).
        features: with image observations (``--obs rgb``), the width ``F`` of the image features:
            each Newt file's ``"feat"`` entry (one row per step) is appended after the padded
            state, so the observation is ``[obs_pad + F]`` as the env's. Our own files must then
            already store observations of that width.

    Returns:
        A ``TensorDict`` of batch size ``[E]`` (entries of the module docstring).

    Raises:
        DemoTaskError: (a ``KeyError``) a file holds a task that is not in ``tasks``, or a
            Newt file's name is not a task (the message lists close matches).
        ValueError: a file is neither format, or breaks it.

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
    if obs_pad is None:
        obs_pad = getattr(tasks, "obs_pad", None)
    if action_pad is None:
        action_pad = getattr(tasks, "action_pad", None)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = [_load_one(Path(p), names, list(tasks), maniskill_episodes, obs_pad, action_pad, features)
             for p in paths]
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
