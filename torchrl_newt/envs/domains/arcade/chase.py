"""Agility games: Chase & Evade (tag in a round arena) and Coconut Dodge (dodge falling coconuts)."""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["ChaseEvadeGame", "CoconutDodgeGame"]


class ChaseEvadeGame(ArcadeGame):
    """Chase & Evade: tag against an AI in a round arena with three orbiting pillars.

    One player chases (3.5 px/frame), the other evades (3.3 px/frame). A tag (bodies touch)
    swaps the roles; both then regroup for a few frames (the new chaser walks to the centre, the
    new evader to the rim) before play resumes. The AI pursues the agent (steering around
    pillars) or flees it (away from the agent, off the wall, with a little zig-zag).

    State vector (15): agent ``(x / 224, y / 224, vx / 3.5, vy / 3.5)``, AI likewise,
    ``1`` if the agent is the evader else ``0``, the 3 pillars ``(x / 224, y / 224)``.
    Action (2): walking velocity along x and y (scaled to the role's speed).
    Reward per frame: ``+0.1 * d / R`` as the evader, ``-0.1 * d / R`` as the chaser (``d`` the
    players' distance, ``R = 90`` the arena radius). Score ``(clip(R, -50, 50) + 50) / 100``.

    Examples:
        >>> game = ChaseEvadeGame(seed=0)
        >>> game.reset(seed=0).shape
        (15,)
    """

    obs_dim = 15
    action_dim = 2
    R, CX, CY = 90.0, SCREEN / 2, SCREEN / 2 + 6.0
    BODY, PILLAR, ORBIT = 8.0, 12.0, 40.0
    CHASE_V, EVADE_V = 3.5, 3.3

    def _reset(self) -> None:
        ang = self.uniform(0.0, 2 * math.pi)
        self.x, self.y = self.CX + (self.R - 15) * math.cos(ang), self.CY + (self.R - 15) * math.sin(ang)
        self.ox, self.oy = self.CX, self.CY
        self.vx = self.vy = self.ovx = self.ovy = 0.0
        self.agent_evades = self.rng.random() < 0.5
        self.regroup = 0
        self.phase = self.uniform(0.0, 2 * math.pi)
        self.spin = 0.01 if self.rng.random() < 0.5 else -0.01
        self._pillars()

    def _pillars(self) -> None:
        a = self.phase + self.spin * self.t
        self.pillars = [(self.CX + self.ORBIT * math.cos(a + k * 2.094), self.CY + self.ORBIT * math.sin(a + k * 2.094)) for k in range(3)]

    def _keep_in(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float, float, float]:
        dx, dy = x - self.CX, y - self.CY
        d = math.hypot(dx, dy)
        lim = self.R - self.BODY - 4.0
        if d > lim:
            x, y = self.CX + dx * lim / d, self.CY + dy * lim / d
        for px, py in self.pillars:
            dx, dy = x - px, y - py
            d = math.hypot(dx, dy)
            if d < self.BODY + self.PILLAR:
                d = max(d, 1e-6)
                x, y = px + dx * (self.BODY + self.PILLAR) / d, py + dy * (self.BODY + self.PILLAR) / d
        return x, y, vx, vy

    def _ai_velocity(self, speed: float) -> tuple[float, float]:
        if self.agent_evades:  # pursue, steering around pillars
            ux, uy = self.x - self.ox, self.y - self.oy
            n = math.hypot(ux, uy) or 1.0
            ux, uy = ux / n, uy / n
            for px, py in self.pillars:
                dx, dy = self.ox - px, self.oy - py
                d = math.hypot(dx, dy)
                if d < 3 * self.PILLAR:
                    w = (3 * self.PILLAR - d) / (3 * self.PILLAR) / max(d, 1e-6)
                    ux, uy = ux + dx * w, uy + dy * w
        else:  # flee, avoiding the wall
            ux, uy = self.ox - self.x, self.oy - self.y
            n = math.hypot(ux, uy) or 1.0
            ux, uy = ux / n, uy / n
            cx, cy = self.ox - self.CX, self.oy - self.CY
            dc = math.hypot(cx, cy)
            if dc > 0.7 * self.R:
                ux, uy = ux - 0.9 * cx / dc, uy - 0.9 * cy / dc
                ux, uy = ux + 0.8 * -cy / dc * (1 if ux * -cy + uy * cx >= 0 else -1), uy + 0.8 * cx / dc * (1 if ux * -cy + uy * cx >= 0 else -1)
            if n < 0.4 * self.R:
                s = 0.3 if self.rng.random() < 0.5 else -0.3
                ux, uy = ux - s * uy, uy + s * ux
        n = math.hypot(ux, uy) or 1.0
        return speed * ux / n, speed * uy / n

    def _step(self, action: list[float]) -> float:
        self._pillars()
        a_speed = self.EVADE_V if self.agent_evades else self.CHASE_V
        o_speed = self.CHASE_V if self.agent_evades else self.EVADE_V
        if self.regroup > 0:  # chaser to the centre, evader to the rim
            self.regroup -= 1
            for who in (0, 1):
                x, y = (self.x, self.y) if who == 0 else (self.ox, self.oy)
                evader = self.agent_evades if who == 0 else not self.agent_evades
                dx, dy = (x - self.CX, y - self.CY) if evader else (self.CX - x, self.CY - y)
                d = math.hypot(dx, dy) or 1.0
                step = min(3.0, d) if not evader else 3.0
                x, y, _, _ = self._keep_in(x + step * dx / d, y + step * dy / d, 0.0, 0.0)
                if who == 0:
                    self.x, self.y = x, y
                else:
                    self.ox, self.oy = x, y
            self.vx = self.vy = self.ovx = self.ovy = 0.0
        else:
            self.vx, self.vy = a_speed * action[0], a_speed * action[1]
            self.x, self.y, _, _ = self._keep_in(self.x + self.vx, self.y + self.vy, 0.0, 0.0)
            self.ovx, self.ovy = self._ai_velocity(o_speed)
            self.ox, self.oy, _, _ = self._keep_in(self.ox + self.ovx, self.oy + self.ovy, 0.0, 0.0)
            if math.hypot(self.x - self.ox, self.y - self.oy) < 2 * self.BODY:
                self.agent_evades = not self.agent_evades
                self.regroup = 12
        d = math.hypot(self.x - self.ox, self.y - self.oy)
        return (0.1 if self.agent_evades else -0.1) * d / self.R

    def _obs(self) -> list[float]:
        out = [self.x / SCREEN, self.y / SCREEN, self.vx / self.CHASE_V, self.vy / self.CHASE_V,
               self.ox / SCREEN, self.oy / SCREEN, self.ovx / self.CHASE_V, self.ovy / self.CHASE_V,
               1.0 if self.agent_evades else 0.0]
        for px, py in self.pillars:
            out += [px / SCREEN, py / SCREEN]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((120, 160, 150) if self.agent_evades else (110, 150, 120))
        pg.draw.circle(surf, (40, 40, 45), (int(self.CX), int(self.CY)), int(self.R))
        pg.draw.circle(surf, (220, 220, 220), (int(self.CX), int(self.CY)), int(self.R), 2)
        for px, py in self.pillars:
            pg.draw.circle(surf, (130, 130, 130), (int(px), int(py)), int(self.PILLAR))
        for x, y, col, evader in ((self.x, self.y, (255, 140, 0), self.agent_evades), (self.ox, self.oy, (70, 170, 70), not self.agent_evades)):
            pg.draw.circle(surf, col, (int(x), int(y)), int(self.BODY))
            if not evader:  # the chaser wears a white ring
                pg.draw.circle(surf, (255, 255, 255), (int(x), int(y)), int(self.BODY) + 3, 2)


