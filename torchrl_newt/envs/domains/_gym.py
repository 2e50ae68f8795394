"""Gymnasium environments behind the numpy :class:`~torchrl_newt.envs.registry.RawTask` protocol.

:class:`GymRawTask` adapts any single (non-vectorised) ``gymnasium.Env`` with a ``Box`` action
space and a flat ``Box`` observation space, and is meant to be shared by every domain built on
Gymnasium (MuJoCo, Box2D; later Meta-World, OGBench, Atari...):

* actions in ``[-1, 1]`` are checked for NaNs, clipped and mapped affinely onto the env's action
  bounds (for symmetric bounds this is ``action * high``);
* :meth:`GymRawTask.step` repeats the action ``action_repeat`` times and sums the sub-step
  rewards, each optionally transformed first by a :class:`RewardShaping` (clipping, latches...);
* simulator terminations never end an episode: stepping simply goes on, as the MMBench facts
  specify fixed-length episodes (the transform stack truncates at the task's episode length).
  Wrap the *unwrapped* env (``gymnasium.make(...).unwrapped``) so that no ``TimeLimit`` or
  order-enforcing wrapper stands in the way; a sub-step reporting ``truncated`` stops the repeat
  loop early;
* frames are rendered headless (``render_mode="rgb_array"``) and resized to the requested size.

Importing this module sets ``MUJOCO_GL=egl`` and ``SDL_VIDEODRIVER=dummy`` with
:func:`os.environ.setdefault` (so user settings win) *before* any simulator is imported.
Gymnasium itself is imported lazily, so domain modules can import this helper (and register
their builders) on machines where Gymnasium is not installed.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import gymnasium

__all__ = [
    "ClipReward",
    "GymRawTask",
    "RewardShaping",
    "resize_frame",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class RewardShaping(Protocol):
    """Transforms each sub-step reward inside :meth:`GymRawTask.step`.

    ``__call__(reward, terminated, info, env)`` receives one simulator sub-step's reward, its
    ``terminated`` flag, its ``info`` dict and the (unwrapped) env, and returns the reward to
    accumulate. ``reset()`` is called at every episode start (for stateful rules such as
    latches); stateless rules may make it a no-op.
    """

    def reset(self) -> None: ...

    def __call__(self, reward: float, terminated: bool, info: dict, env: Any) -> float: ...


class ClipReward:
    """Clip each sub-step reward to ``[low, high]``, then multiply it by ``scale``.

    Args:
        low: lower clipping bound (``None``: no lower bound).
        high: upper clipping bound (``None``: no upper bound).
        scale: factor applied after clipping. Defaults to ``1.0``.

    Examples:
        >>> shaping = ClipReward(-5.0, 10.0, scale=1 / 20)
        >>> shaping(-100.0, True, {}, None), shaping(4.0, False, {}, None)
        (-0.25, 0.2)
    """

    def __init__(self, low: float | None = None, high: float | None = None, scale: float = 1.0) -> None:
        if low is not None and high is not None and not low <= high:
            raise ValueError(f"ClipReward needs low <= high, got [{low}, {high}]")
        self.low = -np.inf if low is None else float(low)
        self.high = np.inf if high is None else float(high)
        self.scale = float(scale)

    def reset(self) -> None:
        pass

    def __call__(self, reward: float, terminated: bool, info: dict, env: Any) -> float:
        return min(max(float(reward), self.low), self.high) * self.scale

    def __repr__(self) -> str:
        return f"ClipReward(low={self.low}, high={self.high}, scale={self.scale})"


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``[H, W, C]`` uint8 frame with bilinear interpolation (pure numpy).

    Returns the frame itself when it already has the requested size.

    Args:
        frame: the image, ``[H, W, C]``.
        height: output height.
        width: output width.

    Examples:
        >>> frame = np.zeros((400, 600, 3), np.uint8)
        >>> resize_frame(frame, 224, 224).shape
        (224, 224, 3)
        >>> resize_frame(np.full((2, 2, 3), 7, np.uint8), 3, 5)[1, 2].tolist()
        [7, 7, 7]
    """
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    # sample at pixel centres (align_corners=False convention)
    ys = np.clip((np.arange(height) + 0.5) * (h / height) - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * (w / width) - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[:, None, None].astype(np.float32)
    wx = (xs - x0)[None, :, None].astype(np.float32)
    f = frame.astype(np.float32)
    top = f[y0][:, x0] * (1 - wx) + f[y0][:, x1] * wx
    bottom = f[y1][:, x0] * (1 - wx) + f[y1][:, x1] * wx
    out = top * (1 - wy) + bottom * wy
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


FrameFn = Callable[[np.ndarray], np.ndarray]
ObsFn = Callable[[np.ndarray], np.ndarray]


class GymRawTask:
    """A single Gymnasium env behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    Args:
        env: a ``gymnasium.Env`` with a bounded ``Box`` action space and a ``Box`` observation
            space, created with ``render_mode="rgb_array"`` if frames are wanted. Pass the
            *unwrapped* env so no ``TimeLimit`` truncates or order-enforcing wrapper forbids
            stepping past a termination.
        action_repeat: simulator steps per :meth:`step`; their rewards are summed. Defaults to 1.
        reward_shaping: optional :class:`RewardShaping` applied to every sub-step reward before
            summation (e.g. :class:`ClipReward`).
        obs_fn: optional ``obs_fn(obs) -> obs`` applied to every observation (e.g. to pad a
            newer env version's observation to the benchmark's length). Must keep the length
            fixed.
        frame_fn: optional ``frame_fn(frame) -> frame`` applied to every rendered frame before
            resizing (e.g. a crop to a square view).
        success_key: key of ``info`` holding a success flag; the last sub-step's value is
            reported as ``info["success"]``. ``None`` (default): the task defines no success and
            ``info`` stays empty.
        name: a name for messages and ``repr`` (defaults to the env's spec id or class name).
        seed: seed of the first :meth:`reset` called without one (later resets continue the
            simulator's generator). ``None`` (default): the first reset is unseeded too.

    Attributes:
        obs_dim: length of the float32 observation.
        action_dim: number of action dimensions.
        env: the wrapped env.

    Examples:
        >>> import gymnasium as gym
        >>> env = gym.make("Pendulum-v1", render_mode="rgb_array").unwrapped
        >>> raw = GymRawTask(env, action_repeat=2, reward_shaping=ClipReward(-10.0, 0.0))
        >>> raw.obs_dim, raw.action_dim
        (3, 1)
        >>> obs = raw.reset(seed=0)
        >>> obs.dtype, obs.shape
        (dtype('float32'), (3,))
        >>> obs, reward, info = raw.step(np.array([0.5], np.float32))  # torque 0.5 * 2.0
        >>> -20.0 <= reward <= 0.0, info
        (True, {})
        >>> raw.close()
    """

    def __init__(
        self,
        env: gymnasium.Env,
        *,
        action_repeat: int = 1,
        reward_shaping: RewardShaping | None = None,
        obs_fn: ObsFn | None = None,
        frame_fn: FrameFn | None = None,
        success_key: str | None = None,
        name: str | None = None,
        seed: int | None = None,
    ) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        space = env.action_space
        low = getattr(space, "low", None)
        high = getattr(space, "high", None)
        if low is None or high is None or len(getattr(space, "shape", ()) or ()) != 1:
            raise TypeError(f"GymRawTask needs a 1-d Box action space, got {space!r}")
        low = np.asarray(low, np.float64)
        high = np.asarray(high, np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"GymRawTask needs bounded actions to rescale [-1, 1], got {space!r}")
        self.env = env
        self.action_repeat = int(action_repeat)
        self.reward_shaping = reward_shaping
        self.obs_fn = obs_fn
        self.frame_fn = frame_fn
        self.success_key = success_key
        spec = getattr(env, "spec", None)
        self.name = name or (spec.id if spec is not None else type(env).__name__)
        self.action_dim = int(low.shape[0])
        # a in [-1, 1] -> low + (a + 1) / 2 * (high - low) == center + a * half_range
        self._center = ((high + low) / 2.0).astype(space.dtype or np.float32)
        self._half_range = ((high - low) / 2.0).astype(space.dtype or np.float32)
        self._identity_scale = bool(np.all(self._center == 0) and np.all(self._half_range == 1))
        self._action_dtype = space.dtype or np.float32
        self.obs_dim = self._measure_obs_dim()
        self._first_seed = None if seed is None else int(seed)

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; a ``seed`` reseeds the simulator's generator (reproducible episodes)."""
        if self.reward_shaping is not None:
            self.reward_shaping.reset()
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        obs, _ = self.env.reset(seed=None if seed is None else int(seed))
        return self._obs(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply one action for ``action_repeat`` simulator steps; return ``(obs, reward, info)``."""
        a = np.asarray(action, dtype=self._action_dtype).reshape(-1)
        if a.shape[0] != self.action_dim:
            raise ValueError(f"{self.name}: expected an action of length {self.action_dim}, got shape {np.shape(action)}")
        if np.isnan(a).any():
            raise ValueError(f"{self.name}: action contains NaN: {a}")
        a = np.minimum(np.maximum(a, -1.0), 1.0)  # (np.clip is several times slower on tiny arrays)
        if not self._identity_scale:
            a = self._center + a * self._half_range
        env, shaping = self.env, self.reward_shaping
        total = 0.0
        info: dict = {}
        obs = None
        for _ in range(self.action_repeat):
            # a fresh copy per sub-step: some envs modify the action array in place
            obs, reward, terminated, truncated, info = env.step(a.copy())
            if shaping is not None:
                reward = shaping(reward, terminated, info, env)
            total += float(reward)
            if truncated:
                break
        out: dict = {}
        if self.success_key is not None:
            out["success"] = float(info.get(self.success_key, 0.0))
        return self._obs(obs), total, out

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """A ``[height, width, 3]`` uint8 RGB frame of the current state (headless)."""
        frame = self.env.render()
        if frame is None:
            raise RuntimeError(f"{self.name}: env.render() returned None; create the env with render_mode='rgb_array'")
        frame = np.asarray(frame)
        if self.frame_fn is not None:
            frame = self.frame_fn(frame)
        frame = frame[..., :3]
        frame = resize_frame(frame, int(height), int(width))
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def close(self) -> None:
        """Release the simulator (and its rendering context)."""
        env = self.__dict__.pop("env", None)
        if env is not None:
            try:
                env.close()
            except Exception as err:  # closing must never raise during teardown
                logger.debug("%s: error while closing: %s", self.name, err)

    # -- helpers ----------------------------------------------------------------------------
    def _obs(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        if self.obs_fn is not None:
            obs = np.asarray(self.obs_fn(obs), dtype=np.float32)
        return obs

    def _measure_obs_dim(self) -> int:
        shape: Sequence[int] | None = getattr(self.env.observation_space, "shape", None)
        if not shape:
            raise TypeError(f"{self.name}: GymRawTask needs a Box observation space, got {self.env.observation_space!r}")
        n = int(np.prod(shape))
        if self.obs_fn is not None:
            n = int(np.asarray(self.obs_fn(np.zeros(n, np.float32))).reshape(-1).shape[0])
        return n

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, obs_dim={self.obs_dim}, action_dim={self.action_dim}, "
            f"action_repeat={self.action_repeat}, reward_shaping={self.reward_shaping!r})"
        )
