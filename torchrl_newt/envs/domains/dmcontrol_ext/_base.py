"""Shared machinery of the DMControl-extended tasks: a task table, model loading, planar bodies.

Every task of the family is a plain dm_control ``control.Environment`` made by a factory
registered here with :func:`register_task_fn` under a ``(domain, task)`` pair (the pair stored in
the MMBench facts as ``spec.source["domain"]`` / ``spec.source["task"]``). :func:`load` builds one,
like ``dm_control.suite.load`` does for the stock suite.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from importlib import resources
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

from dm_control import mujoco
from dm_control.rl import control
from dm_control.suite import base, common
from dm_control.utils import rewards

__all__ = [
    "PlanarBodyPhysics",
    "PlanarBodyTask",
    "list_task_fns",
    "load",
    "make_environment",
    "read_model",
    "register_task_fn",
    "tolerance_up",
]

TaskFn = Callable[..., control.Environment]

_TASK_FNS: dict[tuple[str, str], TaskFn] = {}


def register_task_fn(domain: str, task: str) -> Callable[[TaskFn], TaskFn]:
    """Decorator registering ``fn(random=None, time_limit=inf) -> control.Environment``.

    Args:
        domain: the body family (``"walker"``, ``"spinner"``...).
        task: the task name within the family (``"walk_backward"``...).

    Raises:
        ValueError: the pair is registered already.
    """

    def decorator(fn: TaskFn) -> TaskFn:
        key = (domain, task)
        if key in _TASK_FNS and _TASK_FNS[key] is not fn:
            raise ValueError(f"dmcontrol-ext task {domain}/{task} is registered twice")
        _TASK_FNS[key] = fn
        return fn

    return decorator


def list_task_fns() -> list[tuple[str, str]]:
    """The registered ``(domain, task)`` pairs, sorted.

    Examples:
        >>> ("spinner", "spin") in list_task_fns()
        True
    """
    return sorted(_TASK_FNS)


def load(domain: str, task: str, random: Any = None, time_limit: float = float("inf")) -> control.Environment:
    """Build one DMControl-extended task as a dm_control environment.

    Args:
        domain: the body family, e.g. ``"jumper"``.
        task: the task within the family, e.g. ``"jump"``.
        random: seed or ``numpy.random.RandomState`` of the task's initial-state sampling.
        time_limit: episode length in seconds (infinite by default: MMBench truncates outside).

    Raises:
        KeyError: unknown ``(domain, task)`` pair (the message lists the known ones).

    Examples:
        >>> env = load("pendulum", "spin", random=0)
        >>> {k: v.shape for k, v in env.observation_spec().items()}
        {'orientation': (2,), 'velocity': (1,)}
    """
    try:
        fn = _TASK_FNS[(domain, task)]
    except KeyError:
        known = ", ".join(f"{d}/{t}" for d, t in list_task_fns())
        raise KeyError(f"unknown dmcontrol-ext task {domain}/{task}; known: {known}") from None
    return fn(random=random, time_limit=time_limit)


def read_model(filename: str) -> tuple[str, dict[str, bytes]]:
    """Read an MJCF file shipped in this package, with dm_control's common assets.

    The returned assets let the models include ``./common/{skybox,visual,materials}.xml``.

    Args:
        filename: file name inside the ``dmcontrol_ext`` package folder.

    Examples:
        >>> xml, assets = read_model("jumper.xml")
        >>> '<mujoco model="jumper">' in xml, './common/materials.xml' in assets
        (True, True)
    """
    text = resources.files(__package__).joinpath(filename).read_text()
    return text, common.ASSETS


def make_environment(
    physics: mujoco.Physics,
    task: base.Task,
    *,
    time_limit: float = float("inf"),
    control_timestep: float | None = None,
) -> control.Environment:
    """A ``control.Environment`` with an infinite time limit unless told otherwise."""
    kwargs = {} if control_timestep is None else {"control_timestep": control_timestep}
    return control.Environment(physics, task, time_limit=time_limit, **kwargs)


class PlanarBodyPhysics(mujoco.Physics):
    """Physics of the new planar bodies (jumper, spinner, giraffe).

    Their models define a ``torso`` body carrying the root joints ``rootx``/``rootz``/``rooty``
    and two sensors: ``torso_subtreelinvel`` and ``torso_subtreeangmom``.
    """

    def speed(self) -> float:
        """Horizontal velocity of the whole body's centre of mass (m/s, forward is ``+x``)."""
        return float(self.named.data.sensordata["torso_subtreelinvel"][0])

    def angular_momentum(self) -> float:
        """Angular momentum of the whole body about ``+y`` at its centre of mass (kg m^2/s).

        Positive values roll the body forward (towards ``+x``) when it rolls on the ground.
        """
        return float(self.named.data.sensordata["torso_subtreeangmom"][1])

    def body_height(self, body: str) -> float:
        """World height of a body frame's origin (m)."""
        return float(self.named.data.xpos[body, "z"])


class PlanarBodyTask(base.Task):
    """Base task of a planar body: random joint configuration, settling, flat state observation.

    At reset every limited joint is drawn uniformly in its range (from ``self.random``), then the
    body falls and settles for ``settle_steps`` physics steps before the clock is reset. The
    observation is ``position`` (all joint positions except ``rootx``, for translation
    invariance) followed by ``velocity`` (all joint velocities).

    Subclasses implement :meth:`get_reward`.

    Args:
        random: seed or ``numpy.random.RandomState``.
        settle_steps: physics steps simulated with zero control after the joints are drawn.
    """

    def __init__(self, random: Any = None, settle_steps: int = 200) -> None:
        super().__init__(random=random)
        self._settle_steps = int(settle_steps)

    def initialize_episode(self, physics: mujoco.Physics) -> None:
        limited = physics.model.jnt_limited == 1
        lower, upper = physics.model.jnt_range[limited].T
        addr = physics.model.jnt_qposadr[limited]
        physics.data.qpos[addr] = self.random.uniform(lower, upper)
        physics.data.ctrl[:] = 0.0
        if self._settle_steps:
            physics.step(nstep=self._settle_steps)
        physics.data.time = 0.0
        super().initialize_episode(physics)

    def get_observation(self, physics: mujoco.Physics) -> collections.OrderedDict:
        obs = collections.OrderedDict()
        obs["position"] = physics.data.qpos[1:].copy()
        obs["velocity"] = physics.data.qvel.copy()
        return obs

    def get_reward(self, physics: mujoco.Physics) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def tolerance_up(x: float, target: float, margin: float, *, linear: bool = False, at_margin: float = 0.1) -> float:
    """``1`` when ``x >= target``, decaying below it (gaussian, or linear to 0 at ``target - margin``).

    Examples:
        >>> tolerance_up(2.0, 1.0, 0.5)
        1.0
        >>> round(tolerance_up(0.5, 1.0, 0.5), 3)
        0.1
        >>> tolerance_up(0.0, 1.0, 1.0, linear=True, at_margin=0.0)
        0.0
    """
    if linear:
        return float(
            rewards.tolerance(
                x, bounds=(target, float("inf")), margin=margin, value_at_margin=at_margin, sigmoid="linear"
            )
        )
    return float(rewards.tolerance(x, bounds=(target, float("inf")), margin=margin, value_at_margin=at_margin))
