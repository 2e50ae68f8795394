"""Walker variants on dm_control's stock planar walker: walking and running backward.

Both tasks keep the stock model, physics (control step 0.025 s), initial-state sampling and
24-d observation (body orientations, torso height, joint velocities).
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import walker as stock
from dm_control.utils import rewards

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["BackwardWalker", "run_backward", "walk_backward"]


class BackwardWalker(stock.PlanarWalker):
    """Walk or run backward while staying upright (the stock reward, mirrored).

    Reward per control step: ``stand * (5 * move + 1) / 6`` with
    ``stand = (3 * tolerance(torso_z, bounds=(1.2, inf), margin=0.6) + (1 + upright) / 2) / 4``
    and ``move = tolerance(-v, bounds=(speed, inf), margin=speed / 2, value_at_margin=0.5)``
    (linear), ``v`` the forward velocity of the centre of mass and ``speed`` 1 m/s (walk) or 8 m/s
    (run). Standing still pays at most 1/6; the maximum 1 needs an upright torso at 1.2 m or
    higher moving backward at ``speed`` or faster. In ``[0, 1]``.

    Args:
        move_speed: target backward speed (m/s), positive.
        random: seed or ``numpy.random.RandomState``.
    """

    def __init__(self, move_speed: float, random: Any = None) -> None:
        if move_speed <= 0:
            raise ValueError(f"move_speed must be positive, got {move_speed}")
        super().__init__(move_speed=move_speed, random=random)

    def get_reward(self, physics: stock.Physics) -> float:
        standing = rewards.tolerance(
            physics.torso_height(), bounds=(stock._STAND_HEIGHT, float("inf")), margin=stock._STAND_HEIGHT / 2
        )
        upright = (1.0 + physics.torso_upright()) / 2.0
        stand = (3.0 * standing + upright) / 4.0
        move = rewards.tolerance(
            -physics.horizontal_velocity(),
            bounds=(self._move_speed, float("inf")),
            margin=self._move_speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(stand * (5.0 * move + 1.0) / 6.0)


def _env(speed: float, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets())
    return make_environment(
        physics, BackwardWalker(speed, random=random), time_limit=time_limit, control_timestep=stock._CONTROL_TIMESTEP
    )


@register_task_fn("walker", "walk_backward")
def walk_backward(random: Any = None, time_limit: float = float("inf")):
    """walker-walk-backward (1 m/s backward).

    Examples:
        >>> env = walk_backward(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] if v.shape else 1 for v in env.observation_spec().values())
        ((6,), 24)
    """
    return _env(stock._WALK_SPEED, random, time_limit)


@register_task_fn("walker", "run_backward")
def run_backward(random: Any = None, time_limit: float = float("inf")):
    """walker-run-backward (8 m/s backward)."""
    return _env(stock._RUN_SPEED, random, time_limit)
