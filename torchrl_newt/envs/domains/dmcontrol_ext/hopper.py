"""Hopper variant on dm_control's stock hopper: hopping backward.

Keeps the stock model, physics (control step 0.02 s), initial-state sampling and 15-d observation
(joint positions without ``rootx``, joint velocities, two foot touch sensors).
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import hopper as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["HopBackward", "hop_backward"]


class HopBackward(stock.Hopper):
    """Hop backward (the stock hop reward, mirrored).

    Reward per control step: ``standing * hopping`` with
    ``standing = tolerance(torso_z - foot_z, bounds=(0.6, 2))`` (gaussian) and
    ``hopping = tolerance(-v, bounds=(2, inf), margin=1, value_at_margin=0.5)`` (linear), ``v`` the
    forward velocity of the centre of mass: 0 unless moving backward, 1 when upright and hopping
    backward at 2 m/s or faster. In ``[0, 1]``.
    """

    def __init__(self, random: Any = None) -> None:
        super().__init__(hopping=True, random=random)

    def get_reward(self, physics: stock.Physics) -> float:
        standing = rewards.tolerance(physics.height(), (stock._STAND_HEIGHT, 2))
        hopping = rewards.tolerance(
            -physics.speed(),
            bounds=(stock._HOP_SPEED, float("inf")),
            margin=stock._HOP_SPEED / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(standing * hopping)


@register_task_fn("hopper", "hop_backward")
def hop_backward(random: Any = None, time_limit: float = float("inf")):
    """hopper-hop-backward.

    Examples:
        >>> env = hop_backward(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((4,), 15)
    """
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(
        physics, HopBackward(random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )
