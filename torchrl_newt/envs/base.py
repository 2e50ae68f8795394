"""A TorchRL environment around one :class:`~torchrl_newt.envs.registry.RawTask`."""

from __future__ import annotations

import logging

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_newt.envs.registry import RawTask, build_raw_task

__all__ = ["RawTaskEnv"]

logger = logging.getLogger(__name__)

_FALSE = torch.zeros(1, dtype=torch.bool)


class RawTaskEnv(EnvBase):
    """A single, unbatched TorchRL environment stepping one raw task.

    The raw task's numpy arrays are exposed as tensors with no padding, masking or truncation
    (those are the job of :mod:`torchrl_newt.envs.transforms`): the episode never ends on its own
    (``done``, ``terminated`` and ``truncated`` are always ``False``).

    Output keys (names configurable): ``observation`` float32 ``[obs_dim]``, ``reward`` float32
    ``[1]``, ``done``/``terminated``/``truncated`` bool ``[1]``, ``success`` float32 ``[1]`` (the raw
    task's ``info["success"]``, ``0`` where the task does not report one) and, with
    ``from_pixels=True``, ``pixels`` uint8 ``[height, width, 3]`` rendered after every reset and step.
    The action is float32 ``[action_dim]`` in ``[-1, 1]``.

    The step path is kept lean: no spec validation, tensors are wrapped from numpy without copies
    and the output tensordict is built unchecked.

    Args:
        raw: the raw task (e.g. from :func:`~torchrl_newt.envs.build_raw_task`), or a task name
            to build with ``build_raw_task``.

    Keyword Args:
        from_pixels: also render frames under ``pixels_key``. Defaults to ``False``.
        frame_size: ``(height, width)`` of rendered frames. Defaults to ``(224, 224)``.
        observation_key: key of the state observation. Defaults to ``"observation"``.
        pixels_key: key of the rendered frame. Defaults to ``"pixels"``.
        success_key: key of the success flag. Defaults to ``"success"``.
        action_key: key of the action. Defaults to ``"action"``.
        device: device of the output tensors. Defaults to CPU.
        task_name: a name used in messages (defaults to the raw task's ``name`` attribute or the
            task name passed as ``raw``).
        **task_kwargs: forwarded to :func:`~torchrl_newt.envs.build_raw_task` when ``raw`` is a name.

    Examples:
        >>> env = RawTaskEnv("cartpole-swingup")
        >>> _ = env.set_seed(0)
        >>> td = env.rollout(3)
        >>> td["observation"].shape, td["next", "reward"].shape, td["next", "success"].shape
        (torch.Size([3, 5]), torch.Size([3, 1]), torch.Size([3, 1]))
        >>> env.close()
    """

    def __init__(
        self,
        raw: RawTask | str,
        *,
        from_pixels: bool = False,
        frame_size: tuple[int, int] = (224, 224),
        observation_key: str = "observation",
        pixels_key: str = "pixels",
        success_key: str = "success",
        action_key: str = "action",
        device: torch.device | str | None = None,
        task_name: str | None = None,
        **task_kwargs,
    ) -> None:
        if isinstance(raw, str):
            task_name = task_name or raw
            raw = build_raw_task(raw, **task_kwargs)
        elif task_kwargs:
            raise TypeError(f"task keyword arguments {sorted(task_kwargs)} need a task name, not a built raw task")
        super().__init__(device=device, batch_size=torch.Size([]))
        self._raw = raw
        self.task_name = task_name or getattr(raw, "name", None) or type(raw).__name__
        self.from_pixels = bool(from_pixels)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.observation_key = observation_key
        self.pixels_key = pixels_key
        self.success_key = success_key
        self._action_key = action_key
        self._next_seed: int | None = None
        self._obs_dim = int(raw.obs_dim)
        self._action_dim = int(raw.action_dim)
        self._make_specs()

    # -- specs ------------------------------------------------------------------------------
    def _make_specs(self) -> None:
        device = self.device
        obs = {
            self.observation_key: Unbounded(shape=(self._obs_dim,), dtype=torch.float32, device=device),
            self.success_key: Unbounded(shape=(1,), dtype=torch.float32, device=device),
        }
        if self.from_pixels:
            obs[self.pixels_key] = Bounded(
                low=0, high=255, shape=(*self.frame_size, 3), dtype=torch.uint8, device=device
            )
        self.observation_spec = Composite(obs, shape=())
        self.action_spec = Composite(
            {self._action_key: Bounded(low=-1.0, high=1.0, shape=(self._action_dim,), dtype=torch.float32, device=device)},
            shape=(),
        )
        self.reward_spec = Unbounded(shape=(1,), dtype=torch.float32, device=device)
        self.done_spec = Composite(
            {
                key: Categorical(2, shape=(1,), dtype=torch.bool, device=device)
                for key in ("done", "terminated", "truncated")
            },
            shape=(),
        )

    @property
    def raw(self) -> RawTask:
        """The wrapped raw task."""
        return self._raw

    @property
    def obs_dim(self) -> int:
        """Length of the (unpadded) state observation."""
        return self._obs_dim

    @property
    def action_dim(self) -> int:
        """Number of (unpadded) action dimensions."""
        return self._action_dim

    # -- env API ----------------------------------------------------------------------------
    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        seed, self._next_seed = self._next_seed, None
        obs = self._raw.reset(seed=seed)
        source = {
            self.observation_key: self._to_tensor(obs),
            self.success_key: torch.zeros(1, dtype=torch.float32),
            "done": _FALSE.clone(),
            "terminated": _FALSE.clone(),
            "truncated": _FALSE.clone(),
        }
        if self.from_pixels:
            source[self.pixels_key] = self._render()
        return self._wrap(source)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get(self._action_key)
        obs, reward, info = self._raw.step(action.detach().cpu().numpy())
        success = info.get("success", 0.0) if info else 0.0
        source = {
            self.observation_key: self._to_tensor(obs),
            "reward": torch.tensor([reward], dtype=torch.float32),
            self.success_key: torch.tensor([float(success)], dtype=torch.float32),
            "done": _FALSE.clone(),
            "terminated": _FALSE.clone(),
            "truncated": _FALSE.clone(),
        }
        if self.from_pixels:
            source[self.pixels_key] = self._render()
        return self._wrap(source)

    def _set_seed(self, seed: int | None) -> None:
        # applied by the raw task at the next reset, which makes episodes reproducible
        self._next_seed = None if seed is None else int(seed)

    def close(self, *, raise_if_closed: bool = True) -> None:
        raw = self.__dict__.get("_raw")
        if raw is not None:
            raw.close()
        super().close(raise_if_closed=raise_if_closed)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _to_tensor(obs: np.ndarray) -> torch.Tensor:
        # always copy: a raw task may legally reuse its output buffer between calls
        return torch.from_numpy(np.array(obs, dtype=np.float32))

    def _render(self) -> torch.Tensor:
        height, width = self.frame_size
        frame = self._raw.render(width=width, height=height)
        return torch.from_numpy(np.ascontiguousarray(frame, dtype=np.uint8))

    def _wrap(self, source: dict) -> TensorDictBase:
        out = TensorDict._new_unsafe(source, batch_size=torch.Size([]))
        if self.device is not None and self.device != torch.device("cpu"):
            out = out.to(self.device, non_blocking=True)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task={self.task_name!r}, obs_dim={self._obs_dim}, "
            f"action_dim={self._action_dim}, from_pixels={self.from_pixels}, device={self.device})"
        )
