"""Pendulum variant on dm_control's stock pendulum: spinning (3-d observation, 1 actuator).

Follows Newt's ``pendulum-spin`` (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/pendulum.py``, whose ``pendulum.xml`` is the stock model).
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import pendulum as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn, tolerance_up

__all__ = ["SPIN_SPEED", "Spin", "spin"]

#: Angular speed (rad/s, either direction) at and above which the spin reward is 1.
SPIN_SPEED = 9.0


class Spin(stock.SwingUp):
    """Spin the pendulum quickly, in either direction.

    Keeps the stock swing-up initial state (random angle) and observation (pole orientation,
    angular velocity). Reward per control step: ``tolerance(|w|, bounds=(9, inf), margin=4.5,
    value_at_margin=0.5)`` (linear), ``w`` the hinge's angular velocity (rad/s): rising linearly
    from 0 at rest through 0.5 at 4.5 rad/s to 1 at 9 rad/s or faster. The motor is weaker than gravity,
    so spinning needs energy pumping. In ``[0, 1]``.
    """

    def get_reward(self, physics: stock.Physics) -> float:
        return tolerance_up(
            abs(float(physics.angular_velocity()[0])), SPIN_SPEED, SPIN_SPEED / 2, linear=True, at_margin=0.5
        )


@register_task_fn("pendulum", "spin")
def spin(random: Any = None, time_limit: float = float("inf")):
    """pendulum-spin (control step 0.02 s).

    Examples:
        >>> env = spin(random=0)
        >>> env.action_spec().shape
        (1,)
    """
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(physics, Spin(random=random), time_limit=time_limit)
