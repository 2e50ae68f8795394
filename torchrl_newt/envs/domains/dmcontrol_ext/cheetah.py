"""Cheetah variants on dm_control's stock cheetah model: backward, one-legged and jumping runs.

All four tasks keep the stock model, physics (control step 0.01 s), initial-state sampling and
17-d observation (joint positions without ``rootx``, joint velocities); only the rewards differ.
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import cheetah as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn, tolerance_up

__all__ = [
    "BACKWARD_SPEED",
    "JUMP_FEET_HEIGHT",
    "JUMP_TORSO_HEIGHT",
    "ONE_LEG_HEIGHT",
    "ONE_LEG_SPEED",
    "CheetahJump",
    "OneLegRun",
    "RunBackward",
    "jump",
    "run_back",
    "run_backward",
    "run_front",
]

#: Backward speed (m/s) at and above which the run-backward reward is 1 (stock forward run: 10).
BACKWARD_SPEED = 8.0
#: Forward speed (m/s) at and above which the one-legged run's speed term is 1.
ONE_LEG_SPEED = 6.0
#: Height (m) of the raised foot and of the torso at and above which the one-leg pose terms are 1.
ONE_LEG_HEIGHT = 1.2
#: Torso height (m) at and above which the jump's torso term is 1 (the torso rests at ~0.7 m).
JUMP_TORSO_HEIGHT = 1.2
#: Height (m) of the lower foot frame at and above which the jump's feet term is 1 (~0.3 m at rest).
JUMP_FEET_HEIGHT = 0.8


def _height(physics: stock.Physics, body: str) -> float:
    return float(physics.named.data.xpos[body, "z"])


class RunBackward(stock.Cheetah):
    """Run backward as fast as possible.

    Reward per control step: ``tolerance(-v, bounds=(8, inf), margin=8)`` (linear), ``v`` the
    forward velocity of the centre of mass: 0 when not moving backward, 1 at 8 m/s backward or
    faster. In ``[0, 1]``.
    """

    def get_reward(self, physics: stock.Physics) -> float:
        return tolerance_up(-physics.speed(), BACKWARD_SPEED, BACKWARD_SPEED, linear=True, at_margin=0.0)


class OneLegRun(stock.Cheetah):
    """Run forward on one leg (front or hind), the other foot held high.

    With ``raised`` the foot that must stay off the ground (``"bfoot"`` to run on the front leg,
    ``"ffoot"`` to run on the hind leg), the reward per control step is
    ``pose * (5 * fast + 1) / 6`` where ``pose = (3 * tol(raised_z) + 2 * tol(torso_z)) / 5``
    (gaussian tolerances with bound 1.2 m, margin 0.6 m) and ``fast = tolerance(v, bounds=(6,
    inf), margin=6)`` (linear). Holding the one-legged pose still pays 1/6; the maximum 1 needs
    the pose at 6 m/s forward or faster. In ``[0, 1]``.

    Args:
        raised: name of the foot body that must be raised.
        random: seed or ``numpy.random.RandomState``.
    """

    def __init__(self, raised: str, random: Any = None) -> None:
        if raised not in ("bfoot", "ffoot"):
            raise ValueError(f"raised must be 'bfoot' or 'ffoot', got {raised!r}")
        super().__init__(random=random)
        self._raised = raised

    def get_reward(self, physics: stock.Physics) -> float:
        foot_up = tolerance_up(_height(physics, self._raised), ONE_LEG_HEIGHT, ONE_LEG_HEIGHT / 2)
        torso_up = tolerance_up(_height(physics, "torso"), ONE_LEG_HEIGHT, ONE_LEG_HEIGHT / 2)
        pose = (3.0 * foot_up + 2.0 * torso_up) / 5.0
        fast = tolerance_up(physics.speed(), ONE_LEG_SPEED, ONE_LEG_SPEED, linear=True, at_margin=0.0)
        return pose * (5.0 * fast + 1.0) / 6.0


class CheetahJump(stock.Cheetah):
    """Jump as high as possible: torso high and both feet off the ground.

    Reward per control step: ``(tol(torso_z; 1.2, margin 0.6) + tol(min(bfoot_z, ffoot_z); 0.8,
    margin 0.4)) / 2`` (gaussian tolerances, 1 at and above the bound). Rearing up on one leg
    raises the torso but not both feet, so the maximum 1 needs a flight phase with the whole body
    about 0.5 m above its standing height. In ``[0, 1]``.
    """

    def get_reward(self, physics: stock.Physics) -> float:
        torso_up = tolerance_up(_height(physics, "torso"), JUMP_TORSO_HEIGHT, JUMP_TORSO_HEIGHT / 2)
        lowest_foot = min(_height(physics, "bfoot"), _height(physics, "ffoot"))
        feet_up = tolerance_up(lowest_foot, JUMP_FEET_HEIGHT, JUMP_FEET_HEIGHT / 2)
        return (torso_up + feet_up) / 2.0


def _env(task: stock.Cheetah, time_limit: float):
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(physics, task, time_limit=time_limit)


@register_task_fn("cheetah", "run_backward")
def run_backward(random: Any = None, time_limit: float = float("inf")):
    """cheetah-run-backward.

    Examples:
        >>> env = run_backward(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((6,), 17)
    """
    return _env(RunBackward(random=random), time_limit)


@register_task_fn("cheetah", "run_front")
def run_front(random: Any = None, time_limit: float = float("inf")):
    """cheetah-run-front: run forward on the front leg (hind foot raised)."""
    return _env(OneLegRun("bfoot", random=random), time_limit)


@register_task_fn("cheetah", "run_back")
def run_back(random: Any = None, time_limit: float = float("inf")):
    """cheetah-run-back: run forward on the hind leg (front foot raised)."""
    return _env(OneLegRun("ffoot", random=random), time_limit)


@register_task_fn("cheetah", "jump")
def jump(random: Any = None, time_limit: float = float("inf")):
    """cheetah-jump."""
    return _env(CheetahJump(random=random), time_limit)
