"""Groups of raw tasks stepped together, writing into shared numpy buffers.

This is the engine of :class:`~torchrl_newt.envs.MultitaskVecEnv`: a :class:`LaneGroup` owns
some lanes (raw task simulators) and, on each command, steps or resets them and writes the
padded observations, rewards, success flags and frames straight into ``[N, ...]`` arrays that the
env reads. In serial mode the env holds one group over all lanes in its own process; in parallel
mode each worker process holds one group, and the arrays live in shared memory, so a batched step
costs one message per worker and no pickling of observations.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from torchrl_newt.envs.registry import check_raw_dims

logger = logging.getLogger(__name__)

__all__ = ["LaneGroup", "SharedBuffers", "lane_worker"]


class SharedBuffers:
    """Named ``[N, ...]`` numpy arrays, optionally in POSIX shared memory.

    Args:
        layout: ``{name: (shape, dtype)}``.
        shared: allocate in shared memory (so worker processes can attach by name).
        names: attach to existing shared blocks with these names instead of allocating.
    """

    def __init__(
        self,
        layout: dict[str, tuple[tuple[int, ...], str]],
        *,
        shared: bool = False,
        names: dict[str, str] | None = None,
    ) -> None:
        self.layout = dict(layout)
        self.arrays: dict[str, np.ndarray] = {}
        self._blocks: dict[str, shared_memory.SharedMemory] = {}
        self._owner = names is None
        for key, (shape, dtype) in self.layout.items():
            nbytes = max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)
            if names is not None:
                block = shared_memory.SharedMemory(name=names[key])
            elif shared:
                block = shared_memory.SharedMemory(create=True, size=nbytes)
            else:
                self.arrays[key] = np.zeros(shape, dtype=dtype)
                continue
            self._blocks[key] = block
            arr = np.ndarray(shape, dtype=dtype, buffer=block.buf)
            if self._owner:
                arr.fill(0)
            self.arrays[key] = arr

    @property
    def names(self) -> dict[str, str]:
        """Shared-memory block names (for workers to attach)."""
        return {key: block.name for key, block in self._blocks.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def close(self) -> None:
        """Detach (and, for the owner, free) the shared blocks."""
        self.arrays.clear()
        for block in self._blocks.values():
            try:
                block.close()
                if self._owner:
                    block.unlink()
            except (FileNotFoundError, BufferError):  # already freed / still viewed
                pass
        self._blocks.clear()


class LaneGroup:
    """Raw task simulators for some lanes of a batched env.

    Args:
        lanes: the lanes (rows of the buffers) this group owns.
        tasks: task specs, one per lane of ``lanes``.
        builders: the domain builder of each task (``builder(spec, **task_kwargs) -> RawTask``).
        buffers: the ``[N, ...]`` arrays: ``observation`` float32 ``[N, obs_pad]``, ``action``
            float32 ``[N, action_pad]``, ``reward`` float64 ``[N]``, ``success`` float32 ``[N]``
            and, with pixels, ``pixels`` uint8 ``[N, H, W, 3]``.
        task_kwargs: forwarded to every lane's domain builder.
    """

    def __init__(
        self,
        lanes: Sequence[int],
        tasks: Sequence[Any],
        builders: Sequence[Any],
        buffers: SharedBuffers,
        task_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.lanes = [int(i) for i in lanes]
        self.specs = list(tasks)
        self.tasks = [spec.name for spec in self.specs]
        self.buffers = buffers
        self.obs = buffers["observation"]
        self.action = buffers["action"]
        self.reward = buffers["reward"]
        self.success = buffers["success"]
        self.pixels = buffers.arrays.get("pixels")
        obs_pad = self.obs.shape[1]
        self.raws = []
        try:
            for spec, builder in zip(self.specs, builders):
                raw = builder(spec, **(task_kwargs or {}))
                self.raws.append(raw)
                check_raw_dims(spec, raw)  # the env checked the registry dims against the padding
                if int(raw.obs_dim) > obs_pad:  # tasks whose obs_dim is only known once built
                    raise ValueError(f"task {spec.name!r} has obs_dim={raw.obs_dim} > obs_pad={obs_pad}")
        except BaseException:
            self.close()
            raise
        self.obs_dims = [int(r.obs_dim) for r in self.raws]
        self.action_dims = [int(r.action_dim) for r in self.raws]

    def _write_obs(self, lane: int, j: int, obs: np.ndarray) -> None:
        obs = np.asarray(obs).reshape(-1)
        if obs.shape[0] != self.obs_dims[j]:
            raise ValueError(
                f"task {self.tasks[j]!r} returned an observation of size {obs.shape[0]}, expected {self.obs_dims[j]}"
            )
        self.obs[lane, : obs.shape[0]] = obs

    def _render(self, lane: int, j: int) -> None:
        h, w = self.pixels.shape[1:3]
        self.pixels[lane] = self.raws[j].render(width=w, height=h)

    def step(self) -> None:
        """Step every lane with its row of the action buffer (its first ``action_dim`` entries)."""
        for j, lane in enumerate(self.lanes):
            try:
                obs, reward, info = self.raws[j].step(self.action[lane, : self.action_dims[j]])
                self._write_obs(lane, j, obs)
                self.reward[lane] = reward
                self.success[lane] = float(info.get("success", 0.0)) if info else 0.0
                if self.pixels is not None:
                    self._render(lane, j)
            except Exception as err:
                raise RuntimeError(f"task {self.tasks[j]!r} (lane {lane}) failed to step: {err!r}") from err

    def reset(self, requests: Sequence[tuple[int, int | None]]) -> None:
        """Reset lanes: ``requests`` holds ``(lane, seed or None)`` for lanes of this group."""
        index = {lane: j for j, lane in enumerate(self.lanes)}
        for lane, seed in requests:
            j = index[lane]
            try:
                obs = self.raws[j].reset(seed=seed)
                self.obs[lane].fill(0)
                self._write_obs(lane, j, obs)
                self.reward[lane] = 0.0
                self.success[lane] = 0.0
                if self.pixels is not None:
                    self._render(lane, j)
            except Exception as err:
                raise RuntimeError(f"task {self.tasks[j]!r} (lane {lane}) failed to reset: {err!r}") from err

    def close(self) -> None:
        for raw in self.raws:
            try:
                raw.close()
            except Exception:  # closing must not mask the original error
                logger.debug("closing a raw task failed", exc_info=True)
        self.raws = []


def lane_worker(conn, lanes, tasks, builders, layout, names, task_kwargs, env_vars) -> None:
    """Worker process loop: builds a :class:`LaneGroup` on shared buffers and serves commands.

    Commands (``(name, arg)`` over ``conn``): ``("step", None)``, ``("reset", requests)``,
    ``("close", None)``. Replies: ``("ok", payload)`` or ``("error", message)``.
    """
    os.environ.update(env_vars)
    try:  # a worker per core: keep each one to a single thread
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    buffers = group = None
    try:
        buffers = SharedBuffers(layout, names=names)
        group = LaneGroup(lanes, tasks, builders, buffers, task_kwargs)
        conn.send(("ok", (group.obs_dims, group.action_dims)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{err}\n{traceback.format_exc()}"))
        if buffers is not None:
            buffers.close()
        conn.close()
        return
    try:
        while True:
            try:
                cmd, arg = conn.recv()
            except (EOFError, KeyboardInterrupt):
                break
            try:
                if cmd == "step":
                    group.step()
                elif cmd == "reset":
                    group.reset(arg)
                elif cmd == "close":
                    conn.send(("ok", None))
                    break
                else:
                    raise ValueError(f"unknown command {cmd!r}")
                conn.send(("ok", None))
            except Exception as err:  # noqa: BLE001 - reported to the parent
                conn.send(("error", f"{err}\n{traceback.format_exc()}"))
    finally:
        group.close()
        buffers.close()
        conn.close()
