"""Bird Attack: a Space-Invaders-style shooter against a marching flock of birds."""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["BirdAttackGame"]

AREA_LO, AREA_HI = 20.0, 204.0  # square play area


class BirdAttackGame(ArcadeGame):
    """Bird Attack: shoot down a flock of 16 birds (2 rows of 8) while dodging their droppings.

    The flock marches sideways (1 px/frame), stepping down 4 px at each wall; every bird drops
    a bullet with probability 0.006 per frame. Birds take 2 hits. From frame 250 a boss bird
    hovers at the top and fires a bullet aimed at the agent every 45 frames (it bounces off the
    side walls); the boss cannot be shot down. A hit stuns the agent for 12 frames (slow, cannot
    fire). The agent fires upward (8 px/frame) at most every 6 frames, 5 bullets in flight.

    State vector (55): ``[agent x / 224, reload / 6, fraction of birds alive]``, the x of each of
    the 16 bird slots / 224 (``-1`` once shot down), ``formation top y / 224``, 5 agent bullets
    ``(x, y) / 224``, 10 bird bullets ``(x, y) / 224`` (zeros for empty slots), ``stun / 12``,
    boss bullet ``(x / 224, y / 224, vx / 4.5, vy / 4.5)`` (zeros when absent).
    Action (2): ``[horizontal move (5 px/frame at 1), fire (a > 0)]``.
    Reward: ``+1`` per bird shot down, ``-1`` per hit taken. Score ``clip(R, 0, 16) / 16``.

    Examples:
        >>> game = BirdAttackGame(seed=0)
        >>> game.reset(seed=0).shape
        (55,)
    """

    obs_dim = 55
    action_dim = 2
    ROWS, COLS = 2, 8
    BIRD_W, BIRD_H, SPACING = 12.0, 10.0, 20.0
    AGENT_W, AGENT_H, AGENT_Y = 14.0, 8.0, 184.0
    MAX_SHOTS, MAX_DROPS = 5, 10
    BOSS_FRAME, BOSS_PERIOD, BOSS_SPEED, BOSS_R = 250, 45, 4.5, 6.0

    def _reset(self) -> None:
        self.ax = SCREEN / 2 - self.AGENT_W / 2
        self.reload = 0
        self.stun = 0
        self.fx, self.fy = 30.0, 36.0  # formation top-left
        self.fdir = 1.0
        self.hp = [2] * (self.ROWS * self.COLS)
        self.shots: list[list[float]] = []
        self.drops: list[list[float]] = []
        self.boss_timer = self.BOSS_PERIOD
        self.boss_bullet: list[float] | None = None
        self.flash = 0

    def bird_pos(self, i: int) -> tuple[float, float]:
        """Top-left corner of bird slot ``i`` (row-major)."""
        return self.fx + (i % self.COLS) * self.SPACING, self.fy + (i // self.COLS) * self.SPACING

    @property
    def boss_active(self) -> bool:
        return self.t >= self.BOSS_FRAME

    def _step(self, action: list[float]) -> float:
        reward = 0.0
        speed = 5.0 * (0.3 if self.stun else 1.0)
        self.ax = clip(self.ax + speed * action[0], AREA_LO, AREA_HI - self.AGENT_W)
        if self.reload > 0:
            self.reload -= 1
        if action[1] > 0 and self.reload == 0 and not self.stun and len(self.shots) < self.MAX_SHOTS:
            self.shots.append([self.ax + self.AGENT_W / 2, self.AGENT_Y - 4.0])
            self.reload = 6
        if self.stun:
            self.stun -= 1
        for s in self.shots:
            s[1] -= 8.0
        # flock march
        alive = [i for i, h in enumerate(self.hp) if h > 0]
        if alive:
            cols = [i % self.COLS for i in alive]
            left = self.fx + min(cols) * self.SPACING
            right = self.fx + max(cols) * self.SPACING + self.BIRD_W
            if (self.fdir > 0 and right + 1.0 > AREA_HI) or (self.fdir < 0 and left - 1.0 < AREA_LO):
                self.fdir = -self.fdir
                self.fy += 4.0
            else:
                self.fx += self.fdir
        # bullets hit birds
        kept = []
        for s in self.shots:
            hit = False
            if s[1] > AREA_LO:
                for i in alive:
                    bx, by = self.bird_pos(i)
                    if bx <= s[0] <= bx + self.BIRD_W and by <= s[1] <= by + self.BIRD_H and self.hp[i] > 0:
                        self.hp[i] -= 1
                        if self.hp[i] == 0:
                            reward += 1.0
                        hit = True
                        break
                if not hit:
                    kept.append(s)
        self.shots = kept
        # birds drop bullets
        for i in alive:
            if self.hp[i] > 0 and self.rng.random() < 0.006 and len(self.drops) < self.MAX_DROPS:
                bx, by = self.bird_pos(i)
                self.drops.append([bx + self.BIRD_W / 2, by + self.BIRD_H])
        cx = self.ax + self.AGENT_W / 2
        kept = []
        for d in self.drops:
            d[1] += 4.0
            if abs(d[0] - cx) < self.AGENT_W / 2 + 1 and self.AGENT_Y <= d[1] <= self.AGENT_Y + self.AGENT_H + 4:
                reward -= self._hurt()
            elif d[1] < AREA_HI:
                kept.append(d)
        self.drops = kept
        # boss
        if self.boss_active:
            self.boss_timer -= 1
            if self.boss_timer <= 0 and self.boss_bullet is None:
                ox, oy = SCREEN / 2, AREA_LO + 14.0
                dx, dy = cx - ox, self.AGENT_Y + self.AGENT_H / 2 - oy
                n = math.hypot(dx, dy)
                self.boss_bullet = [ox, oy, self.BOSS_SPEED * dx / n, self.BOSS_SPEED * dy / n]
                self.boss_timer = self.BOSS_PERIOD
        if self.boss_bullet is not None:
            b = self.boss_bullet
            b[0] += b[2]
            b[1] += b[3]
            if not AREA_LO + self.BOSS_R <= b[0] <= AREA_HI - self.BOSS_R:
                b[0], b[2] = clip(b[0], AREA_LO + self.BOSS_R, AREA_HI - self.BOSS_R), -b[2]
            if abs(b[0] - cx) < self.AGENT_W / 2 + self.BOSS_R and abs(b[1] - (self.AGENT_Y + self.AGENT_H / 2)) < self.AGENT_H / 2 + self.BOSS_R:
                reward -= self._hurt()
                self.boss_bullet = None
            elif b[1] > AREA_HI:
                self.boss_bullet = None
        if self.flash:
            self.flash -= 1
        return reward

    def _hurt(self) -> float:
        self.stun = 12
        self.flash = 6
        return 1.0

    def _obs(self) -> list[float]:
        out = [self.ax / SCREEN, self.reload / 6.0, sum(h > 0 for h in self.hp) / len(self.hp)]
        out += [self.bird_pos(i)[0] / SCREEN if h > 0 else -1.0 for i, h in enumerate(self.hp)]
        out.append(self.fy / SCREEN)
        for lst, n in ((self.shots, self.MAX_SHOTS), (self.drops, self.MAX_DROPS)):
            for k in range(n):
                out += [lst[k][0] / SCREEN, lst[k][1] / SCREEN] if k < len(lst) else [0.0, 0.0]
        out.append(self.stun / 12.0)
        b = self.boss_bullet
        out += [b[0] / SCREEN, b[1] / SCREEN, b[2] / self.BOSS_SPEED, b[3] / self.BOSS_SPEED] if b is not None else [0.0] * 4
        return out

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        lo, size = int(AREA_LO), int(AREA_HI - AREA_LO)
        if self.flash:
            pg.draw.rect(surf, (90, 20, 10), (lo, lo, size, size))
        pg.draw.rect(surf, (255, 255, 255), (lo, lo, size, size), 2)
        for i, h in enumerate(self.hp):
            if h > 0:
                bx, by = self.bird_pos(i)
                pts = [(bx, by), (bx + self.BIRD_W / 2, by + self.BIRD_H), (bx + self.BIRD_W, by)]
                pg.draw.polygon(surf, (210, 210, 210), pts, 0 if h == 2 else 2)
        if self.boss_active:
            cx, cy = SCREEN / 2, AREA_LO + 14.0
            pts = [(cx - 30, cy + 7), (cx - 15, cy - 7), (cx, cy + 7), (cx + 15, cy - 7), (cx + 30, cy + 7)]
            pg.draw.lines(surf, (230, 90, 90), False, pts, 3)
        for x, y in self.shots:
            pg.draw.rect(surf, (255, 140, 0), (int(x) - 1, int(y) - 5, 3, 6))
        for x, y in self.drops:
            pg.draw.rect(surf, (200, 200, 200), (int(x) - 1, int(y), 3, 5))
        if self.boss_bullet is not None:
            pg.draw.circle(surf, (230, 90, 90), (int(self.boss_bullet[0]), int(self.boss_bullet[1])), int(self.BOSS_R))
        x = int(self.ax)
        pg.draw.rect(surf, (255, 140, 0), (x, int(self.AGENT_Y), int(self.AGENT_W), int(self.AGENT_H)))
        pg.draw.polygon(surf, (255, 140, 0), [(x + 3, int(self.AGENT_Y)), (x + 11, int(self.AGENT_Y)), (x + 7, int(self.AGENT_Y) - 6)])
