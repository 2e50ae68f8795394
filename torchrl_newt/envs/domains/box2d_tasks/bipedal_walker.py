"""Gymnasium's BipedalWalker on Newt's five terrains (MMBench ``bipedal-walker-*`` tasks).

The terrains, rewards and observations follow Newt's definitions (nicklashansen/newt, commit
75def92, ``tdmpc2/envs/tasks/bipedal_walker.py``), random draws included. :class:`TerrainBipedalWalker` keeps Gymnasium's walker, physics, lidar and reward terms and swaps
the ground profile for one of :data:`TERRAINS`:

``flat``
    constant height.
``uneven``
    a damped random walk (damping 0.8, pull towards the mean height 0.011, step noise
    ``U(-1, 1) / 15`` after the start pad).
``rugged``
    a rougher damped random walk (damping 0.75, pull 0.015, noise ``0.15 * U(-1, 1)``).
``hills``
    a sine wave ``y = h0 + A sin(2 pi x / L)`` with ``h0`` 0.8-1 below the default height,
    amplitude ``A ~ U(0.4, 0.8)`` and wavelength ``L ~ U(7, 14)`` (world units), drawn (in that
    order) from NumPy's global generator as Newt does, not from the env's ``np_random``.
``obstacles``
    grassy stretches (random walk as ``uneven``, height at least 1.5) alternating with stumps
    (2-3 terrain steps wide, 0.75 as high as wide) and pits (3 steps deep, 2-3 steps wide).

Heights are clamped to ``[1, 5.5]``.

Newt draws the hills and random scene colours (sky, clouds, a ground colour drifting along the
terrain, grass shades) from NumPy's *global* generator, the other terrains from the env's
``np_random``. We make the same draws in the same order (sky and clouds at the start of
``reset``, then the hills, then the ground colours) from :attr:`TerrainBipedalWalker.global_rng`,
a ``RandomState`` standing in for the global generator: ``reset(seed=s)`` reseeds it as
``np.random.seed(s)`` would seed the global one (so seed ``s`` gives Newt's episode for
``np.random.seed(s)`` and ``reset(seed=s)``), and NumPy's own global state is never touched.

Differences from Gymnasium's ``BipedalWalker-v3`` that follow the benchmark (whose walker ran
with a 224-pixel viewport at 15 pixels per unit): the forward-progress reward is twice
Gymnasium's (``forward_reward_scale=2``) and the horizontal / vertical hull velocities in the
observation are scaled by ``(224 / 15) / (600 / 30)`` and ``(224 / 15) / (400 / 30)``. The
observation velocities are evaluated as Newt does (in float64 before the float32 cast). Frames
show a square 400x400-pixel window of Gymnasium's rendering around the walker (see
:meth:`TerrainBipedalWalker.render`) with Newt's random ground and grass colours; Newt's own
renderer (224x224 pixels at 15 per unit, random sky and cloud colours) is not reproduced.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
from gymnasium.envs.box2d import bipedal_walker as _bw

__all__ = ["TERRAINS", "TerrainBipedalWalker", "terrain_profile"]

logger = logging.getLogger(__name__)

TERRAINS = ("flat", "uneven", "rugged", "hills", "obstacles")

# Gymnasium's world constants (read once; we never modify Gymnasium's module)
_STEP = _bw.TERRAIN_STEP
_N = _bw.TERRAIN_LENGTH
_H = _bw.TERRAIN_HEIGHT
_STARTPAD = _bw.TERRAIN_STARTPAD
_GRASS = _bw.TERRAIN_GRASS
_Y_MIN, _Y_MAX = 1.0, 5.5
# the benchmark's view: 224 pixels at 15 pixels per world unit (Gymnasium: 600x400 at 30)
_BENCH_VIEW = 224 / 15
_PROGRESS_GAIN = 130.0  # Gymnasium's reward per world unit of progress, times SCALE

_FPS = _bw.FPS

# Newt's palette of starting ground colours
_GROUND_COLOURS = np.array(
    [
        [102, 153, 76], [94, 163, 60], [80, 120, 58], [119, 125, 58], [181, 149, 101], [194, 160, 134],
        [181, 130, 91], [122, 176, 114], [128, 191, 128], [143, 194, 143], [155, 166, 123], [125, 87, 57],
        [133, 111, 94], [145, 120, 120], [184, 165, 128], [200, 180, 150], [96, 158, 102],
    ]
)

Polygon = list[tuple[float, float]]
Profile = tuple[list[float], list[Polygon]]


def _random_walk(rng: np.random.Generator, damping: float, pull: float, noise: float, y_min: float = _Y_MIN) -> list[float]:
    """Damped random walk of the ground height, flat over the start pad."""
    ys, y, v = [], _H, 0.0
    for i in range(_N):
        v = damping * v + pull * np.sign(_H - y)
        if i > _STARTPAD:
            v += noise * rng.uniform(-1.0, 1.0)
        y = min(max(y + v, y_min), _Y_MAX)
        ys.append(y)
    return ys


def _flat(rng: np.random.Generator) -> Profile:
    return [_H] * _N, []


def _uneven(rng: np.random.Generator) -> Profile:
    return _random_walk(rng, damping=0.8, pull=0.011, noise=1 / 15), []


def _rugged(rng: np.random.Generator) -> Profile:
    return _random_walk(rng, damping=0.75, pull=0.015, noise=2.25 / 15), []


def _hills(
    rng: np.random.Generator | np.random.RandomState,
    amplitude: tuple[float, float] = (0.4, 0.8),
    wavelength: tuple[float, float] = (7.0, 14.0),
) -> Profile:
    """Sine hills; Newt draws them from NumPy's global generator (a ``RandomState``)."""
    base = _H + rng.uniform(-1, -0.8)
    amp = rng.uniform(*amplitude)
    length = rng.uniform(*wavelength)
    ys = [min(max(base + amp * np.sin(2 * np.pi * (i * _STEP) * (1 / length)), _Y_MIN), _Y_MAX) for i in range(_N)]
    return ys, []


