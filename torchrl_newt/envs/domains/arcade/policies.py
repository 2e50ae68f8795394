"""Hand-written reference policies for the MiniArcade games.

They read the game's state (a "privileged" policy, not learned) and show that each score rule
rewards sensible play: the tests assert they score clearly above uniformly random actions.
:func:`evaluate` plays full episodes and applies the task's score rule.

Examples:
    >>> from torchrl_newt.envs.domains.arcade import make_game
    >>> game = make_game("pygame-cartpole-balance")
    >>> act = scripted_policy("pygame-cartpole-balance")
    >>> game.reset(seed=0).shape, act(game).shape
    ((4,), (1,))
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame, clip
from torchrl_newt.envs.registry import get_task

__all__ = ["POLICIES", "evaluate", "random_policy", "scripted_policy"]

Policy = Callable[[ArcadeGame], np.ndarray]
SCREEN_MID = 112.0


def _cowboy(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.runners import RUNNER_W, RUNNER_X

    # a full jump clears 40 px from its 5th to its 18th frame: take off 40-70 px before the cactus
    gap = g.hitbox[0] - (RUNNER_X + RUNNER_W)
    return np.array([1.0 if 40 <= gap <= 70 or g.collided else -1.0])


_COIN_JUMPS = (0.0, 0.35, 0.45, 0.55, 0.62, 0.7, 0.77, 0.85, 0.92, 1.0)


def _coins_caught(g, delay: int, a: float, horizon: int = 28) -> int:
    """Coins of the current trail a jump of strength ``a`` after ``delay`` frames would catch."""
    from torchrl_newt.envs.domains.arcade.runners import (
        COIN_R,
        GRAVITY,
        JUMP_SPEED,
        RUNNER_H,
        RUNNER_W,
        RUNNER_X,
        STAND_Y,
        rects_collide,
    )

    y, vy = g.y, g.vy
    coins = [[c[0], c[1]] for c in g.coins if c[2]]
    caught = 0
    for t in range(horizon):
        if t == delay and a > 0 and y >= STAND_Y - 1e-3:
            vy = -a * JUMP_SPEED
        vy += GRAVITY
        y += vy
        if y > STAND_Y:
            y, vy = STAND_Y, 0.0
        me = (RUNNER_X, int(y), RUNNER_W, RUNNER_H)
        for c in coins:
            c[0] -= g.scroll
            if c[1] is not None and rects_collide(me, (int(c[0] - COIN_R), int(c[1] - COIN_R), 2 * COIN_R, 2 * COIN_R)):
                c[1] = None
                caught += 1
    return caught


def _coinrun(g) -> np.ndarray:
    # plan the jump (strength and take-off frame) that catches most coins of the trail; jump
    # now only when waiting would catch fewer
    if not g.on_ground() or not any(c[2] and 0 < c[0] < 200 for c in g.coins):
        return np.array([-1.0])
    best = max(((_coins_caught(g, d, a), d, a == 0.0, a) for d in range(4) for a in _COIN_JUMPS))
    _, delay, _, a = best
    return np.array([a if delay == 0 and a > 0 else -1.0])


def _spaceship(g) -> np.ndarray:
    cy_ship = g.y + g.H / 2
    ahead = [c for c in g.coins if c[2] and c[0] + g.COIN_R > g.x]
    ty = ahead[0][1] if ahead else SCREEN_MID
    if g.rock is not None and g.rock[0] + g.ROCK_R > g.x - 4:
        gap = g.rock[0] - (g.x + g.W)
        if gap < 90 and abs(g.rock[1] - ty) < g.ROCK_R + g.H:
            # the next coin sits too close to the asteroid: dodge to the roomier side
            ty = g.rock[1] + (g.ROCK_R + g.H + 6) * (1 if g.rock[1] < SCREEN_MID else -1)
    ax = 1.5 * ((40.0 - g.x) / 10.0) - 1.0 * g.vx
    ay = 0.5 * (ty - cy_ship) - 2.5 * g.vy
    return np.clip(np.array([ax, ay]), -1.0, 1.0)


def _rocket(g) -> np.ndarray:
    dx, dy = g.coin_x - g.x, g.coin_y - g.y
    ax_des = 0.08 * dx - 0.6 * g.vx
    ay_des = 0.08 * dy - 0.6 * g.vy
    for o in g.rocks:
        # steer away from where each asteroid will be a few frames from now
        rx, ry = g.x + 4 * g.vx - (o["x"] + 4 * o["vx"]), g.y + 4 * g.vy - (o["y"] + 4 * o["vy"])
        d = math.hypot(rx, ry)
        if d < 50.0:
            push = 1.5 * (50.0 - d) / 50.0
            ax_des += push * rx / max(d, 1e-6)
            ay_des += push * ry / max(d, 1e-6)
    return np.clip(np.array([ax_des, ay_des]) / g.THRUST, -1.0, 1.0)


def _pong(g) -> np.ndarray:
    # follow the ball; when it heads our way, meet it where it will cross our paddle's face
    y = g.ball_y
    if g.ball_vx < 0:
        x, vy = g.ball_x, g.ball_vy
        top, bottom = g.AREA_Y, g.AREA_Y + g.AREA
        while x > g.AGENT_X + g.PADDLE_W:
            x += g.ball_vx
            y += vy
            if y - g.BALL < top or y + g.BALL > bottom:
                vy = -vy
    target = y - g.PADDLE_H / 2
    return np.array([clip((target - g.agent_y) / g.SPEED, -1.0, 1.0)])


def _air_hockey(g) -> np.ndarray:
    if g.py < SCREEN / 2 - 4:  # puck in the AI's half: guard our goal
        tx, ty = SCREEN / 2 + 0.5 * (g.px - SCREEN / 2), SCREEN - 36.0
    else:
        px, py = g.px + g.pvx, g.py + g.pvy
        gx = SCREEN / 2 + (-34.0 if g.ox > SCREEN / 2 else 34.0)
        dx, dy = gx - px, -py
        d = math.hypot(dx, dy)
        ux, uy = dx / d, dy / d
        reach = g.PUCK_R + g.MALLET_R
        along = (g.mx - px) * ux + (g.my - py) * uy
        if along < 0:  # behind the puck: push it towards the goal
            tx, ty = px - ux * (reach - 6.0), py - uy * (reach - 6.0)
            lateral = (g.mx - px) * uy - (g.my - py) * ux
            if abs(lateral) > 5.0:
                tx, ty = px - ux * (reach + 2.0), py - uy * (reach + 2.0)
        else:  # get back behind it without touching it
            side = 1.0 if g.mx > px else -1.0
            tx, ty = px + side * (reach + 8.0), py + reach + 10.0
    return np.clip(np.array([(tx - g.mx) / g.SPEED, (ty - g.my) / g.SPEED]), -1.0, 1.0)


def _bird_attack(g) -> np.ndarray:
    cx = float(g.ax) + g.AGENT_W / 2
    target = cx
    if g.birds:
        # the bird closest to us horizontally, led by the formation's march
        target = min((b[0] + g.BIRD_W / 2 + g.fdir * (g.AGENT_Y - b[1]) / g.SHOT_SPEED for b in g.birds),
                     key=lambda x: abs(x - cx))
    # sidestep bird bullets (and the boss bullet) about to land on us
    danger = [d[0] for d in g.drops if g.AGENT_Y - 40 < d[1] < g.AGENT_Y + g.AGENT_H]
    if g.boss_bullet is not None and g.boss_bullet[1] > g.AGENT_Y - 60:
        danger.append(g.boss_bullet[0])
    for x in danger:
        if abs(x - target) < g.AGENT_W:
            target = x + (g.AGENT_W + 6 if x < cx else -(g.AGENT_W + 6))
    fire = 1.0 if g.birds and abs(target - cx) < 6.0 else -1.0
    return np.array([clip((target - cx) / g.SPEED, -1.0, 1.0), fire])


def _highway(g) -> np.ndarray:
    lane = g.lane()

    def clearance(ln):  # free road ahead of our front bumper in lane ln (pixels)
        if not 0 <= ln < g.LANES:
            return -1e9
        gaps = [c["x"] - (g.x + g.CAR_L) for c in g.cars if c["active"] and c["lane"] == ln and c["x"] + c["len"] > g.x - 4]
        return min(gaps) if gaps else 1e9

    best = lane
    if clearance(lane) < 90.0:
        best = max((lane, lane - 1, lane + 1), key=lambda ln: (min(clearance(ln), 400.0), ln == lane))
    ty = g.lane_center(best) - g.CAR_H / 2
    return np.clip(np.array([0.3 * (25.0 - g.x) - 1.0 * g.vx, 0.35 * (ty - g.y) - 1.2 * g.vy]), -1.0, 1.0)


def _landing(g) -> np.ndarray:
    half = g.DECK_W / 2
    # predict the ship a little ahead (it turns at the edges) and hover above it, then descend
    lead = clip(g.sx + 6.0 * g.sv, half, SCREEN - half)
    tx = lead - g.HW / 2
    ex = tx - g.x
    above = g.DECK_Y - (g.y + g.HH)
    if g.contact:
        return np.array([clip(0.5 * (g.sx - g.HW / 2 - g.x), -1.0, 1.0), 0.0])
    target_vy = 4.0 if abs(ex) < 12.0 else (2.5 if above > 40.0 else -1.0)
    target_vy = min(target_vy, 0.5 + 0.06 * above)
    ax = 0.15 * ex + 0.5 * (g.sv - g.vx)
    ay = (target_vy - g.vy) * 0.8 - 0.2 / 0.6
    return np.clip(np.array([ax, ay]), -1.0, 1.0)


def _chase_evade(g) -> np.ndarray:
    if g.agent_evades:
        # run away from the chaser, sliding along the wall instead of into it
        ux, uy = g.x - g.ox, g.y - g.oy
        n = math.hypot(ux, uy) or 1.0
        ux, uy = ux / n, uy / n
        cx, cy = g.x - g.CX, g.y - g.CY
        dc = math.hypot(cx, cy) or 1.0
        if dc > 0.6 * g.R:
            tx, ty = -cy / dc, cx / dc  # tangent, pick the side away from the chaser
            if tx * ux + ty * uy < 0:
                tx, ty = -tx, -ty
            ux, uy = ux + 1.5 * tx - 0.6 * cx / dc, uy + 1.5 * ty - 0.6 * cy / dc
    else:
        ux, uy = g.ox + 4 * g.ovx - g.x, g.oy + 4 * g.ovy - g.y  # intercept
    n = math.hypot(ux, uy) or 1.0
    return np.array([ux / n, uy / n])


def _coconut(g) -> np.ndarray:
    # pick the reachable spot that keeps farthest from where coconuts will come down near us
    lo, hi = g.LO + g.BODY_R, g.LO + g.SIZE - g.BODY_R
    cands = [lo + k * (hi - lo) / 20 for k in range(21)]

    def risk(x):
        r = 0.0
        for n in g.nuts:
            if not n["falling"] or n["y"] > g.AGENT_Y + n["r"]:
                continue
            t = max(0.0, (g.AGENT_Y - n["y"]) / n["vy"])
            land = n["x"] + n["vx"] * t
            if t < 40:
                r += max(0.0, 30.0 - abs(land - x)) * (40 - t)
        return r + 0.02 * abs(x - g.x)

    tx = min(cands, key=risk)
    return np.array([clip(0.3 * (tx - g.x) - 0.8 * g.vx, -1.0, 1.0)])


def _cartpole(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.cartpole import GRAVITY, HALF_LEN

    x, xd, th, thd = float(g.x), float(g.xd), float(g.th), float(g.thd)
    # reward needs the *unwrapped* angle near 0, so only catch the pole on that side
    if abs(th) < 0.6:  # near upright: linear state feedback
        u = 1.0 * x + 1.6 * xd + 16.0 * th + 3.0 * thd
    else:  # steer the swing's energy to that of the upright pole (cart kept near the middle)
        energy = 0.5 * (4.0 / 3.0) * HALF_LEN * thd * thd + GRAVITY * (math.cos(th) - 1.0)
        direction = 1.0 if thd * math.cos(th) > 0 else -1.0
        u = 0.5 * energy * direction - 0.3 * x - 0.3 * xd
        if abs(thd) < 0.05 and abs(energy) > 1.0:  # at rest hanging: kick it
            u = 1.0
    return np.array([clip(u, -1.0, 1.0)])


def _point_maze(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.point_maze import shortest_path

    path = shortest_path(g.grid, g.cell_of(g.ax, g.ay), g.cell_of(g.gx, g.gy))
    tx, ty = (g.gx, g.gy) if len(path) <= 1 else g.cell_center(path[1])
    wx, wy = g.wind_here()
    vx, vy = tx - g.ax - wx, ty - g.ay - wy
    return np.clip(np.array([vx / g.SPEED, vy / g.SPEED]), -1.0, 1.0)


def _reacher(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.reacher import Q2_LIMIT

    # inverse kinematics of the target (elbow on the side of the current wrist angle), then PD
    d = min(math.hypot(g.tx, g.ty), g.reach - 1e-6)
    c2 = clip((d * d - g.l1 * g.l1 - g.l2 * g.l2) / (2 * g.l1 * g.l2), -1.0, 1.0)
    q2 = math.copysign(math.acos(c2), g.q2 if g.q2 else 1.0)
    q2 = clip(q2, -Q2_LIMIT, Q2_LIMIT)
    q1 = math.atan2(g.ty, g.tx) - math.atan2(g.l2 * math.sin(q2), g.l1 + g.l2 * math.cos(q2))
    e1 = (q1 - g.q1 + math.pi) % (2 * math.pi) - math.pi
    e2 = q2 - g.q2
    return np.clip(np.array([1.0 * e1 - 0.17 * g.w1, 1.0 * e2 - 0.05 * g.w2]), -1.0, 1.0)


POLICIES: dict[str, Policy] = {
    "pygame-point-maze-var1": _point_maze,
    "pygame-point-maze-var2": _point_maze,
    "pygame-point-maze-var3": _point_maze,
    "pygame-point-maze-var4": _point_maze,
    "pygame-point-maze-var5": _point_maze,
    "pygame-point-maze-var6": _point_maze,
    "pygame-point-maze-var7": _point_maze,
    "pygame-point-maze-var8": _point_maze,
    "pygame-reacher-easy": _reacher,
    "pygame-reacher-hard": _reacher,
    "pygame-reacher-var1": _reacher,
    "pygame-reacher-var2": _reacher,
    "pygame-cartpole-balance": _cartpole,
    "pygame-cartpole-swingup": _cartpole,
    "pygame-cartpole-balance-sparse": _cartpole,
    "pygame-cartpole-swingup-sparse": _cartpole,
    "pygame-cartpole-tremor": _cartpole,
    "pygame-chase-evade": _chase_evade,
    "pygame-coconut-dodge": _coconut,
    "pygame-highway": _highway,
    "pygame-landing": _landing,
    "pygame-bird-attack": _bird_attack,
    "pygame-pong": _pong,
    "pygame-air-hockey": _air_hockey,
    "pygame-spaceship": _spaceship,
    "pygame-rocket-collect": _rocket,
    "pygame-cowboy": _cowboy,
    "pygame-coinrun": _coinrun,
}


def scripted_policy(task: str) -> Policy:
    """The reference policy of a task: ``policy(game) -> action``.

    Raises:
        KeyError: no scripted policy exists for the task.
    """
    name = get_task(task).name
    if name not in POLICIES:
        raise KeyError(f"no scripted policy for {name!r}; have: {sorted(POLICIES)}")
    return POLICIES[name]


def random_policy(seed: int = 0) -> Policy:
    """Uniformly random actions in ``[-1, 1]`` (its own generator, independent of the game's).

    Examples:
        >>> from torchrl_newt.envs.domains.arcade import make_game
        >>> pi = random_policy(0)
        >>> pi(make_game("pygame-spaceship")).shape
        (2,)
    """
    rng = np.random.default_rng(seed)
    return lambda game: rng.uniform(-1.0, 1.0, size=game.action_dim)


def evaluate(task: str, policy: Policy | str = "scripted", episodes: int = 3, seed: int = 0) -> dict[str, float]:
    """Play ``episodes`` full episodes and return the mean return and score.

    Args:
        task: a ``pygame-*`` task name.
        policy: a policy, ``"scripted"`` or ``"random"``.
        episodes: number of episodes (seeds ``seed, seed + 1, ...``).
        seed: first episode seed.

    Returns:
        ``{"return": mean return, "score": mean score, "min_score": ..., "max_score": ...}``.

    Examples:
        >>> out = evaluate("pygame-cartpole-balance", "random", episodes=1)
        >>> 0.0 <= out["score"] <= 1.0
        True
    """
    from torchrl_newt.envs.domains.arcade import make_game

    spec = get_task(task)
    game = make_game(spec)
    if policy == "scripted":
        policy = scripted_policy(spec.name)
    elif policy == "random":
        policy = random_policy(seed)
    returns, scores = [], []
    for ep in range(episodes):
        game.reset(seed=seed + ep)
        total, info = 0.0, {}
        for _ in range(spec.episode_length):
            _, r, info = game.step(policy(game))
            total += r
        returns.append(total)
        scores.append(spec.score(total, success=info.get("success", False)))
    return {
        "return": float(np.mean(returns)),
        "score": float(np.mean(scores)),
        "min_score": float(np.min(scores)),
        "max_score": float(np.max(scores)),
    }
