"""Dodging games: Chase-Evade (tag in a round arena) and Coconut Dodge (falling coconuts).

Both follow Newt's definitions (nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pygame/chase_evade.py`` and ``coconut_dodge.py``): same constants, rules,
opponent behaviour, reward terms and order of random draws (including the purely visual ones:
stars, palms, dunes, coconut looks and dust puffs, which share the generator), so a seed and an
action sequence give Newt's states, observations and rewards.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["ChaseEvadeGame", "CoconutDodgeGame"]

log = logging.getLogger(__name__)

F32 = np.float32


class ChaseEvadeGame(ArcadeGame):
    """Chase-Evade: tag against an AI in a round arena with three orbiting pillars; roles swap on a catch.

    The arena is a disc of radius 90 centred at ``(112, 118)``; three pillars (radius 12) orbit
    the centre at radius 40, 0.01 rad/frame. The agent (radius 8) starts 75 px from the centre,
    the AI at the centre; who evades first is random. Each frame the agent moves ``v * a`` px
    (``v = 3.5`` chasing, ``3.325`` evading), is kept 4 px inside the arena and pushed out of
    pillars. The AI chases (straight at the agent, steering around pillars) or evades (away from
    the agent, off the wall, behind pillars, zig-zagging when close). A catch (centres closer
    than 16 px) swaps the roles, then a reset phase walks the new chaser back to the centre and
    the new evader outwards (no control for at least 5 frames).

    State vector (15): ``[x / 224, y / 224, vx / 3.5, vy / 3.5, AI x / 224, AI y / 224,
    AI vx / 3.5, AI vy / 3.5, agent evades]`` then the 3 pillars ``(x / 224, y / 224)``.
    Action (2): velocity along x and y.
    Reward: ``0.1 d / 90`` per frame while evading, ``-0.1 d / 90`` while chasing (``d`` the
    distance between the two). Score ``clip((R + 50) / 100, 0, 1)``.

    Examples:
        >>> game = ChaseEvadeGame(seed=0)
        >>> game.reset(seed=0).shape
        (15,)
    """

    obs_dim = 15
    action_dim = 2
    R = 90
    CX, CY = SCREEN // 2, SCREEN // 2 + 6
    BODY, PILLAR = 8, 12
    SPEED, EVADER_SCALE = 3.5, 0.95
    EVADER_OFFSET, MARGIN = 15, 4
    N_PILLARS = 3
    ORBIT = int(R * 0.45)
    SPIN = 0.01
    SWAP_FRAMES = 5

    def __init__(self, spec=None, *, seed: int | None = None, **kwargs) -> None:
        super().__init__(spec, seed=seed, **kwargs)
        self.pursuer_is_agent = False  # as in Newt, only ever set by a catch

    @property
    def agent_evades(self) -> bool:
        """Whether the agent is currently the evader."""
        return self.evader_is_agent

    def _reset(self) -> None:
        ang = self.rng.uniform(0, 2 * np.pi)
        self.x = self.CX + (self.R - self.EVADER_OFFSET) * math.cos(ang)
        self.y = self.CY + (self.R - self.EVADER_OFFSET) * math.sin(ang)
        self.ox, self.oy = self.CX, self.CY
        self.vx = self.vy = self.ovx = self.ovy = 0.0
        self.evader_is_agent = bool(self.randint(0, 2))
        self.swapping = False
        self.swap_count = 0
        self.flash = 0
        phase = self.rng.uniform(0, 2 * np.pi)
        self.spin_dir = (-1, 1)[self.randint(0, 2)]
        self.base_angles = [phase + 2 * np.pi * i / self.N_PILLARS for i in range(self.N_PILLARS)]
        self._place_pillars(0)

    def _place_pillars(self, frame: int) -> None:
        self.pillars = []
        for base in self.base_angles:
            ang = base + self.spin_dir * self.SPIN * frame
            self.pillars.append((self.CX + self.ORBIT * math.cos(ang), self.CY + self.ORBIT * math.sin(ang)))

    def _keep_in(self, x: float, y: float, margin: float) -> tuple[float, float]:
        dx, dy = x - self.CX, y - self.CY
        d = math.hypot(dx, dy)
        max_r = self.R - self.BODY - margin
        if d > max_r:
            scale = max_r / (d + 1e-8)
            return self.CX + dx * scale, self.CY + dy * scale
        return x, y

    def _push_out(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float, float, float]:
        for px, py in self.pillars:
            dx, dy = px - x, py - y
            dist = math.hypot(dx, dy)
            overlap = self.BODY + self.PILLAR - dist
            if overlap > 0:
                nx, ny = dx / (dist + 1e-8), dy / (dist + 1e-8)
                x -= nx * (overlap + 0.5)
                y -= ny * (overlap + 0.5)
                vn = vx * nx + vy * ny
                if vn > 0:
                    vx -= 2 * vn * nx
                    vy -= 2 * vn * ny
        return x, y, vx, vy

    def _ai_pursue(self, speed: float) -> None:
        dx, dy = self.x - self.ox, self.y - self.oy
        dist = math.hypot(dx, dy)
        ux, uy = (dx / dist, dy / dist) if dist > 1e-5 else (0.0, 0.0)
        reach = self.PILLAR * 3
        for px, py in self.pillars:
            d = math.hypot(self.ox - px, self.oy - py)
            if d < reach:
                rep = max(0, (reach - d) / reach)
                ux += (self.ox - px) / (d + 1e-8) * rep
                uy += (self.oy - py) / (d + 1e-8) * rep
        n = math.hypot(ux, uy)
        if n > 1e-8:
            ux, uy = ux / n, uy / n
        self.ovx, self.ovy = ux * speed, uy * speed

    def _ai_evade(self, speed: float) -> None:
        dx, dy = self.ox - self.x, self.oy - self.y
        dist = math.hypot(dx, dy)
        ux, uy = (dx / dist, dy / dist) if dist > 1e-5 else (0.0, 0.0)
        fx, fy = self.ox - self.CX, self.oy - self.CY
        dc = math.hypot(fx, fy)
        if dc > self.R * 0.8:  # keep off the wall
            ux -= fx / (dc + 1e-8) * 0.5
            uy -= fy / (dc + 1e-8) * 0.5
        for px, py in self.pillars:  # hide behind a pillar between the two
            if (self.x - px) * (self.ox - px) + (self.y - py) * (self.oy - py) < 0:
                ux += (px - self.ox) * 0.02
                uy += (py - self.oy) * 0.02
        if dist < self.R * 0.4:  # zig-zag when the chaser is close
            n = math.sqrt(dy * dy + dx * dx) + 1e-8
            ux += -dy / n * (-1, 1)[self.randint(0, 2)] * 0.2
            uy += dx / n * (-1, 1)[self.randint(0, 2)] * 0.2
        n = math.hypot(ux, uy)
        if n > 1e-8:
            ux, uy = ux / n, uy / n
        self.ovx, self.ovy = ux * speed, uy * speed

    def _swap_phase(self) -> None:
        """The reset phase after a catch: chaser back to the centre, evader outwards."""
        self.swap_count += 1
        chase_speed, evade_speed = self.SPEED, self.SPEED * self.EVADER_SCALE
        if self.pursuer_is_agent:
            dx, dy = self.CX - self.x, self.CY - self.y
            d = math.hypot(dx, dy)
            if d > 1.5:
                self.x += dx / d * chase_speed
                self.y += dy / d * chase_speed
        else:
            dx, dy = self.CX - self.ox, self.CY - self.oy
            d = math.hypot(dx, dy)
            if d > 1.5:
                self.ox += dx / d * chase_speed
                self.oy += dy / d * chase_speed
        if self.evader_is_agent:
            dx, dy = self.x - self.CX, self.y - self.CY
            d = math.hypot(dx, dy)
            if d > 1e-2:
                self.x, self.y = self._keep_in(self.x + dx / d * evade_speed, self.y + dy / d * evade_speed, self.EVADER_OFFSET)
        else:
            dx, dy = self.ox - self.CX, self.oy - self.CY
            d = math.hypot(dx, dy)
            if d > 1e-2:
                self.ox, self.oy = self._keep_in(self.ox + dx / d * evade_speed, self.oy + dy / d * evade_speed, self.EVADER_OFFSET)
        if self.swap_count >= self.SWAP_FRAMES:
            px, py = (self.x, self.y) if self.pursuer_is_agent else (self.ox, self.oy)
            if math.hypot(px - self.CX, py - self.CY) < 2.0:
                self.swapping = False

    def _step(self, action: list[float]) -> float:
        self._place_pillars(self.t)
        if self.flash > 0:
            self.flash -= 1
        if self.swapping:
            self._swap_phase()
        else:
            agent_speed = self.SPEED * (self.EVADER_SCALE if self.evader_is_agent else 1.0)
            ai_speed = self.SPEED * (self.EVADER_SCALE if not self.evader_is_agent else 1.0)
            # Newt multiplies the float32 action, so the agent's velocity is float32-rounded
            self.vx = float(F32(action[0]) * agent_speed)
            self.vy = float(F32(action[1]) * agent_speed)
            x, y = self._keep_in(self.x + self.vx, self.y + self.vy, self.MARGIN)
            self.x, self.y, self.vx, self.vy = self._push_out(x, y, self.vx, self.vy)
            if self.evader_is_agent:
                self._ai_pursue(ai_speed)
            else:
                self._ai_evade(ai_speed)
            ox, oy = self._keep_in(self.ox + self.ovx, self.oy + self.ovy, self.MARGIN)
            self.ox, self.oy, self.ovx, self.ovy = self._push_out(ox, oy, self.ovx, self.ovy)
            if math.hypot(self.x - self.ox, self.y - self.oy) < 2 * self.BODY:
                self.evader_is_agent = not self.evader_is_agent
                self.swapping = True
                self.swap_count = 0
                self.pursuer_is_agent = not self.evader_is_agent
                self.flash = 12
        d = math.hypot(self.x - self.ox, self.y - self.oy)
        return (d / self.R if self.evader_is_agent else -(d / self.R)) * 0.1

    def _obs(self) -> list[float]:
        out = [self.x / SCREEN, self.y / SCREEN, self.vx / self.SPEED, self.vy / self.SPEED,
               self.ox / SCREEN, self.oy / SCREEN, self.ovx / self.SPEED, self.ovy / self.SPEED, float(self.evader_is_agent)]
        for px, py in self.pillars:
            out += [px / SCREEN, py / SCREEN]
        return out

    def _draw(self, surf, pg) -> None:
        tint = (255, 140, 0) if self.evader_is_agent else (70, 160, 70)
        for i in range(0, SCREEN, 4):
            t = i / SCREEN
            base = (130 * (1 - t) + 80 * t, 185 * (1 - t) + 170 * t, 180)
            pg.draw.rect(surf, tuple(int(0.75 * b + 0.25 * c) for b, c in zip(base, tint)), (0, i, SCREEN, 4))
        pg.draw.circle(surf, (40, 40, 45), (self.CX, self.CY), self.R)
        pg.draw.circle(surf, (220, 220, 220), (self.CX, self.CY), self.R, 2)
        for px, py in self.pillars:
            pg.draw.rect(surf, (90, 90, 95), (int(px - self.PILLAR), int(py), 2 * self.PILLAR, 4))
            pg.draw.circle(surf, (130, 130, 130), (int(px), int(py)), self.PILLAR)
        for x, y, col, evader in ((self.x, self.y, (255, 140, 0), self.evader_is_agent),
                                  (self.ox, self.oy, (70, 160, 70), not self.evader_is_agent)):
            pg.draw.circle(surf, col, (int(x), int(y)), self.BODY)
            if not evader:  # the chaser wears a white ring
                pg.draw.circle(surf, (255, 255, 255), (int(x), int(y)), self.BODY + 3, 2)
        if self.flash > 0:
            pg.draw.circle(surf, (255, 220, 50), (int((self.x + self.ox) / 2), int((self.y + self.oy) / 2)), 4 + 2 * self.flash, 2)


class CoconutDodgeGame(ArcadeGame):
    """Coconut Dodge: run left and right on a beach to dodge falling coconuts.

    The play area is a 200 px square at ``(12, 12)``; the runner (radius 9, centre y = 200)
    gains ``0.85 * a`` px/frame of velocity per frame, damped by 0.97 and capped at 5 px/frame.
    Coconuts (radius 6-8) appear at the top edge with vx uniform in ``[-0.5, 0.5)`` and vy in
    ``[1.4, 2.6)``, both scaled up as the episode goes on (x(1 + 0.6 d) and x(1 + 0.8 d),
    ``d = t / 500``); they bounce off the side walls and crack for 10 frames on the ground before
    falling again from the top. There is 1 coconut at first and one more every 100 frames (6 max).

    State vector (29): ``[(x - 12) / 200, vx / 5, nearest falling coconut (dx, dy) / 200,
    hit flag]`` (``(0, -1)`` when none falls), then up to 6 coconuts sorted by distance
    ``((x - 12) / 200, (y - 12) / 200, vx / 5, vy / 5)`` (zeros when absent).
    Action (1): thrust along x.
    Reward: ``-1`` per frame touching a falling coconut. Score ``clip((R + 15) / 15, 0, 1)``.

    Examples:
        >>> game = CoconutDodgeGame(seed=0)
        >>> game.reset(seed=0).shape
        (29,)
    """

    obs_dim = 29
    action_dim = 1
    LO, SIZE = 12, 200
    HORIZON = LO + 92
    THRUST, VMAX, DAMP = 0.85, 5.0, 0.97
    BODY_R, NUT_R = 9, 7
    AGENT_Y = LO + SIZE - 12
    MAX_NUTS = 6
    RAMP_STEPS = 500  # the difficulty ramp spans Newt's default episode, whatever the task's length

    def _difficulty(self, frame: int) -> float:
        return min(1.0, max(0.0, frame / self.RAMP_STEPS))

    def _reset(self) -> None:
        self.hit_timer = 0
        self.particles: list[list[float]] = []  # dust puffs: [x, y, vx, vy, life, radius]
        self.stars = [(self.randint(self.LO + 6, self.LO + self.SIZE - 6), self.randint(self.LO + 6, max(self.LO + 7, self.HORIZON - 6)),
                       self.randint(1, 3)) for _ in range(22)]
        self.palm_scales = (1.1 * self.rng.uniform(0.9, 1.1), 0.55 * self.rng.uniform(0.9, 1.1))
        self.dunes = ((self.rng.uniform(3.0, 5.0), self.rng.uniform(0, 2 * np.pi)),
                      (self.rng.uniform(4.5, 6.0), self.rng.uniform(0, 2 * np.pi)))
        self.x = self.LO + self.SIZE / 2
        self.vx = 0.0
        self.nuts: list[dict] = []
        self._top_up(0)

    def _speckles(self, r: int, k: int) -> list[tuple[int, int, int]]:
        pts, rad, tries = [], max(1, r - 2), 0
        while len(pts) < k and tries < 200:
            tries += 1
            dx, dy = self.randint(-rad, rad + 1), self.randint(-rad, rad + 1)
            if dx * dx + dy * dy <= rad * rad:
                pts.append((dx, dy, self.randint(1, 3)))
        return pts

    def _new_nut(self, frame: int) -> dict:
        d = self._difficulty(frame)
        r = self.NUT_R + self.randint(-1, 2)
        tone = self.randint(0, 2)
        stripe = bool(self.randint(0, 2))
        speckles = self._speckles(r, self.randint(2, 5))
        x = self.rng.uniform(self.LO + r, self.LO + self.SIZE - r)
        vx = self.rng.uniform(-0.5, 0.5) * (1.0 + 0.6 * d)
        vy = self.rng.uniform(1.4, 2.6) * (1.0 + 0.8 * d)
        return {"x": x, "y": float(self.LO + r + 1), "vx": vx, "vy": vy, "falling": True, "r": r, "crack": 0,
                "split": 0, "tone": tone, "stripe": stripe, "speckles": speckles}

    def _top_up(self, frame: int) -> None:
        target = 1 + int(self._difficulty(frame) * (self.MAX_NUTS - 1))
        while len(self.nuts) < target:
            self.nuts.append(self._new_nut(frame))
        del self.nuts[target:]

    def _dust(self, x: float, y: float, direction: int) -> None:
        for _ in range(16):
            ang = self.rng.uniform(0.9, 2.2)
            speed = self.rng.uniform(0.8, 2.2)
            vx = speed * math.cos(ang) * (0.7 + 0.3 * direction)
            vy = -abs(speed * math.sin(ang)) * self.rng.uniform(0.6, 1.1)
            px = x + self.rng.uniform(-3, 3)
            py = y + self.rng.uniform(-1, 1)
            self.particles.append([px, py, vx, vy, 16, self.randint(2, 4)])

    def _step(self, action: list[float]) -> float:
        # Newt adds the float32 thrust, which keeps the velocity float32-rounded
        vx = (F32(self.vx) + F32(action[0]) * F32(self.THRUST)) * F32(self.DAMP)
        self.vx = float(min(max(vx, F32(-self.VMAX)), F32(self.VMAX)))
        self.x = clip(self.x + self.vx, self.LO + self.BODY_R, self.LO + self.SIZE - self.BODY_R)
        ground = self.LO + self.SIZE
        for n in self.nuts:
            if n["falling"]:
                n["x"] += n["vx"]
                n["y"] += n["vy"]
                if n["x"] < self.LO + n["r"]:
                    n["x"], n["vx"] = self.LO + n["r"], -n["vx"]
                elif n["x"] > self.LO + self.SIZE - n["r"]:
                    n["x"], n["vx"] = self.LO + self.SIZE - n["r"], -n["vx"]
                if n["y"] + n["r"] >= ground:
                    n["y"] = ground - n["r"]
                    n["falling"] = False
                    n["crack"] = 10
                    n["split"] = 1 if n["vx"] >= 0 else -1
                    self._dust(n["x"], ground - 2, n["split"])
            else:
                n["crack"] -= 1
                if n["crack"] <= 0:
                    n.update(self._new_nut(self.t))
        alive = []
        for p in self.particles:
            p[0] += p[2]
            p[1] += p[3]
            p[3] += 0.15
            p[4] -= 1
            if p[4] > 0 and self.LO <= p[0] <= self.LO + self.SIZE and self.LO <= p[1] <= self.LO + self.SIZE:
                alive.append(p)
        self.particles = alive
        reward = 0.0
        for n in self.nuts:
            if n["falling"] and math.hypot(self.x - n["x"], self.AGENT_Y - n["y"]) < self.BODY_R + n["r"]:
                reward = -1.0
                self.hit_timer = 6
                break
        self._top_up(self.t + 1)
        if self.hit_timer > 0:
            self.hit_timer -= 1
        return reward

    def _dist(self, n: dict) -> float:
        return math.hypot(self.x - n["x"], self.AGENT_Y - n["y"])

    def _obs(self) -> list[float]:
        falling = [n for n in self.nuts if n["falling"]]
        if falling:
            nb = min(falling, key=self._dist)
            ndx, ndy = (nb["x"] - self.x) / self.SIZE, (nb["y"] - self.AGENT_Y) / self.SIZE
        else:
            ndx, ndy = 0.0, -1.0
        out = [(self.x - self.LO) / self.SIZE, self.vx / self.VMAX, ndx, ndy, 1.0 if self.hit_timer > 0 else 0.0]
        ranked = sorted(self.nuts, key=self._dist)
        for i in range(self.MAX_NUTS):
            if i < len(ranked):
                n = ranked[i]
                out += [(n["x"] - self.LO) / self.SIZE, (n["y"] - self.LO) / self.SIZE, n["vx"] / self.VMAX, n["vy"] / self.VMAX]
            else:
                out += [0.0, 0.0, 0.0, 0.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        lo, size, hz = self.LO, self.SIZE, self.HORIZON
        for yy in range(lo, hz):
            t = (yy - lo) / max(1, hz - lo - 1)
            pg.draw.line(surf, (int(80 + 172 * t), int(40 + 125 * t), int(120 - 117 * t)), (lo, yy), (lo + size, yy))
        for sx, sy, sr in self.stars:
            pg.draw.circle(surf, (200, 190, 200), (sx, sy), sr)
        pg.draw.rect(surf, (196, 178, 128), (lo, hz, size, lo + size - hz))
        for (amp, ph), base, col in ((self.dunes[0], 0, (208, 190, 140)), (self.dunes[1], 12, (192, 175, 132))):
            crest = [(lo + i, hz + int(base + amp + amp * math.sin(i / 21.0 + ph))) for i in range(0, size + 1, 4)]
            pg.draw.polygon(surf, col, [(lo, hz + base)] + crest + [(lo + size, lo + size), (lo, lo + size)])
        for px, by, s in ((lo + int(size * 0.28), hz + 16, self.palm_scales[0]), (lo + int(size * 0.76), hz + 6, self.palm_scales[1])):
            top = by - int(44 * s)
            pg.draw.line(surf, (50, 35, 20), (px, by), (px + 4, top), 3)
            for k in range(-2, 3):
                pg.draw.line(surf, (50, 35, 20), (px + 4, top), (px + 4 + int(24 * s * k / 2), top + int(8 * s * abs(k)) - 4), 2)
        pg.draw.rect(surf, (230, 230, 230), (lo, lo, size, size), 2)
        for p in self.particles:
            pg.draw.circle(surf, (220, 205, 160), (int(p[0]), int(p[1])), p[5])
        for n in self.nuts:
            col = (120, 80, 40) if n["tone"] == 0 else (90, 60, 30)
            pg.draw.circle(surf, col, (int(n["x"]), int(n["y"])), n["r"])
            if not n["falling"]:
                pg.draw.line(surf, (40, 25, 10), (int(n["x"]), int(n["y"]) - n["r"]), (int(n["x"]), int(n["y"]) + n["r"]), 2)
        x, y = int(self.x), self.AGENT_Y
        pg.draw.rect(surf, (40, 110, 200), (x - 7, y - 15, 14, 18))
        pg.draw.circle(surf, (230, 190, 150), (x, y - 20), 5)
        if self.hit_timer > 0:
            pg.draw.circle(surf, (255, 60, 60), (x, y - 6), 14, 2)
