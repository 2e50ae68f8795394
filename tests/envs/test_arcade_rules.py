"""Newt's rules for the MiniArcade ball, space, shooter, vehicle and dodging games, worked by hand.

Each test sets up a small situation and checks the outcome against figures computed from the
rules of Newt's games (nicklashansen/newt at commit 75def92, ``tdmpc2/envs/tasks/pygame/``),
not by re-running our implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from torchrl_newt.envs.domains.arcade import make_game

pytestmark = pytest.mark.arcade


def test_spaceship_start_and_thrust():
    game = make_game("pygame-spaceship")
    obs = game.reset(seed=0)
    # the ship's top-left corner starts at (40, 112), at rest
    assert obs[0] == pytest.approx(40 / 224) and obs[1] == pytest.approx(0.5) and obs[2] == obs[3] == 0.0
    obs, _, _ = game.step(np.array([1.0, -1.0]))
    # v += 0.65 a, x += v, then v *= 0.95
    assert obs[0] == pytest.approx(40.65 / 224, rel=1e-6) and obs[1] == pytest.approx(111.35 / 224, rel=1e-6)
    assert obs[2] == pytest.approx(0.6175 / 10, rel=1e-6) and obs[3] == pytest.approx(-0.6175 / 10, rel=1e-6)


def test_spaceship_coin_and_asteroid():
    game = make_game("pygame-spaceship")
    game.reset(seed=0)
    # a coin 12 px right of the ship's nose area scrolls onto the ship: +1; an asteroid on it: -2
    game.coins = [[60.0 + 12.0, 120.0, True], [400.0, 100.0, True]]
    game.rock = [70.0 + 12.0, 110.0, True, 0.0, [18.0] * 10]
    obs, reward, _ = game.step(np.zeros(2))
    assert reward == pytest.approx(1.0 - 2.0)
    assert obs[4] == obs[5] == -1.0  # the collected coin is reported as (-1, -1)
    assert obs[12] == pytest.approx(70.0 / 224)  # the asteroid scrolled 12 px


def test_rocket_collect_proximity_and_speed_cap():
    game = make_game("pygame-rocket-collect")
    game.reset(seed=0)
    game.rocks = []
    game.agent_x, game.agent_y = np.float32(112.0), np.float32(150.0)
    game.agent_vx = game.agent_vy = np.float32(0.0)
    game.coin_x, game.coin_y = 112, 50
    _, reward, _ = game.step(np.zeros(2))
    assert reward == pytest.approx(0.002 * (1 - 100 / math.hypot(224, 224)))
    game.agent_vx = np.float32(10.0)
    obs, _, _ = game.step(np.zeros(2))
    # (10 + 0) * 0.98 = 9.8 > 4: scaled down to 4 px/frame
    assert obs[2] == pytest.approx(1.0, rel=1e-6)


def test_pong_serve_and_paddle_report():
    game = make_game("pygame-pong")
    obs = game.reset(seed=3)
    # served from the centre at 8 px/frame; the paddle is reported by its top edge (92 px)
    assert obs[0] == obs[1] == 0.5
    assert math.hypot(obs[2], obs[3]) == pytest.approx(1.0, rel=1e-6)
    assert obs[4] == obs[5] == pytest.approx(92 / 224)
    game.ball_x, game.ball_y, game.ball_vx, game.ball_vy = 100.0, 112.0, 1.0, 0.0
    obs, reward, _ = game.step(np.array([1.0]))
    assert reward == 0.0 and obs[4] == pytest.approx(100.5 / 224)  # 8.5 px/frame


def test_pong_points():
    game = make_game("pygame-pong")
    game.reset(seed=0)
    game.agent_y = 164.0  # far from the ball
    game.ball_x, game.ball_y, game.ball_vx, game.ball_vy = 25.0, 60.0, -8.0, 0.0
    obs, reward, _ = game.step(np.array([1.0]))
    assert reward == -1.0 and obs[0] == obs[1] == 0.5  # a new serve
    game.opp_y = 164.0
    game.ball_x, game.ball_y, game.ball_vx, game.ball_vy = 200.0, 60.0, 8.0, 0.0
    _, reward, _ = game.step(np.array([0.0]))
    assert reward == 1.0


def test_air_hockey_geometry_and_goal():
    game = make_game("pygame-air-hockey")
    obs = game.reset(seed=0)
    # rink 158 x 176 at (33, 24); mallets at (112, 170) and (112, 54); puck served at 6 px/frame
    assert (game.RINK_X, game.RINK_Y, game.RINK_W, game.RINK_H) == (33, 24, 158, 176)
    assert (game.GOAL_L, game.GOAL_R) == (84, 140)
    assert obs[4] * 224 == pytest.approx(112) and obs[5] * 224 == pytest.approx(170)
    assert obs[9] * 224 == pytest.approx(54)
    # the puck crosses 10 px behind the top wall inside the mouth: the agent scores
    game.px, game.py, game.pvx, game.pvy = 100.0, 20.0, 0.0, -7.0
    obs, reward, _ = game.step(np.zeros(2))
    assert reward == 1.0 and obs[0] * 224 == pytest.approx(112) and obs[1] * 224 == pytest.approx(112)


def test_bird_attack_formation_and_clear_bonus():
    game = make_game("pygame-bird-attack")
    obs = game.reset(seed=0)
    # 2 rows of 8 birds, 20 px apart from (40, 40); 16 birds left; the cannon at x = 105
    assert obs[0] == pytest.approx(105 / 224) and obs[2] == 1.0
    np.testing.assert_allclose(obs[3:11] * 224, [40, 60, 80, 100, 120, 140, 160, 180], rtol=1e-6)
    np.testing.assert_allclose(obs[11:19] * 224, [40, 60, 80, 100, 120, 140, 160, 180], rtol=1e-6)
    assert obs[19] == pytest.approx(60 / 224)  # lowest row
    obs, _, _ = game.step(np.array([0.0, 1.0]))
    # the formation marched 1 px right; a shot left the muzzle at (112, 178) and rose 7 px
    assert obs[3] == pytest.approx(41 / 224) and tuple(obs[20:22] * 224) == pytest.approx((112, 171))
    assert obs[1] == pytest.approx(7 / 5)  # reload 8, minus this frame
    game.birds = []
    _, reward, _ = game.step(np.zeros(2))
    assert reward == 1.0  # every frame without birds


def test_highway_lane_reward():
    game = make_game("pygame-highway")
    game.reset(seed=0)
    for c in game.cars:
        c["active"], c["respawn"] = False, 100
    # centred in lane 2 (centre 18 + 2.5 * 37.6 = 112), at rest, no car ahead, no thrust:
    # 0.01 (lane centre) + 0.01 (clear road)
    game.car_x, game.car_y, game.vel_x, game.vel_y = 50.0, 112.0 - 9.0, 0.0, 0.0
    obs, reward, _ = game.step(np.zeros(2))
    assert reward == pytest.approx(0.02)
    assert obs[11] == 0.5 and obs[10] == pytest.approx(0.0, abs=1e-6) and obs[5] == -1.0
    # full thrust both ways costs 0.0005 * 2; a car 42 px ahead in our lane costs 0.02 * (1 - 42 / 84)
    game.cars[0].update(active=True, lane=2, x=50.0 + 28 + 42 + 6, y=112.0 - 9.0, len=28, h=18, kind="blue")
    game.car_x, game.car_y, game.vel_x, game.vel_y = 50.0, 103.0, -0.65, 0.0
    _, reward, _ = game.step(np.array([1.0, 0.0]))
    assert reward == pytest.approx(0.01 - 0.02 * 0.5 - 0.0005, rel=1e-5)


def test_landing_bonus_and_touchdown():
    game = make_game("pygame-landing")
    game.reset(seed=0)
    game.sx, game.ship_dir, game.ship_speed = 112.0, 1, 0.0  # deck x in [77, 147], top at y = 183
    game.heli_x, game.heli_y, game.vel_x, game.vel_y = 98.0, 165.0, 0.0, 0.0
    game.prev_contact = False
    _, reward, _ = game.step(np.zeros(2))
    # gravity: vy = 0.2, damped to 0.192; the skids rest on the deck (bottom 183): centred landing
    # bonus 1.0, hover terms 0.025 + 0.1 (1 - 15 / 224), and the touchdown costs 2 * 0.192
    assert reward == pytest.approx(1.0 + 0.025 + 0.1 * (1 - 15 / 224) - 2 * 0.192, rel=1e-6)
    assert game.locked  # nearly still and moving with the ship: latched onto the deck
    _, reward, _ = game.step(np.zeros(2))
    assert reward == pytest.approx(1.0 + 0.025 + 0.1 * (1 - 15 / 224), rel=1e-6)


def test_chase_evade_catch_swaps_roles():
    game = make_game("pygame-chase-evade")
    game.reset(seed=0)
    game.base_angles, game.spin_dir = [0.0, 2 * math.pi / 3, 4 * math.pi / 3], 1
    game.evader_is_agent, game.swapping = True, False
    game.x, game.y, game.ox, game.oy = 112.0, 48.0, 102.0, 48.0
    obs, reward, _ = game.step(np.zeros(2))
    # the AI closes in at 3.5 px/frame: 6.5 px < 16 is a catch, and the agent now chases
    assert obs[8] == 0.0 and obs[4] * 224 == pytest.approx(105.5)
    assert reward == pytest.approx(-0.1 * 6.5 / 90)


def test_coconut_hit_and_schedule():
    game = make_game("pygame-coconut-dodge")
    obs = game.reset(seed=0)
    assert obs[0] == 0.5 and len(game.nuts) == 1
    game.nuts[0].update(x=112.0, y=195.0, vx=0.0, vy=1.0, r=7, falling=True)
    obs, reward, _ = game.step(np.zeros(1))
    assert reward == -1.0 and obs[4] == 1.0
    game.t = 99
    game.step(np.zeros(1))  # frame 100: 1 + int(100 / 500 * 5) = 2 coconuts
    assert len(game.nuts) == 2
