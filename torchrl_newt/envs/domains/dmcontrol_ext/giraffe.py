"""Giraffe: a long-legged, long-necked planar runner (``giraffe.xml``), 7 actuators, 19-d observation."""

from __future__ import annotations

from typing import Any

from torchrl_newt.envs.domains.dmcontrol_ext._base import (
    PlanarBodyPhysics,
    PlanarBodyTask,
    make_environment,
    read_model,
    register_task_fn,
    tolerance_up,
)

__all__ = ["HEAD_HEIGHT", "RUN_SPEED", "Run", "run"]

#: Head height (m) at and above which the head-up term is 1 (standing, the head is ~1.5 m high).
HEAD_HEIGHT = 1.3
#: Forward speed (m/s) at and above which the speed term is 1.
RUN_SPEED = 10.0


class Run(PlanarBodyTask):
    """Run forward at high speed while holding the head up.

    Reward per control step: ``head_up * (3 * fast + 1) / 4`` with
    ``head_up = tolerance(head_z, bounds=(1.3, inf), margin=0.65)`` (gaussian) and
    ``fast = tolerance(v, bounds=(10, inf), margin=10)`` (linear, 0 at ``v <= 0``), ``v`` the
    forward velocity of the centre of mass. Standing still with the head up pays 0.25; running at
    10 m/s or faster with the head up pays 1. In ``[0, 1]``.
    """

    def get_reward(self, physics: PlanarBodyPhysics) -> float:
        head_up = tolerance_up(physics.body_height("head"), HEAD_HEIGHT, HEAD_HEIGHT / 2)
        fast = tolerance_up(physics.speed(), RUN_SPEED, RUN_SPEED, linear=True, at_margin=0.0)
        return head_up * (3.0 * fast + 1.0) / 4.0


@register_task_fn("giraffe", "run")
def run(random: Any = None, time_limit: float = float("inf")):
    """giraffe-run (control step 0.01 s).

    Examples:
        >>> env = run(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((7,), 19)
    """
    physics = PlanarBodyPhysics.from_xml_string(*read_model("giraffe.xml"))
    return make_environment(physics, Run(random=random), time_limit=time_limit)
