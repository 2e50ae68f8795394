"""Giraffe: a long-legged, long-necked planar runner (``giraffe.xml``), 7 actuators, 19-d observation.

The task follows Newt's definition (reference: ``tdmpc2/envs/tasks/giraffe.py`` in
nicklashansen/newt at commit 75def92): a cheetah-style planar body (random limited joints, 200
settling steps, observation ``qpos[1:]`` then ``qvel``) rewarded for running forward with its head
up. The body itself (``giraffe.xml``) is our own: Newt's model was not available to us.
"""

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

#: Head height (m) at and above which the head-up term is 1 (Newt's ``_GIRAFFE_HEAD_HEIGHT``).
HEAD_HEIGHT = 0.5
#: Forward speed (m/s) at and above which the speed term is 1 (the stock cheetah's run speed).
RUN_SPEED = 10.0


class Run(PlanarBodyTask):
    """Run forward at high speed while holding the head up.

    Reward per control step: ``head_up * (3 * fast + 1) / 4`` with
    ``head_up = tolerance(head_z, bounds=(0.5, inf), margin=0.25)`` (gaussian, ``head_z`` the height
    of the head body's frame) and ``fast = tolerance(v, bounds=(10, inf), margin=10)`` (linear, 0 at
    ``v <= 0``), ``v`` the forward velocity of the centre of mass. Standing still with the head up
    pays 0.25; running at 10 m/s or faster with the head up pays 1. In ``[0, 1]``.
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
