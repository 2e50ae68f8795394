"""Cheetah variants on dm_control's stock cheetah model: backward, one-legged and jumping runs.

The four tasks follow the definitions of Newt (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/cheetah.py``): they keep the stock model (Newt's copy differs only in the size
of the drawn ground plane), physics (control step 0.01 s), initial-state sampling and 17-d
observation (joint positions without ``rootx``, joint velocities); only the rewards differ.
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import cheetah as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn, tolerance_up

__all__ = [
    "BACKWARD_SPEED",
    "JUMP_HEIGHT",
    "JUMP_SPEED",
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
#: Mean height (m) of the torso and the raised foot at and above which a jump stance term is 1.
JUMP_HEIGHT = 1.2
#: Horizontal speed (m/s, either way) beyond which a jump stance term's stillness part is 0.
JUMP_SPEED = 0.5


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
    """Rear up on the front or the hind leg, staying in place (Newt's ``jump``).

    Reward per control step: the mean of two stance terms, one per raised foot
    (``"bfoot"``: standing on the front leg, ``"ffoot"``: on the hind leg). For a raised foot at
    height ``f`` and the torso at height ``z``, the stance term is ``(5 * high + still) / 6`` with
    ``high = tolerance((z + f) / 2, bounds=(1.2, inf), margin=0.6)`` (gaussian) and
    ``still = tolerance(v, bounds=(-0.5, 0.5), margin=0.5)`` (linear, 0 at 1 m/s either way),
    ``v`` the forward velocity of the centre of mass. A cheetah lying still pays about
    ``1/6`` (its torso at 0.7 m); both terms can only reach 1 together in flight, with the whole
    body high. In ``[0, 1]``.
    """

    def _stance(self, physics: stock.Physics, raised: str) -> float:
        mean_height = (_height(physics, "torso") + _height(physics, raised)) / 2.0
        high = rewards.tolerance(mean_height, bounds=(JUMP_HEIGHT, float("inf")), margin=JUMP_HEIGHT / 2)
        still = rewards.tolerance(
            physics.speed(), bounds=(-JUMP_SPEED, JUMP_SPEED), margin=JUMP_SPEED, value_at_margin=0.0, sigmoid="linear"
        )
        return float((5.0 * high + still) / 6.0)

    def get_reward(self, physics: stock.Physics) -> float:
        return (self._stance(physics, "bfoot") + self._stance(physics, "ffoot")) / 2.0


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
    """cheetah-jump: rear up on either leg in place."""
    return _env(CheetahJump(random=random), time_limit)
