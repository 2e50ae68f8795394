"""Ball-in-cup variant on dm_control's stock model: swinging the ball around the cup.

Keeps the stock model, physics (control step 0.02 s), initial state (ball dropped at a random
position near the cup) and 8-d observation (cup and ball positions, then velocities).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control.suite import ball_in_cup as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn, tolerance_up

__all__ = ["ORBIT_RADIUS", "ORBIT_SPEED", "CupSpin", "orbit_rate", "spin"]

#: Angular rate (rad/s) of the ball around the cup at and above which the speed term is 1.
ORBIT_SPEED = 10.0
#: Ball-to-cup distance (m) at and above which the radius term is 1 (the string is 0.3 m long).
ORBIT_RADIUS = 0.2


def orbit_rate(physics: stock.Physics) -> tuple[float, float]:
    """Distance (m) and angular rate (rad/s) of the ball around the cup's centre, in the x-z plane.

    The rate is positive counter-clockwise as seen from the default camera (``-y``), i.e. about
    ``-y``; its sign does not matter to the reward.
    """
    d = physics.named.data
    rel = d.xpos["ball", ["x", "z"]] - d.site_xpos["target", ["x", "z"]]
    rel_vel = d.qvel[["ball_x", "ball_z"]] - d.qvel[["cup_x", "cup_z"]]
    dist = float(np.hypot(*rel))
    rate = float(rel[0] * rel_vel[1] - rel[1] * rel_vel[0]) / max(dist**2, 1e-6)
    return dist, rate


class CupSpin(stock.BallInCup):
    """Spin (swing) the ball around the cup on its string.

    Reward per control step: ``outside * fast * (1 + far) / 2`` with ``outside`` 0 while the
    ball is in the cup (1 otherwise), ``fast = tolerance(|rate|, bounds=(10, inf), margin=10)``
    (linear, 0 at rest), ``rate`` the ball's angular rate around the cup's centre (rad/s), and
    ``far = tolerance(dist, bounds=(0.2, inf), margin=0.1)`` (gaussian), ``dist`` the ball's
    distance to the cup's centre. A ball hanging still pays 0; the maximum 1 needs the ball to
    whirl around the cup at 10 rad/s or faster at least 0.2 m away (the string is 0.3 m long).
    In ``[0, 1]``.
    """

    def get_reward(self, physics: stock.Physics) -> float:
        if physics.in_target():
            return 0.0
        dist, rate = orbit_rate(physics)
        far = tolerance_up(dist, ORBIT_RADIUS, ORBIT_RADIUS / 2)
        fast = tolerance_up(abs(rate), ORBIT_SPEED, ORBIT_SPEED, linear=True, at_margin=0.0)
        return fast * (1.0 + far) / 2.0


@register_task_fn("ball_in_cup", "spin")
def spin(random: Any = None, time_limit: float = float("inf")):
    """cup-spin.

    Examples:
        >>> env = spin(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((2,), 8)
    """
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(
        physics, CupSpin(random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )
