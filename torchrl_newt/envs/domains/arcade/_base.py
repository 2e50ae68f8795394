"""Shared machinery of the MiniArcade games: seeding, action handling, lazy headless rendering.

Every game keeps its state in plain Python floats and integers and steps it with pure-Python
arithmetic (small numpy arrays are slower than scalars at this size). pygame is imported only
by :meth:`ArcadeGame.render`, after ``SDL_VIDEODRIVER=dummy`` has been set, so state-only
stepping never touches SDL.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, ClassVar

import numpy as np

from torchrl_newt.envs.registry import TaskSpec

__all__ = ["SCREEN", "ArcadeGame", "clip", "import_pygame", "rects_overlap"]

log = logging.getLogger(__name__)

#: Side of the square canvas every game lives on (pixels; world units equal pixels).
SCREEN = 224


def clip(x: float, lo: float, hi: float) -> float:
    """Clamp a float to ``[lo, hi]`` (faster than ``np.clip`` on scalars).

    Examples:
        >>> clip(3.0, 0.0, 1.0), clip(-2.0, -1.0, 1.0), clip(0.5, 0.0, 1.0)
        (1.0, -1.0, 0.5)
    """
    return lo if x < lo else min(x, hi)


def rects_overlap(ax: float, ay: float, aw: float, ah: float, bx: float, by: float, bw: float, bh: float) -> bool:
    """Whether two axis-aligned rectangles (top-left corner, width, height) overlap.

    Examples:
        >>> rects_overlap(0, 0, 10, 10, 5, 5, 10, 10)
        True
        >>> rects_overlap(0, 0, 10, 10, 10, 0, 5, 5)
        False
    """
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def import_pygame():
    """Import pygame headless (``SDL_VIDEODRIVER=dummy`` unless already set) and return it.

    Raises:
        MissingDependencyError: pygame is not installed (install the ``arcade`` extra).
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as err:  # pragma: no cover - exercised only without pygame
        from torchrl_newt.envs.registry import MissingDependencyError

        raise MissingDependencyError(
            "rendering MiniArcade games needs pygame-ce; install it with `pip install torchrl_newt[arcade]`"
        ) from err
    return pygame


