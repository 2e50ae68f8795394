"""Build batched multitask environments: one lane per task, padded and masked alike."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from typing import Any, Sequence

import torch
from torchrl.envs import (
    Compose,
    InitTracker,
    ParallelEnv,
    RewardSum,
    SerialEnv,
    StepCounter,
    TransformedEnv,
)

from torchrl_newt.envs.base import RawTaskEnv
from torchrl_newt.envs.registry import TaskSpec, build_raw_task, get_task, require_installed
from torchrl_newt.envs.transforms import EpisodeScore, PadAction, PadObservation, TaskId
from torchrl_newt.envs.vector import MultitaskVecEnv, check_fits, resolve_padded_specs

__all__ = ["make_env", "make_lane_env"]

logger = logging.getLogger(__name__)


def make_lane_env(
    task: str | TaskSpec,
    *,
    task_index: int = 0,
    num_tasks: int | None = None,
    seed: int | None = None,
    obs_pad: int = 128,
    action_pad: int = 16,
    from_pixels: bool = False,
    device: torch.device | str | None = None,
    **task_kwargs: Any,
) -> TransformedEnv:
    """One lane of the multitask stack: a raw task with truncation, padding, masking and scoring.

    The lane is ``TransformedEnv(RawTaskEnv(raw), Compose(StepCounter(episode_length), RewardSum(),
    PadObservation(obs_pad), PadAction(action_pad), TaskId(task_index), EpisodeScore(score)))``.

    Args:
        task: task name or spec.

    Keyword Args:
        task_index: the value written under ``"task"``. Defaults to ``0``.
        num_tasks: if given, ``"task"`` gets a ``Categorical(num_tasks)`` spec.
        seed: seed applied at the first reset.
        obs_pad: padded observation size. Defaults to ``128``.
        action_pad: padded action size. Defaults to ``16``.
        from_pixels: also render ``"pixels"`` (uint8 ``[224, 224, 3]``). Defaults to ``False``.
        device: device of the lane's tensors.
        **task_kwargs: forwarded to the domain's builder.

    Examples:
        >>> env = make_lane_env("cartpole-swingup", seed=0)
        >>> td = env.rollout(2)
        >>> td["observation"].shape, td["action"].shape, td["action_mask"][0, :3]
        (torch.Size([2, 128]), torch.Size([2, 16]), tensor([ True, False, False]))
        >>> env.close()
    """
    spec = get_task(task)
    check_fits(spec, obs_pad, action_pad)
    raw = build_raw_task(spec, **task_kwargs)
    base = RawTaskEnv(raw, from_pixels=from_pixels, device=device, task_name=spec.name)
    env = TransformedEnv(
        base,
        Compose(
            StepCounter(max_steps=spec.episode_length),
            RewardSum(),
            PadObservation(obs_pad),
            PadAction(action_pad),
            TaskId(task_index, num_tasks=num_tasks),
            EpisodeScore(spec.score, success_defined=spec.success_defined),
        ),
    )
    if seed is not None:
        env.set_seed(seed)
    return env


def make_env(
    tasks: str | TaskSpec | Sequence[str | TaskSpec],
    *,
    parallel: bool = False,
    seed: int | None = None,
    obs_pad: int = 128,
    action_pad: int = 16,
    from_pixels: bool = False,
    device: torch.device | str | None = None,
    num_workers: int | None = None,
    mp_start_method: str | None = None,
    backend: str = "vector",
    **task_kwargs: Any,
) -> TransformedEnv:
    """A batched multitask environment with one lane per task, in the given order.

    Two backends give the same keys, shapes and values (a test checks it step for step):

    * ``"vector"`` (default): :class:`~torchrl_newt.envs.MultitaskVecEnv`, which pads, masks,
      counts steps, sums rewards and scores all lanes at once; with ``parallel=True`` its lanes
      are split over ``num_workers`` worker processes that write into shared memory.
    * ``"transforms"``: every lane is a :func:`make_lane_env` transform stack, batched by
      :class:`~torchrl.envs.SerialEnv` (or :class:`~torchrl.envs.ParallelEnv`, one process per
      lane). Slower (the transforms run once per lane), but built from composable TorchRL
      transforms, e.g. to insert your own per-lane transform.

    All lanes share the same keys and shapes:
    ``"observation"`` float32 ``[N, obs_pad]``, ``"action"`` float32 ``[N, action_pad]`` (padded dims
    are ignored), ``"action_mask"`` bool ``[N, action_pad]``, ``"task"`` int64 ``[N]`` (the lane's
    index in ``tasks``), ``"step_count"``, ``"is_init"`` (from :class:`~torchrl.envs.InitTracker`
    on the batched env), and in ``"next"``: ``"reward"``, ``"done"``/``"terminated"``/``"truncated"``
    (truncated at each task's episode length), ``"episode_reward"``, ``"score"`` and ``"success"``.

    The returned env carries ``env.task_names`` (the lanes' task names); :func:`task_tensors`
    gives the matching per-task constants.

    Args:
        tasks: task names/specs (or a single one).

    Keyword Args:
        parallel: step lanes in worker processes instead of in this process. Defaults to ``False``.
        seed: seeds the lanes (lane ``i`` gets TorchRL's ``i``-th derived seed) at their next reset.
        obs_pad: padded observation size. Defaults to ``128``.
        action_pad: padded action size. Defaults to ``16``.
        from_pixels: also render ``"pixels"`` uint8 ``[N, 224, 224, 3]``. Defaults to ``False``.
        device: device of the batched env's tensors.
        num_workers: worker processes with ``parallel=True``. ``"vector"``: lanes are dealt
            round-robin to ``min(N, num_workers or cpu_count)`` workers; ``"transforms"``: must be
            ``None`` or ``N`` (one process per lane).
        mp_start_method: multiprocessing start method of the workers (``"spawn"``, ``"fork"``...);
            ``"spawn"`` (vector) or TorchRL's default (transforms) when ``None``.
        backend: ``"vector"`` or ``"transforms"`` (see above). Defaults to ``"vector"``.
        **task_kwargs: forwarded to every lane's domain builder.

    Raises:
        UnknownTaskError: a task name is not registered (raised before any process starts).
        MissingDependencyError: a task's simulator is not installed.
        ValueError: a task does not fit the padding sizes, or is listed twice.

    Examples:
        >>> env = make_env(["cartpole-swingup", "walker-walk"], seed=0)
        >>> env.task_names
        ['cartpole-swingup', 'walker-walk']
        >>> td = env.rollout(3)
        >>> td.batch_size, td["task"][:, 0], td["action_mask"][:, 0].sum(-1)
        (torch.Size([2, 3]), tensor([0, 1]), tensor([1, 6]))
        >>> env.close()
    """
    if backend not in ("vector", "transforms"):
        raise ValueError(f"unknown backend {backend!r}; choose 'vector' or 'transforms'")
    if backend == "vector":  # MultitaskVecEnv resolves and checks the tasks itself
        vec = MultitaskVecEnv(
            tasks,
            parallel=parallel,
            num_workers=num_workers,
            obs_pad=obs_pad,
            action_pad=action_pad,
            from_pixels=from_pixels,
            device=device,
            mp_start_method=mp_start_method,
            **task_kwargs,
        )
        env = TransformedEnv(vec, InitTracker())
        env.task_names = list(vec.task_names)
        if seed is not None:
            env.set_seed(seed)
        return env
    specs = resolve_padded_specs(tasks, obs_pad, action_pad, "make_env")
    if not getattr(tasks, "installed_checked", False):  # a TaskSet checked this when it was resolved
        require_installed(specs)
    n = len(specs)
    lane_kwargs = [
        dict(
            task=spec,
            task_index=i,
            num_tasks=n,
            obs_pad=obs_pad,
            action_pad=action_pad,
            from_pixels=from_pixels,
            **task_kwargs,
        )
        for i, spec in enumerate(specs)
    ]
    if parallel:
        if num_workers is not None and num_workers != n:
            raise ValueError(
                f"num_workers={num_workers} but {n} tasks were given: ParallelEnv runs one worker per lane "
                "(use num_workers=None)"
            )
        batched = ParallelEnv(
            n,
            make_lane_env,
            create_env_kwargs=lane_kwargs,
            mp_start_method=mp_start_method,
            device=device,
        )
    else:
        if num_workers is not None and num_workers != 1:
            logger.warning("num_workers=%s is ignored with parallel=False", num_workers)
        batched = SerialEnv(n, make_lane_env, create_env_kwargs=lane_kwargs, device=device)
    env = TransformedEnv(batched, InitTracker())
    env.task_names = [spec.name for spec in specs]
    if seed is not None:
        env.set_seed(seed)
    return env
