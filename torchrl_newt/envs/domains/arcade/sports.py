"""Two-player ball games against a scripted opponent: Pong and Air Hockey."""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip

__all__ = ["AirHockeyGame", "PongGame"]


class PongGame(ArcadeGame):
    """Pong: the agent's paddle (right) rallies against an AI paddle (left).

    The ball bounces off the top and bottom walls; a paddle hit sends it back faster (x1.05 up
    to 9 px/frame horizontally) at an angle set by where it hits the paddle (edge hits are
    steep) plus some of the paddle's motion. The AI paddle follows the ball at up to
    2.6 px/frame once it comes into the AI's side, so steep returns beat it. After a point the ball is served from the centre.

    State vector (6): ``[ball x / 224, ball y / 224, ball vx / 10, ball vy / 10,
    agent paddle centre y / 224, AI paddle centre y / 224]``.
    Action (1): paddle velocity (``6 * a`` px/frame, down positive).
    Reward: ``+1`` when the ball passes the AI, ``-1`` when it passes the agent.
    Score ``(clip(R, -3, 3) + 3) / 6``.

    Examples:
        >>> game = PongGame(seed=0)
        >>> game.reset(seed=0).shape
        (6,)
    """

    obs_dim = 6
    action_dim = 1
    PADDLE_H, PADDLE_W = 36.0, 6.0
    AGENT_X, AI_X = SCREEN - 14.0, 8.0  # left edges of the paddles
    BALL_R = 4.0
    SPEED, AI_SPEED = 6.0, 2.6

    def _reset(self) -> None:
        self.py = self.ay = SCREEN / 2  # agent / AI paddle centres
        self.pvy = self.avy = 0.0
        self.serve_dir = 1.0 if self.rng.random() < 0.5 else -1.0
        self.points = [0, 0]  # agent, AI
        self._serve()

    def _serve(self) -> None:
        self.bx, self.by = SCREEN / 2, self.uniform(60.0, SCREEN - 60.0)
        self.bvx = 4.0 * self.serve_dir
        self.bvy = self.uniform(1.0, 3.0) * (1.0 if self.rng.random() < 0.5 else -1.0)
        self.serve_dir = -self.serve_dir
        self.wait = 8

    def _paddle_hit(self, center: float, pvy: float, direction: float) -> None:
        off = clip((self.by - center) / (self.PADDLE_H / 2 + self.BALL_R), -1.0, 1.0)
        speed = min(9.0, abs(self.bvx) * 1.05)
        self.bvx = direction * speed
        self.bvy = clip(7.0 * off + 0.3 * pvy, -8.0, 8.0)

    def _step(self, action: list[float]) -> float:
        half = self.PADDLE_H / 2
        self.pvy = self.SPEED * action[0]
        self.py = clip(self.py + self.pvy, half, SCREEN - half)
        # the AI tracks the ball once it approaches in the AI's half, otherwise re-centres
        target = self.by if self.bvx < 0 and self.bx < 0.6 * SCREEN else SCREEN / 2
        self.avy = clip(target - self.ay, -self.AI_SPEED, self.AI_SPEED)
        self.ay = clip(self.ay + self.avy, half, SCREEN - half)
        if self.wait > 0:
            self.wait -= 1
            return 0.0
        self.bx += self.bvx
        self.by += self.bvy
        r = self.BALL_R
        if self.by < r or self.by > SCREEN - r:
            self.by = clip(self.by, r, SCREEN - r)
            self.bvy = -self.bvy
        if self.bvx > 0 and self.AGENT_X - r <= self.bx <= self.AGENT_X + self.PADDLE_W and abs(self.by - self.py) <= half + r:
            self.bx = self.AGENT_X - r
            self._paddle_hit(self.py, self.pvy, -1.0)
        elif self.bvx < 0 and self.AI_X <= self.bx <= self.AI_X + self.PADDLE_W + r and abs(self.by - self.ay) <= half + r:
            self.bx = self.AI_X + self.PADDLE_W + r
            self._paddle_hit(self.ay, self.avy, 1.0)
        if self.bx < -r:
            self.points[0] += 1
            self._serve()
            return 1.0
        if self.bx > SCREEN + r:
            self.points[1] += 1
            self._serve()
            return -1.0
        return 0.0

    def _obs(self) -> list[float]:
        return [self.bx / SCREEN, self.by / SCREEN, self.bvx / 10.0, self.bvy / 10.0, self.py / SCREEN, self.ay / SCREEN]

    def _draw(self, surf, pg) -> None:
        surf.fill((15, 25, 20))
        for yy in range(0, SCREEN, 16):
            pg.draw.rect(surf, (90, 110, 100), (SCREEN // 2 - 1, yy, 2, 8))
        half = self.PADDLE_H / 2
        pg.draw.rect(surf, (240, 160, 60), (int(self.AGENT_X), int(self.py - half), int(self.PADDLE_W), int(self.PADDLE_H)))
        pg.draw.rect(surf, (200, 200, 220), (int(self.AI_X), int(self.ay - half), int(self.PADDLE_W), int(self.PADDLE_H)))
        pg.draw.circle(surf, (255, 255, 255), (int(self.bx), int(self.by)), int(self.BALL_R))
        for i, (n, col) in enumerate(((self.points[1], (200, 200, 220)), (self.points[0], (240, 160, 60)))):
            for k in range(min(n, 10)):
                pg.draw.rect(surf, col, (SCREEN // 2 + (-14 - 6 * k if i == 0 else 10 + 6 * k), 6, 4, 4))


class AirHockeyGame(ArcadeGame):
    """Air Hockey: the agent's mallet (bottom half) plays a puck against an AI mallet (top half).

    The puck glides with some friction (x0.985 per frame, at most 12 px/frame), bounces off the
    side and end walls and enters a goal through the 110 px mouth in the middle of each end.
    Mallets are velocity-controlled discs that cannot leave their half; mallet-puck contacts
    bounce the puck (restitution 0.9) and also pass on part of the mallet's motion, so the
    striking direction steers the shot. The AI guards its goal
    at up to 3 px/frame and strikes the puck when it idles (below 3 px/frame) in its half.

    State vector (12): puck, agent mallet and AI mallet, each ``(x / 224, y / 224, vx / 12,
    vy / 12)``.
    Action (2): mallet velocity along x and y (``6 * a`` px/frame).
    Reward: ``+1`` per goal scored in the top goal, ``-1`` per goal conceded; the puck is put back
    on the centre spot after a goal. Score ``clip(R, 0, 10) / 10``.

    Examples:
        >>> game = AirHockeyGame(seed=0)
        >>> game.reset(seed=0).shape
        (12,)
    """

    obs_dim = 12
    action_dim = 2
    PUCK_R, MALLET_R = 8.0, 12.0
    GOAL_W = 110.0
    SPEED, AI_SPEED = 6.0, 3.0
    VMAX = 12.0
    FRICTION = 0.985

    def _reset(self) -> None:
        self.mx, self.my, self.mvx, self.mvy = SCREEN / 2, SCREEN - 30.0, 0.0, 0.0
        self.ox, self.oy, self.ovx, self.ovy = SCREEN / 2, 30.0, 0.0, 0.0
        self.goals = [0, 0]
        self._face_off()

    def _face_off(self) -> None:
        self.px, self.py = SCREEN / 2 + self.uniform(-30.0, 30.0), SCREEN / 2
        ang = self.uniform(0.0, 2 * math.pi)
        sp = self.uniform(0.5, 1.5)
        self.pvx, self.pvy = sp * math.cos(ang), sp * math.sin(ang)

    def _collide(self, x: float, y: float, vx: float, vy: float) -> None:
        dx, dy = self.px - x, self.py - y
        d = math.hypot(dx, dy)
        rr = self.PUCK_R + self.MALLET_R
        if d >= rr:
            return
        if d < 1e-6:
            dx, dy, d = 0.0, 1.0, 1.0
        nx, ny = dx / d, dy / d
        self.px, self.py = x + nx * rr, y + ny * rr
        rel = (self.pvx - vx) * nx + (self.pvy - vy) * ny
        if rel < 0:
            # elastic bounce off the (heavy) mallet, plus a share of the mallet's own motion so
            # that the striking direction steers the shot
            self.pvx += -1.9 * rel * nx * 0.6 + 1.6 * vx * 0.4
            self.pvy += -1.9 * rel * ny * 0.6 + 1.6 * vy * 0.4

    def _move_mallet(self, x: float, y: float, vx: float, vy: float, top: bool) -> tuple[float, float]:
        r = self.MALLET_R
        ylo, yhi = (r, SCREEN / 2 - r) if top else (SCREEN / 2 + r, SCREEN - r)
        return clip(x + vx, r, SCREEN - r), clip(y + vy, ylo, yhi)

    def _ai(self) -> tuple[float, float]:
        if self.py < SCREEN / 2 and math.hypot(self.pvx, self.pvy) < 3.0:
            tx, ty = self.px, self.py - 6.0  # strike: come from behind the puck
            if self.oy > self.py:
                tx = self.px + (20.0 if self.ox > self.px else -20.0)
                ty = self.py - 20.0
        else:  # guard: shade towards the puck's side of the goal mouth
            tx, ty = SCREEN / 2 + clip(0.6 * (self.px - SCREEN / 2), -self.GOAL_W / 2, self.GOAL_W / 2), 26.0
        dx, dy = tx - self.ox, ty - self.oy
        d = math.hypot(dx, dy)
        s = min(self.AI_SPEED, d) / max(d, 1e-6)
        return dx * s, dy * s

    def _step(self, action: list[float]) -> float:
        nx, ny = self._move_mallet(self.mx, self.my, self.SPEED * action[0], self.SPEED * action[1], top=False)
        self.mvx, self.mvy, self.mx, self.my = nx - self.mx, ny - self.my, nx, ny
        ovx, ovy = self._ai()
        nx, ny = self._move_mallet(self.ox, self.oy, ovx, ovy, top=True)
        self.ovx, self.ovy, self.ox, self.oy = nx - self.ox, ny - self.oy, nx, ny
        self.px += self.pvx
        self.py += self.pvy
        self._collide(self.mx, self.my, self.mvx, self.mvy)
        self._collide(self.ox, self.oy, self.ovx, self.ovy)
        self.pvx *= self.FRICTION
        self.pvy *= self.FRICTION
        sp = math.hypot(self.pvx, self.pvy)
        if sp > self.VMAX:
            self.pvx, self.pvy = self.pvx * self.VMAX / sp, self.pvy * self.VMAX / sp
        r = self.PUCK_R
        if self.px < r or self.px > SCREEN - r:
            self.px, self.pvx = clip(self.px, r, SCREEN - r), -0.9 * self.pvx
        in_mouth = abs(self.px - SCREEN / 2) < self.GOAL_W / 2 - r
        if self.py < -r:
            self.goals[0] += 1
            self._face_off()
            return 1.0
        if self.py > SCREEN + r:
            self.goals[1] += 1
            self._face_off()
            return -1.0
        if not in_mouth and (self.py < r or self.py > SCREEN - r):
            self.py, self.pvy = clip(self.py, r, SCREEN - r), -0.9 * self.pvy
        return 0.0

    def _obs(self) -> list[float]:
        v = self.VMAX
        return [self.px / SCREEN, self.py / SCREEN, self.pvx / v, self.pvy / v,
                self.mx / SCREEN, self.my / SCREEN, self.mvx / v, self.mvy / v,
                self.ox / SCREEN, self.oy / SCREEN, self.ovx / v, self.ovy / v]

    def _draw(self, surf, pg) -> None:
        surf.fill((225, 235, 245))
        pg.draw.line(surf, (200, 60, 60), (0, SCREEN // 2), (SCREEN, SCREEN // 2), 2)
        pg.draw.circle(surf, (200, 60, 60), (SCREEN // 2, SCREEN // 2), 28, 2)
        g0, g1 = int(SCREEN / 2 - self.GOAL_W / 2), int(self.GOAL_W)
        pg.draw.rect(surf, (40, 40, 60), (g0, 0, g1, 5))
        pg.draw.rect(surf, (40, 40, 60), (g0, SCREEN - 5, g1, 5))
        pg.draw.rect(surf, (90, 110, 160), (0, 0, SCREEN, SCREEN), 3)
        pg.draw.circle(surf, (20, 20, 20), (int(self.px), int(self.py)), int(self.PUCK_R))
        pg.draw.circle(surf, (60, 90, 200), (int(self.ox), int(self.oy)), int(self.MALLET_R))
        pg.draw.circle(surf, (230, 120, 30), (int(self.mx), int(self.my)), int(self.MALLET_R))
        pg.draw.circle(surf, (255, 255, 255), (int(self.mx), int(self.my)), 4)
        pg.draw.circle(surf, (255, 255, 255), (int(self.ox), int(self.oy)), 4)
