"""Point Maze: steer a point mass through a 5x5 block maze to a green target (three layouts)."""

from __future__ import annotations

import math
from collections import deque

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["LAYOUTS", "PointMazeGame", "PointMazeVar1Game", "PointMazeVar2Game", "PointMazeVar3Game", "shortest_path"]

#: 5x5 layouts (1 = wall block, 0 = free), one per variant; every free cell is reachable
LAYOUTS = {
    1: ((0, 0, 0, 1, 0),
        (1, 1, 0, 1, 0),
        (0, 0, 0, 0, 0),
        (0, 1, 1, 1, 0),
        (0, 0, 0, 1, 0)),
    2: ((0, 1, 0, 0, 0),
        (0, 1, 0, 1, 0),
        (0, 0, 0, 1, 0),
        (1, 1, 0, 1, 0),
        (0, 0, 0, 0, 0)),
    3: ((0, 0, 0, 0, 0),
        (0, 1, 1, 1, 0),
        (0, 1, 0, 0, 0),
        (0, 1, 0, 1, 1),
        (0, 0, 0, 0, 0)),
}
N = 5
LO, SIZE = 20.0, 184.0
CELL = SIZE / N
_DIRS = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))  # up, right, down, left


def shortest_path(grid, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
    """Breadth-first shortest path of free cells (4-connected) from ``start`` to ``goal``.

    Returns the cells from start to goal inclusive, or ``[]`` when unreachable.

    Examples:
        >>> shortest_path(LAYOUTS[1], (0, 0), (2, 0))
        [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0)]
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

    The agent (radius 6 px) moves ``5 * a`` px/frame along each axis (collisions with the wall
    blocks and the border are resolved axis by axis). One free cell holds a "wind" that pushes
    2 px/frame in a fixed direction (shown by arrows). The target is placed 37-129 px away.

    State vector (44): ``[agent x / 224, agent y / 224, target x / 224, target y / 224,
    vx / 5, vy / 5]``, the 25 cells row by row (1 wall, 0 free, -1 the wind cell), the wind's
    direction one-hot (up, right, down, left), ``[(target - agent) x / 184, (target - agent)
    y / 184, distance / 184, at-target flag, in-wind flag, wind push x / 5, wind push y / 5]``
    and the agent's cell ``(row / 4, column / 4)``.
    Action (2): velocity along x and y.
    Reward per frame: ``1 - min(1, distance / 184)``; ``info["success"]``: the agent touches the
    target (centres within 12 px). Score: success at the episode's last frame.

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
    layout_id = 1
    R = 6.0
    SPEED, WIND = 5.0, 2.0

    def __init__(self, spec=None, *, seed: int | None = None, grid_id: int | None = None, max_episode_steps: int | None = None) -> None:
        super().__init__(spec, seed=seed)
        if grid_id is not None:
            if grid_id not in LAYOUTS:
                raise ValueError(f"unknown point-maze layout {grid_id}; have {sorted(LAYOUTS)}")
            self.layout_id = grid_id
        if max_episode_steps is not None:
            self.episode_length = int(max_episode_steps)
        self.grid = LAYOUTS[self.layout_id]

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def cell_of(x: float, y: float) -> tuple[int, int]:
        """(row, column) of the cell containing a point (clamped to the maze)."""
        return int(clip((y - LO) // CELL, 0, N - 1)), int(clip((x - LO) // CELL, 0, N - 1))

    @staticmethod
    def cell_center(rc: tuple[int, int]) -> tuple[float, float]:
        return LO + (rc[1] + 0.5) * CELL, LO + (rc[0] + 0.5) * CELL

    def blocked(self, x: float, y: float) -> bool:
        """Whether a disc of radius ``R`` at ``(x, y)`` overlaps a wall block or the border."""
        r = self.R
        if x - r < LO or x + r > LO + SIZE or y - r < LO or y + r > LO + SIZE:
            return True
        r0, c0 = self.cell_of(x - r, y - r)
        r1, c1 = self.cell_of(x + r, y + r)
        for i in range(r0, r1 + 1):
            for j in range(c0, c1 + 1):
                if self.grid[i][j]:
                    qx = clip(x, LO + j * CELL, LO + (j + 1) * CELL)
                    qy = clip(y, LO + i * CELL, LO + (i + 1) * CELL)
                    if (qx - x) ** 2 + (qy - y) ** 2 < r * r:
                        return True
        return False

    def _free_point(self, near: tuple[float, float] | None = None) -> tuple[float, float]:
        for _ in range(2000):
            x, y = self.uniform(LO + self.R + 2, LO + SIZE - self.R - 2), self.uniform(LO + self.R + 2, LO + SIZE - self.R - 2)
            if self.blocked(x, y):
                continue
            if near is not None and not 0.2 * SIZE <= math.hypot(x - near[0], y - near[1]) <= 0.7 * SIZE:
                continue
            return x, y
        return self.cell_center(next((i, j) for i in range(N) for j in range(N) if not self.grid[i][j]))  # pragma: no cover

    # ------------------------------------------------------------------ game
    def _reset(self) -> None:
        free = [(i, j) for i in range(N) for j in range(N) if not self.grid[i][j]]
        self.wind_cell = free[self.randint(0, len(free))]
        self.wind_dir = self.randint(0, 4)
        self.ax, self.ay = self._free_point()
        self.gx, self.gy = self._free_point(near=(self.ax, self.ay))
        self.vx = self.vy = 0.0

    def wind_here(self) -> tuple[float, float]:
        """The wind's push (px/frame) at the agent's position."""
        if self.cell_of(self.ax, self.ay) != self.wind_cell:
            return 0.0, 0.0
        dx, dy = _DIRS[self.wind_dir]
        return self.WIND * dx, self.WIND * dy

    def _step(self, action: list[float]) -> float:
        wx, wy = self.wind_here()
        self.vx, self.vy = self.SPEED * action[0] + wx, self.SPEED * action[1] + wy
        if not self.blocked(self.ax + self.vx, self.ay):
            self.ax += self.vx
        if not self.blocked(self.ax, self.ay + self.vy):
            self.ay += self.vy
        d = math.hypot(self.ax - self.gx, self.ay - self.gy)
        self.info["success"] = d <= 2 * self.R
        self.info["goal_distance"] = d / SIZE
        return 1.0 - min(1.0, d / SIZE)

    def _obs(self) -> list[float]:
        cells = [(-1.0 if (i, j) == self.wind_cell else float(self.grid[i][j])) for i in range(N) for j in range(N)]
        onehot = [1.0 if k == self.wind_dir else 0.0 for k in range(4)]
        dx, dy = (self.gx - self.ax) / SIZE, (self.gy - self.ay) / SIZE
        dist = math.hypot(dx, dy)
        wx, wy = self.wind_here()
        row, col = self.cell_of(self.ax, self.ay)
        return ([self.ax / SCREEN, self.ay / SCREEN, self.gx / SCREEN, self.gy / SCREEN, self.vx / self.SPEED, self.vy / self.SPEED]
                + cells + onehot
                + [dx, dy, dist, 1.0 if dist * SIZE <= 2 * self.R else 0.0, 1.0 if (wx or wy) else 0.0, wx / self.SPEED, wy / self.SPEED]
                + [row / 4.0, col / 4.0])

    def _draw(self, surf, pg) -> None:
        surf.fill((6, 8, 10))
        pg.draw.rect(surf, (26, 34, 42), (int(LO), int(LO), int(SIZE), int(SIZE)))
        for i in range(N):
            for j in range(N):
                rect = (int(LO + j * CELL), int(LO + i * CELL), int(CELL) + 1, int(CELL) + 1)
                if self.grid[i][j]:
                    pg.draw.rect(surf, (120, 125, 140), rect)
                elif (i, j) == self.wind_cell:
                    pg.draw.rect(surf, (40, 70, 100), rect)
                    cx, cy = self.cell_center((i, j))
                    dx, dy = _DIRS[self.wind_dir]
                    for k in (-1, 1):
                        bx, by = cx + k * 9 * dy, cy + k * 9 * dx
                        tip = (bx + 8 * dx, by + 8 * dy)
                        pg.draw.polygon(surf, (120, 230, 255), [tip, (bx - 6 * dx + 5 * dy, by - 6 * dy + 5 * dx), (bx - 6 * dx - 5 * dy, by - 6 * dy - 5 * dx)])
        pg.draw.rect(surf, (180, 180, 190), (int(LO), int(LO), int(SIZE), int(SIZE)), 2)
        pg.draw.circle(surf, (60, 200, 120), (int(self.gx), int(self.gy)), int(self.R) + 3)
        pg.draw.circle(surf, (255, 200, 60), (int(self.ax), int(self.ay)), int(self.R))


class PointMazeVar1Game(PointMazeGame):
    """Point Maze, layout 1 (see :class:`PointMazeGame`)."""

    layout_id = 1


class PointMazeVar2Game(PointMazeGame):
    """Point Maze, layout 2 (see :class:`PointMazeGame`)."""

    layout_id = 2


class PointMazeVar3Game(PointMazeGame):
    """Point Maze, layout 3 (see :class:`PointMazeGame`)."""

    layout_id = 3