def _obstacles(rng: np.random.Generator) -> Profile:
    """Grass stretches alternating with stumps and pits (a gentler cousin of hardcore mode)."""
    grass, stump, pit = 0, 1, 2
    mode, entering, countdown = grass, False, _STARTPAD
    y, v, rim = _H, 0.0, _H
    ys: list[float] = []
    polys: list[Polygon] = []
    for i in range(_N):
        x = i * _STEP
        if mode == grass and not entering:
            v = 0.8 * v + 0.01 * np.sign(_H - y)
            if i > _STARTPAD:
                v += rng.uniform(-1.0, 1.0) / 15
            y = min(max(y + v, 1.5), _Y_MAX)
        elif mode == pit and entering:
            width = int(rng.integers(2, 4))
            depth = 3 * _STEP
            wall = [(x, y), (x + _STEP, y), (x + _STEP, y - depth), (x, y - depth)]
            polys.append(wall)
            polys.append([(px + width * _STEP, py) for px, py in wall])
            countdown, rim = width + 2, y
        elif mode == pit:
            y = rim - 3 * _STEP if countdown > 1 else rim
        elif mode == stump and entering:
            size = int(rng.integers(2, 4))
            w, h = size * _STEP, 0.75 * size * _STEP
            polys.append([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
            countdown = size
        entering = False
        ys.append(y)
        countdown -= 1
        if countdown == 0:
            countdown = int(rng.integers(_GRASS // 2, _GRASS))
            mode = int(rng.integers(1, 3)) if mode == grass else grass
            entering = True
    return ys, polys


_PROFILES: dict[str, Callable[[np.random.Generator], Profile]] = {
    "flat": _flat,
    "uneven": _uneven,
    "rugged": _rugged,
    "hills": _hills,
    "obstacles": _obstacles,
}


def terrain_profile(terrain: str, rng: np.random.Generator) -> Profile:
    """Ground heights (one per terrain step) and obstacle polygons of a terrain.

    Args:
        terrain: one of :data:`TERRAINS`.
        rng: the generator to draw from.

    Returns:
        ``(heights, polygons)``: ``TERRAIN_LENGTH`` heights and a list of static obstacle
        polygons (world coordinates).

    Examples:
        >>> ys, polys = terrain_profile("hills", np.random.default_rng(0))
        >>> len(ys), polys, 1.0 <= min(ys) <= max(ys) <= 5.5
        (200, [], True)
        >>> ys, polys = terrain_profile("obstacles", np.random.default_rng(0))
        >>> len(polys) > 0
        True
    """
    try:
        fn = _PROFILES[terrain]
    except KeyError:
        raise ValueError(f"unknown terrain {terrain!r}; expected one of {TERRAINS}") from None
    ys, polys = fn(rng)
    return [float(y) for y in ys], [[(float(px), float(py)) for px, py in poly] for poly in polys]


class TerrainBipedalWalker(_bw.BipedalWalker):
    """Gymnasium's BipedalWalker (normal mode) on one of :data:`TERRAINS`.

    Args:
        terrain: the ground profile. Defaults to ``"flat"``.
        render_mode: ``"rgb_array"`` to render frames (default) or ``None``.
        forward_reward_scale: multiplier of Gymnasium's forward-progress reward (the benchmark
            uses 2). Defaults to ``2.0``.
        benchmark_velocity_obs: scale the hull velocity observations as the benchmark's walker
            did. Defaults to ``True``.

    Examples:
        >>> env = TerrainBipedalWalker("rugged")
        >>> obs, _ = env.reset(seed=0)
        >>> obs.shape
        (24,)
        >>> obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        >>> env.render().shape
        (400, 400, 3)
        >>> env.close()
    """

    def __init__(
        self,
        terrain: str = "flat",
        render_mode: str | None = "rgb_array",
        forward_reward_scale: float = 2.0,
        benchmark_velocity_obs: bool = True,
    ) -> None:
        if terrain not in _PROFILES:
            raise ValueError(f"unknown terrain {terrain!r}; expected one of {TERRAINS}")
        self.terrain_name = terrain
        #: stands in for NumPy's global generator, from which Newt draws hills and colours
        self.global_rng = np.random.RandomState()
        self.sky_color = np.array([215, 215, 252])
        self.cloud_color = np.array([247, 247, 247])
        self.forward_reward_scale = float(forward_reward_scale)
        self._benchmark_velocity_obs = bool(benchmark_velocity_obs)
        super().__init__(render_mode=render_mode, hardcore=False)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Gymnasium's reset, after Newt's sky and cloud colour draws."""
        if seed is not None:
            self.global_rng.seed(int(seed) % 2**32)
        rng = self.global_rng
        sky = rng.randint(-7, 7, size=3) + rng.randint(-7, 7, size=1)
        cloud = rng.randint(-4, 4, size=3) + rng.randint(-4, 4, size=1) + (0.5 * sky).astype(int)
        self.sky_color = np.clip(np.array([215, 215, 252]) + sky, 0, 255)
        self.cloud_color = np.clip(np.array([247, 247, 247]) + cloud, 0, 255)
        return super().reset(seed=seed, options=options)

    def _generate_terrain(self, hardcore: bool) -> None:  # called by BipedalWalker.reset
        rng = self.global_rng if self.terrain_name == "hills" else self.np_random
        ys, polys = terrain_profile(self.terrain_name, rng)
        self.terrain = []
        self.terrain_x = [i * _STEP for i in range(_N)]
        self.terrain_y = ys
        for poly in polys:
            self.fd_polygon.shape.vertices = poly
            body = self.world.CreateStaticBody(fixtures=self.fd_polygon)
            body.color1, body.color2 = (255, 255, 255), (153, 153, 153)
            self.terrain.append(body)
        self.terrain_poly = []
        grng = self.global_rng
        start = _GROUND_COLOURS[grng.randint(len(_GROUND_COLOURS))]
        ground = start.copy()
        for i in range(_N - 1):
            edge = [(self.terrain_x[i], ys[i]), (self.terrain_x[i + 1], ys[i + 1])]
            self.fd_edge.shape.vertices = edge
            # the ground colour drifts by -1/0 per channel, within +-15 of the starting colour
            ground = np.clip(ground + grng.randint(-1, 1, size=3), start - 15, start + 15)
            grass = (ground[0] - 20, grng.randint(ground[1], 255), ground[2])
            body = self.world.CreateStaticBody(fixtures=self.fd_edge)
            body.color1, body.color2 = grass, ground
            self.terrain.append(body)
            self.terrain_poly.append((edge + [(edge[1][0], 0), (edge[0][0], 0)], ground.tolist()))
        self.terrain.reverse()

    def step(self, action: np.ndarray):
        """Gymnasium's step, with the benchmark's progress reward and velocity scaling."""
        x_before = self.hull.position[0]
        obs, reward, terminated, truncated, info = super().step(action)
        x = self.hull.position[0]
        # Gymnasium replaces the reward by -100 under exactly this condition: keep that as is
        if self.forward_reward_scale != 1.0 and not (self.game_over or x < 0):
            reward += (self.forward_reward_scale - 1.0) * _PROGRESS_GAIN * (x - x_before) / _bw.SCALE
        if self._benchmark_velocity_obs:
            vel = self.hull.linearVelocity
            obs[2] = 0.3 * vel.x * _BENCH_VIEW / _FPS
            obs[3] = 0.3 * vel.y * _BENCH_VIEW / _FPS
        return obs, reward, terminated, truncated, info

    def render(self):
        """A ``[400, 400, 3]`` frame: the left, square part of Gymnasium's 600x400 view."""
        frame = super().render()
        if frame is None:
            return None
        side = min(frame.shape[0], frame.shape[1])
        return frame[:side, :side]
