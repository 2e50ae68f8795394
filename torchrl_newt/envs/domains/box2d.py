"""Box2D tasks (MMBench domain ``"box2d"``): bipedal walker terrains and lunar lander variants.

The tasks follow Newt's definitions (nicklashansen/newt, commit 75def92, ``tdmpc2/envs/box2d.py``
and ``tdmpc2/envs/tasks/{bipedal_walker,lunarlander}.py``).

Eight tasks, each a :class:`~torchrl_newt.envs.domains._gym.GymRawTask` around an env of
:mod:`torchrl_newt.envs.domains.box2d_tasks` with action repeat 2 and, as in the MMBench facts,
fixed-length episodes (falls, crashes and landings never end an episode):

* ``bipedal-walker-{flat,uneven,rugged,hills,obstacles}``: Gymnasium's BipedalWalker on Newt's
  terrains (:class:`~torchrl_newt.envs.domains.box2d_tasks.TerrainBipedalWalker`); each sub-step
  reward is clipped to ``[-1, 10]`` (a fallen walker keeps earning ``-1``);
* ``lunarlander-land``: continuous landing; sub-step rewards ``clip(r, -5, 10) / 20``;
* ``lunarlander-hover`` / ``lunarlander-takeoff``: Newt's goal-reaching variants, 10-d observations
  (2 goal-offset dims) and rewards already in ``[0, 1]`` per sub-step (no clipping).

Gymnasium's Box2D envs take actions in ``[-1, 1]`` already, so actions pass through (clipped).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np  # noqa: F401  (used by the doctest)

from torchrl_newt.envs.domains._gym import ClipReward, GymRawTask
from torchrl_newt.envs.registry import TaskSpec, get_task, register_domain

__all__ = ["make_box2d_task"]

logger = logging.getLogger(__name__)

# facts' class name -> (our env factory name, constructor kwargs, per-sub-step reward clipping)
_TASKS: dict[str, tuple[str, dict[str, Any], tuple[float, float, float] | None]] = {
    "BipedalWalkerFlat": ("TerrainBipedalWalker", {"terrain": "flat"}, (-1.0, 10.0, 1.0)),
    "BipedalWalkerUneven": ("TerrainBipedalWalker", {"terrain": "uneven"}, (-1.0, 10.0, 1.0)),
    "BipedalWalkerRugged": ("TerrainBipedalWalker", {"terrain": "rugged"}, (-1.0, 10.0, 1.0)),
    "BipedalWalkerHills": ("TerrainBipedalWalker", {"terrain": "hills"}, (-1.0, 10.0, 1.0)),
    "BipedalWalkerObstacles": ("TerrainBipedalWalker", {"terrain": "obstacles"}, (-1.0, 10.0, 1.0)),
    "LunarLander": ("LunarLanderLand", {}, (-5.0, 10.0, 1 / 20)),
    "LunarLanderHover": ("LunarLanderHover", {}, None),
    "LunarLanderTakeoff": ("LunarLanderTakeoff", {}, None),
}


def make_box2d_task(spec: TaskSpec | str, *, seed: int | None = None, **env_kwargs: Any) -> GymRawTask:
    """Build the raw task of an MMBench Box2D task (the ``"box2d"`` domain builder).

    Args:
        spec: the task spec (or name), e.g. ``"bipedal-walker-hills"``.
        seed: seed of the first reset (later resets continue the env's generators).
        **env_kwargs: extra constructor arguments of the env class (e.g.
            ``forward_reward_scale=1.0`` for a walker with Gymnasium's reward).

    Returns:
        A :class:`~torchrl_newt.envs.domains._gym.GymRawTask`.

    Examples:
        >>> raw = make_box2d_task("lunarlander-hover")
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (10, 2, 2)
        >>> obs = raw.reset(seed=1)
        >>> obs, reward, info = raw.step(np.zeros(2, np.float32))
        >>> 0.0 <= reward <= 2.0
        True
        >>> raw.render().shape
        (224, 224, 3)
        >>> raw.close()
    """
    from torchrl_newt.envs.domains import box2d_tasks

    spec = get_task(spec)
    cls_name = spec.source.get("class")
    if cls_name not in _TASKS:
        raise ValueError(f"task {spec.name!r} is not a known Box2D task (source class {cls_name!r})")
    factory, kwargs, clip = _TASKS[cls_name]
    env = getattr(box2d_tasks, factory)(**{**kwargs, **env_kwargs})
    raw = GymRawTask(
        env,
        action_repeat=int(spec.source.get("action_repeat", spec.action_repeat)),
        reward_shaping=ClipReward(*clip) if clip is not None else None,
        name=spec.name,
        seed=seed,
    )
    logger.debug("built %s on %s(%s)", spec.name, factory, kwargs)
    return raw


def _builder(spec: TaskSpec, **kwargs: Any) -> GymRawTask:
    return make_box2d_task(spec, **kwargs)


register_domain("box2d", _builder, extra="box2d", requires=("gymnasium", "Box2D", "pygame"))
