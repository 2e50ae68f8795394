"""Spinner: Newt's five-armed planar spinner (``spinner.xml``), 5 actuators, 15-d observation.

The tasks follow Newt's definitions (reference: ``tdmpc2/envs/tasks/spinner.py`` in
nicklashansen/newt at commit 75def92): a cheetah-style planar body (random limited joints, 200
settling steps, observation ``qpos[1:]`` then ``qvel``) rewarded for spinning forward or backward
or for jumping. A four-armed variant (``spinner_four.xml``, 4 actuators, 13-d observation; Newt's
``spinner_four_arms.xml``) backs the held-out ``spinner-*-four`` tasks with the same rewards.
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

__all__ = [
    "JUMP_HEIGHT",
    "MOVE_SPEED",
    "SPIN_MOMENTUM",
    "Spin",
    "SpinnerJump",
    "SpinnerPhysics",
    "jump",
    "jump_four",
    "spin",
    "spin_backward",
    "spin_backward_four",
    "spin_four",
]

#: Angular momentum (kg m^2/s) at and above which the spin term is 1 (Newt's ``_SPINNER_SPIN_SPEED``).
SPIN_MOMENTUM = 8.0
#: Horizontal centre-of-mass speed (m/s) at and above which the rolling term is 1: 0.8 times the
#: stock cheetah's run speed of 10 m/s, as in Newt.
MOVE_SPEED = 8.0
#: Torso height (m) at and above which the jump reward is 1 (Newt's ``_SPINNER_JUMP_HEIGHT``; the
#: hub rests at about 0.53 m).
JUMP_HEIGHT = 1.5


class SpinnerPhysics(PlanarBodyPhysics):
    """Physics of the spinner, with the torso subtree's angular momentum."""

    def spin_momentum(self) -> float:
        """Angular momentum about ``+y`` of the torso subtree (the whole body), about its centre of
        mass, read from MuJoCo's ``subtree_angmom`` (kg m^2/s)."""
        return float(self.named.data.subtree_angmom["torso"][1])


class Spin(PlanarBodyTask):
    """Spin (roll like a wheel) forward or backward.

    With ``s = +1`` forward (``-1`` backward), ``L`` the torso subtree's angular momentum about
    ``+y`` and ``v`` the horizontal velocity of the centre of mass, the reward per control step is
    ``(2 * tol(s * L; 8, margin 8) + 3 * tol(s * v; 8, margin 8)) / 5`` with linear tolerances
    (1 at and above the bound, 0 at and below zero). In ``[0, 1]``.

    Args:
        forward: spin forward (positive momentum, moving towards ``+x``) or backward.
        random: seed or ``numpy.random.RandomState``.
    """

    def __init__(self, forward: bool = True, random: Any = None) -> None:
        super().__init__(random=random)
        self._sign = 1.0 if forward else -1.0

    def get_reward(self, physics: SpinnerPhysics) -> float:
        spin = tolerance_up(
            self._sign * physics.spin_momentum(), SPIN_MOMENTUM, SPIN_MOMENTUM, linear=True, at_margin=0.0
        )
        move = tolerance_up(self._sign * physics.speed(), MOVE_SPEED, MOVE_SPEED, linear=True, at_margin=0.0)
        return (2.0 * spin + 3.0 * move) / 5.0


class SpinnerJump(PlanarBodyTask):
    """Jump as high as possible.

    Reward per control step: ``tolerance(torso_z, bounds=(1.5, inf), margin=0.75)`` (gaussian, 0.1
    at 0.75 m below the bound), ``torso_z`` the height of the torso body's frame. In ``[0, 1]``.
    """

    def get_reward(self, physics: PlanarBodyPhysics) -> float:
        return tolerance_up(physics.body_height("torso"), JUMP_HEIGHT, JUMP_HEIGHT / 2)


def _env(model: str, task: PlanarBodyTask, time_limit: float):
    physics = SpinnerPhysics.from_xml_string(*read_model(model))
    return make_environment(physics, task, time_limit=time_limit)


@register_task_fn("spinner", "spin")
def spin(random: Any = None, time_limit: float = float("inf")):
    """spinner-spin (control step 0.01 s).

    Examples:
        >>> env = spin(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((5,), 15)
    """
    return _env("spinner.xml", Spin(forward=True, random=random), time_limit)


@register_task_fn("spinner", "spin_backward")
def spin_backward(random: Any = None, time_limit: float = float("inf")):
    """spinner-spin-backward (control step 0.01 s)."""
    return _env("spinner.xml", Spin(forward=False, random=random), time_limit)


@register_task_fn("spinner", "jump")
def jump(random: Any = None, time_limit: float = float("inf")):
    """spinner-jump (control step 0.01 s)."""
    return _env("spinner.xml", SpinnerJump(random=random), time_limit)


@register_task_fn("spinner", "spin_four")
def spin_four(random: Any = None, time_limit: float = float("inf")):
    """Held-out spinner-spin-four: the four-armed spinner spinning forward.

    Examples:
        >>> env = spin_four(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((4,), 13)
    """
    return _env("spinner_four.xml", Spin(forward=True, random=random), time_limit)


@register_task_fn("spinner", "spin_backward_four")
def spin_backward_four(random: Any = None, time_limit: float = float("inf")):
    """Held-out spinner-spin-backward-four: the four-armed spinner spinning backward."""
    return _env("spinner_four.xml", Spin(forward=False, random=random), time_limit)


@register_task_fn("spinner", "jump_four")
def jump_four(random: Any = None, time_limit: float = float("inf")):
    """Held-out spinner-jump-four: the four-armed spinner jumping."""
    return _env("spinner_four.xml", SpinnerJump(random=random), time_limit)
