"""Side-scrolling runners with one jump action, as Newt defines them: Cowboy and CoinRun.

Follows Newt's MiniArcade runners (github.com/nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/pygame/cowboy.py`` and ``coinrun.py``): constants, the jump and collision
rules (pygame's integer rectangles, the runner's top truncated to an integer) and the order of
random draws, decor included, since the decor shares the generator with the game.

Both share the runner physics: the character (18x30 px) stands at ``x = 40`` while the world
scrolls left by 10 px/frame; gravity adds 1 px/frame to the vertical speed. A positive action
while on the ground sets the vertical speed to ``-12 a`` (a linear jump: a full press rises
72 px in 12 frames).

CoinRun draws its coin trails partly from NumPy's legacy global generator in Newt; here those
numbers come from :attr:`ArcadeGame.legacy_rng`, seeded with the reset seed.
"""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame

__all__ = ["CoinRunGame", "CowboyGame"]

GROUND_Y = SCREEN - 40
GRAVITY = 1.0
JUMP_SPEED = 12.0
SCROLL = 10.0
RUNNER_X, RUNNER_W, RUNNER_H = 40, 18, 30
STAND_Y = GROUND_Y - RUNNER_H
#: tolerance of the "on the ground" test that allows a jump
_GROUND_EPS = 1e-3


def rects_collide(a: tuple, b: tuple) -> bool:
    """pygame's ``Rect.colliderect`` on ``(x, y, w, h)`` tuples (touching edges do not collide).

    Examples:
        >>> rects_collide((0, 0, 10, 10), (9, 9, 5, 5)), rects_collide((0, 0, 10, 10), (10, 0, 5, 5))
        (True, False)
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return bool(aw and ah and bw and bh and ax < bx + bw and ay < by + bh and ax + aw > bx and ay + ah > by)


class _Runner(ArcadeGame):
    action_dim = 1
    scroll = SCROLL

    def _reset_runner(self) -> None:
        self.y = STAND_Y  # top of the runner's box
        self.vy = 0.0
        self.pose_timer = 0
        self.leg_pose = 0
        self.landed = True  # whether the last frame ended with a ground contact

    def on_ground(self) -> bool:
        """Whether the runner stands on the ground (and so may jump)."""
        return self.y >= STAND_Y - _GROUND_EPS

    def _jump_and_fall(self, a: float) -> bool:
        jumped = a > 0 and self.on_ground()
        if jumped:
            self.vy = -max(a, 0.0) * JUMP_SPEED
        self.vy += GRAVITY
        self.y += self.vy
        self.landed = self.y > STAND_Y
        if self.landed:
            self.y, self.vy = STAND_Y, 0.0
        return jumped

    def _animate(self) -> None:
        self.pose_timer += 1
        if self.pose_timer % 6 == 0:
            self.leg_pose = 1 - self.leg_pose

    def runner_rect(self) -> tuple[int, int, int, int]:
        """The runner's hit box ``(x, y, w, h)`` (its top truncated to an integer)."""
        return RUNNER_X, int(self.y), RUNNER_W, RUNNER_H

    def _draw_runner(self, surf, pg, body=(139, 69, 19), hat=True) -> None:
        x, y = RUNNER_X, int(self.y)
        pg.draw.rect(surf, body, (x + 6, y + 10, 6, 15))
        pg.draw.circle(surf, (222, 184, 135), (x + 9, y + 5), 5)
        if hat:
            pg.draw.line(surf, (0, 0, 0), (x, y + 1), (x + 18, y + 1), 2)
            pg.draw.polygon(surf, (0, 0, 0), [(x + 5, y - 3), (x + 13, y - 3), (x + 9, y - 8)])
        else:  # hair
            pg.draw.rect(surf, (220, 20, 60), (x + 2, y - 1, 14, 6), border_radius=3)
        spread = 2 * self.leg_pose
        pg.draw.line(surf, (0, 0, 0), (x + 6, y + 12), (x - 2 + spread, y + 18 + spread), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 12, y + 12), (x + 20 + spread, y + 18 + spread), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 6, y + 25), (x - spread, y + 35), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 12, y + 25), (x + 18 + spread, y + 35), 2)


#: cactus layouts: blocks ``(dx, width, height)`` standing on the ground; the hit box is their bounding box
_CACTI = (
    ((0, 15, 25),),
    ((0, 20, 40),),
    ((0, 15, 25), (20, 20, 40)),
    ((0, 20, 40), (25, 15, 25)),
)


