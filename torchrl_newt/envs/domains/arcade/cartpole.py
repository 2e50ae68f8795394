"""Cartpole as Newt defines it: balance, swing-up, their sparse variants and the "tremor" variant.

Follows Newt's MiniArcade cartpole (github.com/nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/pygame/cartpole.py``): its constants, reward terms and the order in which
it draws random numbers, so that the same seed and actions give the same states and rewards.

A pole hinged on a cart that rolls on a rail (the cart is the one actuated joint): the classic
Gym cart-pole equations (pole as a uniform rod of half-length 0.6 m, no friction), integrated
with explicit Euler steps of 25 ms; the action pushes the cart with up to 11 N. The pole angle
is *not* wrapped: after a full turn it reads ``±2π``, which earns nothing (only ``|θ| < π/2``
is rewarded). The cart may leave the rail's usable length ``|x| <= 2.4`` m but earns nothing
there.

Numerics: the swing-up start is stored in float32 (Newt builds it as a float32 array), and since
float32 numbers stay float32 under NumPy's arithmetic the whole swing-up trajectory is float32;
the balance start is float64. Both are reproduced here.
"""

from __future__ import annotations

import math

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame

__all__ = [
    "CartpoleBalanceGame",
    "CartpoleBalanceSparseGame",
    "CartpoleSwingupGame",
    "CartpoleSwingupSparseGame",
    "CartpoleTremorGame",
]

GRAVITY, M_CART, M_POLE, HALF_LEN = 9.81, 0.9, 0.11, 0.6
TOTAL_MASS = M_POLE + M_CART
POLE_MOMENT = M_POLE * HALF_LEN
FORCE, TAU, X_LIMIT = 11.0, 0.025, 2.4
HALF_PI = math.pi / 2
#: half-width of the uniform start noise of every state entry
START_NOISE = 0.065
#: sparse variants: reward 1 while ``|θ| <`` this (and the cart is on the rail)
SPARSE_ANGLE = 0.15

# drawing geometry (pixels), as in Newt's scene
_AREA_X, _AREA = 20, 184
_CART_W, _CART_H = 28, 14
_CART_Y = _AREA_X + _AREA - 50
_PX_PER_M = (_AREA - _CART_W) / (2 * X_LIMIT)


