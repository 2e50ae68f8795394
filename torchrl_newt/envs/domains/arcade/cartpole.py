"""Cartpole in pure Python: balance, swing-up, their sparse variants and the "tremor" variant.

A pole hinged on a cart that rolls on a rail (the cart is the one actuated joint). Classic
cart-pole equations (pole treated as a uniform rod, no friction) integrated with Euler steps
of 25 ms; the action pushes the cart with up to 11 N. The rail's usable length is
``|x| <= 2.4`` m: the cart may run past it, but earns nothing there.
"""

from __future__ import annotations

import math

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame

__all__ = [
    "CartpoleBalanceGame",
    "CartpoleBalanceSparseGame",
    "CartpoleSwingupGame",
    "CartpoleSwingupSparseGame",
    "CartpoleTremorGame",
]

GRAVITY, M_CART, M_POLE, HALF_LEN = 9.81, 0.9, 0.11, 0.6
FORCE, TAU, X_LIMIT = 11.0, 0.025, 2.4


def wrap_angle(a: float) -> float:
    """Wrap an angle to ``[-pi, pi)``.

    Examples:
        >>> round(wrap_angle(3 * math.pi / 2), 4)
        -1.5708
    """
    return (a + math.pi) % (2 * math.pi) - math.pi


class CartpoleBalanceGame(ArcadeGame):
    """Cartpole Balance: keep the pole upright, starting near upright.

    State vector (4): ``[cart x (m), cart velocity (m/s), pole angle (rad, 0 = upright,
    wrapped to [-pi, pi)), pole angular velocity (rad/s)]``.
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
        self.x, self.xd, self.th, self.thd = u(-0.065, 0.065), u(-0.065, 0.065), u(-0.065, 0.065), u(-0.065, 0.065)
        if self.swingup:
            self.th += math.pi
        self.th = wrap_angle(self.th)
        self.shake = 0.0

    def _disturbance(self) -> float:
        return 0.0

    def _step(self, action: list[float]) -> float:
        dist = self._disturbance()
        f = FORCE * action[0]
        c, s = math.cos(self.th), math.sin(self.th)
        total = M_CART + M_POLE
        tmp = (f + M_POLE * HALF_LEN * self.thd * self.thd * s) / total
        thacc = (GRAVITY * s - c * tmp) / (HALF_LEN * (4.0 / 3.0 - M_POLE * c * c / total)) + dist
        xacc = tmp - M_POLE * HALF_LEN * thacc * c / total
        self.x += TAU * self.xd
        self.xd += TAU * xacc
        self.th = wrap_angle(self.th + TAU * self.thd)
        self.thd += TAU * thacc
        if abs(self.x) > X_LIMIT:
            return 0.0
        if self.sparse:
            return 1.0 if abs(self.th) < 0.15 else 0.0
        return 1.0 - min(abs(self.th), math.pi / 2) / (math.pi / 2)

    def _obs(self) -> list[float]:
        return [self.x, self.xd, self.th, self.thd]

    def _draw(self, surf, pg) -> None:
        for yy in range(0, SCREEN, 8):
            t = yy / SCREEN
            pg.draw.rect(surf, (int(120 - 30 * t), int(90 - 30 * t), int(50 - 15 * t)), (0, yy, SCREEN, 8))
        pg.draw.rect(surf, (85, 65, 45), (0, 0, SCREEN, 40))
        pg.draw.rect(surf, (100, 75, 45), (0, SCREEN - 32, SCREEN, 32))
        rail_y = 154
        scale = (SCREEN - 60) / (2 * X_LIMIT)
        pg.draw.line(surf, (125, 120, 120), (0, rail_y), (SCREEN, rail_y), 6)
        for sx in (-X_LIMIT, X_LIMIT):
            px = int(SCREEN / 2 + sx * scale)
            pg.draw.line(surf, (200, 60, 60), (px, rail_y - 8), (px, rail_y + 8), 3)
        cx = int(min(max(SCREEN / 2 + self.x * scale, -20), SCREEN + 20))
        pg.draw.rect(surf, (180, 110, 60), (cx - 14, rail_y - 14, 28, 14))
        for off in (-9, 9):
            pg.draw.circle(surf, (200, 195, 195), (cx + off, rail_y), 4)
        length = 2 * HALF_LEN * scale
        tip = (cx + length * math.sin(self.th), rail_y - 14 - length * math.cos(self.th))
        pg.draw.line(surf, (230, 170, 100), (cx, rail_y - 14), (int(tip[0]), int(tip[1])), 4)
        if self.shake:
            pg.draw.rect(surf, (240, 200, 120), (0, 0, SCREEN, SCREEN), 4)


class CartpoleSwingupGame(CartpoleBalanceGame):
    """Cartpole Swing-up: the pole starts hanging down; swing it up and balance it.

    Same state, action and reward as :class:`CartpoleBalanceGame` (reward is earned only while
    the pole is above the horizontal). Score ``clip(R, 0, 500) / 500``.

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

    Every 50-90 frames (first after 40-80) a tremor of 5-10 frames adds a constant angular
    acceleration of 1.75-5 rad/s² in a random direction to the pole. Same state, action, reward
    and score as :class:`CartpoleBalanceGame`; the tremor is not observed.

    Examples:
        >>> CartpoleTremorGame(seed=0).reset(seed=0).shape
        (4,)
    """

    def _reset(self) -> None:
        super()._reset()
        self.shake_left = 0
        self.next_shake = self.randint(40, 81)

    def _disturbance(self) -> float:
        if self.shake_left > 0:
            self.shake_left -= 1
        else:
            self.shake = 0.0
            self.next_shake -= 1
            if self.next_shake <= 0:
                self.shake_left = self.randint(5, 11)
                self.shake = self.uniform(0.35, 1.0) * 5.0 * (1.0 if self.rng.random() < 0.5 else -1.0)
                self.next_shake = self.randint(50, 91)
        return self.shake
