"""Spinner: a five-spoke planar rimless wheel (``spinner.xml``), 5 actuators, 15-d observation.

A four-spoke variant (``spinner_four.xml``, 4 actuators, 13-d observation) backs the held-out
``spinner-*-four`` tasks.
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

__all__ = ["JUMP_HEIGHT", "ROLL_SPEED", "SPIN_MOMENTUM", "Spin", "SpinnerJump", "jump", "spin", "spin_backward"]

#: Angular momentum (kg m^2/s, about the centre of mass) at and above which the spin term is 1.
SPIN_MOMENTUM = 8.0
#: Rolling speed (m/s) at and above which the rolling term is 1.
ROLL_SPEED = 8.0
#: Hub height (m) at and above which the jump reward is 1 (the hub rests at ~0.45 m).
JUMP_HEIGHT = 1.2


class Spin(PlanarBodyTask):
    """Spin (roll like a wheel) forward or backward.

    With ``s = +1`` forward (``-1`` backward), ``L`` the whole body's angular momentum about
    ``+y`` and ``v`` its horizontal centre-of-mass velocity, the reward per control step is
    ``(2 * tol(s * L; 8, margin 8) + 3 * tol(s * v; 8, margin 8)) / 5`` with linear tolerances
    (1 at and above the bound, 0 at and below zero). Spinning in place pays at most 0.4; the
    maximum 1 needs a fast spin that also rolls the body along ``s * x``. In ``[0, 1]``.

    Args:
        forward: spin forward (positive momentum, rolling towards ``+x``) or backward.
        random: seed or ``numpy.random.RandomState``.
    """

    def __init__(self, forward: bool = True, random: Any = None) -> None:
        super().__init__(random=random)
        self._sign = 1.0 if forward else -1.0

    def get_reward(self, physics: PlanarBodyPhysics) -> float:
        spin = tolerance_up(
            self._sign * physics.angular_momentum(), SPIN_MOMENTUM, SPIN_MOMENTUM, linear=True, at_margin=0.0
        )
        roll = tolerance_up(self._sign * physics.speed(), ROLL_SPEED, ROLL_SPEED, linear=True, at_margin=0.0)
        return (2.0 * spin + 3.0 * roll) / 5.0


class SpinnerJump(PlanarBodyTask):
    """Jump as high as possible.

    Reward per control step: ``tolerance(hub_z, bounds=(1.2, inf), margin=0.6)`` (gaussian, 0.1 at
    0.6 m below the bound): 1 while the hub is 1.2 m or higher, about 0.75 m above its resting
    height, which only a flight phase reaches. In ``[0, 1]``.
    """

    def get_reward(self, physics: PlanarBodyPhysics) -> float:
        return tolerance_up(physics.body_height("torso"), JUMP_HEIGHT, JUMP_HEIGHT / 2)


def _env(model: str, task: PlanarBodyTask, time_limit: float):
    physics = PlanarBodyPhysics.from_xml_string(*read_model(model))
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
    """Held-out spinner-spin-four: the four-spoke spinner spinning forward."""
    return _env("spinner_four.xml", Spin(forward=True, random=random), time_limit)


@register_task_fn("spinner", "spin_backward_four")
def spin_backward_four(random: Any = None, time_limit: float = float("inf")):
    """Held-out spinner-spin-backward-four: the four-spoke spinner spinning backward."""
    return _env("spinner_four.xml", Spin(forward=False, random=random), time_limit)


@register_task_fn("spinner", "jump_four")
def jump_four(random: Any = None, time_limit: float = float("inf")):
    """Held-out spinner-jump-four: the four-spoke spinner jumping."""
    return _env("spinner_four.xml", SpinnerJump(random=random), time_limit)