class CartpoleBalanceGame(ArcadeGame):
    """Cartpole Balance: keep the pole upright, starting near upright.

    State vector (4): ``[cart x (m), cart velocity (m/s), pole angle (rad, 0 = upright, not
    wrapped), pole angular velocity (rad/s)]``, each drawn from ``U(-0.065, 0.065)`` at reset.
    Action (1): horizontal force on the cart (``11 * a`` N).
    Reward per frame: ``1 - min(|angle|, pi/2) / (pi/2)`` while ``|x| <= 2.4`` (0 outside).
    Score ``clip(R, 0, 500) / 500``.

    Examples:
        >>> game = CartpoleBalanceGame(seed=0)
        >>> obs = game.reset(seed=0)
        >>> obs.shape, bool(abs(obs[2]) < 0.1)
        ((4,), True)
    """

    obs_dim = 4
    action_dim = 1
    swingup = False
    sparse = False

    def _reset(self) -> None:
        u = self.uniform
        if self.swingup:
            x, xd = u(-START_NOISE, START_NOISE), u(-START_NOISE, START_NOISE)
            th = math.pi + u(-START_NOISE, START_NOISE)
            thd = u(-START_NOISE, START_NOISE)
            f32 = np.float32
            self.x, self.xd, self.th, self.thd = f32(x), f32(xd), f32(th), f32(thd)
            self._num = f32
        else:
            self.x, self.xd, self.th, self.thd = (u(-START_NOISE, START_NOISE) for _ in range(4))
            self._num = float
        self._reset_scenery()
        self.shake = 0.0  # the tremor's current pole kick (rad/s²)

    def _reset_scenery(self) -> None:
        """Draw the cave decor (ceiling, rocks, lantern phases) in Newt's order of draws."""
        rng = self.rng
        top = _AREA_X + 25
        self.ceiling = [(0, top)]
        for i in range(12):
            self.ceiling.append((int(i * (SCREEN / 11)), top + int(rng.integers(0, 12))))
        self.ceiling.append((SCREEN, top))
        self.rocks = []
        for _ in range(int(rng.integers(5, 8))):
            cx = int(rng.integers(10, SCREEN - 10))
            cy = SCREEN - int(rng.integers(26, 34))
            base = int(rng.integers(4, 8))
            shade = int(rng.integers(70, 110))
            color = (shade, max(0, shade - 25), max(0, shade - 35))
            if int(rng.choice(2)) == 0:  # a round rock
                self.rocks.append((cx - base, cy - base, 2 * base, 2 * base, color))
            else:  # an elongated one
                rx = int(base * self.uniform(1.2, 1.6))
                ry = int(base * self.uniform(0.8, 1.2))
                self.rocks.append((cx - rx, cy - ry, 2 * rx, 2 * ry, color))
        self.lantern_phases = (self.uniform(0.0, 2 * math.pi), self.uniform(0.0, 2 * math.pi))

    def _pole_kick(self) -> float:
        """Extra angular acceleration of the pole this frame (the tremor variant's shake)."""
        return 0.0

    def _step(self, action: list[float]) -> float:
        kick = self._pole_kick()
        num = self._num
        x, xd, th, thd = self.x, self.xd, self.th, self.thd
        c, s = math.cos(th), math.sin(th)
        # operands are cast like NumPy casts Python floats next to float32 scalars
        temp = (num(FORCE * action[0]) + num(POLE_MOMENT) * thd**2 * num(s)) / num(TOTAL_MASS)
        thacc = (num(GRAVITY * s) - num(c) * temp) / num(HALF_LEN * (4.0 / 3.0 - M_POLE * c**2 / TOTAL_MASS))
        if kick:
            thacc = thacc + num(kick)
        xacc = temp - num(POLE_MOMENT) * thacc * num(c) / num(TOTAL_MASS)
        tau = num(TAU)
        self.x = x + tau * xd
        self.xd = xd + tau * xacc
        self.th = th + tau * thd
        self.thd = thd + tau * thacc
        if not abs(self.x) <= X_LIMIT:
            return 0.0
        angle = abs(self.th)
        if self.sparse:
            return 1.0 if angle < SPARSE_ANGLE else 0.0
        if angle >= HALF_PI:
            return 0.0
        return float(num(1.0) - angle / num(HALF_PI))

    def _obs(self) -> list[float]:
        return [float(self.x), float(self.xd), float(self.th), float(self.thd)]

    def _draw(self, surf, pg) -> None:
        for yy in range(0, SCREEN, 4):
            t = yy / SCREEN
            pg.draw.rect(surf, (int(120 - 30 * t), int(90 - 30 * t), int(50 - 15 * t)), (0, yy, SCREEN, 4))
        top = self.ceiling[0][1]
        pg.draw.polygon(surf, (85, 65, 45), [(0, 0), (SCREEN, 0), (SCREEN, top), *reversed(self.ceiling)])
        for lx in (50, SCREEN - 70):
            pg.draw.rect(surf, (160, 160, 160), (lx + 4, top, 4, 14))
            pg.draw.rect(surf, (230, 190, 90), (lx, top + 14, 12, 16))
        pg.draw.rect(surf, (100, 75, 45), (0, SCREEN - 32, SCREEN, 32))
        for x0, y0, w, h, color in self.rocks:
            pg.draw.ellipse(surf, color, (x0, y0, w, h))
        rail_y = _CART_Y + _CART_H // 2
        pg.draw.line(surf, (125, 120, 120), (0, rail_y), (SCREEN, rail_y), 6)
        cx = int(round(_AREA_X + _AREA / 2 + float(self.x) * _PX_PER_M))
        pg.draw.rect(surf, (180, 110, 60), (cx - _CART_W // 2, _CART_Y - _CART_H // 2, _CART_W, _CART_H))
        pg.draw.rect(surf, (190, 185, 185), (cx - _CART_W // 2, _CART_Y - _CART_H // 2, _CART_W, _CART_H), 2)
        for off in (-_CART_W // 3, _CART_W // 3):
            pg.draw.circle(surf, (200, 195, 195), (cx + off, rail_y), 5)
        length = int(round(2 * HALF_LEN * _PX_PER_M))
        base = (cx, _CART_Y - _CART_H // 2)
        th = float(self.th)
        tip = (base[0] + int(round(length * math.sin(th))), base[1] - int(round(length * math.cos(th))))
        pg.draw.line(surf, (200, 140, 80), base, tip, 4)
        if getattr(self, "shake_left", 0) > 0:
            pg.draw.rect(surf, (240, 200, 120), (0, 0, SCREEN, SCREEN), 4)


class CartpoleSwingupGame(CartpoleBalanceGame):
    """Cartpole Swing-up: the pole starts hanging down (``θ = π + U(-0.065, 0.065)``); swing it
    up and balance it.

    Same state, action and reward as :class:`CartpoleBalanceGame`: reward is earned only while
    ``|θ| < π/2`` with the unwrapped angle, so the pole must come up on the side it started
    from (a full turn past upright reads ``2π``). Score ``clip(R, 0, 500) / 500``.

    Examples:
        >>> game = CartpoleSwingupGame(seed=0)
        >>> bool(abs(game.reset(seed=0)[2]) > 3.0)
        True
    """

    swingup = True


class CartpoleBalanceSparseGame(CartpoleBalanceGame):
    """Cartpole Balance (sparse): reward ``1`` per frame with ``|angle| < 0.15`` rad and
    ``|x| <= 2.4``, else ``0``. Score ``clip(R, 0, 500) / 500``.

    Examples:
        >>> CartpoleBalanceSparseGame(seed=0).reset(seed=0).shape
        (4,)
    """

    sparse = True


class CartpoleSwingupSparseGame(CartpoleSwingupGame):
    """Cartpole Swing-up (sparse): swing-up start, sparse reward as in
    :class:`CartpoleBalanceSparseGame`. Score ``clip(R, 0, 500) / 500``.

    Examples:
        >>> CartpoleSwingupSparseGame(seed=0).reset(seed=0).shape
        (4,)
    """

    sparse = True


class CartpoleTremorGame(CartpoleBalanceGame):
    """Cartpole Tremor: balance the pole while mine tremors shake it.

    The first tremor comes after 40-80 frames, the next ones 50-90 frames after the previous one
    started counting down again; a tremor lasts 5-10 frames and adds a constant angular
    acceleration of ``5 * U(0.35, 1)`` rad/s² in a random direction to the pole (dust falls
    from the ceiling meanwhile). Same state, action, reward and score as
    :class:`CartpoleBalanceGame`; the tremor is not observed.

    Examples:
        >>> CartpoleTremorGame(seed=0).reset(seed=0).shape
        (4,)
    """

    def _reset(self) -> None:
        super()._reset()
        self.shake_left = 0
        self.next_shake = int(self.rng.integers(40, 81))
        self.dust: list[list[float]] = []

    def _pole_kick(self) -> float:
        rng = self.rng
        if self.shake_left > 0:
            self.shake_left -= 1
            kick = self.shake
            if rng.random() < 0.3:  # a dust grain falls: x, speed, life, radius
                x = int(rng.integers(20, SCREEN - 20))
                vy = self.uniform(1.5, 4.0)
                life = int(rng.integers(18, 40))
                radius = int(rng.integers(2, 4))
                self.dust.append([x, self.ceiling[0][1] + 5.0, vy, life, radius])
        else:
            kick = 0.0
            self.next_shake -= 1
            if self.next_shake <= 0:
                self.shake_left = int(rng.integers(5, 11))
                sign = int(rng.choice((-1, 1)))
                self.shake = float(self.uniform(0.35, 1.0) * 5.0 * sign)
                self.next_shake = int(rng.integers(50, 91))
        for p in self.dust:
            p[1] += p[2]
            p[3] -= 1
        self.dust = [p for p in self.dust if p[3] > 0 and p[1] < SCREEN - 10]
        return kick

    def _draw(self, surf, pg) -> None:
        super()._draw(surf, pg)
        for x, y, _, _, radius in self.dust:
            pg.draw.circle(surf, (150, 120, 90), (int(x), int(y)), radius)
