"""Continuous lunar lander tasks: land, hover and take off (MMBench ``lunarlander-*`` tasks).

The tasks follow Newt's definitions (nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/lunarlander.py``): same world, start states, random draws (and their order),
goals, rewards and observations, including the arithmetic precision of the rewards.

The three variants reuse Gymnasium's continuous ``LunarLander`` bodies, engines and physics
(its ``step`` fires the engines and advances the world) in the benchmark's world layout: a
square world ``400 / 30`` units wide and high (Gymnasium's is 600x400 pixels), moon surfaces of
7 or 9 random chunks around the flat landing pad, and observations normalised by half the world
size.

``land`` (:class:`LunarLanderLand`)
    starts near the top centre (``0.8 H`` high, both coordinates jittered by +-5 %) with a random
    push of up to ``INITIAL_RANDOM = 600`` in each direction (Gymnasium's lander: 1000); Gymnasium's
    landing reward (its shaping term evaluated in float32 on the float32 observation, as Newt does) (shaping on distance, speed and tilt, +10 per leg contact,
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

Newt also draws random sky, surface, flag and lander colours from NumPy's global generator at
every reset. We make the same draws, in the same order, from :attr:`LunarLanderLand.global_rng`, a
``RandomState`` standing in for the global generator (reseeded by ``reset(seed=s)`` as
``np.random.seed(s)`` would seed the global one; NumPy's own global state is never touched); the
lander's colour is applied to its bodies.

Simulator terminations (``terminated``) are reported but never acted on by our raw tasks.
Frames are drawn with Gymnasium's renderer (Newt's own renderer also shows the random sky,
surface and flag colours and the engine exhaust particles; particles never touch the lander, so
leaving them out changes no physics); hover and takeoff draw the goal as a translucent disc.
"""

from __future__ import annotations

import logging

import Box2D
import numpy as np
from Box2D.b2 import edgeShape, fixtureDef, polygonShape, revoluteJointDef
from gymnasium.envs.box2d import lunar_lander as _ll
from gymnasium.spaces import Box

__all__ = ["INITIAL_RANDOM", "LunarLanderHover", "LunarLanderLand", "LunarLanderTakeoff"]

logger = logging.getLogger(__name__)

_SCALE = _ll.SCALE
_FPS = _ll.FPS
_VIEW = 400  # the benchmark's square viewport, in pixels
_W = _VIEW / _SCALE  # world width == height, in units
_H = _VIEW / _SCALE
_LEG_DOWN = _ll.LEG_DOWN / _SCALE
#: strength of the random initial push (Newt's value; Gymnasium's lander uses 1000)
INITIAL_RANDOM = 600.0


def _engine_powers(action: np.ndarray) -> tuple[float, float]:
    """Main and side engine throttle as Gymnasium's continuous lander computes them.

    A firing engine's throttle is a ``np.float64`` and an idle one the Python float ``0.0``, as in
    Gymnasium (this decides whether the float32 landing reward is promoted to float64).
    """
    action = np.clip(action, -1, +1).astype(np.float64)
    m_power = (np.clip(action[0], 0.0, 1.0) + 1.0) * 0.5 if action[0] > 0.0 else 0.0
    s_power = np.clip(np.abs(action[1]), 0.5, 1.0) if np.abs(action[1]) > 0.5 else 0.0
    return m_power, s_power


