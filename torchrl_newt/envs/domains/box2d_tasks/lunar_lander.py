"""Continuous lunar lander tasks: land, hover and take off (MMBench ``lunarlander-*`` tasks).

The three variants reuse Gymnasium's continuous ``LunarLander`` bodies, engines and physics
(its ``step`` fires the engines and advances the world) in the benchmark's world layout: a
square world ``400 / 30`` units wide and high (Gymnasium's is 600x400 pixels), moon surfaces of
7 or 9 random chunks around the flat landing pad, and observations normalised by half the world
size.

``land`` (:class:`LunarLanderLand`)
    starts near the top centre (``0.8 H`` high, both coordinates jittered by +-5 %) with a random
    push; Gymnasium's landing reward (shaping on distance, speed and tilt, +10 per leg contact,
    fuel costs, -100 on crash or leaving the world, +100 when at rest). 8-d observation.
``hover`` (:class:`LunarLanderHover`)
    same start; a goal at twice the pad height above the pad centre, offset by ``U(-1, 1)`` in
    both coordinates. Reward in ``[0, 1]``: ``1 - distance / 6`` minus small fuel costs
    (``0.03`` main, ``0.003`` side), ``0`` while below flight height (resting on the ground).
    Observation: the 8 lander values plus the goal offset ``(goal - position) / (W / 2, H / 2)``.
``takeoff`` (:class:`LunarLanderTakeoff`)
    starts resting on the pad (middle half, pushed down and sideways); a goal anywhere in the
    upper part of the world (``x ~ U(0.2, 0.8) W``, ``y ~ U(0.6, 0.8) H``); hover's reward and
    observation. Five zero-action steps let the lander settle before the episode starts.

Simulator terminations (``terminated``) are reported but never acted on by our raw tasks.
Frames omit engine exhaust particles (decoration only: rendering them would make Gymnasium add
physics bodies on every step) and the benchmark's random colours; hover and takeoff draw the goal
as a translucent disc.
"""

from __future__ import annotations

import logging
import math

import Box2D
import numpy as np
from Box2D.b2 import edgeShape, fixtureDef, polygonShape, revoluteJointDef
from gymnasium.envs.box2d import lunar_lander as _ll
from gymnasium.spaces import Box

__all__ = ["LunarLanderHover", "LunarLanderLand", "LunarLanderTakeoff"]

logger = logging.getLogger(__name__)

_SCALE = _ll.SCALE
_FPS = _ll.FPS
_VIEW = 400  # the benchmark's square viewport, in pixels
_W = _VIEW / _SCALE  # world width == height, in units
_H = _VIEW / _SCALE
_LEG_DOWN = _ll.LEG_DOWN / _SCALE
_PUSH = _ll.INITIAL_RANDOM


def _engine_powers(action: np.ndarray) -> tuple[float, float]:
    """Main and side engine throttle as Gymnasium's continuous lander computes them."""
    main, side = float(np.clip(action[0], -1, 1)), float(np.clip(action[1], -1, 1))
    m_power = (min(main, 1.0) + 1.0) * 0.5 if main > 0.0 else 0.0
    s_power = min(max(abs(side), 0.5), 1.0) if abs(side) > 0.5 else 0.0
    return m_power, s_power


