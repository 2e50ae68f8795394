"""Vehicle games: Highway (dodge oncoming traffic) and Landing (set a helicopter down on a ship).

Both follow Newt's definitions (nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pygame/highway.py`` and ``landing.py``): same constants, rules, reward
terms and order of random draws, so a seed and an action sequence give Newt's states,
observations and rewards. As in Newt, the player's vehicle moves in float32 (it is driven by the
float32 action under NumPy's promotion rules), and so do the terms computed from it.
"""

from __future__ import annotations

import logging

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip, rects_overlap

__all__ = ["HighwayGame", "LandingGame"]

log = logging.getLogger(__name__)

F32 = np.float32

# Car kinds: (name, colour, length factor); drawn uniformly when a car spawns.
CAR_KINDS = (("blue", (95, 135, 212), 1.0), ("yellow", (227, 188, 34), 1.0), ("truck", (82, 140, 66), 2.0))

#: Highway road: 5 lanes between y = 18 and y = 206.
ROAD_TOP, ROAD_BOTTOM = 18, SCREEN - 18
LANE_H = (ROAD_BOTTOM - ROAD_TOP) / 5
LANE_CENTERS = tuple(ROAD_TOP + (i + 0.5) * LANE_H for i in range(5))


class HighwayGame(ArcadeGame):
    """Highway: keep the red car out of the way of oncoming traffic on a 5-lane road.

    The road spans ``y in [18, 206]`` (lanes 37.6 px tall). The car (28 x 18 px) gains
    ``0.65 * a`` px/frame of velocity per frame, moves, then its velocity is damped by 0.95; it
    is clipped to the screen horizontally and to the road. Traffic (blue and yellow cars 28 px
    long, green trucks 56 px) comes from the right at 6 px/frame; a yellow car drives 1.2x
    faster unless it is within a car length of the car ahead in its lane, and never overlaps it.
    At most 1 car is on the road at first, 4 by the end (``floor(1 + 3 t / 499)``); a car that
    leaves respawns 4-10 frames later. Running into a car costs 1 and sticks the two together
    for up to 5 frames, the car dragging ours backwards.

    State vector (24): ``[x / 224, centre y / 224, vx / 10, vy / 10, crash flag,
    gap ahead in our lane, left lane clear, right lane clear, gap ahead left, gap ahead right,
    offset from the lane centre (in half lanes), lane / 4]`` (gaps ``/ 224`` clipped to
    ``[0, 1]``, ``-1`` when no car is ahead; "clear": no car within 70 px ahead) and, for each of
    4 car slots, ``(x / 224, centre y / 224, is truck)`` (``-1`` when empty). As in Newt (with
    state observations) the crash flag stays up once set.
    Action (2): thrust along x and y.
    Reward: ``-1`` per crash, plus each frame ``0.01 exp(-offset^2)`` for keeping to a lane
    centre, ``+0.01`` with nothing ahead in the lane, ``-0.02 (1 - gap / 84)`` with a car closer
    than 84 px ahead (``+0.005`` when farther), and ``-0.0005 |a|^2``. Score ``clip(R / 10, 0, 1)``.

    Examples:
        >>> game = HighwayGame(seed=0)
        >>> game.reset(seed=0).shape
        (24,)
    """

    obs_dim = 24
    action_dim = 2
    LANES = 5
    TOP, BOTTOM = ROAD_TOP, ROAD_BOTTOM
    LANE_H = LANE_H
    LANE_CENTERS = LANE_CENTERS
    CAR_L, CAR_H = 28, 18
    SCROLL = 6
    THRUST, DAMP = 0.65, 0.95
    MAX_CARS = 4
    SCHEDULE_STEPS = 500  # the traffic ramp spans Newt's default episode, whatever the task's length
    SPAWN_GAP = 18
    CLEAR_WINDOW = int(CAR_L * 2.5)
    LANE_BONUS, CLEAR_BONUS, CLOSE_PENALTY, CLOSE_DIST, ACTION_COST = 0.01, 0.01, 0.02, CAR_L * 3, 0.0005

    def lane_center(self, lane: int) -> float:
        """Centre y of a lane."""
        return self.LANE_CENTERS[lane]

    @property
    def x(self) -> float:
        """Left edge of our car."""
        return float(self.car_x)

    @property
    def y(self) -> float:
        """Top edge of our car."""
        return float(self.car_y)

    @property
    def vx(self) -> float:
        """Our velocity along x (px/frame)."""
        return float(self.vel_x)

    @property
    def vy(self) -> float:
        """Our velocity along y (px/frame)."""
        return float(self.vel_y)

    def _target_cars(self, frame: int) -> int:
        r = clip(frame / (self.SCHEDULE_STEPS - 1), 0.0, 1.0)
        return int(np.floor(1 + (self.MAX_CARS - 1) * r + 1e-9))

    def _reset(self) -> None:
        self.car_x = self.rng.uniform(20, 60)
        self.car_y = self.LANE_CENTERS[self.randint(1, self.LANES - 1)] - self.CAR_H / 2
        self.vel_x = self.rng.uniform(-0.2, 0.2)
        self.vel_y = self.rng.uniform(-0.2, 0.2)
        self.dash = 0.0
        self.crash_flag = 0
        self.sticky: int | None = None
        self.target = self._target_cars(0)
        self.cars = [{"active": False, "x": 0.0, "y": 0.0, "len": self.CAR_L, "h": self.CAR_H, "lane": 0, "kind": "blue",
                      "color": (255, 255, 255), "truck": 0.0, "passed": False, "respawn": self.randint(0, 7), "timer": 0}
                     for _ in range(self.MAX_CARS)]
        spawned, offset = 0, 0.0
        while spawned < self.target:
            if self._spawn(self.cars[spawned], x=SCREEN + 40 + offset):
                spawned += 1
                offset += self.CAR_L * 2.5
            else:
                offset += self.CAR_L * 1.0

    def _spawn(self, slot: dict, x: float | None = None) -> bool:
        name, color, factor = CAR_KINDS[self.randint(0, len(CAR_KINDS))]
        length = int(self.CAR_L * factor)
        for _ in range(8):
            lane = self.randint(0, self.LANES)
            sx = x if x is not None else SCREEN + self.rng.uniform(20, 60)
            if any(o["active"] and o["lane"] == lane and abs(o["x"] - sx) < max(length, o["len"]) + self.SPAWN_GAP for o in self.cars):
                continue
            slot.update(active=True, lane=lane, len=length, h=self.CAR_H, x=sx, y=self.LANE_CENTERS[lane] - self.CAR_H / 2,
                        color=color, kind=name, truck=1.0 if factor > 1.0 else 0.0, passed=False, respawn=0, timer=0)
            return True
        return False

    def _retire(self, c: dict) -> None:
        c["active"] = False
        c["respawn"] = self.randint(4, 11)
        c["passed"] = False

    def _ahead(self, car: dict) -> tuple[dict | None, float | None]:
        """The nearest active car in front of ``car`` in its lane (towards us) and the gap to it."""
        best, best_gap = None, None
        for o in self.cars:
            if o["active"] and o is not car and o["lane"] == car["lane"] and o["x"] < car["x"]:
                gap = car["x"] - (o["x"] + o["len"])
                if gap >= 0 and (best_gap is None or gap < best_gap):
                    best, best_gap = o, gap
        return best, best_gap

    def _speed(self, car: dict) -> float:
        if car["kind"] != "yellow":
            return self.SCROLL
        ahead, gap = self._ahead(car)
        if ahead is not None and gap <= max(car["len"], ahead["len"]):
            return self.SCROLL
        return self.SCROLL * 1.2

    def _advance_yellow_guard(self, car: dict, new_x: float) -> float:
        ahead, _ = self._ahead(car)
        if car["kind"] == "yellow" and ahead is not None:
            return max(new_x, ahead["x"] + ahead["len"] + 1)
        return new_x

    def _drag(self) -> None:
        """One frame of a crash: the car we hit pushes ours back, until it ends."""
        c = self.cars[self.sticky]
        if not c["active"]:
            return
        speed = self._speed(c)
        next_cx = c["x"] - speed
        desired_x = next_cx - self.CAR_L + 1
        next_ax = self.car_x - speed
        if next_ax < 0 or desired_x < 0:
            self._end_crash(c)
            return
        c["x"] = self._advance_yellow_guard(c, next_cx)
        c["timer"] -= 1
        self.car_x = next_ax
        if self.car_x > desired_x:
            self.car_x = desired_x
        if c["x"] + c["len"] < 0 or c["timer"] <= 0:
            self._end_crash(c)

    def _end_crash(self, c: dict) -> None:
        self._retire(c)
        c["timer"] = 0
        self.vel_x = self.vel_y = 0.0
        self.sticky = None

    def lane(self) -> int:
        """Index of the lane whose centre is nearest to our car's centre."""
        cy = self.car_y + self.CAR_H / 2
        return int(np.argmin([abs(cy - lc) for lc in self.LANE_CENTERS]))

    def gap_ahead(self, lane: int):
        """Distance from our front bumper to the nearest car ahead in ``lane`` (``None`` if none)."""
        if not 0 <= lane < self.LANES:
            return None
        front = self.car_x + self.CAR_L
        best = None
        for c in self.cars:
            if c["active"] and c["lane"] == lane:
                dx = c["x"] - front
                if dx >= 0 and (best is None or dx < best):
                    best = dx
        return best

    def _lane_clear(self, lane: int) -> float:
        if not 0 <= lane < self.LANES:
            return 0.0
        front = self.car_x + self.CAR_L
        for c in self.cars:
            if c["active"] and c["lane"] == lane and 0 <= c["x"] - front <= self.CLEAR_WINDOW:
                return 0.0
        return 1.0

    def _step(self, action: list[float]) -> float:
        a = np.array(action, dtype=np.float32)
        self.vel_x += a[0] * self.THRUST
        self.vel_y += a[1] * self.THRUST
        self.car_x += self.vel_x
        self.car_y += self.vel_y
        self.vel_x *= self.DAMP
        self.vel_y *= self.DAMP
        self.car_x = np.clip(self.car_x, 0, SCREEN - self.CAR_L)
        self.car_y = np.clip(self.car_y, self.TOP, self.BOTTOM - self.CAR_H)
        reward = 0.0
        self.dash = (self.dash + self.SCROLL) % 32
        self.target = self._target_cars(self.t)
        if self.sticky is not None:
            self._drag()
        ax, ay = int(self.car_x), int(self.car_y)
        active = 0
        for idx, c in enumerate(self.cars):
            if not c["active"]:
                if c["respawn"] > 0:
                    c["respawn"] -= 1
                if c["respawn"] == 0 and active < self.target:
                    if self._spawn(c):
                        active += 1
                    else:
                        c["respawn"] = 1
                continue
            active += 1
            if idx == self.sticky:
                continue
            c["x"] = self._advance_yellow_guard(c, c["x"] - self._speed(c))
            if not c["passed"] and c["x"] + c["len"] < self.car_x:
                c["passed"] = True
            if self.sticky is None and rects_overlap(ax, ay, self.CAR_L, self.CAR_H, int(c["x"]), int(c["y"]), int(c["len"]), int(c["h"])):
                c["timer"] = 5
                self.sticky = idx
                self.crash_flag = 3
                reward -= 1.0
            if c["timer"] == 0 and c["x"] + c["len"] < 0:
                self._retire(c)
        cy = self.car_y + self.CAR_H / 2
        norm = min(abs(cy - lc) for lc in self.LANE_CENTERS) / (0.5 * self.LANE_H)
        r_lane = self.LANE_BONUS * float(np.exp(-norm * norm))
        gap = self.gap_ahead(self.lane())
        if gap is None:
            r_clear = self.CLEAR_BONUS
        elif gap < self.CLOSE_DIST:
            r_clear = -self.CLOSE_PENALTY * (1.0 - gap / self.CLOSE_DIST)
        else:
            r_clear = 0.5 * self.CLEAR_BONUS
        r_smooth = -self.ACTION_COST * float(np.dot(a, a))
        reward += r_lane + r_clear + r_smooth
        return float(reward)

    def _obs(self) -> list[float]:
        lane = self.lane()
        cy = self.car_y + self.CAR_H / 2
        offset = float(clip((cy - self.LANE_CENTERS[lane]) / (0.5 * self.LANE_H), -1.0, 1.0))

        def norm(d):
            return -1.0 if d is None else float(clip(d / SCREEN, 0.0, 1.0))

        out = [self.car_x / SCREEN, cy / SCREEN, self.vel_x / 10.0, self.vel_y / 10.0, self.crash_flag / 3,
               norm(self.gap_ahead(lane)), self._lane_clear(lane - 1), self._lane_clear(lane + 1),
               norm(self.gap_ahead(lane - 1)), norm(self.gap_ahead(lane + 1)), offset, lane / (self.LANES - 1)]
        for c in self.cars:
            out += [c["x"] / SCREEN, (c["y"] + c["h"] / 2) / SCREEN, c["truck"]] if c["active"] else [-1.0, -1.0, -1.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((97, 133, 80))
        pg.draw.rect(surf, (60, 60, 60), (0, self.TOP, SCREEN, self.BOTTOM - self.TOP))
        for k in range(1, self.LANES):
            y = int(self.TOP + k * self.LANE_H)
            for x in range(-int(self.dash % 24), SCREEN, 24):
                pg.draw.line(surf, (220, 220, 220), (x, y), (x + 14, y), 2)
        pg.draw.line(surf, (200, 200, 200), (0, self.TOP), (SCREEN, self.TOP), 2)
        pg.draw.line(surf, (200, 200, 200), (0, self.BOTTOM), (SCREEN, self.BOTTOM), 2)
        for c in self.cars:
            if c["active"]:
                rect = (int(c["x"]), int(c["y"]), int(c["len"]), int(c["h"]))
                pg.draw.rect(surf, c["color"], rect)
                pg.draw.rect(surf, (40, 40, 40), rect, 2)
        x, y = int(self.car_x), int(self.car_y)
        pg.draw.rect(surf, (220, 60, 60), (x, y, self.CAR_L, self.CAR_H))
        pg.draw.rect(surf, (120, 20, 20), (x, y, self.CAR_L, self.CAR_H), 2)
        cy = y + self.CAR_H // 2
        pg.draw.polygon(surf, (220, 120, 120), [(x + self.CAR_L + 12, cy), (x + self.CAR_L + 4, cy - 4), (x + self.CAR_L + 4, cy + 4)])
        if self.sticky is not None:
            pg.draw.rect(surf, (220, 60, 60), (0, 0, SCREEN, SCREEN), 3)


class LandingGame(ArcadeGame):
    """Landing: fly a helicopter onto the deck of a ship sailing back and forth.

    The helicopter (28 x 18 px, starting near the top-left corner) gains ``0.6 * a`` px/frame of
    velocity per frame plus 0.2 of gravity, moves, then its velocity is damped by 0.96; it is
    clipped to the screen. The deck (70 x 12 px, centre y 189) sails at 1.1-1.7 px/frame and
    turns at the screen edges. Touching the deck resolves the overlap along the shallower axis;
    resting on it (skids within 3 px of its top) blends our horizontal velocity towards the
    ship's, and once nearly still the helicopter locks onto the deck.

    State vector (7): ``[x / 224, y / 224, vx / 10, vy / 10, ship centre x / 224,
    ship centre y / 224, ship velocity / 5]``.
    Action (2): thrust along x and y.
    Reward, per frame: ``0.1 + 0.9 (1 - |dx| / 35)`` while resting on the deck (the landing
    bonus, ``dx`` between the centres), ``-0.001 vy`` while descending, ``-min(10, 2 vy)`` once at
    touchdown, ``-0.5`` while below the deck's top, else ``0.025 (1 - |dx| / 35) +
    0.1 (1 - |dy| / 224)`` (clipped distances) for hovering above the deck.
    Score ``clip(R / 200, 0, 1)``.

    Examples:
        >>> game = LandingGame(seed=0)
        >>> game.reset(seed=0).shape
        (7,)
    """

    obs_dim = 7
    action_dim = 2
    default_episode_length = 200
    HW, HH = 28, 18
    THRUST, DAMP, GRAVITY = 0.6, 0.96, 0.20
    SKY_H = int(SCREEN * 0.80)
    DECK_W, DECK_H = 70, 12
    DECK_Y = SKY_H + 10  # centre y of the deck
    DOWN_COST, HARD_SCALE, EDGE_BONUS, CENTER_BONUS, BELOW_COST, HOVER_BONUS = 0.001, 2.0, 0.1, 1.0, 0.5, 0.025

    @property
    def x(self) -> float:
        """Left edge of the helicopter."""
        return float(self.heli_x)

    @property
    def y(self) -> float:
        """Top edge of the helicopter."""
        return float(self.heli_y)

    @property
    def vx(self) -> float:
        """Helicopter velocity x (px/frame)."""
        return float(self.vel_x)

    @property
    def vy(self) -> float:
        """Helicopter velocity y (px/frame, down positive)."""
        return float(self.vel_y)

    @property
    def sv(self) -> float:
        """Ship velocity (px/frame)."""
        return self.ship_dir * self.ship_speed

    def _reset(self) -> None:
        self.heli_x = self.rng.uniform(12, 36)
        self.heli_y = self.rng.uniform(12, 36)
        self.vel_x = self.rng.uniform(-0.3, 0.3)
        self.vel_y = self.rng.uniform(-0.3, 0.3)
        self.sx = SCREEN // 3
        self.ship_dir = 1 if self.rng.random() < 0.5 else -1
        self.ship_speed = 1.4 + self.rng.uniform(-0.3, 0.3)
        self.stars = [(self.rng.uniform(0, SCREEN), self.rng.uniform(0, self.SKY_H)) for _ in range(40)]
        self.contact = False
        self.prev_contact = False
        self.locked = False

    def _step(self, action: list[float]) -> float:
        a0, a1 = F32(action[0]), F32(action[1])
        self.vel_x += a0 * self.THRUST
        self.vel_y += a1 * self.THRUST
        self.vel_y += self.GRAVITY
        self.heli_x += self.vel_x
        self.heli_y += self.vel_y
        self.vel_x *= self.DAMP
        self.vel_y *= self.DAMP
        self.heli_x = np.clip(self.heli_x, 0, SCREEN - self.HW)
        self.heli_y = np.clip(self.heli_y, 0, SCREEN - self.HH)
        half = self.DECK_W // 2
        self.sx += self.ship_dir * self.ship_speed
        if self.sx - half <= 0:
            self.sx, self.ship_dir = half, 1
        elif self.sx + half >= SCREEN:
            self.sx, self.ship_dir = SCREEN - half, -1
        # integer rectangles, as Newt's pygame.Rect: (left, top, right, bottom)
        hl, ht = int(self.heli_x), int(self.heli_y)
        sl, st = int(self.sx - half), int(self.DECK_Y - self.DECK_H // 2)
        sr, sb = sl + self.DECK_W, st + self.DECK_H
        vy_before = float(self.vel_y)
        if rects_overlap(hl, ht, self.HW, self.HH, sl, st, self.DECK_W, self.DECK_H):
            pen_x = min(hl + self.HW - sl, sr - hl)
            pen_y = min(ht + self.HH - st, sb - ht)
            if pen_y <= pen_x:
                if ht + self.HH // 2 < st + self.DECK_H // 2:
                    self.heli_y = st - self.HH
                    self.vel_y = min(0.0, self.vel_y)
                    self.vel_x *= 0.90
                else:
                    self.heli_y = sb
                    self.vel_y = max(0.0, self.vel_y)
            elif hl + self.HW // 2 < sl + self.DECK_W // 2:
                self.heli_x = sl - self.HW
                self.vel_x = min(0.0, self.vel_x)
            else:
                self.heli_x = sr
                self.vel_x = max(0.0, self.vel_x)
            hl, ht = int(self.heli_x), int(self.heli_y)
        hr, hb = hl + self.HW, ht + self.HH
        self.contact = hr > sl + 4 and hl < sr - 4 and st - 3 <= hb <= st + 3
        ship_v = self.ship_dir * self.ship_speed
        if self.contact:
            alpha = 0.30
            self.vel_x = (1 - alpha) * self.vel_x + alpha * ship_v
            if abs(self.vel_y) < 0.20 and abs(self.vel_x - ship_v) < 0.20:
                self.locked = True
        else:
            self.locked = False
        if self.locked:
            self.vel_x = ship_v
            self.vel_y = min(0.0, self.vel_y)
            self.heli_y = st - self.HH  # the reward below still uses the rectangle from before
        hcx, hcy = hl + self.HW // 2, ht + self.HH // 2
        scx, scy = sl + self.DECK_W // 2, st + self.DECK_H // 2
        reward = 0.0
        if self.contact:
            d = clip(abs(hcx - scx) / (self.DECK_W * 0.5), 0.0, 1.0)
            reward += self.EDGE_BONUS + (self.CENTER_BONUS - self.EDGE_BONUS) * (1.0 - d)
        if self.vel_y > 0.0:
            reward -= self.DOWN_COST * float(self.vel_y)
        if self.contact and not self.prev_contact:
            reward -= min(10.0, self.HARD_SCALE * max(0.0, vy_before))
        if hcy > st:
            reward -= self.BELOW_COST
        else:
            dx = clip(abs(hcx - scx) / (self.DECK_W * 0.5), 0.0, 1.0)
            dy = clip(abs(hcy - scy) / SCREEN, 0.0, 1.0)
            reward += self.HOVER_BONUS * (1.0 - dx)
            reward += 4 * self.HOVER_BONUS * (1.0 - dy)
        self.prev_contact = self.contact
        return reward

    def _obs(self) -> list[float]:
        return [self.heli_x / SCREEN, self.heli_y / SCREEN, self.vel_x / 10.0, self.vel_y / 10.0,
                self.sx / SCREEN, self.DECK_Y / SCREEN, self.sv / 5.0]

    def _draw(self, surf, pg) -> None:
        surf.fill((150, 190, 255))
        pg.draw.rect(surf, (50, 120, 200), (0, self.SKY_H, SCREEN, SCREEN - self.SKY_H))
        for sx, sy in self.stars:
            pg.draw.circle(surf, (240, 240, 255), (int(sx), int(sy)), 1)
        dl, dt = int(self.sx - self.DECK_W // 2), self.DECK_Y - self.DECK_H // 2
        db = dt + self.DECK_H
        pg.draw.polygon(surf, (120, 120, 140), [(dl, db), (dl + self.DECK_W, db), (dl + self.DECK_W - 10, db + 16), (dl + 10, db + 16)])
        pg.draw.rect(surf, (240, 240, 240), (dl, dt, self.DECK_W, self.DECK_H))
        pg.draw.rect(surf, (180, 180, 180), (dl, dt, self.DECK_W, self.DECK_H), 2)
        px = dl + self.DECK_W // 2
        pg.draw.line(surf, (70, 70, 70), (px, dt), (px, dt - 10), 2)
        pg.draw.polygon(surf, (220, 40, 40), [(px, dt - 10), (px + 8, dt - 7), (px, dt - 4)])
        x, y = int(self.heli_x), int(self.heli_y)
        body = [(x, y + self.HH // 2), (x + self.HW - 6, y), (x + self.HW, y + self.HH // 2), (x + self.HW - 6, y + self.HH)]
        pg.draw.polygon(surf, (180, 200, 220), body)
        pg.draw.polygon(surf, (90, 120, 180), body, 2)
        pg.draw.line(surf, (90, 120, 180), (x + 6, y + self.HH // 2), (x - 8, y + self.HH // 2), 2)
        pg.draw.line(surf, (80, 80, 80), (x + 4, y + self.HH), (x + self.HW - 8, y + self.HH), 3)
        pg.draw.line(surf, (50, 50, 50), (x + self.HW // 2 - 16, y - 3), (x + self.HW // 2 + 16, y - 3), 2)
        if self.contact:
            pg.draw.rect(surf, (80, 220, 120), (0, 0, SCREEN, SCREEN), 3)
