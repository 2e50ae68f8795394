"""Two-player ball games against a scripted opponent: Pong and Air Hockey.

Both follow Newt's definitions (nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pygame/pong.py`` and ``air_hockey.py``): same constants, rules, opponent
behaviour, reward terms and order of random draws, so a seed and an action sequence give Newt's
states, observations and rewards. As in Newt, the opponent's reaction state (delay counter and
"ball in my zone" flag) is not cleared by a reset: it carries over into the next episode.
"""

from __future__ import annotations

import logging
import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip, rects_overlap

__all__ = ["AirHockeyGame", "PongGame"]

log = logging.getLogger(__name__)


class PongGame(ArcadeGame):
    """Pong: the agent's paddle (left) rallies against an AI paddle (right) in a 184 px court.

    The court spans ``[20, 204]`` on both axes. Paddles are 6 x 40 px with their left edges at
    x = 30 (agent) and x = 188 (AI); the agent's paddle moves ``8.5 * a`` px/frame. The ball
    (a 7 px square) is served from the centre at 8 px/frame, at an angle uniform in
    ``[-pi/2, pi/2)`` towards a random side; it keeps its speed, its vertical velocity flips when
    it is within 7 px of the top or bottom wall, and its horizontal velocity flips when it
    touches a paddle while moving towards it. Once the ball is past 30 % of the court the AI
    waits a reaction delay (6-9 frames for a slow ball down to 2-6 for a fast one), then chases
    the ball at ``8.5 * (0.5 .. 0.85)`` px/frame, faster the closer the ball.

    State vector (6): ``[ball x / 224, ball y / 224, ball vx / 8, ball vy / 8,
    agent paddle top / 224, AI paddle top / 224]`` (paddle tops, as Newt reports them).
    Action (1): paddle velocity (down positive).
    Reward: ``+1`` when the ball passes the AI's side, ``-1`` when it passes the agent's.
    Score ``clip((R + 3) / 6, 0, 1)``.

    Examples:
        >>> game = PongGame(seed=0)
        >>> game.reset(seed=0).shape
        (6,)
    """

    obs_dim = 6
    action_dim = 1
    AREA_X = AREA_Y = 20
    AREA = 184
    PADDLE_W, PADDLE_H = 6, 40
    AGENT_X = AREA_X + 10
    AI_X = AREA_X + AREA - 10 - PADDLE_W
    SPEED = 8.5
    BALL = 7
    BALL_SPEED = 8.0

    def __init__(self, spec=None, *, seed: int | None = None, **kwargs) -> None:
        super().__init__(spec, seed=seed, **kwargs)
        self.reaction_delay = 0
        self.in_reaction_zone = False

    def _reset(self) -> None:
        self.agent_y = self.opp_y = SCREEN // 2 - self.PADDLE_H // 2
        self._serve()
        self.points = [0, 0]  # agent, AI

    def _serve(self) -> None:
        self.ball_x, self.ball_y = SCREEN // 2, SCREEN // 2
        angle = self.rng.uniform(-0.5, 0.5) * math.pi
        direction = (-1, 1)[self.randint(0, 2)]
        self.ball_vx = direction * self.BALL_SPEED * math.cos(angle)
        self.ball_vy = self.BALL_SPEED * math.sin(angle)

    def _ai(self) -> None:
        progress = (self.ball_x - self.AREA_X) / self.AREA  # 0 at the agent's wall, 1 at the AI's
        if progress <= 0.3:
            self.in_reaction_zone = False
            return
        if not self.in_reaction_zone:
            speed = math.hypot(self.ball_vx, self.ball_vy)
            norm = clip((speed - 3.0) / 5.0, 0.0, 1.0)
            low, high = int(6 - 4 * norm), int(9 - 3 * norm)
            self.reaction_delay = self.randint(low, high + 1)
            self.in_reaction_zone = True
        if self.reaction_delay > 0:
            self.reaction_delay -= 1
            return
        factor = 0.5 + 0.35 * clip((progress - 0.3) / 0.65, 0.0, 1.0)
        if self.ball_y - self.PADDLE_H / 2 > self.opp_y:
            self.opp_y += self.SPEED * factor
        else:
            self.opp_y -= self.SPEED * factor

    def _step(self, action: list[float]) -> float:
        top, bottom = self.AREA_Y, self.AREA_Y + self.AREA
        self.agent_y = clip(self.agent_y + action[0] * self.SPEED, top, bottom - self.PADDLE_H)
        self._ai()
        self.opp_y = clip(self.opp_y, top, bottom - self.PADDLE_H)
        self.ball_x += self.ball_vx
        self.ball_y += self.ball_vy
        if self.ball_y - self.BALL < top or self.ball_y + self.BALL > bottom:
            self.ball_vy = -self.ball_vy
        # Newt tests the hits on integer (truncated) rectangles
        b = self.BALL
        bx, by = int(self.ball_x - b / 2), int(self.ball_y - b / 2)
        if self.ball_vx < 0 and rects_overlap(bx, by, b, b, self.AGENT_X, int(self.agent_y), self.PADDLE_W, self.PADDLE_H):
            self.ball_vx = -self.ball_vx
        if self.ball_vx > 0 and rects_overlap(bx, by, b, b, self.AI_X, int(self.opp_y), self.PADDLE_W, self.PADDLE_H):
            self.ball_vx = -self.ball_vx
        if self.ball_x < self.AREA_X:
            self.points[1] += 1
            self._serve()
            return -1.0
        if self.ball_x > self.AREA_X + self.AREA:
            self.points[0] += 1
            self._serve()
            return 1.0
        return 0.0

    def _obs(self) -> list[float]:
        return [self.ball_x / SCREEN, self.ball_y / SCREEN, self.ball_vx / self.BALL_SPEED, self.ball_vy / self.BALL_SPEED,
                self.agent_y / SCREEN, self.opp_y / SCREEN]

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        pg.draw.rect(surf, (255, 255, 255), (self.AREA_X, self.AREA_Y, self.AREA, self.AREA), 2)
        pg.draw.rect(surf, (255, 140, 0), (self.AGENT_X, int(self.agent_y), self.PADDLE_W, self.PADDLE_H))
        pg.draw.rect(surf, (180, 180, 180), (self.AI_X, int(self.opp_y), self.PADDLE_W, self.PADDLE_H))
        b = self.BALL
        pg.draw.rect(surf, (255, 255, 255), (int(self.ball_x - b / 2), int(self.ball_y - b / 2), b, b))
        for i, (n, col) in enumerate(((self.points[0], (255, 140, 0)), (self.points[1], (180, 180, 180)))):
            for k in range(min(n, 10)):
                pg.draw.rect(surf, col, (SCREEN // 2 + (-14 - 6 * k if i == 0 else 10 + 6 * k), 8, 4, 4))


class AirHockeyGame(ArcadeGame):
    """Air Hockey: the agent's mallet (bottom half) against an AI mallet (top half).

    The rink is 158 x 176 px (``x in [33, 191]``, ``y in [24, 200]``) with 56 px goal mouths
    (``x in [84, 140]``) in the top (AI) and bottom (agent) walls; a goal counts once the puck's
    centre is 10 px behind the wall line. The agent's mallet (radius 10) moves ``7.5 * a`` px per
    frame and stays in its half; the AI's mallet heads home, or, after a reaction delay
    (5-10 frames for a slow puck down to 1-4 for a fast one) while the puck approaches in its
    half, at the puck, at ``0.85 * 7.5`` px/frame plus N(0, 0.25) jitter on each axis. The puck
    (radius 6) is served from the centre at 6 px/frame towards the side that just conceded; mallet
    hits bounce it with restitution 0.9 plus 0.35 of the mallet's velocity, walls with 0.9;
    its velocity is damped by 0.2 % a frame and capped at 12 px/frame.

    State vector (12): puck ``(x / 224, y / 224, vx / 12, vy / 12)``, agent mallet
    ``(x / 224, y / 224, vx / 7.5, vy / 7.5)``, AI mallet (same).
    Action (2): mallet velocity along x and y.
    Reward: ``+1`` per goal scored, ``-1`` per goal conceded. Score ``clip(R / 10, 0, 1)``.

    Examples:
        >>> game = AirHockeyGame(seed=0)
        >>> game.reset(seed=0).shape
        (12,)
    """

    obs_dim = 12
    action_dim = 2
    RINK_H = SCREEN - 48
    RINK_W = min(int(RINK_H * 0.9), SCREEN - 20)
    RINK_X, RINK_Y = (SCREEN - RINK_W) // 2, (SCREEN - RINK_H) // 2
    GOAL_W = max(56, int(RINK_W * 0.35))
    GOAL_L = RINK_X + (RINK_W - GOAL_W) // 2
    GOAL_R = GOAL_L + GOAL_W
    GOAL_DEPTH = 10
    PUCK_R, MALLET_R = 6, 10
    SPEED = 7.5
    PUCK_SPEED, PUCK_VMAX = 6.0, 12.0
    RESTITUTION, DAMPING, HIT_BOOST = 0.9, 0.002, 0.35
    MIDLINE = RINK_Y + RINK_H * 0.5
    DEFENSE_LINE = RINK_Y + int(RINK_H * 0.35)

    def __init__(self, spec=None, *, seed: int | None = None, **kwargs) -> None:
        super().__init__(spec, seed=seed, **kwargs)
        self.opp_delay = 0
        self.opp_in_zone = False

    def _reset(self) -> None:
        self.points = [0, 0]  # agent, AI
        self._face_off()
        self._serve(to_top=self.randint(0, 2) == 0)

    def _face_off(self) -> None:
        cx = self.RINK_X + self.RINK_W / 2
        self.mx, self.my = cx, self.RINK_Y + self.RINK_H - 30
        self.ox, self.oy = cx, self.RINK_Y + 30
        self.mvx = self.mvy = self.ovx = self.ovy = 0.0
        self.home = (cx, self.RINK_Y + 28)

    def _serve(self, to_top: bool) -> None:
        self.px, self.py = self.RINK_X + self.RINK_W / 2, self.RINK_Y + self.RINK_H / 2
        angle = self.rng.uniform(-0.35, 0.35) * math.pi
        side = (-1, 1)[self.randint(0, 2)]
        self.pvx = self.PUCK_SPEED * math.cos(angle) * side
        self.pvy = (-1 if to_top else 1) * self.PUCK_SPEED * abs(math.sin(angle) * 0.7 + 0.3)

    def _clamp_mallet(self, x: float, y: float, top: bool) -> tuple[float, float]:
        r = self.MALLET_R
        x = clip(x, self.RINK_X + r, self.RINK_X + self.RINK_W - r)
        if top:
            return x, clip(y, self.RINK_Y + r, self.MIDLINE - r)
        return x, clip(y, self.MIDLINE + r, self.RINK_Y + self.RINK_H - r)

    def _hit(self, cx: float, cy: float, mvx: float, mvy: float) -> None:
        dx, dy = self.px - cx, self.py - cy
        dist = math.hypot(dx, dy)
        overlap = self.MALLET_R + self.PUCK_R - dist
        if overlap <= 0:
            return
        nx, ny = dx / (dist + 1e-8), dy / (dist + 1e-8)
        self.px += nx * (overlap + 0.5)
        self.py += ny * (overlap + 0.5)
        vn = (self.pvx - mvx) * nx + (self.pvy - mvy) * ny
        if vn < 0:
            self.pvx = self.pvx - (1 + self.RESTITUTION) * vn * nx + self.HIT_BOOST * mvx
            self.pvy = self.pvy - (1 + self.RESTITUTION) * vn * ny + self.HIT_BOOST * mvy

    def _ai(self) -> None:
        if self.py < self.MIDLINE + 8 and self.pvy < 0:
            if not self.opp_in_zone:
                norm = clip((math.hypot(self.pvx, self.pvy) - 2.0) / 8.0, 0.0, 1.0)
                low, high = int(5 - 4 * norm), int(10 - 6 * norm)
                self.opp_delay = self.randint(low, high + 1)
                self.opp_in_zone = True
            if self.opp_delay > 0:
                self.opp_delay -= 1
                tx, ty = self.home
            else:
                tx = clip(self.px, self.RINK_X + self.MALLET_R, self.RINK_X + self.RINK_W - self.MALLET_R)
                ty = min(self.py + 12.0, self.DEFENSE_LINE - 2.0)
        else:
            self.opp_in_zone = False
            tx, ty = self.home
        dx, dy = tx - self.ox, ty - self.oy
        dist = math.hypot(dx, dy)
        if dist > 1e-5:
            mag = min(self.SPEED * 0.85, dist)
            jx, jy = self.rng.normal(0.0, 0.25), self.rng.normal(0.0, 0.25)
            self.ovx = dx / dist * mag + jx
            self.ovy = dy / dist * mag + jy
        else:
            self.ovx = self.ovy = 0.0
        self.ox, self.oy = self._clamp_mallet(self.ox + self.ovx, self.oy + self.ovy, top=True)

    def _step(self, action: list[float]) -> float:
        self.mvx, self.mvy = action[0] * self.SPEED, action[1] * self.SPEED
        self.mx, self.my = self._clamp_mallet(self.mx + self.mvx, self.my + self.mvy, top=False)
        self._ai()
        self.px += self.pvx
        self.py += self.pvy
        self._hit(self.mx, self.my, self.mvx, self.mvy)
        self._hit(self.ox, self.oy, self.ovx, self.ovy)
        r = self.PUCK_R
        if self.px - r < self.RINK_X:
            self.px, self.pvx = self.RINK_X + r, self.pvx * -self.RESTITUTION
        elif self.px + r > self.RINK_X + self.RINK_W:
            self.px, self.pvx = self.RINK_X + self.RINK_W - r, self.pvx * -self.RESTITUTION
        in_mouth = self.GOAL_L <= self.px <= self.GOAL_R
        reward = 0.0
        top, bottom = self.RINK_Y, self.RINK_Y + self.RINK_H
        if self.py <= top - self.GOAL_DEPTH and in_mouth:
            reward = 1.0
            self.points[0] += 1
            self._face_off()
            self._serve(to_top=True)
        elif self.py - r < top and not in_mouth:
            self.py, self.pvy = top + r, self.pvy * -self.RESTITUTION
        if self.py >= bottom + self.GOAL_DEPTH and in_mouth:
            reward = -1.0
            self.points[1] += 1
            self._face_off()
            self._serve(to_top=False)
        elif self.py + r > bottom and not in_mouth:
            self.py, self.pvy = bottom - r, self.pvy * -self.RESTITUTION
        self.pvx *= 1.0 - self.DAMPING
        self.pvy *= 1.0 - self.DAMPING
        speed = (self.pvx ** 2 + self.pvy ** 2) ** 0.5
        if speed > self.PUCK_VMAX:
            scale = self.PUCK_VMAX / (speed + 1e-8)
            self.pvx *= scale
            self.pvy *= scale
        return reward

    def _obs(self) -> list[float]:
        v, s = self.PUCK_VMAX, self.SPEED
        return [self.px / SCREEN, self.py / SCREEN, self.pvx / v, self.pvy / v,
                self.mx / SCREEN, self.my / SCREEN, self.mvx / s, self.mvy / s,
                self.ox / SCREEN, self.oy / SCREEN, self.ovx / s, self.ovy / s]

    def _draw(self, surf, pg) -> None:
        surf.fill((0, 0, 0))
        pg.draw.rect(surf, (200, 200, 200), (self.RINK_X, self.RINK_Y, self.RINK_W, self.RINK_H), 2)
        pg.draw.rect(surf, (0, 0, 0), (self.GOAL_L, self.RINK_Y - 2, self.GOAL_W, 8))
        pg.draw.rect(surf, (0, 0, 0), (self.GOAL_L, self.RINK_Y + self.RINK_H - 2, self.GOAL_W, 8))
        pg.draw.line(surf, (80, 80, 80), (self.RINK_X, int(self.MIDLINE)), (self.RINK_X + self.RINK_W, int(self.MIDLINE)), 2)
        pg.draw.circle(surf, (255, 255, 255), (int(self.px), int(self.py)), self.PUCK_R)
        pg.draw.circle(surf, (255, 140, 0), (int(self.mx), int(self.my)), self.MALLET_R)
        pg.draw.circle(surf, (180, 180, 180), (int(self.ox), int(self.oy)), self.MALLET_R)
        for i, (n, col) in enumerate(((self.points[1], (180, 180, 180)), (self.points[0], (255, 140, 0)))):
            y = 8 if i == 0 else SCREEN - 12
            for k in range(min(n, 10)):
                pg.draw.rect(surf, col, (SCREEN // 2 - 30 + 6 * k, y, 4, 4))
