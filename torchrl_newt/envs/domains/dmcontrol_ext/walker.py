"""Walker variants on dm_control's stock planar walker: walking and running backward.

Both tasks keep the stock model, physics (control step 0.025 s), initial-state sampling and
24-d observation (body orientations, torso height, joint velocities).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control.suite import walker as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = [
    "BackwardWalker",
    "InclineWalker",
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
#: Slope (degrees) of the inclined floor of the ``*_incline`` tasks (uphill towards ``+x``).
INCLINE_DEG = 10.0


def _incline_model() -> tuple[str, dict]:
    xml, assets = stock.get_model_and_assets()
    xml = xml.decode() if isinstance(xml, bytes) else xml
    s, c = np.sin(np.deg2rad(INCLINE_DEG)), np.cos(np.deg2rad(INCLINE_DEG))
    floor = 'pos="248 0 0" size="250 .8 .2" material="grid" zaxis="0 0 1"'
    if floor not in xml:
        raise RuntimeError("unexpected dm_control walker model: cannot tilt its floor")
    xml = xml.replace(floor, f'pos="0 0 0" size="250 .8 .2" material="grid" zaxis="{-s:.6f} 0 {c:.6f}"')
    return xml, assets


class InclineWalker(stock.PlanarWalker):
    """Stand, walk or run uphill on a 10-degree slope (the stock reward, heights above the slope).

    Reward per control step: the stock walker reward with the torso height measured above the
    floor right below it: ``stand = (3 * tolerance(h, bounds=(1.2, inf), margin=0.6) +
    (1 + upright) / 2) / 4``; with ``speed > 0`` it is multiplied by ``(5 * move + 1) / 6``,
    ``move = tolerance(v, bounds=(speed, inf), margin=speed / 2, value_at_margin=0.5)`` (linear),
    ``v`` the forward (uphill) velocity. In ``[0, 1]``.
    """

    def get_reward(self, physics: stock.Physics) -> float:
        x = float(physics.named.data.xpos["torso", "x"])
        height = physics.torso_height() - x * np.tan(np.deg2rad(INCLINE_DEG))
        standing = rewards.tolerance(height, bounds=(stock._STAND_HEIGHT, float("inf")), margin=stock._STAND_HEIGHT / 2)
        stand = (3.0 * standing + (1.0 + physics.torso_upright()) / 2.0) / 4.0
        if self._move_speed == 0:
            return float(stand)
        move = rewards.tolerance(
            physics.horizontal_velocity(),
            bounds=(self._move_speed, float("inf")),
            margin=self._move_speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(stand * (5.0 * move + 1.0) / 6.0)


def _incline_env(speed: float, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*_incline_model())
    return make_environment(
        physics, InclineWalker(speed, random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )


@register_task_fn("walker", "stand_incline")
def stand_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-stand-incline."""
    return _incline_env(0.0, random, time_limit)


@register_task_fn("walker", "walk_incline")
def walk_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-walk-incline (1 m/s uphill)."""
    return _incline_env(stock._WALK_SPEED, random, time_limit)


@register_task_fn("walker", "run_incline")
def run_incline(random: Any = None, time_limit: float = float("inf")):
    """Held-out walker-run-incline (8 m/s uphill)."""
    return _incline_env(stock._RUN_SPEED, random, time_limit)


#: Torso height (m) at and below which the walker counts as lying down (~0.1 m flat on the floor).
LIE_HEIGHT = 0.3


class PoseWalker(stock.PlanarWalker):
    """Static poses of the walker (held-out tasks). Rewards per control step, all in ``[0, 1]``:

    * ``"arabesque"``: ``stand * max_feet(up * back)``: the stock stand term times, for the better
      foot, ``up = tolerance(foot_z, bounds=(1.0, inf), margin=0.5)`` (gaussian) and
      ``back = tolerance(torso_x - foot_x, bounds=(0.4, inf), margin=0.4)`` (gaussian): standing
      on one leg with the other foot raised behind the torso;
    * ``"lie_down"``: ``(3 * low(torso_z) + low(mean feet z)) / 4`` with
      ``low(z) = tolerance(z, bounds=(-inf, 0.3), margin=0.3)`` (linear, 0 at 0.6 m);
    * ``"legs_up"``: ``low(torso_z) * tolerance(min feet z, bounds=(0.8, inf), margin=0.4)``:
      lying with both feet high;
    * ``"headstand"``: ``(1 - upright) / 2 * tolerance(min feet z, bounds=(1.2, inf),
      margin=0.6)``: torso upside down and both feet high.

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
        d = physics.named.data
        feet_z = np.array([d.xpos["left_foot", "z"], d.xpos["right_foot", "z"]])
        torso_z = physics.torso_height()

        def low(z: float) -> float:
            return float(
                rewards.tolerance(
                    z, bounds=(-float("inf"), LIE_HEIGHT), margin=LIE_HEIGHT, sigmoid="linear", value_at_margin=0.0
                )
            )

        if self._pose == "arabesque":
            standing = rewards.tolerance(
                torso_z, bounds=(stock._STAND_HEIGHT, float("inf")), margin=stock._STAND_HEIGHT / 2
            )
            stand = (3.0 * standing + (1.0 + physics.torso_upright()) / 2.0) / 4.0
            best = 0.0
            for foot in ("left_foot", "right_foot"):
                up = rewards.tolerance(d.xpos[foot, "z"], bounds=(1.0, float("inf")), margin=0.5)
                back = rewards.tolerance(
                    d.xpos["torso", "x"] - d.xpos[foot, "x"], bounds=(0.4, float("inf")), margin=0.4
                )
                best = max(best, float(up * back))
            return float(stand * best)
        if self._pose == "lie_down":
            return (3.0 * low(torso_z) + low(float(feet_z.mean()))) / 4.0
        if self._pose == "legs_up":
            return low(torso_z) * float(rewards.tolerance(feet_z.min(), bounds=(0.8, float("inf")), margin=0.4))
        upside_down = (1.0 - physics.torso_upright()) / 2.0
        return float(upside_down * rewards.tolerance(feet_z.min(), bounds=(1.2, float("inf")), margin=0.6))


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
