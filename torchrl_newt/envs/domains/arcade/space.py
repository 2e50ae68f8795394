"""Space games: Spaceship (side-scrolling coin run) and Rocket Collect (free-flying rocket).

Both follow Newt's definitions (nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pygame/spaceship.py`` and ``rocket_collect.py``): same constants, rules,
reward terms and order of random draws, so a seed and an action sequence give Newt's states,
observations and rewards. Two details of the reference are kept on purpose:

* Newt computes the ship's motion from the float32 action, which under NumPy's promotion rules
  keeps the ship's position and velocity in float32; the games do the same (``np.float32``).
* Newt draws part of its randomness (the coin trails' placement, the asteroid, the background
  stars) from NumPy's *global* legacy generator. The games draw those numbers from the game's
  own legacy stream instead (:attr:`ArcadeGame.legacy_rng`, seeded with the episode seed), so
  ``reset(seed=s)`` reproduces Newt's episode after ``np.random.seed(s)`` without touching the
  process-wide generator.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, rects_overlap

__all__ = ["RocketCollectGame", "SpaceshipGame"]

log = logging.getLogger(__name__)

F32 = np.float32


class SpaceshipGame(ArcadeGame):
    """Spaceship: fly through a side-scrolling star field, collect coin trails, avoid an asteroid.

    The ship (28 x 18 px, top-left corner starting at ``(40, 112)``) gains ``0.65 * a``
    px/frame of velocity per frame, moves, then its velocity is damped by 0.95; it is clipped to
    the screen. Coins (radius 9) and the asteroid (radius 18) scroll left at 12 px/frame. A trail
    holds 2-4 coins 27 px apart, each 60 % of the time shifted 18 px up or down from the previous
    one; when every coin is taken or gone a new trail spawns 20-59 px past the right edge, and,
    if no asteroid is flying, with probability 1/2 an asteroid is placed behind it (up to 5 tries
    to find a spot not overlapping a coin).

    State vector (14): ``[x / 224, y / 224, vx / 10, vy / 10]``, 4 coins ``(x / 224, y / 224)``
    (``(-1, -1)`` once collected or absent), the asteroid ``(x / 224, y / 224)`` (or ``(-1, -1)``).
    Action (2): thrust along x and y.
    Reward: ``+1`` per coin, ``-2`` per frame overlapping the asteroid.
    Score ``clip(R / 60, 0, 1)``.

    Examples:
        >>> game = SpaceshipGame(seed=0)
        >>> game.reset(seed=0).shape
        (14,)
    """

    obs_dim = 14
    action_dim = 2
    W, H = 28, 18
    COIN_R = 9
    ROCK_R = 18
    SCROLL = 12.0
    THRUST, DAMP = 0.65, 0.95
    MAX_COINS = 4
    START_X, START_Y = 40, SCREEN // 2

    def __init__(self, spec=None, *, seed: int | None = None, **kwargs) -> None:
        super().__init__(spec, seed=seed, **kwargs)
        # as in Newt the asteroid outlives a reset (a trail only adds one when none is flying).
        # Newt's constructor also lays out an unseeded first episode whose asteroid can leak into
        # the first seeded one; a fresh game here starts without it, so that ``reset(seed=s)``
        # alone fixes the first episode.
        self.rock: list | None = None  # [x, y, active, angle, radii]
        self.hit = False

    @property
    def x(self) -> float:
        """Left edge of the ship."""
        return float(self.ship_x)

    @property
    def y(self) -> float:
        """Top edge of the ship."""
        return float(self.ship_y)

    @property
    def vx(self) -> float:
        """Horizontal velocity (px/frame)."""
        return float(self.vel_x)

    @property
    def vy(self) -> float:
        """Vertical velocity (px/frame)."""
        return float(self.vel_y)

    def rock_active(self) -> bool:
        """Whether an asteroid is on its way."""
        return self.rock is not None and self.rock[2]

    def _reset(self) -> None:
        self.ship_x, self.ship_y = F32(self.START_X), F32(self.START_Y)
        self.vel_x = self.vel_y = F32(0.0)
        self._spawn_trail()
        self.stars = [[self.rng.uniform(0, SCREEN), self.rng.uniform(0, SCREEN)] for _ in range(50)]

    def _spawn_trail(self) -> None:
        lg = self.legacy_rng
        n = self.randint(2, self.MAX_COINS + 1)
        start_x = SCREEN + int(lg.randint(20, 60))
        start_y = int(lg.randint(30, SCREEN - 30))
        x, y = start_x, start_y
        self.coins: list[list] = []
        for _ in range(n):
            self.coins.append([x, y, True])
            x += 3 * self.COIN_R
            if lg.rand() < 0.6:
                y += 2 * self.COIN_R * int(lg.choice([-1, 1]))
            y = min(max(y, 20), SCREEN - 20)
        if self.rock_active() or lg.rand() >= 0.5:
            return
        r, cr = self.ROCK_R, self.COIN_R
        for _ in range(5):
            ax = start_x + (n + 2) * 3 * cr + self.rng.uniform(-30, 30)
            ay = int(lg.randint(40, SCREEN - 40))
            # Newt tests the overlap with integer (truncated) rectangles
            if any(rects_overlap(int(ax - r), ay - r, 2 * r, 2 * r, cx - cr, cy - cr, 2 * cr, 2 * cr) for cx, cy, _ in self.coins):
                continue
            radii = r * (0.7 + 0.6 * lg.rand(10))
            self.rock = [ax, ay, True, 0.0, radii.tolist()]
            return

    def _step(self, action: list[float]) -> float:
        a0, a1 = F32(action[0]), F32(action[1])
        self.vel_x = self.vel_x + a0 * F32(self.THRUST)
        self.vel_y = self.vel_y + a1 * F32(self.THRUST)
        self.ship_x = self.ship_x + self.vel_x
        self.ship_y = self.ship_y + self.vel_y
        self.vel_x = self.vel_x * F32(self.DAMP)
        self.vel_y = self.vel_y * F32(self.DAMP)
        self.ship_x = min(max(self.ship_x, F32(0)), F32(SCREEN - self.W))
        self.ship_y = min(max(self.ship_y, F32(0)), F32(SCREEN - self.H))
        sx, sy = int(self.ship_x), int(self.ship_y)
        reward = 0.0
        if self.rock_active():
            rock, r = self.rock, self.ROCK_R
            rock[0] -= self.SCROLL
            rock[3] += 0.02
            if rock[0] < -r:
                rock[2] = False
            # the overlap is still tested on the frame the asteroid leaves
            self.hit = rects_overlap(sx, sy, self.W, self.H, int(rock[0] - r), int(rock[1] - r), 2 * r, 2 * r)
            if self.hit:
                reward -= 2.0
        for c in self.coins:
            c[0] -= self.SCROLL
        for s in self.stars:
            s[0] -= 0.5 * self.SCROLL
            if s[0] < 0:
                s[0] = SCREEN
                s[1] = self.rng.uniform(0, SCREEN)
        if all(not c[2] or c[0] < -self.COIN_R for c in self.coins):
            self._spawn_trail()
        cr = self.COIN_R
        for c in self.coins:
            if c[2] and rects_overlap(sx, sy, self.W, self.H, int(c[0] - cr), int(c[1] - cr), 2 * cr, 2 * cr):
                c[2] = False
                reward += 1.0
        return reward

    def _obs(self) -> list[float]:
        out = [self.ship_x / SCREEN, self.ship_y / SCREEN, self.vel_x / 10.0, self.vel_y / 10.0]
        for i in range(self.MAX_COINS):
            if i < len(self.coins) and self.coins[i][2]:
                out += [self.coins[i][0] / SCREEN, self.coins[i][1] / SCREEN]
            else:
                out += [-1.0, -1.0]
        out += [self.rock[0] / SCREEN, self.rock[1] / SCREEN] if self.rock_active() else [-1.0, -1.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        for sx, sy in self.stars:
            pg.draw.circle(surf, (255, 255, 255), (int(sx), int(sy)), 1)
        x, y = int(self.ship_x), int(self.ship_y)
        speed = math.hypot(self.vx, self.vy)
        if speed > 0.1:
            length = min(self.W, 0.5 * self.W + 4.0 * speed)
            half = int(4 + 0.3 * speed)
            cy = y + self.H // 2
            for color, f in (((255, 255, 120), 1.0), ((255, 200, 60), 0.7), ((255, 140, 0), 0.5)):
                pg.draw.polygon(surf, color, [(x - length * f, cy), (x, cy - int(half * f)), (x, cy + int(half * f))])
        pg.draw.polygon(surf, (180, 180, 255), [(x, y), (x, y + self.H), (x + self.W, y + self.H // 2)])
        pg.draw.line(surf, (100, 100, 200), (x + 4, y - 2), (x + 4, y + self.H + 2), 2)
        for cx, cy, alive in self.coins:
            if alive:
                pg.draw.circle(surf, (255, 215, 0), (int(cx), int(cy)), self.COIN_R)
                pg.draw.circle(surf, (200, 160, 0), (int(cx), int(cy)), self.COIN_R, 2)
        if self.rock_active():
            rx, ry, _, ang, radii = self.rock
            pts = [(rx + math.cos(2 * math.pi * k / 10 + ang) * rad, ry + math.sin(2 * math.pi * k / 10 + ang) * rad)
                   for k, rad in enumerate(radii)]
            pg.draw.polygon(surf, (100, 100, 100), pts)
            pg.draw.polygon(surf, (60, 60, 60), pts, 2)
        if self.hit:
            pg.draw.rect(surf, (220, 60, 60), (0, 0, SCREEN, SCREEN), 4)


class RocketCollectGame(ArcadeGame):
    """Rocket Collect: a free-flying rocket collects coins while asteroids drift and bounce around.

    The rocket (radius 10, starting at ``(112, 184)`` at rest) gains ``0.75 * a`` px/frame of
    velocity per frame along x and y, then its velocity is damped by 0.98 and capped at
    4 px/frame; it stays 5 px inside the screen. One coin (radius 9) sits at an integer position
    in ``[30, 193] x [40, 111]`` and respawns when touched. Asteroids (radius 14) enter from a
    random side aimed at the central half of the screen at 1-2.2 px/frame and bounce off the
    walls once fully inside; there is 1 at first, 2 from frame 150 and 3 from frame 300.

    State vector (21): ``[x / 224, y / 224, vx / 4, vy / 4, coin x / 224, coin y / 224,
    (coin - rocket) x / 224, (coin - rocket) y / 224, hit flag]`` then 3 asteroids
    ``(x / 224, y / 224, vx / 4, vy / 4)`` (zeros when not yet spawned).
    Action (2): thrust along x and y.
    Reward: ``0.002 * (1 - distance to the coin / screen diagonal)`` per frame, ``+1`` per coin
    and ``-0.2`` per asteroid touching the rocket each frame (the hit flag then stays up for
    5 more frames). Score ``clip(R / 25, 0, 1)``.

    Examples:
        >>> game = RocketCollectGame(seed=0)
        >>> game.reset(seed=0).shape
        (21,)
    """

    obs_dim = 21
    action_dim = 2
    R, COIN_R, ROCK_R = 10, 9, 14
    THRUST, DAMP, VMAX = 0.75, 0.98, 4.0
    MARGIN = 5
    MAX_ROCKS = 3

    @property
    def x(self) -> float:
        """Rocket centre x."""
        return float(self.agent_x)

    @property
    def y(self) -> float:
        """Rocket centre y."""
        return float(self.agent_y)

    @property
    def vx(self) -> float:
        """Rocket velocity x (px/frame)."""
        return float(self.agent_vx)

    @property
    def vy(self) -> float:
        """Rocket velocity y (px/frame)."""
        return float(self.agent_vy)

    def _reset(self) -> None:
        self.agent_x, self.agent_y = F32(SCREEN / 2), F32(SCREEN - 40)
        self.agent_vx = self.agent_vy = F32(0.0)
        self._spawn_coin()
        self.rocks: list[dict] = []
        self._add_rocks(0)
        self.hit_timer = 0
        lg = self.legacy_rng
        self.stars = [(int(lg.randint(0, SCREEN)), int(lg.randint(0, SCREEN)), int(lg.randint(1, 3))) for _ in range(40)]

    @property
    def cx(self) -> int:
        """Coin centre x."""
        return self.coin_x

    @property
    def cy(self) -> int:
        """Coin centre y."""
        return self.coin_y

    def _spawn_coin(self) -> None:
        self.coin_x = self.randint(30, SCREEN - 30)
        self.coin_y = self.randint(40, SCREEN // 2)

    def _new_rock(self) -> dict:
        off = 2 * self.ROCK_R
        side = self.randint(0, 4)
        if side == 0:
            x, y = self.randint(20, SCREEN - 20), -off
        elif side == 1:
            x, y = self.randint(20, SCREEN - 20), SCREEN + off
        elif side == 2:
            x, y = -off, self.randint(20, SCREEN - 20)
        else:
            x, y = SCREEN + off, self.randint(20, SCREEN - 20)
        tx = self.rng.uniform(0.25 * SCREEN, 0.75 * SCREEN)
        ty = self.rng.uniform(0.25 * SCREEN, 0.75 * SCREEN)
        mag = math.hypot(tx - x, ty - y) + 1e-6
        speed = self.rng.uniform(1.0, 2.2)
        shape = []
        for k in range(8):
            ang = 2 * math.pi * k / 8
            rx = self.ROCK_R + self.randint(-3, 4)
            ry = self.ROCK_R + self.randint(-3, 4)
            shape.append((rx * math.cos(ang), ry * math.sin(ang)))
        spin = self.rng.uniform(-0.02, 0.02)
        return {"x": x, "y": y, "vx": speed * (tx - x) / mag, "vy": speed * (ty - y) / mag,
                "angle": 0.0, "spin": spin, "shape": shape, "entered": False}

    def _add_rocks(self, frame: int) -> None:
        target = min(1 + frame // 150, self.MAX_ROCKS)
        while len(self.rocks) < target:
            self.rocks.append(self._new_rock())

    def _step(self, action: list[float]) -> float:
        a0, a1 = F32(action[0]), F32(action[1])
        self.agent_vx = (self.agent_vx + a0 * F32(self.THRUST)) * F32(self.DAMP)
        self.agent_vy = (self.agent_vy + a1 * F32(self.THRUST)) * F32(self.DAMP)
        speed = np.hypot(self.agent_vx, self.agent_vy)
        if speed > self.VMAX:
            self.agent_vx = self.agent_vx * (F32(self.VMAX) / speed)
            self.agent_vy = self.agent_vy * (F32(self.VMAX) / speed)
        lo, hi = F32(self.MARGIN + self.R), F32(SCREEN - self.MARGIN - self.R)
        self.agent_x = min(max(self.agent_x + self.agent_vx, lo), hi)
        self.agent_y = min(max(self.agent_y + self.agent_vy, lo), hi)
        r = self.ROCK_R
        for o in self.rocks:
            o["x"] += o["vx"]
            o["y"] += o["vy"]
            o["angle"] += o["spin"]
            if not o["entered"] and r <= o["x"] <= SCREEN - r and r <= o["y"] <= SCREEN - r:
                o["entered"] = True
            if o["entered"]:
                if o["x"] < r:
                    o["x"], o["vx"] = r, -o["vx"]
                elif o["x"] > SCREEN - r:
                    o["x"], o["vx"] = SCREEN - r, -o["vx"]
                if o["y"] < r:
                    o["y"], o["vy"] = r, -o["vy"]
                elif o["y"] > SCREEN - r:
                    o["y"], o["vy"] = SCREEN - r, -o["vy"]
        ax, ay = float(self.agent_x), float(self.agent_y)
        dist = math.hypot(ax - self.coin_x, ay - self.coin_y)
        reward = 0.002 * (1.0 - min(max(dist / math.hypot(SCREEN, SCREEN), 0.0), 1.0))
        if dist < self.R + self.COIN_R:
            reward += 1.0
            self._spawn_coin()
        for o in self.rocks:
            if math.hypot(ax - o["x"], ay - o["y"]) < self.R + r:
                reward -= 0.2
                self.hit_timer = 6
        self._add_rocks(self.t + 1)  # Newt counts this frame before topping the asteroids up
        if self.hit_timer > 0:
            self.hit_timer -= 1
        return reward

    def _obs(self) -> list[float]:
        out = [self.agent_x / SCREEN, self.agent_y / SCREEN, self.agent_vx / self.VMAX, self.agent_vy / self.VMAX,
               self.coin_x / SCREEN, self.coin_y / SCREEN, (self.coin_x - float(self.agent_x)) / SCREEN,
               (self.coin_y - float(self.agent_y)) / SCREEN, 1.0 if self.hit_timer > 0 else 0.0]
        for i in range(self.MAX_ROCKS):
            if i < len(self.rocks):
                o = self.rocks[i]
                out += [o["x"] / SCREEN, o["y"] / SCREEN, o["vx"] / self.VMAX, o["vy"] / self.VMAX]
            else:
                out += [0.0, 0.0, 0.0, 0.0]
        return out

    def _draw(self, surf, pg) -> None:
        for yy in range(SCREEN):
            c = int(20 + 40 * yy / SCREEN)
            surf.fill((c // 2, 0, c), (0, yy, SCREEN, 1))
        for sx, sy, sr in self.stars:
            pg.draw.circle(surf, (255, 255, 255), (sx, sy), sr)
        x, y = int(self.agent_x), int(self.agent_y)
        thrust = math.hypot(self.vx, self.vy)
        if thrust > 0.05:
            pg.draw.polygon(surf, (255, 175, 80), [(x - 3, y + 10), (x + 3, y + 10), (x, y + 10 + int(3 + 4 * thrust))])
        pg.draw.polygon(surf, (180, 180, 255), [(x, y - 14), (x - 8, y + 10), (x + 8, y + 10)])
        pg.draw.polygon(surf, (150, 150, 200), [(x - 8, y + 10), (x - 12, y + 16), (x - 4, y + 10)])
        pg.draw.polygon(surf, (150, 150, 200), [(x + 8, y + 10), (x + 12, y + 16), (x + 4, y + 10)])
        for o in self.rocks:
            ca, sa = math.cos(o["angle"]), math.sin(o["angle"])
            pg.draw.polygon(surf, (120, 120, 120), [(o["x"] + px * ca - py * sa, o["y"] + px * sa + py * ca) for px, py in o["shape"]])
        pg.draw.circle(surf, (255, 215, 0), (self.coin_x, self.coin_y), self.COIN_R)
        pg.draw.circle(surf, (200, 120, 0), (self.coin_x, self.coin_y), self.COIN_R, 2)
        if self.hit_timer > 0:
            pg.draw.rect(surf, (255, 0, 0), (0, 0, SCREEN, SCREEN), 4)