def _colour(rng: np.random.RandomState, base: tuple[int, int, int], shared: int, each: int) -> list[int]:
    """``base`` shifted by one shared and three per-channel random offsets (Newt's colour jitter)."""
    return (np.array(base) + rng.randint(-shared, shared) + rng.randint(-each, each, size=(3,))).tolist()


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
        #: stands in for NumPy's global generator, from which Newt draws its random colours
        self.global_rng = np.random.RandomState()
        self.sky_color = self.surf_color = self.flag_color = None

    # -- episode start ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Build a new moon surface and lander; return ``(obs, {})``."""
        _ll.gym.Env.reset(self, seed=seed)  # seeds self.np_random
        if seed is not None:
            self.global_rng.seed(int(seed) % 2**32)
        self._destroy()
        self.world = Box2D.b2World(gravity=(0, self.gravity))
        self.world.contactListener_keepref = _ll.ContactDetector(self)
        self.world.contactListener = self.world.contactListener_keepref
        self.game_over = False
        self.prev_shaping = None
        self._prev_shaping = None
        self._build_surface()
        self._draw_scene_colours()
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

    def _draw_scene_colours(self) -> None:
        rng = self.global_rng
        self.sky_color = np.clip(_colour(rng, (20, 10, 15), 10, 5), 0, 255).tolist()
        self.surf_color = np.clip(_colour(rng, (230, 215, 220), 15, 10), 0, 255).tolist()
        self.flag_color = np.clip(_colour(rng, (204, 204, 0), 15, 5), 0, 255).tolist()

    def _start_state(self) -> tuple[float, float, tuple[float, float]]:
        """Initial lander position and push: near the top centre, random push.

        The lander's colour is drawn between the position and the push (Newt's order).
        """
        rng = self.np_random
        y_noise = rng.uniform(0.95, 1.05)
        x_noise = rng.uniform(0.95, 1.05)
        y = 0.8 * _VIEW * y_noise / _SCALE
        x = _VIEW * x_noise / _SCALE / 2
        self._lander_colour = _colour(self.global_rng, (128, 102, 230), 10, 5)
        push = (rng.uniform(-INITIAL_RANDOM, INITIAL_RANDOM), rng.uniform(-INITIAL_RANDOM, INITIAL_RANDOM))
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
        self.lander.color1, self.lander.color2 = self._lander_colour, (77, 77, 128)
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
        # float32 scalars throughout, as Gymnasium (and Newt) evaluate it on the float32 state
        s = obs
        shaping = (
            -100 * np.sqrt(s[0] * s[0] + s[1] * s[1])
            - 100 * np.sqrt(s[2] * s[2] + s[3] * s[3])
            - 100 * abs(s[4])
            + 10 * s[6]
            + 10 * s[7]
        )
        reward = 0 if self._prev_shaping is None else shaping - self._prev_shaping
        self._prev_shaping = shaping
        reward -= m_power * 0.30
        reward -= s_power * 0.03
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
        # a float32 centre plus float64 noise: the goal stays float64 (Newt's arithmetic)
        centre = np.array([(self.helipad_x1 + self.helipad_x2) / 2, 2 * self.helipad_y], np.float32)
        self.goal = centre + self.np_random.uniform(-1, 1, size=(2,))

    @property
    def distance_to_goal(self) -> float:
        """Euclidean distance from the lander's centre to the goal (world units), in the goal's precision."""
        pos = self.lander.position
        return float(np.sqrt((pos.x - self.goal[0]) ** 2 + (pos.y - self.goal[1]) ** 2))

    def _reward(self, obs: np.ndarray, m_power: float, s_power: float) -> tuple[float, bool]:
        pos = self.lander.position
        distance = np.sqrt((pos.x - self.goal[0]) ** 2 + (pos.y - self.goal[1]) ** 2)
        reward = 1 - distance / self.reach
        reward -= m_power * 0.03
        reward -= s_power * 0.003
        if pos.y < self.helipad_y + _LEG_DOWN:
            reward = 0  # on (or in) the ground: no reward
        return float(np.clip(reward, 0, 1)), self.game_over


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
        width = self.helipad_x2 - self.helipad_x1
        x = rng.uniform(self.helipad_x1 + 0.25 * width, self.helipad_x2 - 0.25 * width)
        y = self.helipad_y + _LEG_DOWN
        self._lander_colour = _colour(self.global_rng, (128, 102, 230), 10, 5)
        push = (0.5 * rng.uniform(-INITIAL_RANDOM, INITIAL_RANDOM), -2 * INITIAL_RANDOM)
        return x, y, push

    def _sample_goal(self) -> None:
        # drawn in pixels, then scaled to world units; a float32 goal (Newt's arithmetic)
        rng = self.np_random
        x = rng.uniform(0.2 * _VIEW, 0.8 * _VIEW) / _SCALE
        y = rng.uniform(0.6 * _VIEW, 0.8 * _VIEW) / _SCALE
        self.goal = np.array([x, y], np.float32)

    def _settle_steps(self) -> int:
        return 5
