"""Hopper variant on dm_control's stock hopper: hopping backward.

Follows Newt's definition (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/hopper.py``, whose ``hopper.xml`` is the stock model). Keeps the stock model,
physics (control step 0.02 s), initial-state sampling and 15-d observation (joint positions
without ``rootx``, joint velocities, two foot touch sensors).
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import hopper as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["BACKWARD_HOP_SPEED", "HopBackward", "hop_backward"]

#: Backward speed (m/s) at and above which the hopping term is 1 (half the stock hop speed).
BACKWARD_HOP_SPEED = stock._HOP_SPEED / 2


class HopBackward(stock.Hopper):
    """Hop backward.

    Reward per control step: ``standing * hopping`` with
    ``standing = tolerance(torso_z - foot_z, bounds=(0.6, 2))`` (gaussian, the stock term) and
    ``hopping = tolerance(v, bounds=(-inf, -1), margin=0.5, value_at_margin=0.5)`` (linear),
    ``v`` the forward velocity of the centre of mass: 1 when upright and moving backward at
    1 m/s or faster, 0.5 at 0.5 m/s backward, 0 from standing still on. In ``[0, 1]``.
    """

    def __init__(self, random: Any = None) -> None:
        super().__init__(hopping=False, random=random)

    def get_reward(self, physics: stock.Physics) -> float:
        standing = rewards.tolerance(physics.height(), (stock._STAND_HEIGHT, 2))
        hopping = rewards.tolerance(
            physics.speed(),
            bounds=(-float("inf"), -BACKWARD_HOP_SPEED),
            margin=BACKWARD_HOP_SPEED / 2,
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
