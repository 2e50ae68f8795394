"""Bird Attack: a Space-Invaders-like shooter against a formation of birds and a boss.

The game follows Newt's definition (nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pygame/bird_attack.py``): same constants, formation, rules, reward terms and
order of random draws, so a seed and an action sequence give Newt's states, observations and
rewards. As in Newt the cannon's position is float32 (it is moved by the float32 action).
"""

from __future__ import annotations

import logging

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["BirdAttackGame"]

log = logging.getLogger(__name__)

F32 = np.float32

#: Play area: a 184 px square with its top-left corner at (20, 20).
AREA_X = AREA_Y = 20
AREA = 184


class BirdAttackGame(ArcadeGame):
    """Bird Attack: shoot a marching formation of birds while dodging their droppings and a boss.

    The cannon (14 x 8 px, top edge at y = 184) moves ``6 * a0`` px/frame (a fifth of that while
    stunned) inside the area and fires when ``a1 > 0`` and reloaded (8 frames between shots);
    shots rise 7 px/frame. The formation is 2 rows x 8 birds (14 x 12 px, 20 px apart, first at
    ``(40, 40)``, 2 hit points each) marching 1 px/frame sideways and dropping 4 px at each wall.
    Every frame each bird drops a bullet with probability 0.0075 (falling 7 px/frame). From
    frame 250 a boss appears at the top centre; after a 5-frame fade-in it jitters about its
    spot and every 50 frames aims a bouncing bullet (radius 10, 5 px/frame) at the cannon. A hit
    on the cannon costs 2 and stuns it for 16 frames (reload also set to 16).

    State vector (55): ``[x / 224, reload / 5, birds left / 16]``, the 16 birds' x / 224
    (alive birds in order, then zeros), the lowest bird's y / 224, 5 shots ``(x, y) / 224``,
    10 bird bullets ``(x, y) / 224`` (zeros when absent), ``stun / 10`` and the boss bullet
    ``(x / 224, y / 224, vx / 5, vy / 5)`` clipped to ``[0, 1]`` / ``[-1, 1]`` (zeros when absent).
    Action (2): ``[move, fire]``.
    Reward: ``+1`` per bird destroyed, ``-2`` per hit taken and ``+1`` per frame once the
    formation is wiped out. Score ``clip(R / 16, 0, 1)``.

    Examples:
        >>> game = BirdAttackGame(seed=0)
        >>> game.reset(seed=0).shape
        (55,)
    """

    obs_dim = 55
    action_dim = 2
    AGENT_W, AGENT_H = 14, 8
    AGENT_Y = AREA_Y + AREA - 20
    SPEED = 6.0
    RELOAD = 8
    BIRD_W, BIRD_H = 14, 12
    ROWS, COLS = 2, 8
    BIRD_DROP = 4
    SHOT_SPEED = 7
    DROP_P = 0.0075
    BOSS_STEP = 250
    BOSS_R = 10
    BOSS_SPEED = 5.0
    BOSS_SPAN, BOSS_HEIGHT = 64, 16
    BOSS_PERIOD = 50
    STUN = 16
    MAX_SHOTS, MAX_DROPS = 5, 10

    def _reset(self) -> None:
        self.ax = F32(SCREEN // 2 - self.AGENT_W // 2)
        self.reload = 0
        self.stun = 0
        self.shots: list[list] = []  # [x, y]
        self.drops: list[list] = []  # bird bullets [x, y]
        self.kills = 0
        self.birds = [[AREA_X + 20 + 20 * c, AREA_Y + 20 + 20 * r, 2] for r in range(self.ROWS) for c in range(self.COLS)]
        self.fdir = 1
        self.boss_active = False
        self.boss_pos: list | None = None
        self.boss_bullet: list | None = None  # [x, y, vx, vy]
        self.boss_timer = 0
        self.boss_fade = 0

    def _step(self, action: list[float]) -> float:
        move, fire = F32(action[0]), F32(action[1])
        reward = 0.0
        speed = self.SPEED * 0.2 if self.stun > 0 else self.SPEED
        self.ax = clip(self.ax + move * speed, F32(AREA_X), F32(AREA_X + AREA - self.AGENT_W))
        if self.stun > 0:
            self.stun -= 1
        if fire > 0 and self.reload == 0:
            self.shots.append([self.ax + self.AGENT_W // 2, self.AGENT_Y - 6])
            self.reload = self.RELOAD
        if self.reload > 0:
            self.reload -= 1
        for s in self.shots:
            s[1] -= self.SHOT_SPEED
        self.shots = [s for s in self.shots if s[1] > AREA_Y]

        shift = 1.0 * self.fdir
        if self.birds:
            xs = [b[0] for b in self.birds]
            if max(xs) + self.BIRD_W + shift > AREA_X + AREA or min(xs) + shift < AREA_X:
                self.fdir = -self.fdir
                for b in self.birds:
                    b[1] += self.BIRD_DROP
            else:
                for b in self.birds:
                    b[0] += shift
        for bx, by, _ in self.birds:
            if self.rng.random() < self.DROP_P:
                self.drops.append([bx + self.BIRD_W // 2, by + self.BIRD_H])
        for d in self.drops:
            d[1] += self.SHOT_SPEED
        self.drops = [d for d in self.drops if d[1] < AREA_Y + AREA]

        survivors = []
        hw, hh = self.BIRD_W / 2, self.BIRD_H / 2
        for bx, by, hp in self.birds:
            for s in self.shots:
                if abs(s[0] - (bx + hw)) < hw and abs(s[1] - (by + hh)) < hh:
                    hp -= 1
                    self.shots.remove(s)
                    if hp == 0:
                        reward += 1.0
                        self.kills += 1
                    break
            if hp > 0:
                survivors.append([bx, by, hp])
        self.birds = survivors

        # cannon box used by the hit tests (Newt reuses the name for the cannon's centre on the
        # frame the boss fires, so that frame's boss-bullet test is offset by half the cannon)
        hx, hy = self.ax, self.AGENT_Y
        aw, ah = self.AGENT_W / 2, self.AGENT_H / 2
        # Newt removes hit bullets from the list it is iterating over, which skips the bullet
        # right after each hit; the same loop keeps that behaviour
        for d in self.drops:
            if abs(d[0] - (hx + aw)) < aw and abs(d[1] - (hy + ah)) < ah:
                reward -= 2.0
                self.drops.remove(d)
                self.stun = self.STUN
                self.reload = self.STUN

        if not self.boss_active and self.t >= self.BOSS_STEP:
            self.boss_active = True
            self.boss_pos = [AREA_X + AREA // 2, AREA_Y + 20]
            self.boss_timer = self.BOSS_PERIOD
            self.boss_fade = 5
        if self.boss_active:
            if self.boss_fade > 0:
                self.boss_fade -= 1
            else:
                jx = self.rng.uniform(-0.03, 0.03) * AREA
                jy = self.rng.uniform(-0.01, 0.01) * AREA
                half_w, half_h = self.BOSS_SPAN / 2, self.BOSS_HEIGHT / 2
                cx = clip(AREA_X + AREA // 2 + jx, AREA_X + half_w, AREA_X + AREA - half_w)
                cy = clip(AREA_Y + 20 + jy, AREA_Y + half_h, AREA_Y + AREA // 2 - half_h)
                self.boss_pos = [cx, cy]
                self.boss_timer -= 1
                if self.boss_timer <= 0 and self.boss_bullet is None:
                    ox, oy = cx, cy + half_h
                    hx, hy = self.ax + aw, self.AGENT_Y + ah
                    dx, dy = float(hx) - ox, hy - oy
                    n = max(1e-6, float(np.hypot(dx, dy)))
                    self.boss_bullet = [ox, oy, self.BOSS_SPEED * dx / n, self.BOSS_SPEED * dy / n]
                    self.boss_timer = self.BOSS_PERIOD
        b = self.boss_bullet
        if b is not None:
            b[0] += b[2]
            b[1] += b[3]
            if b[0] - self.BOSS_R < AREA_X or b[0] + self.BOSS_R > AREA_X + AREA:
                b[2] = -b[2]
            if b[1] - self.BOSS_R >= AREA_Y + AREA:
                self.boss_bullet = None
            elif abs(b[0] - float(hx + aw)) < aw + self.BOSS_R and abs(b[1] - (hy + ah)) < ah + self.BOSS_R:
                reward -= 2.0
                self.stun = self.STUN
                self.reload = self.STUN
                self.boss_bullet = None
        if not self.birds:
            reward += 1.0
        return reward

    def _obs(self) -> list[float]:
        n = self.ROWS * self.COLS
        out = [self.ax / SCREEN, self.reload / 5.0, len(self.birds) / n]
        out += [b[0] / SCREEN for b in self.birds] + [0.0] * (n - len(self.birds))
        out.append(max((b[1] for b in self.birds), default=AREA_Y) / SCREEN)
        for items, k in ((self.shots, self.MAX_SHOTS), (self.drops, self.MAX_DROPS)):
            for x, y in items[:k]:
                out += [x / SCREEN, y / SCREEN]
            out += [0.0, 0.0] * (k - min(k, len(items)))
        out.append(self.stun / 10.0)
        b = self.boss_bullet
        if b is None:
            out += [0.0, 0.0, 0.0, 0.0]
        else:
            out += [clip(b[0] / SCREEN, 0.0, 1.0), clip(b[1] / SCREEN, 0.0, 1.0),
                    clip(b[2] / self.BOSS_SPEED, -1.0, 1.0), clip(b[3] / self.BOSS_SPEED, -1.0, 1.0)]
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        if self.stun > 0:
            c = int(140 * self.stun / self.STUN) // 2
            pg.draw.rect(surf, (c + 20, c // 6, 0), (AREA_X, AREA_Y, AREA, AREA))
        pg.draw.rect(surf, (255, 255, 255), (AREA_X, AREA_Y, AREA, AREA), 2)
        x, y = int(self.ax), self.AGENT_Y
        pg.draw.rect(surf, (255, 140, 0), (x, y, self.AGENT_W, self.AGENT_H))
        mx = x + self.AGENT_W // 2
        pg.draw.polygon(surf, (255, 140, 0), [(mx - 4, y), (mx + 4, y), (mx, y - 6)])
        for bx, by, hp in self.birds:
            pts = [(bx, by), (bx + self.BIRD_W // 2, by + self.BIRD_H), (bx + self.BIRD_W, by)]
            pg.draw.polygon(surf, (200, 200, 200), pts, 0 if hp == 2 else 2)
        for sx, sy in self.shots:
            pg.draw.rect(surf, (255, 140, 0), (int(sx - 2), int(sy - 6), 4, 6))
        for dx, dy in self.drops:
            pg.draw.rect(surf, (200, 200, 200), (int(dx - 2), int(dy), 4, 6))
        if self.boss_active and self.boss_pos is not None:
            cx, cy = self.boss_pos
            hw, hh = self.BOSS_SPAN / 2, self.BOSS_HEIGHT / 2
            pts = [(int(cx - hw), int(cy + hh)), (int(cx - hw / 2), int(cy - hh)), (int(cx), int(cy + hh)),
                   (int(cx + hw / 2), int(cy - hh)), (int(cx + hw), int(cy + hh))]
            shade = 200 if self.boss_fade == 0 else int(200 * (1.0 - self.boss_fade / 5.0))
            pg.draw.lines(surf, (shade, shade, shade), False, pts, 3)
        if self.boss_bullet is not None:
            pg.draw.circle(surf, (200, 200, 200), (int(self.boss_bullet[0]), int(self.boss_bullet[1])), self.BOSS_R)
