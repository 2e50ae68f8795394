"""Side-scrolling runners with one jump action: Cowboy (dodge cacti) and CoinRun (collect coins).

Both share the runner physics: the character stands at a fixed ``x`` while the world scrolls
left at a constant speed; a positive action on the ground launches a jump whose take-off speed
grows with the square of the action (``JUMP_SPEED * a**2``), so timid presses give low hops.
"""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, rects_overlap

__all__ = ["CoinRunGame", "CowboyGame"]

GROUND_Y = 184.0
GRAVITY = 1.5
JUMP_SPEED = 14.0
RUNNER_X, RUNNER_W, RUNNER_H = 40.0, 16.0, 30.0
STAND_Y = GROUND_Y - RUNNER_H


class _Runner(ArcadeGame):
    action_dim = 1
    scroll = 10.0

    def _reset_runner(self) -> None:
        self.y = STAND_Y  # top of the runner's box
        self.vy = 0.0
        self.supported = True
        self.anim = 0

    def _jump_and_fall(self, a: float, floor: float = STAND_Y) -> None:
        if self.supported and a > 0.0:
            self.vy = -JUMP_SPEED * a * a
            self.supported = False
        self.vy += GRAVITY
        self.y += self.vy
        if self.y >= floor:
            self.y, self.vy, self.supported = floor, 0.0, True
        else:
            self.supported = False
        self.anim += 1

    def _draw_runner(self, surf, pg, body=(139, 69, 19), hat=True) -> None:
        x, y = int(RUNNER_X), int(self.y)
        legs = (self.anim // 4) % 2 if self.supported else 2
        pg.draw.rect(surf, body, (x + 4, y + 10, 8, 12))
        pg.draw.circle(surf, (225, 185, 140), (x + 8, y + 6), 5)
        if hat:
            pg.draw.line(surf, (40, 30, 20), (x - 1, y + 1), (x + 17, y + 1), 2)
            pg.draw.rect(surf, (40, 30, 20), (x + 4, y - 5, 8, 6))
        else:  # hair
            pg.draw.rect(surf, (200, 30, 60), (x + 2, y - 1, 12, 5))
        dx = (2, 4, 1)[legs]
        pg.draw.line(surf, (0, 0, 0), (x + 6, y + 22), (x + 6 - dx, y + 30), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 10, y + 22), (x + 10 + dx, y + 30), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 4, y + 12), (x - 2, y + 18 - 4 * (legs == 2)), 2)
        pg.draw.line(surf, (0, 0, 0), (x + 12, y + 12), (x + 18, y + 18 - 4 * (legs == 2)), 2)


# cactus layouts: list of (dx, width, height) blocks; the hitbox is their bounding box
_CACTI = (
    ((0.0, 14.0, 24.0),),
    ((0.0, 18.0, 38.0),),
    ((0.0, 14.0, 24.0), (20.0, 18.0, 38.0)),
    ((0.0, 18.0, 38.0), (24.0, 14.0, 24.0)),
)


