"""Three-link planar reacher (``reacher_three.xml``) with dm_control's stock reacher task logic.

Follows Newt's ``reacher-three-easy``/``-hard`` (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/reacher.py`` and ``reacher_three_links.xml``). Observation (8-d): the three
joint angles, the target-minus-finger vector (x, y), the three joint velocities. Control step
0.02 s.
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import reacher as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, read_model, register_task_fn

__all__ = ["BIG_TARGET", "LINK_LENGTHS", "SMALL_TARGET", "ThreeLinkReach", "three_easy", "three_hard"]

#: Target radius (m) of the easy task.
BIG_TARGET = 0.05
#: Target radius (m) of the hard task.
SMALL_TARGET = 0.015
#: Shoulder-to-elbow, elbow-to-wrist and wrist-to-finger-centre distances (m) of the model.
LINK_LENGTHS = (0.09, 0.09, 0.09)


class ThreeLinkReach(stock.Reacher):
    """Reach the red target with the finger tip (the stock reacher task on the three-link arm).

    At reset the joints are drawn at random (shoulder in ``[-pi, pi)``, elbow and wrist in their
    +-80 degree limits) and the target is placed at a random angle and a radius in ``[0.05, 0.20]`` m. Reward
    per control step: ``tolerance(dist, bounds=(0, r_target + r_finger))``, i.e. 1 while the finger
    sphere overlaps the target sphere and 0 otherwise (sparse). In ``[0, 1]``.

    Args:
        target_size: target radius (m): 0.05 (easy) or 0.015 (hard).
        random: seed or ``numpy.random.RandomState``.
    """


def _env(target_size: float, random: Any, time_limit: float):
    physics = stock.Physics.from_xml_string(*read_model("reacher_three.xml"))
    return make_environment(physics, ThreeLinkReach(target_size, random=random), time_limit=time_limit)


@register_task_fn("reacher", "three_easy")
def three_easy(random: Any = None, time_limit: float = float("inf")):
    """reacher-three-easy (large target).

    Examples:
        >>> env = three_easy(random=0)
        >>> env.action_spec().shape, sum(v.shape[0] for v in env.observation_spec().values())
        ((3,), 8)
    """
    return _env(BIG_TARGET, random, time_limit)


@register_task_fn("reacher", "three_hard")
def three_hard(random: Any = None, time_limit: float = float("inf")):
    """reacher-three-hard (small target)."""
    return _env(SMALL_TARGET, random, time_limit)
