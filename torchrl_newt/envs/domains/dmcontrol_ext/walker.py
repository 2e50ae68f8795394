"""Walker variants on dm_control's stock planar walker: backward gaits, inclines and yoga poses.

All tasks follow Newt's definitions (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/walker.py``; its ``walker.xml`` is the stock model up to the drawn size of
the ground plane, its ``walker_incline.xml`` tilts the ground). They keep the stock physics
(control step 0.025 s), initial-state sampling and 24-d observation (body orientations, torso
height, joint velocities):

* ``walker-walk-backward``, ``walker-run-backward``: the stock reward, mirrored;
* held-out ``walker-{stand,walk,run}-incline``: the stock tasks on a ground sloping up towards
  ``+x`` (:data:`INCLINE_DEG`);
* held-out ``walker-arabesque``, ``-lie-down``, ``-legs-up``, ``-headstand``: static poses
  (:class:`PoseWalker`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control.suite import walker as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = [
    "INCLINE_DEG",
    "LEGS_UP_HEIGHT",
    "LIE_HEIGHT",
    "POSE_STAND_HEIGHT",
    "BackwardWalker",
    "PoseWalker",
    "run_backward",
    "run_incline",
    "stand_incline",
    "walk_backward",
    "walk_incline",
]


class BackwardWalker(stock.PlanarWalker):
    """Walk or run backward while staying upright (the stock reward, mirrored).

    Reward per control step: ``stand * (5 * move + 1) / 6`` with
    ``stand = (3 * tolerance(torso_z, bounds=(1.2, inf), margin=0.6) + (1 + upright) / 2) / 4``
    and ``move = tolerance(-v, bounds=(speed, inf), margin=speed / 2, value_at_margin=0.5)``
    (linear), ``v`` the forward velocity of the centre of mass and ``speed`` 1 m/s (walk) or 8 m/s
    (run). Standing still pays at most 1/6; the maximum 1 needs an upright torso at 1.2 m or
    higher moving backward at ``speed`` or faster. In ``[0, 1]``.

    Args:
        move_speed: target backward speed (m/s), positive.
        random: seed or ``numpy.random.RandomState``.
    """

    def __init__(self, move_speed: float, random: Any = None) -> None:
        if move_speed <= 0:
            raise ValueError(f"move_speed must be positive, got {move_speed}")
        super().__init__(move_speed=move_speed, random=random)

    def get_reward(self, physics: stock.Physics) -> float:
        standing = rewards.tolerance(
            physics.torso_height(), bounds=(stock._STAND_HEIGHT, float("inf")), margin=stock._STAND_HEIGHT / 2
        )
        upright = (1.0 + physics.torso_upright()) / 2.0
        stand = (3.0 * standing + upright) / 4.0
        move = rewards.tolerance(
            -physics.horizontal_velocity(),
            bounds=(self._move_speed, float("inf")),
            margin=self._move_speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(stand * (5.0 * move + 1.0) / 6.0)


def _env(speed: float, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(
        physics, BackwardWalker(speed, random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )


@register_task_fn("walker", "walk_backward")
def walk_backward(random: Any = None, time_limit: float = float("inf")):
    """walker-walk-backward (1 m/s backward).

    Examples:
        >>> env = walk_backward(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] if v.shape else 1 for v in env.observation_spec().values())
        ((6,), 24)
    """
    return _env(stock._WALK_SPEED, random, time_limit)


@register_task_fn("walker", "run_backward")
def run_backward(random: Any = None, time_limit: float = float("inf")):
    """walker-run-backward (8 m/s backward)."""
    return _env(stock._RUN_SPEED, random, time_limit)


# ---------------------------------------------------------------------------------------------
# Held-out variants (MMBench held-out tasks with base domain "dmcontrol-ext").
# ---------------------------------------------------------------------------------------------
#: Slope (degrees) of the ground of the ``*_incline`` tasks, uphill towards ``+x``; the ground
#: plane passes through the origin. Newt's ``walker_incline.xml`` was not available to us: this
#: angle (about 7.95 degrees, as that file's tilt) was fitted to Newt's recorded seed-1
#: trajectories, which it reproduces to float32 precision over their first 80 to 90 agent steps.
INCLINE_DEG = 7.9530085508389075


def _incline_model() -> tuple[str, dict]:
    xml, assets = stock.get_model_and_assets()
    xml = xml.decode() if isinstance(xml, bytes) else xml
    floor = 'pos="248 0 0" size="250 .8 .2" material="grid" zaxis="0 0 1"'
    if floor not in xml:
        raise RuntimeError("unexpected dm_control walker model: cannot tilt its floor")
    slope = np.deg2rad(INCLINE_DEG)
    zaxis = f"{-np.sin(slope):.17g} 0 {np.cos(slope):.17g}"
    return xml.replace(floor, f'pos="0 0 0" size="250 .8 .2" material="grid" zaxis="{zaxis}"'), assets


def _incline_env(speed: float, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*_incline_model())
    task = stock.PlanarWalker(move_speed=speed, random=random)
    return make_environment(physics, task, time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP)


@register_task_fn("walker", "stand_incline")
def stand_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-stand-incline: the stock stand reward on the slope.

    The reward is dm_control's (torso height measured from ``z = 0``, not from the slope):
    ``(3 * tolerance(torso_z, bounds=(1.2, inf), margin=0.6) + (1 + upright) / 2) / 4``.

    Examples:
        >>> env = stand_incline(random=0)
        >>> zaxis = env.physics.named.data.geom_xmat["floor"].reshape(3, 3)[:, 2]
        >>> round(float(np.degrees(np.arctan2(-zaxis[0], zaxis[2]))), 2)
        7.95
    """
    return _incline_env(0.0, random, time_limit)


