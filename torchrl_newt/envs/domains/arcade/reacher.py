"""Reacher as Newt defines it: a two-link planar arm reaches for a target (held-out tasks).

Follows Newt's MiniArcade reacher (github.com/nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/pygame/reacher.py``): torque-driven hinges with linear and quadratic
velocity damping, integrated in float32 exactly as Newt's NumPy code does, its joint limits,
target sampling (in that order of random draws) and its sparse reward. ``pygame-reacher-easy``
and ``-hard`` exist at that commit; ``-var1`` and ``-var2`` (unequal link lengths) come from
the later Newt code that defines them (the ``tdmpc2/`` copy in the fork
github.com/Harshit2807161/newt-exp).
"""

from __future__ import annotations

import math

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame

__all__ = ["ReacherEasyGame", "ReacherGame", "ReacherHardGame", "ReacherVar1Game", "ReacherVar2Game"]

DT = 0.02
#: wrist (second joint) limit, radians
Q2_LIMIT = math.radians(160.0)
TORQUE = (90.0, 180.0)
DAMP_LIN = (4.0, 38.0)
DAMP_QUAD = (1.2, 0.05)
MAX_W = 30.0
FINGER_R = 0.01

_f32 = np.float32
# the float32 constants of Newt's step
_DT32 = _f32(DT)
_TORQUE32 = tuple(_f32(v) for v in TORQUE)
_LIN32 = tuple(_f32(v) for v in DAMP_LIN)
_QUAD32 = tuple(_f32(v) for v in DAMP_QUAD)
_MAX_W32 = _f32(MAX_W)

# drawing (pixels)
_AREA_X, _AREA = 20, 184
_CX = _CY = _AREA_X + _AREA // 2


