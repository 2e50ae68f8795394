"""Hand-written reference policies for the MiniArcade games.

They read the game's state (a "privileged" policy, not learned) and show that each score rule
rewards sensible play: the tests assert they score clearly above uniformly random actions.
:func:`evaluate` plays full episodes and applies the task's score rule.

Examples:
    >>> from torchrl_newt.envs.domains.arcade import make_game
    >>> game = make_game("pygame-pong")
    >>> act = scripted_policy("pygame-pong")
    >>> game.reset(seed=0).shape, act(game).shape
    ((6,), (1,))
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

    gap = g.ox - (RUNNER_X + RUNNER_W)
    return np.array([1.0 if 0.0 <= gap <= 40.0 or g.blocked else -1.0])


def _coinrun(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.runners import (
        COIN_R,
        GRAVITY,
        RUNNER_X,
        STAND_Y,
        coin_jump_speed,
    )

    if not g.supported:
        return np.array([-1.0])
    ahead = [c for c in g.coins if c[2] and c[0] + COIN_R > RUNNER_X]
    if not ahead:
        return np.array([-1.0])
    # aim the jump's apex at the highest coin among the next few
    target = ahead[:3]
    rise = max(STAND_Y - (c[1] - COIN_R) + 2.0 for c in target)
    if rise <= 6.0:
        return np.array([-1.0])
    v = coin_jump_speed(rise)
    t_apex = v / GRAVITY
    arrive = (target[0][0] - RUNNER_X - 8.0) / g.scroll
    if arrive <= t_apex:
        return np.array([math.sqrt(clip(v / 14.0, 0.0025, 1.0))])
    return np.array([-1.0])


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
    dx, dy = g.cx - g.x, g.cy - g.y
    ax_des = 0.06 * dx - 0.4 * g.vx
    ay_des = 0.06 * dy - 0.4 * g.vy
    for o in g.rocks:
        # steer away from where each asteroid will be a few frames from now
        rx, ry = g.x + 4 * g.vx - (o[0] + 4 * o[2]), g.y + 4 * g.vy - (o[1] + 4 * o[3])
        d = math.hypot(rx, ry)
        if d < 55.0:
            push = 0.6 * (55.0 - d) / 55.0
            ax_des += push * rx / max(d, 1e-6)
            ay_des += push * ry / max(d, 1e-6)
    up = g.GRAVITY - ay_des
    main = 2.0 * up / g.MAIN - 1.0
    side = ax_des / g.SIDE
    return np.clip(np.array([main, side]), -1.0, 1.0)


def _pong(g) -> np.ndarray:
    if g.bvx > 0:
        # predict where the ball reaches the paddle (unfolding wall bounces) and hit it with the
        # paddle's edge, sending it steeply away from the AI paddle
        t = max(0.0, (g.AGENT_X - g.bx) / g.bvx)
        y = g.by + g.bvy * t
        period = 2 * (SCREEN - 2 * g.BALL_R)
        y = (y - g.BALL_R) % period
        y = g.BALL_R + (y if y < period / 2 else period - y)
        edge = 0.85 * g.PADDLE_H / 2
        target = y - edge if g.ay > SCREEN / 2 else y + edge
        if t > 12:
            target = y
    else:
        target = SCREEN / 2
    return np.array([clip((target - g.py) / g.SPEED, -1.0, 1.0)])


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
    cx = g.ax + g.AGENT_W / 2
    alive = [i for i, h in enumerate(g.hp) if h > 0]
    target = cx
    if alive:
        # aim where the lowest reachable bird will be when the bullet arrives
        def lead(i):
            bx, by = g.bird_pos(i)
            t = (g.AGENT_Y - by) / 8.0
            return bx + g.BIRD_W / 2 + g.fdir * t

        target = min((lead(i) for i in alive), key=lambda x: abs(x - cx))
    # dodge droppings and the boss bullet about to land on us
    danger = [(d[0], d[1]) for d in g.drops if g.AGENT_Y - 50 < d[1] < g.AGENT_Y + 4]
    if g.boss_bullet is not None and g.boss_bullet[1] > g.AGENT_Y - 70:
        b = g.boss_bullet
        danger.append((b[0] + b[2] * (g.AGENT_Y - b[1]) / max(b[3], 1e-3), b[1]))
    for x, _ in danger:
        if abs(x - target) < g.AGENT_W:
            target = x + (g.AGENT_W + 8 if x < cx else -(g.AGENT_W + 8))
            if not 28 <= target <= 196:
                target = x - (g.AGENT_W + 8) if target > 196 else x + g.AGENT_W + 8
    fire = 1.0 if alive and abs(target - cx) < 4.0 else -1.0
    return np.array([clip((target - cx) / 5.0, -1.0, 1.0), fire])


def _highway(g) -> np.ndarray:
    lane = g.lane()

    def danger(ln):  # how soon a car reaches us in lane ln (pixels of clearance)
        if not 0 <= ln < g.LANES:
            return -1e9
        gaps = [c[1] - (g.x + g.CAR_L) for c in g.cars if c[0] and c[2] == ln and c[1] + c[3] > g.x - 4]
        return min(gaps) if gaps else 1e9

    best = max((lane, lane - 1, lane + 1), key=lambda ln: (min(danger(ln), 400.0), ln == lane))
    if danger(lane) > 80.0:
        best = lane
    ty = g.lane_center(best) - g.CAR_H / 2
    tx = 30.0
    return np.clip(np.array([0.3 * (tx - g.x) - 1.0 * g.vx, 0.35 * (ty - g.y) - 1.2 * g.vy]), -1.0, 1.0)


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
    # pick the reachable spot that keeps farthest from where coconuts will land near our height
    cands = [g.LO + g.BODY_R + k * (g.SIZE - 2 * g.BODY_R) / 20 for k in range(21)]

    def risk(x):
        r = 0.0
        for n in g.nuts:
            if n[1] > g.AGENT_Y + g.NUT_R:
                continue
            t = max(0.0, (g.AGENT_Y - n[1]) / n[3])
            land = n[0] + n[2] * t
            if t < 40:
                r += max(0.0, 30.0 - abs(land - x)) * (40 - t)
        return r + 0.02 * abs(x - g.x)

    tx = min(cands, key=risk)
    return np.array([clip(0.3 * (tx - g.x) - 0.8 * g.vx, -1.0, 1.0)])


def _cartpole(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.cartpole import GRAVITY, HALF_LEN

    th, thd = g.th, g.thd
    if math.cos(th) > 0.8:  # near upright: linear state feedback
        u = 1.0 * g.x + 1.6 * g.xd + 16.0 * th + 3.0 * thd
    else:  # pump energy into the swing (cart kept near the middle)
        energy = 0.5 * (4.0 / 3.0) * HALF_LEN * thd * thd + GRAVITY * (math.cos(th) - 1.0)
        pump = 1.0 if thd * math.cos(th) < 0 else -1.0
        u = pump * min(1.0, 0.4 * max(0.0, -energy) + 0.3) - 0.3 * g.x - 0.3 * g.xd
    return np.array([clip(u, -1.0, 1.0)])


def _point_maze(g) -> np.ndarray:
    from torchrl_newt.envs.domains.arcade.point_maze import shortest_path

    path = shortest_path(g.grid, g.cell_of(g.ax, g.ay), g.cell_of(g.gx, g.gy))
    tx, ty = (g.gx, g.gy) if len(path) <= 1 else g.cell_center(path[1])
    wx, wy = g.wind_here()
    vx, vy = tx - g.ax - wx, ty - g.ay - wy
    return np.clip(np.array([vx / g.SPEED, vy / g.SPEED]), -1.0, 1.0)


POLICIES: dict[str, Policy] = {
    "pygame-point-maze-var1": _point_maze,
    "pygame-point-maze-var2": _point_maze,
    "pygame-point-maze-var3": _point_maze,
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