class ArcadeGame:
    """Base class of the MiniArcade games (a :class:`~torchrl_newt.envs.RawTask`).

    Subclasses set ``obs_dim``/``action_dim`` and implement ``_reset()``, ``_step(action)``
    (returning the reward; ``self.info`` may be filled) , ``_obs()`` (a list of floats) and
    ``_draw(surface, pygame)``. The base class owns the random generator, clips actions to
    ``[-1, 1]``, applies the task's action repeat and converts frames to numpy.

    Args:
        spec: the task's :class:`TaskSpec` (gives episode length and action repeat); ``None``
            uses the class defaults.
        seed: seed of the generator used when :meth:`reset` gets no seed.

    Examples:
        >>> from torchrl_newt.envs.domains.arcade import make_game
        >>> game = make_game("pygame-pong", seed=0)
        >>> obs = game.reset(seed=1)
        >>> obs.shape, obs.dtype
        ((6,), dtype('float32'))
        >>> obs2, reward, info = game.step(np.zeros(game.action_dim))
        >>> bool(np.isfinite(obs2).all()), isinstance(reward, float)
        (True, True)
    """

    obs_dim: ClassVar[int] = 0
    action_dim: ClassVar[int] = 0
    default_episode_length: ClassVar[int] = 500
    #: whether ``info["success"]`` is reported
    has_success: ClassVar[bool] = False

    def __init__(self, spec: TaskSpec | None = None, *, seed: int | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {sorted(kwargs)}")
        self.spec = spec
        self.episode_length = spec.episode_length if spec is not None else self.default_episode_length
        self.action_repeat = max(1, int(spec.action_repeat)) if spec is not None else 1
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        self._legacy_seed = seed
        self._legacy_rng: np.random.RandomState | None = None
        self.t = 0
        self.info: dict[str, Any] = {}
        self._surface = None
        self._reset_called = False

    # ---------------------------------------------------------------- RawTask protocol
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode; a given ``seed`` makes the episode fully reproducible."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self._legacy_seed, self._legacy_rng = seed, None
        self.t = 0
        self.info = {}
        self._reset()
        self._reset_called = True
        return self._observe()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Advance ``action_repeat`` frames with ``action`` (clipped to ``[-1, 1]``).

        Raises:
            RuntimeError: called before :meth:`reset`.
            ValueError: the action does not have ``action_dim`` entries.
        """
        if not self._reset_called:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape[0] != self.action_dim:
            raise ValueError(f"{type(self).__name__} expects {self.action_dim} action values, got shape {np.shape(action)}")
        acts = [0.0 if math.isnan(v) else max(-1.0, min(v, 1.0)) for v in a.tolist()]
        reward = 0.0
        for _ in range(self.action_repeat):
            self.info = {}
            reward += float(self._step(acts))
            self.t += 1
        info = dict(self.info)
        if self.has_success:
            info["success"] = bool(info.get("success", False))
        return self._observe(), reward, info

    def render(self, width: int = SCREEN, height: int = SCREEN) -> np.ndarray:
        """Draw the current frame with pygame (headless) as ``uint8 [height, width, 3]``."""
        pg = import_pygame()
        if self._surface is None:
            self._surface = pg.Surface((SCREEN, SCREEN))
        if not self._reset_called:
            self.reset()
        self._draw(self._surface, pg)
        surf = self._surface
        if (width, height) != (SCREEN, SCREEN):
            surf = pg.transform.smoothscale(surf, (int(width), int(height)))
        frame = pg.surfarray.array3d(surf)  # [W, H, 3]
        return np.ascontiguousarray(frame.transpose(1, 0, 2), dtype=np.uint8)

    def close(self) -> None:
        """Release the drawing surface (the game can still be stepped and rendered again)."""
        self._surface = None

    # ---------------------------------------------------------------- helpers
    def _observe(self) -> np.ndarray:
        obs = np.asarray(self._obs(), dtype=np.float32)
        if obs.shape != (self.obs_dim,):  # pragma: no cover - guards subclass bugs
            raise RuntimeError(f"{type(self).__name__} built an observation of shape {obs.shape}, expected ({self.obs_dim},)")
        return obs

    def uniform(self, lo: float, hi: float) -> float:
        """A float drawn uniformly from ``[lo, hi)`` with the game's generator."""
        return lo + (hi - lo) * self.rng.random()

    def randint(self, lo: int, hi: int) -> int:
        """An integer drawn uniformly from ``[lo, hi)`` with the game's generator."""
        return int(self.rng.integers(lo, hi))

    @property
    def legacy_rng(self) -> np.random.RandomState:
        """A legacy NumPy stream (``RandomState``) seeded with the last reset seed.

        Some of Newt's games draw part of their randomness from NumPy's global generator
        (``np.random.randint`` ...) rather than from the env's own generator. Games that follow
        them draw those numbers from this stream instead, so stepping never touches global
        state: with ``reset(seed=s)`` it yields what ``np.random.seed(s)`` right before Newt's
        reset would (the convention of the golden recordings). Built on first use.
        """
        if self._legacy_rng is None:
            seed = self._legacy_seed
            self._legacy_rng = np.random.RandomState(None if seed is None else int(seed) % 2**32)
        return self._legacy_rng

    @property
    def progress(self) -> float:
        """Fraction of the nominal episode elapsed, in ``[0, 1]`` (drives difficulty ramps)."""
        return min(1.0, self.t / max(1, self.episode_length))

    # ---------------------------------------------------------------- subclass hooks
    def _reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, action: list[float]) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _obs(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self, surf, pg) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        name = self.spec.name if self.spec is not None else type(self).__name__
        return f"{type(self).__name__}({name!r}, obs_dim={self.obs_dim}, action_dim={self.action_dim})"


def ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 12) -> list[tuple[float, float]]:
    """Polygon approximating an ellipse (used for drawing blobs).

    Examples:
        >>> len(ellipse_points(0, 0, 1, 1, n=8))
        8
    """
    return [(cx + rx * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n)) for i in range(n)]
