"""Ball-in-cup variant on dm_control's stock model: swinging the ball around the cup.

Follows Newt's ``cup-spin`` (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/ball_in_cup.py``, whose ``ball_in_cup.xml`` is the stock model). Keeps the
stock model, physics (control step 0.02 s) and 8-d observation (cup and ball positions, then
velocities); the initial state puts the ball in the cup most of the time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control.suite import ball_in_cup as stock
from dm_control.suite import base
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["OUT_OF_CUP_PROBABILITY", "SPIN_DISTANCE", "SPIN_SPEED", "CupSpin", "spin"]

#: Ball-to-cup-centre distance (m) at and above which the distance term is 1. The string is 0.3 m
#: long and tied below the cup's centre, so the term stays below 1 (at most about 0.7).
SPIN_DISTANCE = 0.5
#: Ball speed (m/s) at and above which the speed term is 1.
SPIN_SPEED = 6.0
#: Probability that an episode starts with the ball anywhere (else it starts inside the cup).
OUT_OF_CUP_PROBABILITY = 0.1


class CupSpin(stock.BallInCup):
    """Spin (swing) the ball around the cup on its string.

    At reset one uniform draw decides whether the ball may start anywhere (probability 0.1);
    then ball positions ``x ~ U(-0.2, 0.2)``, ``z ~ U(0.2, 0.5)`` are drawn until one is free
    of contacts and, unless the first draw allowed any position, inside the cup (so 90% of the
    episodes start with the ball in the cup).

    Reward per control step: ``outside * (near + 2 * fast) / 3`` with ``outside`` 0 while the
    ball is in the cup (1 otherwise), ``near = tolerance(dist, bounds=(0.5, inf), margin=0.25,
    value_at_margin=0.5)`` and ``fast = tolerance(speed, bounds=(6, inf), margin=3,
    value_at_margin=0.5)`` (both linear), ``dist`` the distance between the ball and the centre
    of the cup and ``speed`` the norm of the ball's world velocity. In ``[0, 1]``.
    """

    def initialize_episode(self, physics: stock.Physics) -> None:
        anywhere = self.random.uniform() < OUT_OF_CUP_PROBABILITY
        while True:
            physics.named.data.qpos["ball_x"] = self.random.uniform(-0.2, 0.2)
            physics.named.data.qpos["ball_z"] = self.random.uniform(0.2, 0.5)
            physics.after_reset()
            if physics.data.ncon == 0 and (anywhere or physics.in_target()):
                break
        base.Task.initialize_episode(self, physics)

    def get_reward(self, physics: stock.Physics) -> float:
        dist = float(np.linalg.norm(physics.ball_to_target()))
        speed = float(np.linalg.norm(physics.named.data.qvel[["ball_x", "ball_z"]]))
        near = rewards.tolerance(
            dist, bounds=(SPIN_DISTANCE, float("inf")), margin=SPIN_DISTANCE / 2, value_at_margin=0.5, sigmoid="linear"
        )
        fast = rewards.tolerance(
            speed, bounds=(SPIN_SPEED, float("inf")), margin=SPIN_SPEED / 2, value_at_margin=0.5, sigmoid="linear"
        )
        return float((1.0 - physics.in_target()) * (near + 2.0 * fast) / 3.0)


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