@register_task_fn("walker", "walk_incline")
def walk_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-walk-incline: the stock walk reward (1 m/s forward, i.e. uphill) on the slope."""
    return _incline_env(stock._WALK_SPEED, random, time_limit)


@register_task_fn("walker", "run_incline")
def run_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-run-incline: the stock run reward (8 m/s uphill) on the slope."""
    return _incline_env(stock._RUN_SPEED, random, time_limit)


#: Torso height (m) at and above which the arabesque's standing term is 1; also the height of
#: the raised foot (arabesque) and of the thighs (headstand) at and above which those terms are 1.
POSE_STAND_HEIGHT = 1.0
#: Height (m) at and below which the torso, the thighs or a foot count as down on the floor.
LIE_HEIGHT = 0.08
#: Mean feet height (m) at and above which the legs-up and headstand feet terms are 1.
LEGS_UP_HEIGHT = 1.1


def _up(x: float, bound: float) -> float:
    """Gaussian tolerance, 1 at and above ``bound``, 0.1 at ``bound / 2`` below it."""
    return float(rewards.tolerance(x, bounds=(bound, float("inf")), margin=bound / 2))


def _down(x: float, bound: float, margin: float) -> float:
    """Gaussian tolerance, 1 at and below ``bound``, 0.1 at ``margin`` above it."""
    return float(rewards.tolerance(x, bounds=(-float("inf"), bound), margin=margin))


class PoseWalker(stock.PlanarWalker):
    """Static poses of the walker (held-out tasks), with Newt's rewards.

    Heights are world ``z`` of body frames (``torso_z`` the torso's, ``thighs_z`` and ``feet_z``
    the means over both legs); ``inverted = (1 - upright) / 2`` is 1 with the torso upside down.
    ``up(x; b)`` is ``tolerance(x, bounds=(b, inf), margin=b / 2)`` and ``down(x; m)`` is
    ``tolerance(x, bounds=(-inf, 0.08), margin=m)`` (both gaussian). Rewards per control step,
    all in ``[0, 1]``:

    * ``"arabesque"``: ``(3 * up(torso_z; 1) + down(left_foot_z; 0.5) + up(right_foot_z; 1) +
      inverted) / 6``;
    * ``"lie_down"``: ``(3 * down(torso_z; 0.04) + down(thighs_z; 0.04) + inverted) / 5``;
    * ``"legs_up"``: ``(3 * down(torso_z; 0.04) + 2 * up(feet_z; 1.1) + down(thighs_z; 0.04) +
      inverted) / 7``;
    * ``"headstand"``: ``(3 * up(feet_z; 1.1) + 2 * up(thighs_z; 1)) / 5``.

    Args:
        pose: one of the four poses.
        random: seed or ``numpy.random.RandomState``.
    """

    POSES = ("arabesque", "lie_down", "legs_up", "headstand")

    def __init__(self, pose: str, random: Any = None) -> None:
        if pose not in self.POSES:
            raise ValueError(f"unknown walker pose {pose!r}; expected one of {self.POSES}")
        super().__init__(move_speed=0.0, random=random)
        self._pose = pose

    def get_reward(self, physics: stock.Physics) -> float:
        xpos = physics.named.data.xpos
        left_foot_z, right_foot_z = xpos["left_foot", "z"], xpos["right_foot", "z"]
        torso_z = physics.torso_height()
        thighs_z = (xpos["left_thigh", "z"] + xpos["right_thigh", "z"]) / 2
        feet_z = (left_foot_z + right_foot_z) / 2
        inverted = (1.0 - physics.torso_upright()) / 2.0
        if self._pose == "arabesque":
            standing = _up(torso_z, POSE_STAND_HEIGHT)
            left_down = _down(left_foot_z, LIE_HEIGHT, POSE_STAND_HEIGHT / 2)
            right_up = _up(right_foot_z, POSE_STAND_HEIGHT)
            return float((3.0 * standing + left_down + right_up + inverted) / 6.0)
        if self._pose == "headstand":
            return (3.0 * _up(feet_z, LEGS_UP_HEIGHT) + 2.0 * _up(thighs_z, POSE_STAND_HEIGHT)) / 5.0
        torso_down = _down(torso_z, LIE_HEIGHT, LIE_HEIGHT / 2)
        thighs_down = _down(thighs_z, LIE_HEIGHT, LIE_HEIGHT / 2)
        if self._pose == "lie_down":
            return float((3.0 * torso_down + thighs_down + inverted) / 5.0)
        legs_up = _up(feet_z, LEGS_UP_HEIGHT)
        return float((3.0 * torso_down + 2.0 * legs_up + thighs_down + inverted) / 7.0)


def _pose_env(pose: str, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(
        physics, PoseWalker(pose, random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )


for _pose in PoseWalker.POSES:

    def _make(random: Any = None, time_limit: float = float("inf"), _pose: str = _pose):
        return _pose_env(_pose, random, time_limit)

    _make.__name__ = _pose
    _make.__doc__ = f"Held-out walker-{_pose.replace('_', '-')}."
    register_task_fn("walker", _pose)(_make)
del _pose