class LunarLanderLand(_ll.LunarLander):
    """Land on the pad (continuous control, the benchmark's world layout).

    Args:
        render_mode: kept for API compatibility; frames are always available through
            :meth:`render` (``None`` or ``"rgb_array"``).

    Examples:
        >>> env = LunarLanderLand()
        >>> obs, _ = env.reset(seed=0)
        >>> obs.shape
        (8,)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
        >>> env.render().shape
        (400, 400, 3)
        >>> env.close()
    """

    obs_extra = 0

    def __init__(self, render_mode: str | None = "rgb_array") -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        # Gymnasium's lander spawns exhaust particles (physics bodies) whenever a render mode is
        # set; we keep it unset and switch it on only while drawing a frame.
        super().__init__(render_mode=None, continuous=True)
        n = 8 + self.obs_extra
        self.observation_space = Box(-np.inf, np.inf, (n,), np.float32)
        self.goal = np.zeros(2, np.float32)
        self._prev_shaping: float | None = None

    # -- episode start ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Build a new moon surface and lander; return ``(obs, {})``."""
        _ll.gym.Env.reset(self, seed=seed)  # seeds self.np_random
        self._destroy()
        self.world = Box2D.b2World(gravity=(0, self.gravity))
        self.world.contactListener_keepref = _ll.ContactDetector(self)
        self.world.contactListener = self.world.contactListener_keepref
        self.game_over = False
        self.prev_shaping = None
        self._prev_shaping = None
        self._build_surface()
        x, y, push = self._start_state()
        self._build_lander(x, y, push)
        self._sample_goal()
        for _ in range(self._settle_steps()):
            self.step(np.zeros(2, np.float32))
        return self.step(np.zeros(2, np.float32))[0], {}

    def _build_surface(self) -> None:
        rng = self.np_random
        chunks = int(rng.choice([7, 9]))
        height = rng.uniform(0, _H / 2, size=(chunks + 1,))
        chunk_x = [_W / (chunks - 1) * i for i in range(chunks)]
        mid = chunks // 2
        self.helipad_x1, self.helipad_x2 = chunk_x[mid - 1], chunk_x[mid + 1]
        self.helipad_y = _H / 4
        height[mid - 2 : mid + 3] = self.helipad_y
        smooth = [0.33 * (height[i - 1] + height[i] + height[i + 1]) for i in range(chunks)]
        self.moon = self.world.CreateStaticBody(shapes=edgeShape(vertices=[(0, 0), (_W, 0)]))
        self.sky_polys = []
        for i in range(chunks - 1):
            p1, p2 = (chunk_x[i], smooth[i]), (chunk_x[i + 1], smooth[i + 1])
            self.moon.CreateEdgeFixture(vertices=[p1, p2], density=0, friction=0.1)
            self.sky_polys.append([p1, p2, (p2[0], _H), (p1[0], _H)])
        self.moon.color1 = self.moon.color2 = (0.0, 0.0, 0.0)

    def _start_state(self) -> tuple[float, float, tuple[float, float]]:
        """Initial lander position and push: near the top centre, random push."""
        rng = self.np_random
        y = 0.8 * _H * rng.uniform(0.95, 1.05)
        x = 0.5 * _W * rng.uniform(0.95, 1.05)
        push = (rng.uniform(-_PUSH, _PUSH), rng.uniform(-_PUSH, _PUSH))
        return x, y, push

    def _build_lander(self, x: float, y: float, push: tuple[float, float]) -> None:
        self.lander = self.world.CreateDynamicBody(
            position=(x, y),
            angle=0.0,
            fixtures=fixtureDef(
                shape=polygonShape(vertices=[(px / _SCALE, py / _SCALE) for px, py in _ll.LANDER_POLY]),
                density=5.0,
                friction=0.1,
                categoryBits=0x0010,
                maskBits=0x001,
                restitution=0.0,
            ),
        )
        self.lander.color1, self.lander.color2 = (128, 102, 230), (77, 77, 128)
        self.lander.ApplyForceToCenter((float(push[0]), float(push[1])), True)
        self.legs = []
        for side in (-1, +1):
            leg = self.world.CreateDynamicBody(
                position=(x - side * _ll.LEG_AWAY / _SCALE, y),
                angle=side * 0.05,
                fixtures=fixtureDef(
                    shape=polygonShape(box=(_ll.LEG_W / _SCALE, _ll.LEG_H / _SCALE)),
                    density=1.0,
                    restitution=0.0,
                    categoryBits=0x0020,
                    maskBits=0x001,
                ),
            )
            leg.ground_contact = False
            leg.color1, leg.color2 = self.lander.color1, self.lander.color2
            # legs swing within a 0.5 rad range, spring-loaded outwards
            lower, upper = (0.4, 0.9) if side == -1 else (-0.9, -0.4)
            joint = revoluteJointDef(
                bodyA=self.lander,
                bodyB=leg,
                localAnchorA=(0, 0),
                localAnchorB=(side * _ll.LEG_AWAY / _SCALE, _ll.LEG_DOWN / _SCALE),
                enableMotor=True,
                enableLimit=True,
                maxMotorTorque=_ll.LEG_SPRING_TORQUE,
                motorSpeed=0.3 * side,
                lowerAngle=lower,
                upperAngle=upper,
            )
            leg.joint = self.world.CreateJoint(joint)
            self.legs.append(leg)
        self.drawlist = [self.lander] + self.legs

    def _sample_goal(self) -> None:
        pass

    def _settle_steps(self) -> int:
        return 0

    # -- stepping ---------------------------------------------------------------------------
    def step(self, action: np.ndarray):
        """Fire the engines and advance the world (Gymnasium), then our observation and reward."""
        action = np.asarray(action, dtype=np.float32)
        super().step(action)  # physics only: Gymnasium's observation and reward are discarded
        obs = self._observe()
        m_power, s_power = _engine_powers(action)
        reward, terminated = self._reward(obs, m_power, s_power)
        return obs, float(reward), terminated, False, {}

    def _observe(self) -> np.ndarray:
        pos, vel = self.lander.position, self.lander.linearVelocity
        obs = np.empty(8 + self.obs_extra, np.float32)
        obs[0] = (pos.x - _W / 2) / (_W / 2)
        obs[1] = (pos.y - (self.helipad_y + _LEG_DOWN)) / (_H / 2)
        obs[2] = vel.x * (_W / 2) / _FPS
        obs[3] = vel.y * (_H / 2) / _FPS
        obs[4] = self.lander.angle
        obs[5] = 20.0 * self.lander.angularVelocity / _FPS
        obs[6] = 1.0 if self.legs[0].ground_contact else 0.0
        obs[7] = 1.0 if self.legs[1].ground_contact else 0.0
        if self.obs_extra:
            obs[8] = (self.goal[0] - pos.x) / (_W / 2)
            obs[9] = (self.goal[1] - pos.y) / (_H / 2)
        return obs

    def _reward(self, obs: np.ndarray, m_power: float, s_power: float) -> tuple[float, bool]:
        shaping = (
            -100 * math.hypot(obs[0], obs[1])
            - 100 * math.hypot(obs[2], obs[3])
            - 100 * abs(obs[4])
            + 10 * obs[6]
            + 10 * obs[7]
        )
        reward = 0.0 if self._prev_shaping is None else shaping - self._prev_shaping
        self._prev_shaping = shaping
        reward -= 0.30 * m_power + 0.03 * s_power
        terminated = False
        if self.game_over or abs(obs[0]) >= 1.0:
            reward, terminated = -100.0, True
        if not self.lander.awake:
            reward, terminated = 100.0, True
        return reward, terminated

    # -- rendering --------------------------------------------------------------------------
    def render(self):
        """A ``[400, 400, 3]`` uint8 frame of the world (drawn with Gymnasium's renderer)."""
        mode, self.render_mode = self.render_mode, "rgb_array"
        try:
            frame = super().render()
        finally:
            self.render_mode = mode
        frame = np.array(frame[:_VIEW, :_VIEW])  # our world is the left square of Gymnasium's view
        if self.obs_extra:
            self._draw_goal(frame)
        return frame

    def _draw_goal(self, frame: np.ndarray, color: tuple[int, int, int] = (204, 204, 0), alpha: float = 0.4) -> None:
        cx, cy = self.goal[0] * _SCALE, _VIEW - self.goal[1] * _SCALE
        yy, xx = np.ogrid[: frame.shape[0], : frame.shape[1]]
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= _SCALE**2
        frame[disc] = ((1 - alpha) * frame[disc] + alpha * np.asarray(color, np.float32)).astype(np.uint8)


