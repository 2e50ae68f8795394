"""A fused, batched multitask environment: one lane per task, stepped as one TorchRL env.

:class:`MultitaskVecEnv` does in one place, once per batched step, what the per-lane transform
stack (:func:`~torchrl_newt.envs.make_lane_env` lanes in a ``SerialEnv``/``ParallelEnv``) does
once per lane: zero-padding observations, slicing padded actions, the action mask, task ids,
truncation at each task's episode length, the running return and the episode score. The raw
simulators write straight into preallocated ``[N, ...]`` arrays (shared memory when lanes run in
worker processes), so the bookkeeping is a handful of ``[N]``-shaped tensor operations whatever
the number of lanes. Its outputs match the transform stack key for key and value for value (a
test checks it); :func:`~torchrl_newt.envs.make_env` builds it by default.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl._utils import seed_generator  # the derivation EnvBase.set_seed uses
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_newt.envs._lanes import LaneGroup, SharedBuffers, lane_worker
from torchrl_newt.envs.registry import ScoreRule, TaskSpec, get_domain, get_task, require_installed, score_episodes
from torchrl_newt.envs.transforms import mask_from_dims

__all__ = ["MultitaskVecEnv"]

logger = logging.getLogger(__name__)


class _WorkerPool:
    """Worker processes, each stepping a group of lanes on shared buffers."""

    def __init__(
        self,
        groups: list[list[int]],
        specs: list[TaskSpec],
        buffers: SharedBuffers,
        task_kwargs: dict[str, Any],
        start_method: str | None,
    ) -> None:
        ctx = mp.get_context(start_method or "spawn")
        env_vars = {k: os.environ[k] for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "SDL_VIDEODRIVER") if k in os.environ}
        self.groups = groups
        self.task_specs = specs
        self.conns, self.procs = [], []
        for lanes in groups:
            parent, child = ctx.Pipe()
            lane_specs = [specs[i] for i in lanes]
            builders = [get_domain(s.builder_domain).builder for s in lane_specs]
            proc = ctx.Process(
                target=lane_worker,
                args=(child, lanes, lane_specs, builders, buffers.layout, buffers.names, task_kwargs, env_vars),
                daemon=True,
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        try:
            for k in range(len(groups)):
                self._recv(k)
        except BaseException:
            self.close()
            raise

    def _recv(self, k: int):
        try:
            status, payload = self.conns[k].recv()
        except (EOFError, ConnectionError, OSError) as err:
            names = [self.task_specs[i].name for i in self.groups[k]]
            raise RuntimeError(f"the env worker for tasks {names} died (exit code {self.procs[k].exitcode})") from err
        if status == "error":
            raise RuntimeError(f"env worker for tasks {[self.task_specs[i].name for i in self.groups[k]]}: {payload}")
        return payload

    def step(self) -> None:
        for conn in self.conns:
            conn.send(("step", None))
        for k in range(len(self.conns)):
            self._recv(k)

    def reset(self, requests: list[tuple[int, int | None]]) -> None:
        active = []
        for k, lanes in enumerate(self.groups):
            mine = [r for r in requests if r[0] in lanes]
            if mine:
                self.conns[k].send(("reset", mine))
                active.append(k)
        for k in active:
            self._recv(k)

    def close(self) -> None:
        for k, conn in enumerate(self.conns):
            try:
                if self.procs[k].is_alive():
                    conn.send(("close", None))
                    conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                pass
            conn.close()
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.conns, self.procs = [], []


def resolve_padded_specs(tasks, obs_pad: int, action_pad: int, who: str) -> list[TaskSpec]:
    """Resolve task names/specs (unknown names list close matches) and check they fit the padding.

    Shared by :class:`MultitaskVecEnv` and ``make_env(..., backend="transforms")``; ``who`` names
    the caller in the empty-list error.

    Examples:
        >>> [s.name for s in resolve_padded_specs("walker-walk", 128, 16, "example")]
        ['walker-walk']
    """
    from torchrl_newt.envs.taskset import TaskSet

    if isinstance(tasks, TaskSet) and (tasks.obs_pad, tasks.action_pad) == (int(obs_pad), int(action_pad)):
        return list(tasks.specs)  # resolved and checked once already
    if isinstance(tasks, (str, TaskSpec)):
        tasks = [tasks]
    specs = [get_task(t) for t in tasks]
    if not specs:
        raise ValueError(f"{who} needs at least one task")
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"{who}: task(s) {', '.join(map(repr, repeated))} given more than once; each task gets one lane and "
            "its lane index is its task id, so list every task once"
        )
    for spec in specs:
        check_fits(spec, obs_pad, action_pad)
    return specs


def check_fits(spec: TaskSpec, obs_pad: int, action_pad: int) -> None:
    """Raise ``ValueError`` naming the task if its registry sizes exceed the padding.

    Examples:
        >>> try:
        ...     check_fits(get_task("walker-walk"), obs_pad=8, action_pad=16)
        ... except ValueError as err:
        ...     print(err)
        task 'walker-walk' has obs_dim=24 > obs_pad=8
    """
    if spec.obs_dim is not None and spec.obs_dim > obs_pad:
        raise ValueError(f"task {spec.name!r} has obs_dim={spec.obs_dim} > obs_pad={obs_pad}")
    if spec.action_dim > action_pad:
        raise ValueError(f"task {spec.name!r} has action_dim={spec.action_dim} > action_pad={action_pad}")


def _close_resources(pool, group, buffers) -> None:
    if pool is not None:
        pool.close()
    if group is not None:
        group.close()
    buffers.close()


class MultitaskVecEnv(EnvBase):
    """A batched TorchRL env over MMBench tasks (one lane per task), padded and masked alike.

    Keys and shapes (``N`` lanes): ``"observation"`` float32 ``[N, obs_pad]`` (zero-padded),
    ``"action"`` float32 ``[N, action_pad]`` in ``[-1, 1]`` (each simulator receives its first
    ``action_dim`` entries), ``"action_mask"`` bool ``[N, action_pad]``, ``"task"`` int64 ``[N]``
    (the lane's index), ``"step_count"`` int64 ``[N, 1]``, and after each step ``"reward"``,
    ``"done"``/``"terminated"``/``"truncated"`` (truncated at each task's episode length; tasks
    never terminate), ``"episode_reward"`` (the running return), ``"score"`` (the task's score
    rule applied to the running return and success) and ``"success"`` (``0`` where the task does
    not define one), all ``[N, 1]``; with ``from_pixels=True`` also ``"pixels"`` uint8
    ``[N, H, W, 3]``. Finished lanes are reset individually through TorchRL's ``"_reset"`` mask
    (as ``step_and_maybe_reset`` and collectors do).

    Lanes run in this process (``parallel=False``) or in ``num_workers`` worker processes that
    each step a group of lanes (``parallel=True``); either way a batched step moves data through
    preallocated arrays (shared memory across processes) and costs one message per worker.

    Args:
        tasks: task names or specs (one lane each, in this order).

    Keyword Args:
        parallel: step lanes in worker processes. Defaults to ``False``.
        num_workers: worker processes with ``parallel=True`` (lanes are dealt round-robin).
            Defaults to ``min(N, os.cpu_count())``.
        obs_pad: padded observation size. Defaults to ``128``.
        action_pad: padded action size. Defaults to ``16``.
        from_pixels: also render ``"pixels"``. Defaults to ``False``.
        frame_size: ``(height, width)`` of frames. Defaults to ``(224, 224)``.
        device: device of the output tensors. Defaults to CPU.
        mp_start_method: start method of the workers. Defaults to ``"spawn"``, which is safe
            everywhere; ``"fork"`` starts faster but can deadlock rendering (``from_pixels``) when
            this process already holds an EGL/OpenGL context.
        **task_kwargs: forwarded to every lane's domain builder.

    Raises:
        UnknownTaskError: a task name is not registered.
        MissingDependencyError: a simulator is not installed (the message names the pip extra).
        ValueError: a task does not fit the padding, or is listed twice; at ``step``, an action
            whose shape is not ``[N, action_pad]``.

    Examples:
        >>> env = MultitaskVecEnv(["cartpole-balance", "walker-stand"])
        >>> _ = env.set_seed(0)
        >>> td = env.rollout(3)
        >>> td["observation"].shape, td["task"][:, 0], td["action_mask"][:, 0].sum(-1)
        (torch.Size([2, 3, 128]), tensor([0, 1]), tensor([1, 6]))
        >>> env.close()
    """

    def __init__(
        self,
        tasks: str | TaskSpec | Sequence[str | TaskSpec],
        *,
        parallel: bool = False,
        num_workers: int | None = None,
        obs_pad: int = 128,
        action_pad: int = 16,
        from_pixels: bool = False,
        frame_size: tuple[int, int] = (224, 224),
        device: torch.device | str | None = None,
        mp_start_method: str | None = None,
        **task_kwargs: Any,
    ) -> None:
        specs = resolve_padded_specs(tasks, obs_pad, action_pad, type(self).__name__)
        if not getattr(tasks, "installed_checked", False):  # a TaskSet checked this when it was resolved
            require_installed(specs)
        n = len(specs)
        super().__init__(device=device, batch_size=torch.Size([n]))
        self.task_specs = specs
        self.task_names = [s.name for s in specs]
        self.obs_pad, self.action_pad = int(obs_pad), int(action_pad)
        self.from_pixels = bool(from_pixels)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.parallel = bool(parallel)

        layout = {
            "observation": ((n, self.obs_pad), "float32"),
            "action": ((n, self.action_pad), "float32"),
            "reward": ((n,), "float64"),
            "success": ((n,), "float32"),
        }
        if self.from_pixels:
            layout["pixels"] = ((n, *self.frame_size, 3), "uint8")
        self._lane_buffers = SharedBuffers(layout, shared=self.parallel)
        self._group = self._pool = None
        if self.parallel:
            workers = min(n, num_workers or os.cpu_count() or 1)
            if workers < 1:
                raise ValueError(f"num_workers must be positive, got {num_workers}")
            groups = [list(range(k, n, workers)) for k in range(workers)]
            try:
                self._pool = _WorkerPool(groups, specs, self._lane_buffers, task_kwargs, mp_start_method)
            except BaseException:
                self._lane_buffers.close()
                raise
        else:
            if num_workers not in (None, 1):
                logger.warning("num_workers=%s is ignored with parallel=False", num_workers)
            builders = [get_domain(s.builder_domain).builder for s in specs]
            try:
                self._group = LaneGroup(range(n), specs, builders, self._lane_buffers, task_kwargs)
            except BaseException:
                self._lane_buffers.close()
                raise
        self._finalizer = weakref.finalize(self, _close_resources, self._pool, self._group, self._lane_buffers)
        self.num_workers = len(self._pool.groups) if self._pool is not None else 1

        # torch views of the buffers and per-lane constants
        self._obs_t = torch.from_numpy(self._lane_buffers["observation"])
        self._action_np = self._lane_buffers["action"]
        self._reward_t = torch.from_numpy(self._lane_buffers["reward"])
        self._success_t = torch.from_numpy(self._lane_buffers["success"])
        self._pixels_t = torch.from_numpy(self._lane_buffers["pixels"]) if self.from_pixels else None
        action_dim = torch.tensor([s.action_dim for s in specs])
        self._mask = mask_from_dims(action_dim, self.action_pad)
        self._task_ids = torch.arange(n, dtype=torch.int64)
        self._lengths = torch.tensor([s.episode_length for s in specs], dtype=torch.int64).unsqueeze(-1)
        self._success_defined = torch.tensor([float(s.success_defined) for s in specs]).unsqueeze(-1)
        self._score_kind, self._score_low, self._score_high = (
            x.unsqueeze(-1) for x in ScoreRule.stack([s.score for s in specs])
        )
        self._step_count = torch.zeros(n, 1, dtype=torch.int64)
        self._return = torch.zeros(n, 1, dtype=torch.float32)
        self._pending_seeds: list[int | None] = [None] * n
        self._make_specs()

    # -- specs ------------------------------------------------------------------------------
    def _make_specs(self) -> None:
        n, dev = self.batch_size[0], self.device
        obs = {
            "observation": Unbounded(shape=(n, self.obs_pad), dtype=torch.float32, device=dev),
            "action_mask": Binary(n=self.action_pad, shape=(n, self.action_pad), dtype=torch.bool, device=dev),
            "task": Categorical(n, shape=(n,), dtype=torch.int64, device=dev),
            "step_count": Bounded(low=0, high=torch.iinfo(torch.int64).max, shape=(n, 1), dtype=torch.int64, device=dev),
            "episode_reward": Unbounded(shape=(n, 1), dtype=torch.float32, device=dev),
            "score": Unbounded(shape=(n, 1), dtype=torch.float32, device=dev),
            "success": Unbounded(shape=(n, 1), dtype=torch.float32, device=dev),
        }
        if self.from_pixels:
            obs["pixels"] = Bounded(low=0, high=255, shape=(n, *self.frame_size, 3), dtype=torch.uint8, device=dev)
        self.observation_spec = Composite(obs, shape=(n,))
        self.action_spec = Composite(
            {"action": Bounded(low=-1.0, high=1.0, shape=(n, self.action_pad), dtype=torch.float32, device=dev)},
            shape=(n,),
        )
        self.reward_spec = Composite({"reward": Unbounded(shape=(n, 1), dtype=torch.float32, device=dev)}, shape=(n,))
        self.done_spec = Composite(
            {k: Categorical(2, shape=(n, 1), dtype=torch.bool, device=dev) for k in ("done", "terminated", "truncated")},
            shape=(n,),
        )

    # -- env API ----------------------------------------------------------------------------
    def _score(self) -> torch.Tensor:
        succ = self._success_t.unsqueeze(-1) * self._success_defined
        score = score_episodes(self._score_kind, self._score_low, self._score_high, self._return, succ)
        return score, succ

    def _out(self, *, truncated: torch.Tensor, **entries: torch.Tensor) -> TensorDictBase:
        """The output tensordict: the lanes' current state plus ``entries`` (tasks never terminate)."""
        source = {
            "observation": self._obs_t.clone(),
            "action_mask": self._mask.clone(),
            "task": self._task_ids.clone(),
            "step_count": self._step_count.clone(),
            "episode_reward": self._return.clone(),
            "done": truncated,
            "terminated": torch.zeros_like(truncated),
            "truncated": truncated.clone(),
            **entries,
        }
        if self._pixels_t is not None:
            source["pixels"] = self._pixels_t.clone()
        out = TensorDict._new_unsafe(source, batch_size=self.batch_size)
        if self.device is not None and self.device != torch.device("cpu"):
            out = out.to(self.device, non_blocking=True)
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get("action")
        expected = (self.batch_size[0], self.action_pad)
        if tuple(action.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}.step: expected an action of shape {list(expected)} (lanes x padded action "
                f"size), got {list(action.shape)}; pad each lane's action to action_pad={self.action_pad}"
            )
        self._action_np[:] = action.detach().to("cpu", torch.float32).numpy()
        if self._pool is not None:
            self._pool.step()
        else:
            self._group.step()
        reward = self._reward_t.to(torch.float32).unsqueeze(-1)
        self._step_count += 1
        self._return += reward
        truncated = self._step_count >= self._lengths
        score, success = self._score()
        return self._out(reward=reward, score=score, success=success, truncated=truncated)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        n = self.batch_size[0]
        if reset is None:
            lanes = list(range(n))
        else:
            lanes = reset.reshape(n, -1).any(-1).cpu().nonzero().squeeze(-1).tolist()
        requests = [(lane, self._pending_seeds[lane]) for lane in lanes]
        for lane in lanes:
            self._pending_seeds[lane] = None
        if requests:
            if self._pool is not None:
                self._pool.reset(requests)
            else:
                self._group.reset(requests)
            idx = torch.tensor(lanes)
            self._step_count[idx] = 0
            self._return[idx] = 0.0
        zeros = torch.zeros(n, 1, dtype=torch.float32)
        return self._out(score=zeros, success=zeros.clone(), truncated=torch.zeros(n, 1, dtype=torch.bool))

    def set_seed(self, seed: int | None = None, static_seed: bool = False) -> int | None:
        """Seed the lanes at their next reset; lane ``i`` gets TorchRL's ``i``-th derived seed.

        Returns the next seed, like a ``SerialEnv`` of single-task envs would.
        """
        for lane in range(self.batch_size[0]):
            self._pending_seeds[lane] = None if seed is None else int(seed)
            if seed is not None and not static_seed:
                seed = seed_generator(seed)
        return seed

    def _set_seed(self, seed: int | None) -> None:  # set_seed is overridden
        self.set_seed(seed)

    def close(self, *, raise_if_closed: bool = True) -> None:
        finalizer = self.__dict__.get("_finalizer")
        if finalizer is not None:
            finalizer()
        super().close(raise_if_closed=raise_if_closed)

    def __repr__(self) -> str:
        mode = f"parallel, {self.num_workers} workers" if self.parallel else "serial"
        return f"{type(self).__name__}(tasks={self.task_names}, {mode}, obs_pad={self.obs_pad}, action_pad={self.action_pad})"
