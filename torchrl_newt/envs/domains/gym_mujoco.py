"""Gymnasium MuJoCo locomotion tasks (MMBench domain ``"mujoco"``).

Six tasks on Gymnasium's MuJoCo envs, each a :class:`~torchrl_newt.envs.domains._gym.GymRawTask`:

============================  ==================  ======  =====  ======
task                          env                 obs     act    repeat
============================  ==================  ======  =====  ======
``mujoco-ant``                ``Ant``             27      8      2
``mujoco-halfcheetah``        ``HalfCheetah``     17      6      1
``mujoco-hopper``             ``Hopper``          11      3      2
``mujoco-inverted-pendulum``  ``InvertedPendulum`` 4      1      2
``mujoco-reacher``            ``Reacher``         11      2      1
``mujoco-walker``             ``Walker2d``        17      6      2
============================  ==================  ======  =====  ======

As in the MMBench facts: actions in ``[-1, 1]`` are multiplied by the env's action bound,
episodes have a fixed length (no termination; ``terminate_when_unhealthy=False`` for the
ant, hopper and walker), the hopper and walker replace each sub-step reward by ``max(0, r)``
while healthy and ``-1`` while unhealthy, and the inverted pendulum earns nothing after the
pole first falls (the episode goes on).

**Env versions.** The tasks follow Newt's definitions (nicklashansen/newt, commit 75def92,
``tdmpc2/envs/mujoco.py``), which build Gymnasium's ``-v4`` envs: :func:`make_mujoco_task` does
the same by default (``version="v4"``; Gymnasium 1.x still registers them and warns that they are
deprecated). Newt's wrapper scales actions by the env's bound without clipping them; our raw tasks
clip to ``[-1, 1]`` first, which is the same for actions inside the box.

``version="v5"`` builds the current ``-v5`` envs instead, with keyword arguments that restore the
v4 observation layout and reward where v5 allows it:

* ``Ant-v5``: ``include_cfrc_ext_in_observation=False`` (27-d observation, no contact forces)
  and ``contact_cost_weight=0`` (v4 without contact forces had no contact cost);
* ``Reacher-v5`` dropped the constant-zero z component of the fingertip-to-target vector: a
  zero is appended so the observation keeps the benchmark's 11 dimensions (same values as v4);
  its distance reward is measured after the physics step (v4: before it), a one-step shift;
* ``Walker2d-v5`` gives both feet the same friction (v4's left foot had a lower one), so its
  dynamics differ slightly from v4; ``Hopper``, ``HalfCheetah`` and ``InvertedPendulum`` give
  the same observations and (after our shaping) the same rewards as v4, up to v5's model fixes.

v5 trajectories therefore differ from Newt's; use it only where v4 cannot be built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from torchrl_newt.envs.domains._gym import GymRawTask
from torchrl_newt.envs.registry import TaskSpec, get_task, register_domain

__all__ = ["HealthyOrPenalty", "ZeroAfterTermination", "make_mujoco_task"]

logger = logging.getLogger(__name__)


class HealthyOrPenalty:
    """Sub-step reward ``max(0, r)`` while the robot is healthy, ``penalty`` otherwise.

    Reads ``env.is_healthy`` (Gymnasium's hopper and walker expose it).

    Args:
        penalty: reward of an unhealthy sub-step. Defaults to ``-1.0``.

    Examples:
        >>> class _Env:
        ...     is_healthy = False
        >>> rule = HealthyOrPenalty()
        >>> rule(3.0, False, {}, _Env())
        -1.0
        >>> _Env.is_healthy = True
        >>> rule(-0.2, False, {}, _Env()), rule(2.5, False, {}, _Env())
        (0.0, 2.5)
    """

    def __init__(self, penalty: float = -1.0) -> None:
        self.penalty = float(penalty)

    def reset(self) -> None:
        pass

    def __call__(self, reward: float, terminated: bool, info: dict, env: Any) -> float:
        return max(0.0, float(reward)) if env.is_healthy else self.penalty

    def __repr__(self) -> str:
        return f"HealthyOrPenalty(penalty={self.penalty})"


class ZeroAfterTermination:
    """Zero reward from the first sub-step the simulator reports ``terminated`` until reset.

    The episode itself continues (fixed-length episodes); only the reward is latched to zero.

    Examples:
        >>> rule = ZeroAfterTermination()
        >>> [rule(1.0, t, {}, None) for t in (False, True, False)]
        [1.0, 0.0, 0.0]
        >>> rule.reset(); rule(1.0, False, {}, None)
        1.0
    """

    def __init__(self) -> None:
        self._latched = False

    def reset(self) -> None:
        self._latched = False

    def __call__(self, reward: float, terminated: bool, info: dict, env: Any) -> float:
        if terminated:
            self._latched = True
        return 0.0 if self._latched else float(reward)

    def __repr__(self) -> str:
        return "ZeroAfterTermination()"


def _append_zero(obs: np.ndarray) -> np.ndarray:
    return np.concatenate([obs, np.zeros(1, np.float32)])


@dataclass(frozen=True)
class _MujocoFacts:
    """How one MMBench MuJoCo task is built from a Gymnasium env family."""

    family: str  # Gymnasium env name without version, e.g. "Ant"
    v5_kwargs: Mapping[str, Any] = field(default_factory=dict)  # restores the v4 obs/reward
    v5_pad_obs: bool = False  # append a zero (Reacher-v5 lost v4's constant z component)
    shaping: str | None = None  # "healthy" or "latch"


_TASKS: dict[str, _MujocoFacts] = {
    "mujoco-ant": _MujocoFacts("Ant", {"include_cfrc_ext_in_observation": False, "contact_cost_weight": 0.0}),
    "mujoco-halfcheetah": _MujocoFacts("HalfCheetah"),
    "mujoco-hopper": _MujocoFacts("Hopper", shaping="healthy"),
    "mujoco-inverted-pendulum": _MujocoFacts("InvertedPendulum", shaping="latch"),
    "mujoco-reacher": _MujocoFacts("Reacher", v5_pad_obs=True),
    "mujoco-walker": _MujocoFacts("Walker2d", shaping="healthy"),
}


def make_mujoco_task(
    spec: TaskSpec | str,
    *,
    version: str = "v4",
    render_size: int | tuple[int, int] = 224,
    seed: int | None = None,
    **env_kwargs: Any,
) -> GymRawTask:
    """Build the raw task of an MMBench MuJoCo task (the ``"mujoco"`` domain builder).

    Args:
        spec: the task spec (or name), e.g. ``"mujoco-hopper"``.
        version: Gymnasium env version, ``"v4"`` (default: Newt's envs) or ``"v5"`` (the
            current envs, with v4-compatible arguments; see the module docstring).
        render_size: native size of rendered frames, an int (square) or ``(height, width)``.
            Frames of another size are resized on :meth:`GymRawTask.render`.
        seed: seed of the first reset (later resets continue the simulator's generator).
        **env_kwargs: extra keyword arguments for ``gymnasium.make`` (override ours).

    Returns:
        A :class:`~torchrl_newt.envs.domains._gym.GymRawTask` with the task's action repeat
        and reward rules.

    Examples:
        >>> raw = make_mujoco_task("mujoco-reacher")  # Reacher-v4, as in Newt
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (11, 2, 1)
        >>> obs = raw.reset(seed=0)
        >>> float(obs[-1])  # v4's constant z component of fingertip - target
        0.0
        >>> raw.close()
        >>> raw = make_mujoco_task("mujoco-reacher", version="v5")  # z component padded back
        >>> float(raw.reset(seed=0)[-1]), raw.env.spec.id
        (0.0, 'Reacher-v5')
        >>> raw.close()
    """
    import gymnasium as gym

    spec = get_task(spec)
    facts = _TASKS.get(spec.name)
    if facts is None:
        # a user task registered with base="mujoco-..." keeps the base's source id
        family = str(spec.source.get("id", "")).split("-v")[0]
        facts = next((f for f in _TASKS.values() if f.family == family), None)
        if facts is None:
            raise ValueError(f"task {spec.name!r} is not a known MuJoCo task (source id {spec.source.get('id')!r})")
    if version not in ("v4", "v5"):
        raise ValueError(f"version must be 'v4' or 'v5', got {version!r}")
    height, width = (render_size, render_size) if isinstance(render_size, int) else render_size

    kwargs: dict[str, Any] = {"render_mode": "rgb_array", "width": int(width), "height": int(height)}
    kwargs.update({k: v for k, v in spec.source.get("kwargs", {}).items() if k != "render_mode"})
    if version == "v5":
        kwargs.update(facts.v5_kwargs)
    kwargs.update(env_kwargs)
    env_id = f"{facts.family}-{version}"
    # unwrapped: no TimeLimit (the stack truncates) and no order enforcing (we step past terminations)
    env = gym.make(env_id, **kwargs).unwrapped

    shaping = {"healthy": HealthyOrPenalty, "latch": ZeroAfterTermination}.get(facts.shaping or "", None)
    repeat = int(spec.source.get("action_repeat", spec.action_repeat))
    raw = GymRawTask(
        env,
        action_repeat=repeat,
        reward_shaping=shaping() if shaping is not None else None,
        obs_fn=_append_zero if (facts.v5_pad_obs and version == "v5") else None,
        name=spec.name,
        seed=seed,
    )
    logger.debug("built %s on %s (repeat %d)", spec.name, env_id, repeat)
    return raw


def _builder(spec: TaskSpec, **kwargs: Any) -> GymRawTask:
    return make_mujoco_task(spec, **kwargs)


register_domain("mujoco", _builder, extra="mujoco", requires=("gymnasium", "mujoco"))