class CowboyGame(_Runner):
    """Cowboy: a desert runner jumps over cacti scrolling towards him.

    One cactus group at a time (4 layouts of 15x25 and 20x40 blocks) appears at ``x = 264``; a
    new one when it has left the screen. Landing on a cactus while falling with more than half
    the body over it stands the cowboy on top. Touching it otherwise blocks him: the world
    stops scrolling until he is clear again (he must jump out).

    State vector (3): ``[(y - standing y) / 224, vertical speed / 10, cactus hit box left x
    / 224]`` (``y`` is the top of the cowboy, growing downwards).
    Action (1): jump; ``a > 0`` on the ground sets the vertical speed to ``-12 a`` px/frame.
    Reward: ``+1`` each frame the cowboy is not blocked, ``-1`` each frame he is.
    Score ``clip(R, 0, 500) / 500``.

    Examples:
        >>> game = CowboyGame(seed=0)
        >>> obs = game.reset(seed=0)
        >>> obs.shape
        (3,)
        >>> _, r, _ = game.step([0.0])
        >>> r
        1.0
    """

    obs_dim = 3

    def _reset(self) -> None:
        self._reset_runner()
        self.collided = False
        self.collision_offset = 0
        self._spawn()
        rng = self.rng
        self.pebbles = [[SCREEN + self.uniform(0, SCREEN), GROUND_Y + self.uniform(1, 4)] for _ in range(10)]
        self.dust: list[list[float]] = []
        self.sun_radius = int(rng.integers(12, 20))
        self.sun_center = (SCREEN - int(rng.integers(20, 40)), int(rng.integers(15, 35)))
        jitter = rng.integers(-10, 10, size=3)
        self.sun_color = tuple(int(min(max(base + int(j), 0), 255)) for base, j in zip((230, 212, 100), jitter))

    def _spawn(self) -> None:
        x0 = SCREEN + 40
        self.layout = _CACTI[int(self.rng.integers(0, 4))]
        self.blocks = [[x0 + dx, GROUND_Y - h, w, h] for dx, w, h in self.layout]
        left = min(b[0] for b in self.blocks)
        top = min(b[1] for b in self.blocks)
        right = max(b[0] + b[2] for b in self.blocks)
        self.hitbox = [left, top, right - left, GROUND_Y - top]

    @property
    def ox(self) -> int:
        """Left edge (px) of the cactus group's hit box."""
        return self.hitbox[0]

    def _step(self, action: list[float]) -> float:
        jumped = self._jump_and_fall(action[0])
        if jumped:
            for _ in range(5):
                self.dust.append([RUNNER_X + RUNNER_W // 2, GROUND_Y - 2, self.uniform(-1, 1), self.uniform(-2, 0), 20])
        for p in self.dust:
            p[0] += p[2]
            p[1] += p[3]
            p[3] += 0.1
            p[4] -= 1
        self.dust = [p for p in self.dust if p[4] > 0]

        hb = self.hitbox
        if rects_collide(self.runner_rect(), hb) and self.vy > 0:
            # falling onto the cactus: stand on it when mostly above it
            overlap = min(RUNNER_X + RUNNER_W, hb[0] + hb[2]) - max(RUNNER_X, hb[0])
            if overlap / RUNNER_W > 0.5 and self.y + RUNNER_H > hb[1]:
                self.y, self.vy = hb[1] - RUNNER_H, 0.0
        if rects_collide(self.runner_rect(), hb):
            if not self.collided:
                self.collided = True
                self.collision_offset = RUNNER_X + RUNNER_W - hb[0]
            hb[0] = RUNNER_X + RUNNER_W - self.collision_offset
        else:
            self.collided = False
            self.collision_offset = 0

        if not self.collided:
            step = int(self.scroll)
            hb[0] -= step
            for b in self.blocks:
                b[0] -= step
            for p in self.pebbles:
                p[0] -= self.scroll
                if p[0] < 0:
                    p[0] = SCREEN + self.uniform(0, 20)
                    p[1] = GROUND_Y + self.uniform(1, 4)
        if hb[0] + hb[2] < 0:
            self._spawn()
            self.collided = False
        if self.on_ground() and not self.collided:
            self._animate()
        return -1.0 if self.collided else 1.0

    def _obs(self) -> list[float]:
        return [(self.y - STAND_Y) / SCREEN, self.vy / 10.0, self.hitbox[0] / SCREEN]

    def _draw(self, surf, pg) -> None:
        for yy in range(0, SCREEN, 4):
            t = yy / SCREEN
            pg.draw.rect(surf, (int(150 + 60 * t), int(190 + 30 * t), int(220 + 15 * t)), (0, yy, SCREEN, 4))
        pg.draw.rect(surf, (196, 166, 135), (0, GROUND_Y, SCREEN, SCREEN - GROUND_Y))
        pg.draw.line(surf, (115, 90, 65), (0, GROUND_Y), (SCREEN, GROUND_Y), 2)
        for x, y in self.pebbles:
            pg.draw.circle(surf, (115, 90, 65), (int(x), int(y)), 1)
        self._draw_runner(surf, pg)
        for x, y, w, h in self.blocks:
            pg.draw.rect(surf, (108, 138, 72), (x, y, w, h))
            mid = y + h // 3
            pg.draw.rect(surf, (108, 138, 72), (x - 4, mid, 4, 10))
            pg.draw.rect(surf, (108, 138, 72), (x + w, mid - 5, 4, 10))
        for x, y, _, _, _ in self.dust:
            pg.draw.circle(surf, (150, 120, 100), (int(x), int(y)), 2)
        pg.draw.circle(surf, self.sun_color, self.sun_center, self.sun_radius)
        if self.collided:
            pg.draw.rect(surf, (220, 60, 60), (0, 0, SCREEN, SCREEN), 4)


COIN_R = 9
MAX_COINS = 5
#: lowest and highest coin centre (px); coins sit on rows 18 px apart
COIN_LOW_Y = GROUND_Y - COIN_R - 2
COIN_HIGH_Y = COIN_LOW_Y - 2 * COIN_R * 5


class CoinRunGame(_Runner):
    """CoinRun: a runner jumps to collect trails of coins floating at different heights.

    A trail holds 2-5 coins 27 px apart, starting 20-59 px beyond the right edge, 1-4 rows of
    18 px above the lowest row (centre y = 173); each next coin moves a row up or down with
    probability 0.6 (kept within 5 rows). A new trail appears once every coin of the current
    one is collected or has scrolled past.

    State vector (12): ``[(y - standing y) / 224, vertical speed / 10]`` then, for the 5 coin
    slots of the trail, ``(x / 224, y / 224)`` (``(-1, -1)`` once collected or absent).
    Action (1): jump; ``a > 0`` on the ground sets the vertical speed to ``-12 a`` px/frame.
    Reward: ``+1`` per coin touched. Score ``clip(R, 0, 50) / 50``.

    Examples:
        >>> game = CoinRunGame(seed=0)
        >>> game.reset(seed=3).shape
        (12,)
    """

    obs_dim = 2 + 2 * MAX_COINS

    def _reset(self) -> None:
        self._reset_runner()
        self._spawn_trail()
        u, rng = self.uniform, self.rng
        self.pebbles = [[SCREEN * u(-0.1, 1.0), GROUND_Y + u(1, 4)] for _ in range(10)]
        self.clouds = []
        for i in range(7):
            x = u(0, SCREEN) if i < 4 else u(-0.3 * SCREEN, 1.3 * SCREEN)
            self.clouds.append([x, u(15, GROUND_Y * 0.45), u(16, 26), self.scroll * u(0.18, 0.42)])
        self.grass = []
        for i in range(8):
            x = u(0, SCREEN) if i < 5 else u(-0.1 * SCREEN, 1.3 * SCREEN)
            self.grass.append([x, GROUND_Y + u(-2.0, 3.0), u(5.0, 10.0), u(2.0, 4.0), int(rng.random() < 0.35)])
        self.flowers = []
        for i in range(4):
            x = u(0, SCREEN) if i < 2 else u(-0.1 * SCREEN, 1.2 * SCREEN)
            head_y = GROUND_Y - u(1.0, 6.0) + u(-2.0, 2.0)
            color = int(rng.integers(0, 4))
            self.flowers.append([x, head_y, color, u(2.0, 3.2), int(rng.random() < 0.3)])
        self.sparkles: list[list[float]] = []

    def _spawn_trail(self) -> None:
        n = int(self.rng.integers(2, MAX_COINS + 1))
        legacy = self.legacy_rng
        x = SCREEN + int(legacy.randint(20, 60))
        y = COIN_LOW_Y - 2 * COIN_R * int(legacy.randint(1, 5))
        self.coins = []
        for _ in range(n):
            self.coins.append([x, y, True])
            x += 3 * COIN_R
            if legacy.rand() < 0.6:
                y += 2 * COIN_R * int(legacy.choice((-1, 1)))
            y = min(max(y, COIN_HIGH_Y), COIN_LOW_Y)

    def _step(self, action: list[float]) -> float:
        self._jump_and_fall(action[0])
        if self.landed:
            self._animate()
        u, rng = self.uniform, self.rng
        for c in self.coins:
            c[0] -= self.scroll
        for p in self.pebbles:
            p[0] -= self.scroll
            if p[0] < -5:
                p[0], p[1] = SCREEN + u(0, 20), GROUND_Y + u(1, 4)
        for g in self.grass:
            g[0] -= self.scroll
            if g[0] < -6:
                g[0] = SCREEN + u(0, 40)
                g[1], g[2], g[3] = GROUND_Y + u(-2.0, 3.0), u(5.0, 10.0), u(2.0, 4.0)
                g[4] = int(rng.random() < 0.35)
        for f in self.flowers:
            f[0] -= self.scroll
            if f[0] < -6:
                f[0] = SCREEN + u(0, 60)
                f[1] = GROUND_Y - u(1.0, 6.0) + u(-2.0, 2.0)
                f[3] = u(2.0, 3.2)
                f[4] = int(rng.random() < 0.3)
        for c in self.clouds:
            c[0] -= c[3]
            if c[0] < -c[2] * 3:
                c[0], c[1], c[2] = SCREEN + u(0, 60), u(15, GROUND_Y * 0.45), u(16, 26)
                c[3] = self.scroll * u(0.18, 0.42)
        if all(not c[2] or c[0] < -COIN_R for c in self.coins):
            self._spawn_trail()
        reward = 0.0
        me = self.runner_rect()
        for c in self.coins:
            if c[2] and rects_collide(me, (int(c[0] - COIN_R), int(c[1] - COIN_R), 2 * COIN_R, 2 * COIN_R)):
                c[2] = False
                reward += 1.0
                self._sparkle(c[0], c[1])
        for p in self.sparkles:
            p[0] += p[2]
            p[1] += p[3]
            p[3] += 0.05
            p[4] -= 1
        self.sparkles = [p for p in self.sparkles if p[4] > 0]
        if self.on_ground():
            self._animate()
        return reward

    def _sparkle(self, x: float, y: float) -> None:
        """Eight sparkles fly off a collected coin (decor, but it draws from the generator)."""
        for k in range(8):
            ang = 2 * math.pi * k / 8 + self.uniform(-0.25, 0.25)
            speed = self.uniform(1.0, 2.4)
            vx = math.cos(ang) * speed
            vy = math.sin(ang) * speed - self.uniform(0.0, 0.3)
            life = int(self.rng.integers(10, 16))
            self.sparkles.append([x, y, vx, vy, life, self.uniform(1.0, 2.0)])

    def _obs(self) -> list[float]:
        out = [(self.y - STAND_Y) / SCREEN, self.vy / 10.0]
        for i in range(MAX_COINS):
            if i < len(self.coins) and self.coins[i][2]:
                out += [self.coins[i][0] / SCREEN, self.coins[i][1] / SCREEN]
            else:
                out += [-1.0, -1.0]
        return out

    def _draw(self, surf, pg) -> None:
        for yy in range(0, GROUND_Y, 4):
            t = yy / GROUND_Y
            pg.draw.rect(surf, (int(173 + 82 * t), int(216 - 34 * t), int(230 - 37 * t)), (0, yy, SCREEN, 4))
        pg.draw.rect(surf, (76, 130, 78), (0, GROUND_Y, SCREEN, SCREEN - GROUND_Y))
        pg.draw.line(surf, (51, 92, 53), (0, GROUND_Y), (SCREEN, GROUND_Y), 2)
        for x, y, base, _ in self.clouds:
            pg.draw.ellipse(surf, (255, 204, 214), (int(x), int(y), int(2 * base), int(base)))
        for x, y, h, spread, _ in self.grass:
            pg.draw.line(surf, (46, 102, 50), (int(x - spread), int(y)), (int(x + spread), int(y)), 2)
            pg.draw.line(surf, (40, 120, 42), (int(x), int(y)), (int(x), int(y - h)), 2)
        petals = ((255, 182, 193), (255, 204, 229), (255, 255, 153), (221, 160, 221))
        for x, y, color, size, _ in self.flowers:
            pg.draw.line(surf, (60, 120, 60), (int(x), int(y)), (int(x), GROUND_Y), 2)
            pg.draw.circle(surf, petals[color], (int(x), int(y)), int(max(1.0, size * 1.6)))
        for x, y in self.pebbles:
            pg.draw.circle(surf, (51, 92, 53), (int(x), int(y)), 1)
        self._draw_runner(surf, pg, body=(139, 69, 19), hat=False)
        for x, y, alive in self.coins:
            if alive and -COIN_R < x < SCREEN + COIN_R:
                pg.draw.circle(surf, (255, 215, 0), (int(x), int(y)), COIN_R)
                pg.draw.circle(surf, (200, 160, 0), (int(x), int(y)), COIN_R, 2)
        for x, y, _, _, _, size in self.sparkles:
            pg.draw.circle(surf, (255, 230, 120), (int(x), int(y)), int(max(1.0, size)))
