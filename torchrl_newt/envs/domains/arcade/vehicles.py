"""Vehicles moved by 2D thrust: Highway (dodge traffic) and Landing (helicopter on a moving ship)."""

from __future__ import annotations

from torchrl_newt.envs.domains.arcade._base import (
    SCREEN,
    ArcadeGame,
    clip,
    rects_overlap,
)

__all__ = ["HighwayGame", "LandingGame"]


class HighwayGame(ArcadeGame):
    """Highway: a car weaves through slower traffic on a 5-lane road seen from above.

    The agent's car accelerates with the action (``0.6 px/frame²`` per unit, velocity damped
    x0.9) and stays on the road. Other cars (blue/yellow cars, double-length green trucks) come
    from the right at 5-7 px/frame relative to the agent, two at first and up to four by the end
    of the episode. A collision removes the other car and leaves the agent dazed (velocity
    zeroed) for 15 frames.

    State vector (24): ``[x / 224, centre y / 224, vx / 10, vy / 10, dazed flag,
    gap to the next car ahead in the current lane / 224 (-1 if none), left lane clear,
    right lane clear, gap ahead in the left lane, gap ahead in the right lane,
    offset from the lane centre (-1..1), lane index / 4]`` then 4 traffic slots
    ``(x / 224, lane centre y / 224, is truck)`` (``(-1, 0, 0)`` when empty).
    Action (2): thrust along x and y.
    Reward: ``+0.02`` per frame driven without a crash (not while dazed), ``-2`` per collision.
    Score ``clip(R, 0, 10) / 10`` (10 = no crash in 500 frames).

    Examples:
        >>> game = HighwayGame(seed=0)
        >>> game.reset(seed=0).shape
        (24,)
    """

    obs_dim = 24
    action_dim = 2
    LANES = 5
    TOP, BOTTOM = 18.0, SCREEN - 18.0
    LANE_H = (BOTTOM - TOP) / LANES
    CAR_L, CAR_H = 28.0, 16.0
    SLOTS = 4

    def lane_center(self, lane: int) -> float:
        return self.TOP + (lane + 0.5) * self.LANE_H

    def _reset(self) -> None:
        self.x = self.uniform(20.0, 60.0)
        self.y = self.lane_center(self.randint(1, self.LANES - 1)) - self.CAR_H / 2
        self.vx = self.vy = 0.0
        self.daze = 0
        self.dash = 0.0
        self.cars = [[False, 0.0, 0, 0.0, 0.0, self.randint(0, 8)] for _ in range(self.SLOTS)]  # active, x, lane, len, speed, wait
        self._spawn(self.cars[0], SCREEN + 20.0)

    def _spawn(self, c: list, x: float) -> bool:
        kind = self.randint(0, 3)
        length = self.CAR_L * (2.0 if kind == 2 else 1.0)
        for _ in range(6):
            lane = self.randint(0, self.LANES)
            if all(not o[0] or o[2] != lane or abs(o[1] - x) > max(length, o[3]) + 20.0 for o in self.cars):
                c[:] = [True, x, lane, length, 5.0 if kind != 1 else 7.0, 0]
                return True
        return False

    def _step(self, action: list[float]) -> float:
        if self.daze:
            self.daze -= 1
            self.vx = self.vy = 0.0
        else:
            self.vx = (self.vx + 0.6 * action[0]) * 0.9
            self.vy = (self.vy + 0.6 * action[1]) * 0.9
        self.x = clip(self.x + self.vx, 0.0, SCREEN - self.CAR_L)
        self.y = clip(self.y + self.vy, self.TOP, self.BOTTOM - self.CAR_H)
        self.dash = (self.dash + 5.0) % 32
        reward = 0.0 if self.daze else 0.02
        target = 2 + int(2.5 * self.progress)
        active = sum(c[0] for c in self.cars)
        for c in self.cars:
            if not c[0]:
                if c[5] > 0:
                    c[5] -= 1
                elif active < target and self._spawn(c, SCREEN + self.uniform(10.0, 60.0)):
                    active += 1
                continue
            c[1] -= c[4]
            cy = self.lane_center(c[2]) - self.CAR_H / 2
            if rects_overlap(self.x, self.y, self.CAR_L, self.CAR_H, c[1], cy, c[3], self.CAR_H):
                reward = -2.0
                self.daze = 15
                c[0], c[5] = False, self.randint(4, 12)
            elif c[1] + c[3] < 0:
                c[0], c[5] = False, self.randint(4, 12)
        return reward

    def lane(self) -> int:
        return int(clip((self.y + self.CAR_H / 2 - self.TOP) // self.LANE_H, 0, self.LANES - 1))

    def gap_ahead(self, lane: int) -> float | None:
        """Pixels from the agent's front to the nearest car ahead in ``lane`` (``None`` if none)."""
        front = self.x + self.CAR_L
        gaps = [c[1] - front for c in self.cars if c[0] and c[2] == lane and c[1] + c[3] > self.x]
        return max(0.0, min(gaps)) if gaps else None

    def _obs(self) -> list[float]:
        lane = self.lane()
        norm = lambda g: -1.0 if g is None else min(1.0, g / SCREEN)
        side = []
        for ln in (lane - 1, lane + 1):
            g = self.gap_ahead(ln) if 0 <= ln < self.LANES else 0.0
            side.append(g)
        clear = [1.0 if (g is None or g > 70.0) and 0 <= ln < self.LANES else 0.0 for g, ln in zip(side, (lane - 1, lane + 1))]
        out = [self.x / SCREEN, (self.y + self.CAR_H / 2) / SCREEN, self.vx / 10.0, self.vy / 10.0, 1.0 if self.daze else 0.0,
               norm(self.gap_ahead(lane)), clear[0], clear[1], norm(side[0]), norm(side[1]),
               clip((self.y + self.CAR_H / 2 - self.lane_center(lane)) / (self.LANE_H / 2), -1.0, 1.0), lane / (self.LANES - 1)]
        for c in self.cars:
            out += [c[1] / SCREEN, self.lane_center(c[2]) / SCREEN, 1.0 if c[3] > self.CAR_L else 0.0] if c[0] else [-1.0, 0.0, 0.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((60, 120, 60))
        pg.draw.rect(surf, (70, 70, 75), (0, int(self.TOP), SCREEN, int(self.BOTTOM - self.TOP)))
        for k in range(1, self.LANES):
            y = int(self.TOP + k * self.LANE_H)
            for x in range(-int(self.dash), SCREEN, 32):
                pg.draw.rect(surf, (230, 230, 230), (x, y - 1, 14, 2))
        colors = {5.0: (95, 135, 212), 7.0: (227, 188, 34)}
        for c in self.cars:
            if c[0]:
                col = (82, 140, 66) if c[3] > self.CAR_L else colors[c[4]]
                pg.draw.rect(surf, col, (int(c[1]), int(self.lane_center(c[2]) - self.CAR_H / 2), int(c[3]), int(self.CAR_H)), border_radius=3)
        pg.draw.rect(surf, (220, 40, 40), (int(self.x), int(self.y), int(self.CAR_L), int(self.CAR_H)), border_radius=3)
        pg.draw.rect(surf, (150, 200, 240), (int(self.x) + 17, int(self.y) + 3, 6, int(self.CAR_H) - 6))
        if self.daze:
            pg.draw.rect(surf, (255, 230, 0), (int(self.x) - 2, int(self.y) - 2, int(self.CAR_L) + 4, int(self.CAR_H) + 4), 2)


class LandingGame(ArcadeGame):
    """Landing: fly a helicopter onto the deck of a ship sailing back and forth, and stay there.

    The helicopter accelerates with the action (``0.6 px/frame²`` per unit) under gravity
    (``0.2 px/frame²``), velocity damped x0.96. The ship's 70 px deck sails at 1.1-1.7 px/frame
    and turns at the screen edges. The deck is solid; touching it gently latches the helicopter
    onto the deck (it then moves with the ship until it lifts off).

    State vector (7): ``[x / 224, y / 224, vx / 10, vy / 10, ship x / 224, deck y / 224,
    ship vx / 5]`` (helicopter top-left corner, ship centre).
    Action (2): thrust along x and y (down positive).
    Reward per frame: on the deck ``0.1 + 0.9 * (1 - |offset from deck centre| / half deck)``;
    airborne above deck level a proximity bonus of at most ``0.05``; below deck level ``-0.5``;
    touching down faster than 2 px/frame costs ``min(10, 2 * speed)`` once.
    Score ``clip(R, 0, 200) / 200``.

    Examples:
        >>> game = LandingGame(seed=0)
        >>> game.reset(seed=0).shape
        (7,)
    """

    obs_dim = 7
    action_dim = 2
    default_episode_length = 200
    HW, HH = 28.0, 18.0
    DECK_W, DECK_H = 70.0, 12.0
    DECK_Y = SCREEN * 0.8 + 10.0 - 6.0  # top of the deck
    SEA_Y = SCREEN * 0.8

    def _reset(self) -> None:
        self.x, self.y = self.uniform(12.0, 36.0), self.uniform(12.0, 36.0)
        self.vx, self.vy = self.uniform(-0.3, 0.3), self.uniform(-0.3, 0.3)
        self.sx = SCREEN / 3
        self.sv = (1.0 if self.rng.random() < 0.5 else -1.0) * self.uniform(1.1, 1.7)
        self.contact = False
        self.latched = False

    def _step(self, action: list[float]) -> float:
        self.sx += self.sv
        half = self.DECK_W / 2
        if self.sx - half <= 0 or self.sx + half >= SCREEN:
            self.sx = clip(self.sx, half, SCREEN - half)
            self.sv = -self.sv
        was_contact = self.contact
        if self.latched and action[1] > -0.34:  # not enough lift to leave the deck
            self.vx, self.vy = self.sv + 0.6 * action[0], 0.0
            self.x += self.vx
        else:
            self.latched = False
            self.vx = (self.vx + 0.6 * action[0]) * 0.96
            self.vy = (self.vy + 0.6 * action[1] + 0.2) * 0.96
            self.x += self.vx
            self.y += self.vy
        self.x = clip(self.x, 0.0, SCREEN - self.HW)
        self.y = clip(self.y, 0.0, SCREEN - self.HH)
        impact = self.vy
        dl, dt = self.sx - half, self.DECK_Y
        self.contact = False
        if rects_overlap(self.x, self.y, self.HW, self.HH, dl, dt, self.DECK_W, self.DECK_H) or (
            self.latched and dl - self.HW + 4 < self.x < dl + self.DECK_W - 4
        ):
            prev_bottom = self.y + self.HH - self.vy
            if prev_bottom <= dt + 3.0:  # came from above: stand on the deck
                self.y, self.vy = dt - self.HH, min(0.0, self.vy)
                self.contact = dl - self.HW + 4 < self.x < dl + self.DECK_W - 4
            elif self.x + self.HW / 2 < self.sx:  # side hit: pushed off
                self.x, self.vx = dl - self.HW, min(self.vx, self.sv)
            else:
                self.x, self.vx = dl + self.DECK_W, max(self.vx, self.sv)
        if not self.contact:
            self.latched = False
        elif abs(self.vy) < 0.5:
            self.latched = True
        reward = 0.0
        cx = self.x + self.HW / 2
        if self.contact:
            reward += 0.1 + 0.9 * (1.0 - min(1.0, abs(cx - self.sx) / half))
            if not was_contact and impact > 2.0:
                reward -= min(10.0, 2.0 * impact)
        elif self.y + self.HH / 2 > dt:
            reward -= 0.5
        else:
            reward += 0.025 * (1.0 - min(1.0, abs(cx - self.sx) / SCREEN)) + 0.025 * (1.0 - min(1.0, (dt - self.y - self.HH) / SCREEN))
        return reward

    def _obs(self) -> list[float]:
        return [self.x / SCREEN, self.y / SCREEN, self.vx / 10.0, self.vy / 10.0, self.sx / SCREEN, self.DECK_Y / SCREEN, self.sv / 5.0]

    def _draw(self, surf, pg) -> None:
        surf.fill((150, 190, 255))
        pg.draw.rect(surf, (50, 120, 200), (0, int(self.SEA_Y), SCREEN, SCREEN - int(self.SEA_Y)))
        dl, dt = int(self.sx - self.DECK_W / 2), int(self.DECK_Y)
        pg.draw.polygon(surf, (110, 110, 130), [(dl, dt + 12), (dl + 70, dt + 12), (dl + 60, dt + 28), (dl + 10, dt + 28)])
        pg.draw.rect(surf, (240, 240, 240), (dl, dt, int(self.DECK_W), int(self.DECK_H)))
        pg.draw.circle(surf, (220, 60, 60), (int(self.sx), dt + 6), 4)
        x, y = int(self.x), int(self.y)
        body = [(x, y + 9), (x + 22, y + 2), (x + 28, y + 9), (x + 22, y + 16)]
        pg.draw.polygon(surf, (200, 210, 225), body)
        pg.draw.polygon(surf, (80, 110, 170), body, 2)
        pg.draw.line(surf, (80, 110, 170), (x - 8, y + 9), (x + 4, y + 9), 2)
        pg.draw.line(surf, (60, 60, 60), (x + 3, y + 18), (x + 25, y + 18), 2)
        pg.draw.line(surf, (50, 50, 50), (x - 2, y - 2), (x + 30, y - 2), 2)
        if self.contact:
            pg.draw.rect(surf, (80, 220, 120), (0, 0, SCREEN, SCREEN), 3)