class CowboyGame(_Runner):
    """Cowboy: a desert runner jumps over cacti scrolling towards him.

    State vector (3): ``[height above ground / 224, vertical speed / 10, cactus left edge x / 224]``.
    Action (1): jump; ``a > 0`` on the ground (or on a cactus top) jumps with take-off speed
    ``14 * a**2`` px/frame (a full press clears any cactus), ``a <= 0`` keeps running.
    Reward: ``+1`` each frame the cowboy runs freely, ``-1`` each frame a cactus blocks him
    (a blocking cactus is pushed along until he jumps clear). Score ``clip(R, 0, 500) / 500``.

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
        self.blocked = False
        self._spawn(SCREEN + 40.0)
        self.sun = (SCREEN - self.uniform(20, 44), self.uniform(16, 36))

    def _spawn(self, x: float) -> None:
        self.layout = _CACTI[self.randint(0, len(_CACTI))]
        self.ox = x
        self.ow = max(dx + w for dx, w, _ in self.layout)
        self.oh = max(h for _, _, h in self.layout)

    def _step(self, action: list[float]) -> float:
        top = GROUND_Y - self.oh
        on_cactus = rects_overlap(RUNNER_X, 0, RUNNER_W, 1, self.ox, 0, self.ow, 1) and self.y + RUNNER_H <= top + 0.5
        floor = top - RUNNER_H if on_cactus else STAND_Y
        self._jump_and_fall(action[0], floor)
        if not self.blocked:
            self.ox -= self.scroll
        # land on the cactus top when falling onto it with most of the body above it
        overlap = min(RUNNER_X + RUNNER_W, self.ox + self.ow) - max(RUNNER_X, self.ox)
        if self.vy >= 0 and overlap > 0.5 * RUNNER_W and top - RUNNER_H - 1 <= self.y < top - RUNNER_H + 12 and not self.blocked:
            self.y, self.vy, self.supported = top - RUNNER_H, 0.0, True
        if rects_overlap(RUNNER_X, self.y, RUNNER_W, RUNNER_H, self.ox, top, self.ow, self.oh):
            self.blocked = True
            self.ox = RUNNER_X + RUNNER_W - 2.0  # the cactus stays pressed against the cowboy
        else:
            self.blocked = False
        if self.ox + self.ow < 0:
            self._spawn(SCREEN + self.uniform(0.0, 60.0))
        return -1.0 if self.blocked else 1.0

    def _obs(self) -> list[float]:
        return [(STAND_Y - self.y) / SCREEN, self.vy / 10.0, self.ox / SCREEN]

    def _draw(self, surf, pg) -> None:
        for yy in range(0, int(GROUND_Y), 4):
            t = yy / GROUND_Y
            pg.draw.rect(surf, (int(150 + 60 * t), int(190 + 30 * t), int(220 + 15 * t)), (0, yy, SCREEN, 4))
        pg.draw.rect(surf, (196, 166, 135), (0, int(GROUND_Y), SCREEN, SCREEN - int(GROUND_Y)))
        pg.draw.line(surf, (115, 90, 65), (0, int(GROUND_Y)), (SCREEN, int(GROUND_Y)), 2)
        pg.draw.circle(surf, (235, 212, 100), (int(self.sun[0]), int(self.sun[1])), 14)
        for dx, w, h in self.layout:
            x = int(self.ox + dx)
            pg.draw.rect(surf, (90, 140, 70), (x, int(GROUND_Y - h), int(w), int(h)))
            pg.draw.rect(surf, (90, 140, 70), (x - 4, int(GROUND_Y - 0.7 * h), 4, 8))
            pg.draw.rect(surf, (90, 140, 70), (x + int(w), int(GROUND_Y - 0.85 * h), 4, 8))
        self._draw_runner(surf, pg)
        if self.blocked:
            pg.draw.rect(surf, (220, 60, 60), (0, 0, SCREEN, SCREEN), 4)


COIN_R = 8.0
COIN_ROW_H = 18.0
MAX_COINS = 5


class CoinRunGame(_Runner):
    """CoinRun: a runner jumps to collect trails of coins floating at different heights.

    State vector (12): ``[height above ground / 224, vertical speed / 10]`` then, for the up to
    5 coins of the current trail, ``(x / 224, y / 224)`` (``(-1, -1)`` once collected or absent).
    Action (1): jump (as in Cowboy: take-off speed ``14 * a**2`` when ``a > 0`` on the ground), so
    the press sets the jump height. Coins float 3-5 rows above the ground: none can be reached
    without jumping.
    Reward: ``+1`` per coin. A new trail of 2-5 coins appears once the last one is collected or
    has scrolled past, so quick collection also brings more coins. Score ``clip(R, 0, 50) / 50``.

    Examples:
        >>> game = CoinRunGame(seed=0)
        >>> game.reset(seed=3).shape
        (12,)
    """

    obs_dim = 2 + 2 * MAX_COINS

    def _reset(self) -> None:
        self._reset_runner()
        self._spawn_trail()
        self.clouds = [(self.uniform(0, SCREEN), self.uniform(15, 80), self.uniform(14, 24)) for _ in range(5)]

    def _spawn_trail(self) -> None:
        n = self.randint(2, MAX_COINS + 1)
        x = SCREEN + self.uniform(20.0, 60.0)
        row = self.randint(3, 6)
        self.coins = []
        for _ in range(n):
            self.coins.append([x, GROUND_Y - 10.0 - COIN_ROW_H * row, True])
            x += 3.2 * COIN_R
            if self.rng.random() < 0.6:
                row = min(5, max(3, row + (1 if self.rng.random() < 0.5 else -1)))

    def _step(self, action: list[float]) -> float:
        self._jump_and_fall(action[0])
        reward = 0.0
        for c in self.coins:
            c[0] -= self.scroll
            if c[2] and rects_overlap(RUNNER_X, self.y, RUNNER_W, RUNNER_H, c[0] - COIN_R, c[1] - COIN_R, 2 * COIN_R, 2 * COIN_R):
                c[2] = False
                reward += 1.0
        if all(not c[2] or c[0] < -COIN_R for c in self.coins):
            self._spawn_trail()
        self.clouds = [((x - 2.0) % (SCREEN + 60), y, s) for x, y, s in self.clouds]
        return reward

    def _obs(self) -> list[float]:
        out = [(STAND_Y - self.y) / SCREEN, self.vy / 10.0]
        for i in range(MAX_COINS):
            if i < len(self.coins) and self.coins[i][2]:
                out += [self.coins[i][0] / SCREEN, self.coins[i][1] / SCREEN]
            else:
                out += [-1.0, -1.0]
        return out

    def _draw(self, surf, pg) -> None:
        for yy in range(0, int(GROUND_Y), 4):
            t = yy / GROUND_Y
            pg.draw.rect(surf, (int(173 + 80 * t), int(216 - 30 * t), int(230 - 35 * t)), (0, yy, SCREEN, 4))
        for x, y, s in self.clouds:
            pg.draw.ellipse(surf, (255, 230, 236), (int(x - 30), int(y), int(2 * s), int(s)))
        pg.draw.rect(surf, (90, 150, 90), (0, int(GROUND_Y), SCREEN, SCREEN - int(GROUND_Y)))
        for x, y, alive in self.coins:
            if alive and -COIN_R < x < SCREEN + COIN_R:
                pg.draw.circle(surf, (255, 215, 0), (int(x), int(y)), int(COIN_R))
                pg.draw.circle(surf, (200, 150, 0), (int(x), int(y)), int(COIN_R), 2)
        self._draw_runner(surf, pg, body=(150, 60, 120), hat=False)


def coin_jump_speed(rise: float) -> float:
    """Take-off speed (px/frame) whose apex lifts the runner by ``rise`` pixels.

    Examples:
        >>> round(coin_jump_speed(0.0), 3)
        0.0
    """
    return math.sqrt(2.0 * GRAVITY * max(0.0, rise))
