"""Point Maze as Newt defines it: steer a point mass through a 5x5 block maze to a green target.

Follows Newt's MiniArcade point maze (github.com/nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/pygame/point_maze.py``): its grid templates, the "wind" cell, the collision
rule (pixel-rounded wall blocks grown by the agent's radius, tested at the truncated integer
position), the observation layout and the order of random draws. Variants 1-4 use templates 1-4
as at that commit. Variants 5-8 are not defined there; they follow the later Newt code in which
they appear (three more templates and ``var8`` on template 0; seen in the ``tdmpc2/`` copy of
the fork github.com/Harshit2807161/newt-exp), which leaves templates 0-4 and variants 1-4
unchanged.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = [
    "GRID_TEMPLATES",
    "LAYOUTS",
    "PointMazeGame",
    "PointMazeVar1Game",
    "PointMazeVar2Game",
    "PointMazeVar3Game",
    "PointMazeVar4Game",
    "PointMazeVar5Game",
    "PointMazeVar6Game",
    "PointMazeVar7Game",
    "PointMazeVar8Game",
    "shortest_path",
]

#: Newt's 5x5 grid templates (1 = wall block, 0 = free), indexed by ``grid_id``
GRID_TEMPLATES: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((0, 1, 1, 0, 1),  # 0: "maze 1"
     (0, 0, 1, 0, 0),
     (1, 0, 0, 0, 1),
     (1, 1, 0, 0, 0),
     (1, 0, 0, 1, 0)),
    ((1, 0, 1, 1, 0),  # 1: "maze 2"
     (0, 0, 1, 0, 0),
     (1, 0, 0, 0, 1),
     (0, 0, 1, 0, 0),
     (0, 1, 1, 0, 1)),
    ((0, 1, 1, 0, 0),  # 2: "maze 3"
     (0, 0, 0, 0, 1),
     (0, 1, 1, 0, 0),
     (0, 0, 1, 1, 0),
     (1, 0, 0, 0, 0)),
    ((0, 1, 1, 1, 0),  # 3: U shape
     (0, 0, 1, 0, 0),
     (0, 0, 1, 0, 0),
     (1, 0, 0, 0, 1),
     (1, 1, 1, 1, 1)),
    ((1, 1, 0, 1, 1),  # 4: diamond
     (1, 0, 0, 0, 1),
     (0, 0, 0, 0, 0),
     (1, 0, 0, 0, 1),
     (1, 1, 0, 1, 1)),
    ((0, 1, 0, 1, 0),  # 5: easy
     (0, 0, 0, 0, 0),
     (1, 0, 0, 0, 1),
     (0, 0, 0, 0, 0),
     (0, 1, 0, 1, 0)),
    ((1, 0, 1, 0, 1),  # 6: grid
     (0, 0, 0, 0, 0),
     (1, 0, 1, 0, 1),
     (0, 0, 0, 0, 0),
     (1, 0, 1, 0, 1)),
    ((1, 1, 1, 0, 1),  # 7: "maze 4"
     (0, 0, 1, 0, 0),
     (1, 0, 0, 0, 1),
     (1, 0, 1, 0, 1),
     (0, 0, 0, 0, 1)),
)
#: task variant -> its grid template id
VARIANT_GRID = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 0}
#: task variant -> its 5x5 layout
LAYOUTS = {v: GRID_TEMPLATES[g] for v, g in VARIANT_GRID.items()}

N = 5
LO, SIZE = 20, 184
CELL = SIZE / N
AGENT_R = GOAL_R = 6
SPEED, WIND = 5.0, 2.0
#: the target is placed this far from the agent (pixels)
MIN_GOAL_D, MAX_GOAL_D = 0.2 * SIZE, 0.7 * SIZE
_DIRS = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))  # up, right, down, left


def _f32(v: float) -> float:
    return float(np.float32(v))


def cell_rect(i: int, j: int) -> tuple[int, int, int, int]:
    """Pixel rectangle ``(x, y, w, h)`` of grid cell (row ``i``, column ``j``), rounded as Newt does.

    Examples:
        >>> cell_rect(0, 0), cell_rect(2, 3)
        ((20, 20, 37, 37), (130, 94, 37, 37))
    """
    return round(LO + j * CELL), round(LO + i * CELL), round(CELL), round(CELL)


def _in_rect(px: int, py: int, rect: tuple[int, int, int, int]) -> bool:
    x, y, w, h = rect
    return x <= px < x + w and y <= py < y + h


def shortest_path(grid, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
    """Breadth-first shortest path of free cells (4-connected) from ``start`` to ``goal``.

    Returns the cells from start to goal inclusive, or ``[]`` when unreachable.

    Examples:
        >>> shortest_path(LAYOUTS[1], (1, 0), (0, 4))
        [(1, 0), (1, 1), (2, 1), (2, 2), (2, 3), (1, 3), (1, 4), (0, 4)]
    """
    prev = {start: None}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        if cur == goal:
            path = []
            while cur is not None:
                path.append(cur)
                cur = prev[cur]
            return path[::-1]
        r, c = cur
        for nr, nc in ((r - 1, c), (r, c + 1), (r + 1, c), (r, c - 1)):
            if 0 <= nr < N and 0 <= nc < N and not grid[nr][nc] and (nr, nc) not in prev:
                prev[(nr, nc)] = cur
                queue.append((nr, nc))
    return []


class PointMazeGame(ArcadeGame):
    """Point Maze: a point mass with velocity control navigates a 5x5 block maze to a target.

    The 184 px arena (from x, y = 20) is cut into 5x5 cells of 36.8 px; wall cells are blocks
    with pixel-rounded corners. The agent (radius 6 px) moves ``5 * a`` px/frame along each
    axis: first x, then y, each move clamped to the arena and cancelled if the truncated centre
    falls inside a wall block grown by 6 px. One free cell holds a "wind" that adds 2 px/frame
    in a fixed direction while the agent's centre is in it. At reset (draws in this order): the
    wind cell (uniform over the free cells, row-major) and direction, the agent's position and
    the target's (uniform over free spots, the target 36.8-128.8 px from the agent) and the
    target's glow phase.

    State vector (44): ``[agent x / 224, agent y / 224, target x / 224, target y / 224,
    vx / 5, vy / 5]``, the 25 cells row by row (1 wall, 0 free, -1 the wind cell), the wind's
    direction one-hot (up, right, down, left), ``[(target - agent) x / 184, (target - agent)
    y / 184, distance / 184, at-target flag, in-wind flag, wind push x / 5, wind push y / 5]``
    and the agent's cell ``(row / 4, column / 4)``.
    Action (2): velocity along x and y (float32, as Newt computes it).
    Reward per frame: ``1 - min(1, distance / 184)``; ``info["success"]``: the agent touches the
    target (centres within 12 px). Score: success at the episode's last frame.

    Args:
        spec: the task's spec.
        seed: seed of the generator.
        grid_id: grid template (0-7) to use instead of the variant's.
        max_episode_steps: episode length instead of the spec's.

    Examples:
        >>> game = PointMazeVar1Game(seed=0)
        >>> obs = game.reset(seed=0)
        >>> obs.shape, game.has_success
        ((44,), True)
    """

    obs_dim = 44
    action_dim = 2
    default_episode_length = 200
    has_success = True
    variant = 1
    R = AGENT_R
    SPEED, WIND = SPEED, WIND

    def __init__(self, spec=None, *, seed: int | None = None, grid_id: int | None = None, max_episode_steps: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        if grid_id is None:
            grid_id = VARIANT_GRID[self.variant]
        if not 0 <= int(grid_id) < len(GRID_TEMPLATES):
            raise ValueError(f"unknown point-maze grid template {grid_id}; have 0-{len(GRID_TEMPLATES) - 1}")
        if max_episode_steps is not None:
            self.episode_length = int(max_episode_steps)
        self.grid_id = int(grid_id)
        self.grid = GRID_TEMPLATES[self.grid_id]
        self.walls = [cell_rect(i, j) for i in range(N) for j in range(N) if self.grid[i][j] == 1]
        r = AGENT_R
        self._grown = [(x - r, y - r, w + 2 * r, h + 2 * r) for x, y, w, h in self.walls]

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def cell_of(x: float, y: float) -> tuple[int, int]:
        """(row, column) of the cell containing a point (clamped to the maze), as observed."""
        col = int(clip(math.floor(5 * ((x - LO) / SIZE)), 0, N - 1))
        row = int(clip(math.floor(5 * ((y - LO) / SIZE)), 0, N - 1))
        return row, col

    @staticmethod
    def cell_center(rc: tuple[int, int]) -> tuple[float, float]:
        """Centre (pixels) of cell ``(row, column)``."""
        x, y, w, h = cell_rect(*rc)
        return x + w / 2, y + h / 2

    def blocked(self, x: float, y: float) -> bool:
        """Whether the agent centred at ``(x, y)`` hits a wall block (Newt's integer test)."""
        px, py = int(x), int(y)
        return any(_in_rect(px, py, rect) for rect in self._grown)

    def _sample_free(self, near: tuple[float, float] | None = None) -> tuple[float, float]:
        lo, hi = LO + AGENT_R + 2, LO + SIZE - AGENT_R - 2
        for _ in range(4000):
            x, y = self.uniform(lo, hi), self.uniform(lo, hi)
            if self.blocked(x, y):
                continue
            if near is not None and not MIN_GOAL_D <= math.hypot(x - near[0], y - near[1]) <= MAX_GOAL_D:
                continue
            return x, y
        return LO + SIZE / 2, LO + SIZE / 2  # pragma: no cover - Newt's fallback

    # ------------------------------------------------------------------ game
    def _reset(self) -> None:
        free = [(i, j) for i in range(N) for j in range(N) if self.grid[i][j] == 0]
        self.wind_cell = free[int(self.rng.integers(0, len(free)))]
        self.wind_rect = cell_rect(*self.wind_cell)
        self.wind_dir = int(self.rng.integers(0, 4))
        self.ax, self.ay = self._sample_free()
        self.vx = self.vy = 0.0
        self.gx, self.gy = self._sample_free(near=(self.ax, self.ay))
        self.goal_phase = self.uniform(0.0, 2.0 * math.pi)

    def in_wind(self) -> bool:
        """Whether the agent's (truncated) centre lies in the wind cell."""
        return _in_rect(int(self.ax), int(self.ay), self.wind_rect)

    def wind_here(self) -> tuple[float, float]:
        """The wind's push (px/frame) at the agent's position."""
        if not self.in_wind():
            return 0.0, 0.0
        dx, dy = _DIRS[self.wind_dir]
        return WIND * dx, WIND * dy

    def _step(self, action: list[float]) -> float:
        # Newt computes the velocity in float32
        vx, vy = _f32(_f32(action[0]) * SPEED), _f32(_f32(action[1]) * SPEED)
        wx, wy = self.wind_here()
        if wx:
            vx = _f32(vx + wx)
        if wy:
            vy = _f32(vy + wy)
        self.vx, self.vy = vx, vy
        lo, hi = LO + AGENT_R + 1, LO + SIZE - AGENT_R - 1
        nx = clip(self.ax + vx, lo, hi)
        if not self.blocked(nx, self.ay):
            self.ax = nx
        ny = clip(self.ay + vy, lo, hi)
        if not self.blocked(self.ax, ny):
            self.ay = ny
        d = math.hypot(self.ax - self.gx, self.ay - self.gy)
        self.info["success"] = d <= AGENT_R + GOAL_R
        self.info["goal_distance"] = min(1.0, d / SIZE)
        return 1.0 - min(1.0, d / SIZE)

    def _obs(self) -> list[float]:
        wi, wj = self.wind_cell
        cells = [(-1.0 if (i == wi and j == wj) else float(self.grid[i][j])) for i in range(N) for j in range(N)]
        onehot = [1.0 if k == self.wind_dir else 0.0 for k in range(4)]
        dx, dy = (self.gx - self.ax) / SIZE, (self.gy - self.ay) / SIZE
        at_goal = math.hypot(self.ax - self.gx, self.ay - self.gy) <= AGENT_R + GOAL_R
        wx, wy = self.wind_here()
        row, col = self.cell_of(self.ax, self.ay)
        return ([self.ax / SCREEN, self.ay / SCREEN, self.gx / SCREEN, self.gy / SCREEN, self.vx / SPEED, self.vy / SPEED]
                + cells + onehot
                + [dx, dy, math.hypot(dx, dy), 1.0 if at_goal else 0.0, 1.0 if (wx or wy) else 0.0, wx / SPEED, wy / SPEED]
                + [row / 4.0, col / 4.0])

    def _draw(self, surf, pg) -> None:
        surf.fill((6, 8, 10))
        pg.draw.rect(surf, (26, 34, 42), (LO, LO, SIZE, SIZE))
        pg.draw.rect(surf, (180, 180, 190), (LO, LO, SIZE, SIZE), 2)
        x0, y0, w, h = self.wind_rect
        pg.draw.rect(surf, (40, 70, 100), self.wind_rect)
        cx, cy = x0 + w / 2, y0 + h / 2
        dx, dy = _DIRS[self.wind_dir]
        for k in (-1, 1):
            bx, by = cx + k * 9 * dy, cy + k * 9 * dx
            tip = (bx + 8 * dx, by + 8 * dy)
            pg.draw.polygon(surf, (120, 230, 255), [tip, (bx - 6 * dx + 5 * dy, by - 6 * dy + 5 * dx), (bx - 6 * dx - 5 * dy, by - 6 * dy - 5 * dx)])
        pg.draw.circle(surf, (60, 190, 120), (int(self.gx), int(self.gy)), GOAL_R + 6)
        pg.draw.circle(surf, (80, 220, 120), (int(self.gx), int(self.gy)), GOAL_R)
        for rect in self.walls:
            pg.draw.rect(surf, (180, 180, 190), rect, border_radius=4)
            pg.draw.rect(surf, (120, 120, 130), rect, width=1, border_radius=4)
        pg.draw.circle(surf, (255, 180, 80), (int(self.ax), int(self.ay)), AGENT_R)
        pg.draw.circle(surf, (255, 120, 0), (int(self.ax), int(self.ay)), AGENT_R, width=1)


class PointMazeVar1Game(PointMazeGame):
    """Point Maze variant 1: grid template 1 (see :class:`PointMazeGame`)."""

    variant = 1


class PointMazeVar2Game(PointMazeGame):
    """Point Maze variant 2: grid template 2 (see :class:`PointMazeGame`)."""

    variant = 2


class PointMazeVar3Game(PointMazeGame):
    """Point Maze variant 3: grid template 3, the U shape (see :class:`PointMazeGame`)."""

    variant = 3


class PointMazeVar4Game(PointMazeGame):
    """Point Maze variant 4 (held out): grid template 4, the diamond (see :class:`PointMazeGame`)."""

    variant = 4


class PointMazeVar5Game(PointMazeGame):
    """Point Maze variant 5 (held out): grid template 5, "easy" (see :class:`PointMazeGame`)."""

    variant = 5


class PointMazeVar6Game(PointMazeGame):
    """Point Maze variant 6 (held out): grid template 6, a lattice (see :class:`PointMazeGame`)."""

    variant = 6


class PointMazeVar7Game(PointMazeGame):
    """Point Maze variant 7 (held out): grid template 7 (see :class:`PointMazeGame`)."""

    variant = 7


class PointMazeVar8Game(PointMazeGame):
    """Point Maze variant 8 (held out): grid template 0 (see :class:`PointMazeGame`)."""

    variant = 8
