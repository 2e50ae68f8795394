"""DeepMind Control Suite tasks as :class:`~torchrl_newt.envs.registry.RawTask` objects.

:class:`DMControlRawTask` adapts any dm_control ``control.Environment`` to the raw-task protocol
(actions in ``[-1, 1]``, flat float32 observations, action repeat, no terminations). The 21 stock
MMBench DMControl tasks are registered under the ``"dmcontrol"`` domain; custom dm_control tasks
(``domains/dmcontrol_ext``) reuse the same class.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["DMControlRawTask", "make_dmcontrol_task"]

logger = logging.getLogger(__name__)

SuccessFn = Callable[[Any], "bool | float"]


class DMControlRawTask:
    """A dm_control ``control.Environment`` behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    * actions in ``[-1, 1]`` are clipped and rescaled linearly to the environment's action bounds;
    * observations are all entries of the environment's observation dict, flattened to float32 and
      concatenated in ``observation_spec()`` order;
    * :meth:`step` applies ``action_repeat`` control steps and returns the summed reward;
    * episodes never end here: the wrapper drives the task and physics directly (the same calls as
      ``control.Environment.step``), so neither the environment's time limit nor a task's
      termination signal can trigger a hidden reset. Stock suite tasks never terminate before
      their time limit anyway; truncation is left to the transform stack.

    Args:
        env: a dm_control ``control.Environment`` (e.g. from ``dm_control.suite.load``).
        action_repeat: control steps per :meth:`step` call. Defaults to ``1``.
        success_fn: optional ``success_fn(env) -> bool | float`` evaluated after each
            :meth:`step`; its value is reported as ``info["success"]``. Without it ``info`` is
            empty.

    Examples:
        >>> from dm_control import suite
        >>> raw = DMControlRawTask(suite.load("cartpole", "balance", task_kwargs={"random": 0}),
        ...                        action_repeat=2)
        >>> raw.obs_dim, raw.action_dim
        (5, 1)
        >>> obs = raw.reset(seed=0)
        >>> obs.dtype, obs.shape
        (dtype('float32'), (5,))
        >>> obs, reward, info = raw.step(np.zeros(1, np.float32))
        >>> 0.0 <= reward <= 2.0, info
        (True, {})
        >>> raw.close()
    """

    def __init__(self, env: Any, action_repeat: int = 1, success_fn: SuccessFn | None = None) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.env = env
        self.action_repeat = int(action_repeat)
        self.success_fn = success_fn
        self._physics = env.physics
        self._task = env.task
        # one control step of control.Environment = this many physics steps
        self._n_sub_steps = max(1, int(round(env.control_timestep() / env.physics.timestep())))

        spec = env.action_spec()
        self.action_dim = int(np.prod(spec.shape))
        low = np.broadcast_to(np.asarray(spec.minimum, np.float64), spec.shape).reshape(-1)
        high = np.broadcast_to(np.asarray(spec.maximum, np.float64), spec.shape).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("DMControlRawTask needs a bounded action spec to rescale [-1, 1] actions")
        self._action_shape = spec.shape
        self._action_scale = (high - low) / 2.0
        self._action_offset = (high + low) / 2.0

        self._obs_keys = list(env.observation_spec().keys())
        self._obs_slices: list[tuple[str, slice]] = []
        start = 0
        for key, item in env.observation_spec().items():
            size = int(np.prod(item.shape))
            self._obs_slices.append((key, slice(start, start + size)))
            start += size
        self.obs_dim = start
        self._needs_reset = True

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode; with ``seed``, reseed the task's random state first.

        Args:
            seed: reseeds ``env.task.random`` in place, so the episode (and all following ones)
                are the same as those of an environment built with ``task_kwargs={"random": seed}``.

        Returns:
            the first observation, float32 ``[obs_dim]``.
        """
        if seed is not None:
            self._task.random.seed(int(seed) % 2**32)
        with self._physics.reset_context():
            self._task.initialize_episode(self._physics)
        self._needs_reset = False
        return self._observation()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]``) for ``action_repeat`` control steps.

        Returns:
            ``(observation, summed reward, info)``.
        """
        if self._needs_reset:
            raise RuntimeError("DMControlRawTask.step() called before reset()")
        ctrl = np.clip(np.asarray(action, np.float64).reshape(-1), -1.0, 1.0)
        ctrl = (ctrl * self._action_scale + self._action_offset).reshape(self._action_shape)
        task, physics = self._task, self._physics
        reward = 0.0
        for _ in range(self.action_repeat):
            task.before_step(ctrl, physics)
            physics.step(self._n_sub_steps)
            task.after_step(physics)
            r = task.get_reward(physics)
            reward += float(r) if r is not None else 0.0
        info = {} if self.success_fn is None else {"success": float(self.success_fn(self.env))}
        return self._observation(), reward, info

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """Render camera 0 as ``uint8 [height, width, 3]`` (headless with ``MUJOCO_GL=egl``)."""
        return np.asarray(self._physics.render(height=height, width=width, camera_id=0), dtype=np.uint8)

    def close(self) -> None:
        """Release the physics (and its rendering contexts)."""
        physics = getattr(self, "_physics", None)
        if physics is not None:
            try:
                physics.free()
            except Exception:  # pragma: no cover - best effort at teardown
                logger.debug("failed to free dm_control physics", exc_info=True)
            self._physics = None

    # -- helpers ----------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        obs = self._task.get_observation(self._physics)
        out = np.empty(self.obs_dim, dtype=np.float32)
        for key, sl in self._obs_slices:
            out[sl] = np.ravel(obs[key])
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task={type(self._task).__name__}, obs_dim={self.obs_dim}, "
            f"action_dim={self.action_dim}, action_repeat={self.action_repeat})"
        )


def make_dmcontrol_task(spec: TaskSpec, *, seed: int | None = None, **task_kwargs: Any) -> DMControlRawTask:
    """Build one of the stock DMControl MMBench tasks (the ``"dmcontrol"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` names the suite ``domain``/``task`` and the
            ``action_repeat``.
        seed: seed of the task's random state (``task_kwargs={"random": seed}``).
        **task_kwargs: extra keyword arguments of the suite's task function (the time limit is
            infinite unless ``time_limit`` is given).

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_dmcontrol_task(get_task("walker-walk"), seed=1)
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (24, 6, 2)
        >>> raw.close()
    """
    from dm_control import suite

    source = spec.source
    if "domain" not in source or "task" not in source:
        raise ValueError(f"task {spec.name!r} has no dm_control domain/task in its source facts: {dict(source)}")
    task_kwargs.setdefault("time_limit", float("inf"))
    env = suite.load(source["domain"], source["task"], task_kwargs={**task_kwargs, "random": seed})
    return DMControlRawTask(env, action_repeat=int(source.get("action_repeat", spec.action_repeat)))


register_domain("dmcontrol", make_dmcontrol_task, extra="dmc", requires=("dm_control",))
