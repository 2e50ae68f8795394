"""Space games: Spaceship (side-scrolling coin run) and Rocket Collect (thrust-controlled rocket)."""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import (
    SCREEN,
    ArcadeGame,
    clip,
    rects_overlap,
)

__all__ = ["RocketCollectGame", "SpaceshipGame"]


class SpaceshipGame(ArcadeGame):
    """Spaceship: fly through a side-scrolling star field, collect coin trails, avoid asteroids.

    The ship accelerates with the action (``0.6 px/frame²`` per unit, velocity damped by 0.92
    per frame, so the top speed is about 7 px/frame) and stays on screen; the world scrolls left
    at 10 px/frame. Trails of 2-4 coins arrive one after another, sometimes followed by an asteroid.

    State vector (14): ``[x / 224, y / 224, vx / 10, vy / 10]``, 4 coins ``(x / 224, y / 224)``
    (``(-1, -1)`` once collected or absent), the asteroid ``(x / 224, y / 224)`` (or ``(-1, -1)``).
    Action (2): thrust along x and y.
    Reward: ``+1`` per coin, ``-1`` per frame spent overlapping the asteroid.
    Score ``clip(R, 0, 60) / 60``.

    Examples:
        >>> game = SpaceshipGame(seed=0)
        >>> game.reset(seed=0).shape
        (14,)
    """

    obs_dim = 14
    action_dim = 2
    W, H = 26.0, 16.0
    COIN_R = 8.0
    ROCK_R = 16.0
    SCROLL = 10.0
    THRUST, DAMP = 0.6, 0.92

    def _reset(self) -> None:
        self.x, self.y = 30.0, SCREEN / 2 - self.H / 2
        self.vx = self.vy = 0.0
        self.rock = None  # [x, y, angle]
        self.hit = False
        self._spawn_trail()
        self.stars = [[self.uniform(0, SCREEN), self.uniform(0, SCREEN)] for _ in range(40)]

    def _spawn_trail(self) -> None:
        n = self.randint(2, 5)
        x = SCREEN + self.uniform(20.0, 60.0)
        y = self.uniform(30.0, SCREEN - 30.0)
        self.coins = []
        for _ in range(n):
            self.coins.append([x, y, True])
            x += 26.0
            if self.rng.random() < 0.6:
                y = clip(y + (18.0 if self.rng.random() < 0.5 else -18.0), 20.0, SCREEN - 20.0)
        if self.rock is None and self.rng.random() < 0.6:
            ry = self.uniform(30.0, SCREEN - 30.0)
            if all(abs(ry - c[1]) > self.ROCK_R + self.COIN_R + 4 for c in self.coins[-2:]):
                self.rock = [x + self.uniform(30.0, 80.0), ry, 0.0]

    def _step(self, action: list[float]) -> float:
        self.vx = (self.vx + self.THRUST * action[0]) * self.DAMP
        self.vy = (self.vy + self.THRUST * action[1]) * self.DAMP
        self.x = clip(self.x + self.vx, 0.0, SCREEN - self.W)
        self.y = clip(self.y + self.vy, 0.0, SCREEN - self.H)
        reward = 0.0
        for c in self.coins:
            c[0] -= self.SCROLL
            if c[2] and rects_overlap(self.x, self.y, self.W, self.H, c[0] - self.COIN_R, c[1] - self.COIN_R, 2 * self.COIN_R, 2 * self.COIN_R):
                c[2] = False
                reward += 1.0
        self.hit = False
        if self.rock is not None:
            self.rock[0] -= self.SCROLL
            self.rock[2] += 0.05
            r = self.ROCK_R
            if rects_overlap(self.x, self.y, self.W, self.H, self.rock[0] - r, self.rock[1] - r, 2 * r, 2 * r):
                self.hit = True
                reward -= 1.0
            if self.rock[0] < -r:
                self.rock = None
        if all(not c[2] or c[0] < -self.COIN_R for c in self.coins):
            self._spawn_trail()
        for s in self.stars:
            s[0] -= 0.5 * self.SCROLL
            if s[0] < 0:
                s[0] += SCREEN
        return reward

    def _obs(self) -> list[float]:
        out = [self.x / SCREEN, self.y / SCREEN, self.vx / 10.0, self.vy / 10.0]
        for i in range(4):
            if i < len(self.coins) and self.coins[i][2]:
                out += [self.coins[i][0] / SCREEN, self.coins[i][1] / SCREEN]
            else:
                out += [-1.0, -1.0]
        out += [self.rock[0] / SCREEN, self.rock[1] / SCREEN] if self.rock is not None else [-1.0, -1.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((5, 5, 20))
        for sx, sy in self.stars:
            surf.set_at((int(sx), int(sy)), (220, 220, 255))
        for cx, cy, alive in self.coins:
            if alive and -10 < cx < SCREEN + 10:
                pg.draw.circle(surf, (255, 215, 0), (int(cx), int(cy)), int(self.COIN_R))
                pg.draw.circle(surf, (190, 140, 0), (int(cx), int(cy)), int(self.COIN_R), 2)
        if self.rock is not None:
            x, y, ang = self.rock
            pts = [(x + self.ROCK_R * (0.8 + 0.25 * math.sin(3 * k)) * math.cos(ang + k * 0.628),
                    y + self.ROCK_R * (0.8 + 0.25 * math.sin(3 * k)) * math.sin(ang + k * 0.628)) for k in range(10)]
            pg.draw.polygon(surf, (120, 110, 100), pts)
        x, y = int(self.x), int(self.y)
        speed = math.hypot(self.vx, self.vy)
        if speed > 0.3:
            pg.draw.polygon(surf, (255, 160, 40), [(x, y + 4), (x, y + 12), (x - 6 - int(2 * speed), y + 8)])
        pg.draw.polygon(surf, (180, 180, 255), [(x, y), (x, y + int(self.H)), (x + int(self.W), y + int(self.H) // 2)])
        pg.draw.line(surf, (100, 100, 200), (x + 4, y - 2), (x + 4, y + int(self.H) + 2), 2)
        if self.hit:
            pg.draw.rect(surf, (220, 60, 60), (0, 0, SCREEN, SCREEN), 4)


class RocketCollectGame(ArcadeGame):
    """Rocket Collect: an upright rocket under gravity collects coins while drifting asteroids roam.

    The main engine pushes up with ``0.6 * (a0 + 1) / 2`` px/frame² against gravity
    ``0.3 px/frame²`` (half throttle, ``a0 = 0``, hovers); the side thruster pushes sideways with
    ``0.45 * a1``. Speed is damped (x0.99) and capped at 6 px/frame; the rocket stays inside the
    screen. Coins appear one at a time in the upper part of the screen; 1 asteroid roams at first,
    2 after 150 frames and 3 after 300, bouncing off the walls.

    State vector (21): ``[x / 224, y / 224, vx / 6, vy / 6, coin x / 224, coin y / 224,
    (coin - rocket) x / 224, (coin - rocket) y / 224, hit flag]`` then 3 asteroids
    ``(x / 224, y / 224, vx / 6, vy / 6)`` (zeros when not yet spawned).
    Action (2): ``[main engine, side thruster]``.
    Reward: ``+1`` per coin, ``-1`` per asteroid hit (the rocket is knocked back and shielded for
    10 frames) and a proximity bonus of at most ``0.002`` per frame. Score ``clip(R, 0, 25) / 25``.

    Examples:
        >>> game = RocketCollectGame(seed=0)
        >>> game.reset(seed=0).shape
        (21,)
    """

    obs_dim = 21
    action_dim = 2
    R, COIN_R, ROCK_R = 10.0, 9.0, 14.0
    GRAVITY, MAIN, SIDE = 0.3, 0.6, 0.45
    VMAX = 6.0
    MAX_ROCKS = 3

    def _reset(self) -> None:
        self.x, self.y = SCREEN / 2, SCREEN - 40.0
        self.vx = self.vy = 0.0
        self.shield = 0
        self.flame = 0.0
        self._spawn_coin()
        self.rocks: list[list[float]] = []
        self._add_rocks(0)
        self.stars = [(self.uniform(0, SCREEN), self.uniform(0, SCREEN)) for _ in range(30)]

    def _spawn_coin(self) -> None:
        self.cx, self.cy = self.uniform(30.0, SCREEN - 30.0), self.uniform(30.0, SCREEN * 0.6)

    def _add_rocks(self, frame: int) -> None:
        target = min(1 + frame // 150, self.MAX_ROCKS)
        while len(self.rocks) < target:
            side = self.randint(0, 4)
            along = self.uniform(20.0, SCREEN - 20.0)
            off = 2 * self.ROCK_R
            x, y = ((along, -off), (along, SCREEN + off), (-off, along), (SCREEN + off, along))[side]
            tx, ty = self.uniform(0.25 * SCREEN, 0.75 * SCREEN), self.uniform(0.25 * SCREEN, 0.75 * SCREEN)
            d = math.hypot(tx - x, ty - y) + 1e-6
            sp = self.uniform(1.0, 2.2)
            self.rocks.append([x, y, sp * (tx - x) / d, sp * (ty - y) / d, 0.0])  # x, y, vx, vy, entered

    def _step(self, action: list[float]) -> float:
        up = self.MAIN * 0.5 * (action[0] + 1.0)
        self.flame = up / self.MAIN
        self.vx = (self.vx + self.SIDE * action[1]) * 0.99
        self.vy = (self.vy + self.GRAVITY - up) * 0.99
        sp = math.hypot(self.vx, self.vy)
        if sp > self.VMAX:
            self.vx, self.vy = self.vx * self.VMAX / sp, self.vy * self.VMAX / sp
        lo, hi = 5.0 + self.R, SCREEN - 5.0 - self.R
        self.x, self.y = self.x + self.vx, self.y + self.vy
        if not lo <= self.x <= hi:
            self.x, self.vx = clip(self.x, lo, hi), 0.0
        if not lo <= self.y <= hi:
            self.y, self.vy = clip(self.y, lo, hi), 0.0
        rr = self.ROCK_R
        for o in self.rocks:
            o[0] += o[2]
            o[1] += o[3]
            if not o[4] and rr <= o[0] <= SCREEN - rr and rr <= o[1] <= SCREEN - rr:
                o[4] = 1.0
            if o[4]:
                if not rr <= o[0] <= SCREEN - rr:
                    o[0], o[2] = clip(o[0], rr, SCREEN - rr), -o[2]
                if not rr <= o[1] <= SCREEN - rr:
                    o[1], o[3] = clip(o[1], rr, SCREEN - rr), -o[3]
        d = math.hypot(self.x - self.cx, self.y - self.cy)
        reward = 0.002 * (1.0 - min(1.0, d / (SCREEN * math.sqrt(2))))
        if d < self.R + self.COIN_R:
            reward += 1.0
            self._spawn_coin()
        if self.shield > 0:
            self.shield -= 1
        else:
            for o in self.rocks:
                dx, dy = self.x - o[0], self.y - o[1]
                dist = math.hypot(dx, dy)
                if dist < self.R + rr:
                    reward -= 1.0
                    self.shield = 10
                    dist = max(dist, 1e-6)
                    self.vx, self.vy = 3.0 * dx / dist, 3.0 * dy / dist
                    break
        self._add_rocks(self.t + 1)
        return reward

    def _obs(self) -> list[float]:
        out = [self.x / SCREEN, self.y / SCREEN, self.vx / self.VMAX, self.vy / self.VMAX, self.cx / SCREEN, self.cy / SCREEN,
               (self.cx - self.x) / SCREEN, (self.cy - self.y) / SCREEN, 1.0 if self.shield > 0 else 0.0]
        for i in range(self.MAX_ROCKS):
            if i < len(self.rocks):
                o = self.rocks[i]
                out += [o[0] / SCREEN, o[1] / SCREEN, o[2] / self.VMAX, o[3] / self.VMAX]
            else:
                out += [0.0, 0.0, 0.0, 0.0]
        return out

    def _draw(self, surf, pg) -> None:
        for yy in range(0, SCREEN, 8):
            c = int(20 + 40 * yy / SCREEN)
            pg.draw.rect(surf, (c // 2, 0, c), (0, yy, SCREEN, 8))
        for sx, sy in self.stars:
            surf.set_at((int(sx), int(sy)), (255, 255, 255))
        pg.draw.circle(surf, (255, 215, 0), (int(self.cx), int(self.cy)), int(self.COIN_R))
        pg.draw.circle(surf, (200, 120, 0), (int(self.cx), int(self.cy)), int(self.COIN_R), 2)
        for o in self.rocks:
            pg.draw.circle(surf, (120, 120, 120), (int(o[0]), int(o[1])), int(self.ROCK_R))
            pg.draw.circle(surf, (80, 80, 80), (int(o[0] - 4), int(o[1] - 3)), 4)
        x, y = int(self.x), int(self.y)
        if self.flame > 0.05:
            pg.draw.polygon(surf, (255, 170, 60), [(x - 4, y + 10), (x + 4, y + 10), (x, y + 10 + int(12 * self.flame))])
        pg.draw.polygon(surf, (190, 190, 255), [(x, y - 14), (x - 8, y + 10), (x + 8, y + 10)])
        pg.draw.polygon(surf, (140, 140, 200), [(x - 8, y + 10), (x - 12, y + 15), (x - 4, y + 10)])
        pg.draw.polygon(surf, (140, 140, 200), [(x + 8, y + 10), (x + 12, y + 15), (x + 4, y + 10)])
        if self.shield > 0:
            pg.draw.circle(surf, (255, 80, 80), (x, y), int(self.R + 6), 2)