class LunarLanderHover(LunarLanderLand):
    """Hover at a goal above the landing pad; reward in ``[0, 1]`` per simulator step.

    Examples:
        >>> env = LunarLanderHover()
        >>> obs, _ = env.reset(seed=0)
        >>> obs.shape
        (10,)
        >>> _, reward, *_ = env.step(np.zeros(2, np.float32))
        >>> 0.0 <= reward <= 1.0
        True
        >>> env.close()
    """

    obs_extra = 2
    #: reward reaches 0 at this distance (world units) from the goal
    reach = 6.0

    def _sample_goal(self) -> None:
        centre = np.array([(self.helipad_x1 + self.helipad_x2) / 2, 2 * self.helipad_y])
        self.goal = (centre + self.np_random.uniform(-1, 1, size=2)).astype(np.float32)

    @property
    def distance_to_goal(self) -> float:
        """Euclidean distance from the lander's centre to the goal (world units)."""
        pos = self.lander.position
        return math.hypot(pos.x - float(self.goal[0]), pos.y - float(self.goal[1]))

    def _reward(self, obs: np.ndarray, m_power: float, s_power: float) -> tuple[float, bool]:
        if self.lander.position.y < self.helipad_y + _LEG_DOWN:
            return 0.0, self.game_over  # on (or in) the ground: no reward
        reward = 1.0 - self.distance_to_goal / self.reach - 0.03 * m_power - 0.003 * s_power
        return min(max(reward, 0.0), 1.0), self.game_over


class LunarLanderTakeoff(LunarLanderHover):
    """Take off from the landing pad and fly to a goal high up; hover's reward and observation.

    Examples:
        >>> env = LunarLanderTakeoff()
        >>> obs, _ = env.reset(seed=0)
        >>> bool(obs[6] or obs[7])  # resting on the pad
        True
        >>> float(obs[9]) > 0  # the goal is above
        True
        >>> env.close()
    """

    def _start_state(self) -> tuple[float, float, tuple[float, float]]:
        rng = self.np_random
        quarter = (self.helipad_x2 - self.helipad_x1) / 4
        x = rng.uniform(self.helipad_x1 + quarter, self.helipad_x2 - quarter)
        y = self.helipad_y + _LEG_DOWN
        push = (0.5 * rng.uniform(-_PUSH, _PUSH), -2 * _PUSH)
        return x, y, push

    def _sample_goal(self) -> None:
        rng = self.np_random
        self.goal = np.array([rng.uniform(0.2 * _W, 0.8 * _W), rng.uniform(0.6 * _H, 0.8 * _H)], np.float32)

    def _settle_steps(self) -> int:
        return 5