class ReacherGame(ArcadeGame):
    """Reacher: move the fingertip of a two-link arm onto a target.

    The arm is anchored at the arena's centre; the shoulder turns freely, the wrist within
    ±160°. Each joint is driven by a torque (``90 a0``, ``180 a1``) against damping
    ``d_lin w + d_quad |w| w`` (``d_lin = (4, 38)``, ``d_quad = (1.2, 0.05)``); speeds are
    clipped to ±30 rad/s and the angles advance by ``0.02 w`` (Euler). At reset (in this
    order): shoulder angle ``U(-π, π)``, wrist angle ``U(-160°, 160°)``, target direction
    ``U(0, 2π)`` and distance ``U(0.05, 0.20)`` m from the anchor.

    State vector (6): ``[shoulder angle, wrist angle, target x - fingertip x, target y -
    fingertip y (m, y up), shoulder speed, wrist speed]``. Angles are not wrapped.
    Action (2): the two joint torques.
    Reward per frame: ``1`` while the fingertip is within the target's radius of its centre,
    else ``0``. Score ``clip(R, 0, 200) / 200``.

    Args:
        spec: the task's spec.
        seed: seed of the generator.
        target_size_m: target radius (m).
        l1_m: upper link length (m).
        l2_m: lower link length (m).

    Examples:
        >>> game = ReacherEasyGame(seed=0)
        >>> obs = game.reset(seed=0)
        >>> obs.shape, game.target_r
        ((6,), 0.04)
    """

    obs_dim = 6
    action_dim = 2
    default_episode_length = 200
    target_size_m = 0.04
    l1_m = 0.11
    l2_m = 0.11

    def __init__(self, spec=None, *, seed: int | None = None, target_size_m: float | None = None,
                 l1_m: float | None = None, l2_m: float | None = None) -> None:
        super().__init__(spec, seed=seed)
        self.target_r = float(self.target_size_m if target_size_m is None else target_size_m)
        self.l1 = float(self.l1_m if l1_m is None else l1_m)
        self.l2 = float(self.l2_m if l2_m is None else l2_m)
        self.reach = self.l1 + self.l2
        self.px_per_m = (_AREA * 0.45) / self.reach

    def fingertip(self) -> tuple[float, float]:
        """Fingertip position (m; x right, y up) by forward kinematics."""
        x1, y1 = self.l1 * math.cos(self.q1), self.l1 * math.sin(self.q1)
        qh = self.q1 + self.q2
        return x1 + self.l2 * math.cos(qh), y1 + self.l2 * math.sin(qh)

    def distance(self) -> float:
        """Fingertip-to-target distance (m)."""
        fx, fy = self.fingertip()
        return math.hypot(self.tx - fx, self.ty - fy)

    def _reset(self) -> None:
        self.q1 = self.uniform(-math.pi, math.pi)
        self.q2 = self.uniform(-Q2_LIMIT, Q2_LIMIT)
        self.w1 = self.w2 = 0.0
        angle = self.uniform(0.0, 2 * math.pi)
        r = min(self.uniform(0.05, 0.20), self.reach - (FINGER_R + 0.005))
        self.tx, self.ty = r * math.cos(angle), r * math.sin(angle)

    def _step(self, action: list[float]) -> float:
        speeds = []
        for a, w, torque, lin, quad in zip(action, (self.w1, self.w2), _TORQUE32, _LIN32, _QUAD32):
            w = _f32(w)
            drag = lin * w + quad * abs(w) * w
            acc = torque * _f32(a) - drag
            w = w + _DT32 * acc
            speeds.append(float(min(max(w, -_MAX_W32), _MAX_W32)))
        self.w1, self.w2 = speeds
        self.q1 += DT * self.w1
        self.q2 += DT * self.w2
        if self.q2 > Q2_LIMIT:
            self.q2, self.w2 = Q2_LIMIT, 0.0
        if self.q2 < -Q2_LIMIT:
            self.q2, self.w2 = -Q2_LIMIT, 0.0
        d = self.distance()
        self.info["distance_m"] = d
        return 1.0 if d <= self.target_r else 0.0

    def _obs(self) -> list[float]:
        fx, fy = self.fingertip()
        return [self.q1, self.q2, self.tx - fx, self.ty - fy, self.w1, self.w2]

    def _to_px(self, x: float, y: float) -> tuple[int, int]:
        return int(_CX + x * self.px_per_m), int(_CY - y * self.px_per_m)

    def _draw(self, surf, pg) -> None:
        for yy in range(0, SCREEN, 4):
            t = yy / SCREEN
            pg.draw.rect(surf, (int(120 + 40 * t), int(160 - 70 * t), int(160 - 30 * t)), (0, yy, SCREEN, 4))
        pg.draw.rect(surf, (60, 220, 255), (_AREA_X, _AREA_X, _AREA, _AREA), width=2, border_radius=14)
        pg.draw.rect(surf, (255, 70, 200), (_AREA_X + 3, _AREA_X + 3, _AREA - 6, _AREA - 6), width=1, border_radius=12)
        base = self._to_px(0.0, 0.0)
        elbow = self._to_px(self.l1 * math.cos(self.q1), self.l1 * math.sin(self.q1))
        tip = self._to_px(*self.fingertip())
        target = self._to_px(self.tx, self.ty)
        pg.draw.circle(surf, (210, 70, 60), target, max(2, int(self.target_r * self.px_per_m)))
        pg.draw.line(surf, (180, 180, 180), base, elbow, 6)
        pg.draw.line(surf, (255, 140, 0), elbow, tip, 6)
        pg.draw.circle(surf, (160, 160, 160), base, 4)
        pg.draw.circle(surf, (255, 200, 120), elbow, 4)
        pg.draw.circle(surf, (230, 230, 230), tip, max(2, int(FINGER_R * self.px_per_m)))


class ReacherEasyGame(ReacherGame):
    """Reacher Easy: target radius 0.04 m, links 0.11 + 0.11 m (see :class:`ReacherGame`)."""


class ReacherHardGame(ReacherGame):
    """Reacher Hard: a small target, radius 0.025 m (see :class:`ReacherGame`)."""

    target_size_m = 0.025


class ReacherVar1Game(ReacherGame):
    """Reacher variant 1: long upper link (0.13 m), short lower link (0.09 m); target 0.04 m."""

    l1_m, l2_m = 0.13, 0.09


class ReacherVar2Game(ReacherGame):
    """Reacher variant 2: short upper link (0.09 m), long lower link (0.13 m); target 0.04 m."""

    l1_m, l2_m = 0.09, 0.13
