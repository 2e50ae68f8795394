"""Jumper: Newt's two-legged planar jumper (``jumper.xml``), 2 actuators, 9-d observation.

The task follows Newt's definition (reference: ``tdmpc2/envs/tasks/jumper.py`` in
nicklashansen/newt at commit 75def92): a cheetah-style planar body (random limited joints, 200
settling steps, observation ``qpos[1:]`` then ``qvel``) rewarded for the height of its torso.
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

__all__ = ["JUMP_HEIGHT", "Jump", "jump"]

#: Torso height (m) at and above which the jump reward is 1 (Newt's ``_JUMPER_JUMP_HEIGHT``; the
#: torso frame rests at about 0.53 m).
JUMP_HEIGHT = 1.5


class Jump(PlanarBodyTask):
    """Jump as high as possible.

    Reward per control step: ``tolerance(torso_z, bounds=(1.5, inf), margin=0.75)`` (gaussian, 0.1
    at 0.75 m below the bound), ``torso_z`` the height of the torso body's frame. In ``[0, 1]``.
    """

    def get_reward(self, physics: PlanarBodyPhysics) -> float:
        return tolerance_up(physics.body_height("torso"), JUMP_HEIGHT, JUMP_HEIGHT / 2)


@register_task_fn("jumper", "jump")
def jump(random: Any = None, time_limit: float = float("inf")):
    """The jumper-jump environment (control step 0.01 s).

    Examples:
        >>> env = jump(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((2,), 9)
    """
    physics = PlanarBodyPhysics.from_xml_string(*read_model("jumper.xml"))
    return make_environment(physics, Jump(random=random), time_limit=time_limit)