class CoconutDodgeGame(ArcadeGame):
    """Coconut Dodge: a beach-goer runs left and right to dodge coconuts falling from palm trees.

    The character accelerates sideways (``0.85 px/frame²`` per unit, damped x0.9, capped at
    6 px/frame) along the bottom of a 200 px play area. Coconuts fall at 2-3.2 px/frame
    (up to 1.6x faster later) with a little sideways drift, bouncing off the side walls; two fall
    at first and up to six at once by the end. A coconut that reaches the ground cracks and a new one
    drops from the top; one that hits the character cracks on its head.

    State vector (29): ``[x in the area / 200, vx / 6, nearest falling coconut dx / 200,
    dy / 200, hit flag]`` then the 6 coconut slots sorted by distance ``(x / 200, y / 200, vx / 6,
    vy / 6)`` (zeros when empty; positions relative to the play area).
    Action (1): sideways push.
    Reward: ``-2`` per coconut hit. Score ``(clip(R, -15, 0) + 15) / 15``.

    Examples:
        >>> game = CoconutDodgeGame(seed=0)
        >>> game.reset(seed=0).shape
        (29,)
    """

    obs_dim = 29
    action_dim = 1
    LO, SIZE = 12.0, 200.0
    BODY_R, NUT_R = 9.0, 7.0
    AGENT_Y = LO + SIZE - 12.0
    MAX_NUTS = 6
    VMAX = 6.0

    def _reset(self) -> None:
        self.x = self.LO + self.SIZE / 2
        self.vx = 0.0
        self.hit = 0
        self.nuts: list[list[float]] = []
        self._fill()

    def _new_nut(self) -> list[float]:
        d = self.progress
        x = self.uniform(self.LO + self.NUT_R, self.LO + self.SIZE - self.NUT_R)
        return [x, self.LO + self.NUT_R + 1.0, self.uniform(-0.5, 0.5) * (1 + 0.6 * d), self.uniform(2.0, 3.2) * (1 + 0.6 * d)]

    def _fill(self) -> None:
        target = 2 + int(self.progress * (self.MAX_NUTS - 1))
        while len(self.nuts) < min(target, self.MAX_NUTS):
            n = self._new_nut()
            n[1] -= self.uniform(0.0, 60.0)  # stagger new coconuts
            self.nuts.append(n)

    def _step(self, action: list[float]) -> float:
        self.vx = clip((self.vx + 0.85 * action[0]) * 0.9, -self.VMAX, self.VMAX)
        self.x = clip(self.x + self.vx, self.LO + self.BODY_R, self.LO + self.SIZE - self.BODY_R)
        reward = 0.0
        ground = self.LO + self.SIZE
        for i, n in enumerate(self.nuts):
            n[0] += n[2]
            n[1] += n[3]
            if not self.LO + self.NUT_R <= n[0] <= self.LO + self.SIZE - self.NUT_R:
                n[0], n[2] = clip(n[0], self.LO + self.NUT_R, self.LO + self.SIZE - self.NUT_R), -n[2]
            if math.hypot(n[0] - self.x, n[1] - self.AGENT_Y) < self.BODY_R + self.NUT_R:
                reward -= 2.0
                self.hit = 6
                self.nuts[i] = self._new_nut()
            elif n[1] + self.NUT_R >= ground:
                self.nuts[i] = self._new_nut()
        if self.hit:
            self.hit -= 1
        self._fill()
        return reward

    def _obs(self) -> list[float]:
        falling = sorted(self.nuts, key=lambda n: math.hypot(n[0] - self.x, n[1] - self.AGENT_Y))
        if falling:
            ndx, ndy = (falling[0][0] - self.x) / self.SIZE, (falling[0][1] - self.AGENT_Y) / self.SIZE
        else:
            ndx, ndy = 0.0, -1.0
        out = [(self.x - self.LO) / self.SIZE, self.vx / self.VMAX, ndx, ndy, 1.0 if self.hit else 0.0]
        for k in range(self.MAX_NUTS):
            if k < len(falling):
                n = falling[k]
                out += [(n[0] - self.LO) / self.SIZE, (n[1] - self.LO) / self.SIZE, n[2] / self.VMAX, n[3] / self.VMAX]
            else:
                out += [0.0, 0.0, 0.0, 0.0]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        lo, size = int(self.LO), int(self.SIZE)
        horizon = lo + 92
        for yy in range(lo, horizon, 4):
            t = (yy - lo) / 92
            pg.draw.rect(surf, (int(80 + 170 * t), int(40 + 125 * t), int(120 - 115 * t)), (lo, yy, size, 4))
        pg.draw.rect(surf, (200, 180, 130), (lo, horizon, size, lo + size - horizon))
        for px, s in ((lo + 56, 1.0), (lo + 150, 0.6)):
            top = horizon + 10 - int(60 * s)
            pg.draw.line(surf, (60, 40, 20), (px, horizon + 10), (px + 4, top), 4)
            for k in range(-2, 3):
                pg.draw.line(surf, (30, 90, 30), (px + 4, top), (px + 4 + int(22 * s * k / 2), top + int(10 * s * abs(k) / 2) - 4), 3)
        pg.draw.rect(surf, (230, 230, 230), (lo, lo, size, size), 2)
        for n in self.nuts:
            if n[1] > self.LO:
                pg.draw.circle(surf, (110, 70, 30), (int(n[0]), int(n[1])), int(self.NUT_R))
        x, y = int(self.x), int(self.AGENT_Y)
        pg.draw.rect(surf, (40, 110, 200), (x - 6, y - 6, 12, 14))
        pg.draw.circle(surf, (230, 190, 150), (x, y - 10), 5)
        if self.hit:
            pg.draw.circle(surf, (255, 60, 60), (x, y - 10), 9, 2)
