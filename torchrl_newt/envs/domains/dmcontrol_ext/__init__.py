"""The DMControl-extended MMBench tasks: our own dm_control tasks and MJCF models.

Sixteen MMBench tasks (and the held-out ``dmcontrol-ext`` variants) that are not in the stock
DeepMind Control Suite, written as dm_control ``control.Environment`` tasks:

* variants of stock domains, reusing dm_control's models and physics with new rewards:
  ``walker-walk-backward``, ``walker-run-backward``, ``cheetah-run-backward``,
  ``cheetah-run-front``, ``cheetah-run-back``, ``cheetah-jump``, ``hopper-hop-backward``,
  ``cup-spin``, ``pendulum-spin`` (modules :mod:`.walker`, :mod:`.cheetah`, :mod:`.hopper`,
  :mod:`.cup`, :mod:`.pendulum`);
* new bodies with their own MJCF models shipped in this package: a three-link reacher
  (``reacher-three-easy``/``-hard``, :mod:`.reacher`), a jumper with a spherical torso on two
  hinged legs (``jumper-jump``, :mod:`.jumper`), a five-armed spinner (``spinner-spin``,
  ``spinner-spin-backward``, ``spinner-jump`` and the held-out four-armed ``spinner-*-four``,
  :mod:`.spinner`) and a giraffe (``giraffe-run``, :mod:`.giraffe`).

The jumper, spinner and giraffe tasks follow Newt's definitions (nicklashansen/newt at commit
75def92, ``tdmpc2/envs/tasks/{jumper,spinner,giraffe}.py``): cheetah-style initialisation and
observations and the same reward terms and constants. Newt's MJCF files for these bodies were not
available to us; our models reproduce what Newt's recorded runs pin down (joint layout, initial
torso height, the spinners' mass properties, resting heights), see the comment at the top of each
XML file, but their contact geometry and joint/actuator parameters are reconstructions, so
trajectories differ from Newt's.

Each task's reward is documented on its ``Task`` class; all are in ``[0, 1]`` per control step,
so with the MMBench action repeat of 2 and 500 agent steps an episode returns at most 1000 (the
score divisor). The domain builder wraps the environment in
:class:`~torchrl_newt.envs.domains.dmcontrol.DMControlRawTask`.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

from torchrl_newt.envs.domains.dmcontrol import DMControlRawTask
from torchrl_newt.envs.domains.dmcontrol_ext import (  # noqa: F401  (registers the task functions)
    cartpole,
    cheetah,
    cup,
    giraffe,
    hopper,
    jumper,
    pendulum,
    reacher,
    spinner,
    walker,
)
from torchrl_newt.envs.domains.dmcontrol_ext._base import list_task_fns, load, register_task_fn
from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["list_task_fns", "load", "make_dmcontrol_ext_task", "register_task_fn"]


def make_dmcontrol_ext_task(
    spec: TaskSpec, *, seed: int | None = None, time_limit: float = float("inf")
) -> DMControlRawTask:
    """Build a DMControl-extended task (the ``"dmcontrol-ext"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` names the ``domain``/``task`` pair and the
            ``action_repeat``.
        seed: seed of the task's random state (``reset(seed=...)`` reseeds it as well).
        time_limit: episode time limit in seconds; infinite by default (MMBench truncates in the
            transform stack).

    Raises:
        ValueError: the spec's source facts name no dm_control domain/task.
        KeyError: the domain/task pair is not implemented here.

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_dmcontrol_ext_task(get_task("spinner-spin"), seed=0)
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (15, 5, 2)
        >>> raw.render().shape
        (224, 224, 3)
        >>> raw.close()
    """
    source = spec.source
    if "domain" not in source or "task" not in source:
        raise ValueError(f"task {spec.name!r} has no dm_control domain/task in its source facts: {dict(source)}")
    env = load(source["domain"], source["task"], random=seed, time_limit=time_limit)
    return DMControlRawTask(env, action_repeat=int(source.get("action_repeat", spec.action_repeat)))


def _builder(spec: TaskSpec, **kwargs: Any) -> DMControlRawTask:
    return make_dmcontrol_ext_task(spec, **kwargs)


register_domain("dmcontrol-ext", _builder, extra="dmc", requires=("dm_control",))
