"""Meta-World tasks (``mw-*``) as :class:`~torchrl_newt.envs.registry.RawTask` objects.

Newt trained on the *v2 goal-observable* environments of a private Meta-World fork; the fork is not
installable, so we build the corresponding **v3** goal-observable environments of ``metaworld==3.1.1``
(``"<name>-v2-goal-observable"`` in the facts -> ``ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE["<name>-v3-..."]``).
What is kept from Newt's setup:

* observation: the 39-d state (18 current + 18 previous + 3 goal), identical in layout to v2;
* action: 4-d (xyz end-effector delta + gripper) in ``[-1, 1]``; action repeat 2 (rewards summed);
* object/goal positions are re-sampled at every reset (``_freeze_rand_vec = False``), from the
  environment's own seeded RNG so that ``reset(seed)`` is reproducible;
* every reset is followed by one zero-action step (as in Newt's wrapper);
* ``info["success"]``: the float of Meta-World's ``success`` after the last sub-step;
* rendering from the ``corner2`` camera (flipped vertically so the robot is upright; the camera
  is mounted upside down and gymnasium-era renderers no longer flip it).

Bridged differences: v3 environments have ``max_path_length = 500`` simulator steps and raise once it
is reached; an MMBench episode uses ``1 + 100 * 2 = 201`` of them, so the limit is never hit (it is
raised further if a caller asks for longer episodes). v3 reward functions and a few object models
differ from v2, so returns are not comparable with Newt's numbers; the success-based score is.
"""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["MetaWorldRawTask", "make_metaworld_task", "v3_env_name"]

logger = logging.getLogger(__name__)


def v3_env_name(env_name: str) -> str:
    """Map a Meta-World v2 environment name of the facts to its v3 name.

    Examples:
        >>> v3_env_name("assembly-v2-goal-observable")
        'assembly-v3-goal-observable'
        >>> v3_env_name("reach-v3")
        'reach-v3-goal-observable'
    """
    name = env_name.replace("-v2", "-v3")
    if not name.endswith("-goal-observable"):
        name += "-goal-observable"
    return name


class MetaWorldRawTask:
    """A Meta-World (v3) environment behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    Args:
        env: a goal-observable Meta-World environment instance (``SawyerXYZEnv``).
        action_repeat: simulator steps per :meth:`step`. Defaults to ``2`` (MMBench).
        reset_steps: zero-action steps taken after each reset. Defaults to ``1`` (Newt).
        camera: camera name used by :meth:`render`. Defaults to ``"corner2"``.
        flip: flip rendered frames vertically (``corner2`` is mounted upside down). Defaults to
            ``True``.

    Examples:
        >>> from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as ENVS
        >>> raw = MetaWorldRawTask(ENVS["reach-v3-goal-observable"](seed=0))
        >>> raw.obs_dim, raw.action_dim
        (39, 4)
        >>> obs = raw.reset(seed=0)
        >>> obs, reward, info = raw.step(np.zeros(4, np.float32))
        >>> obs.shape, sorted(info)
        ((39,), ['success'])
        >>> raw.close()
    """

    def __init__(
        self, env: Any, action_repeat: int = 2, reset_steps: int = 1, camera: str = "corner2", flip: bool = True
    ) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.env = env
        self.action_repeat = int(action_repeat)
        self.reset_steps = int(reset_steps)
        self.camera = camera
        self.flip = bool(flip)
        # Newt: positions re-randomised at every reset; drawn from the env's seeded np_random
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self.action_dim = int(np.prod(env.action_space.shape))
        low = np.asarray(env.action_space.low, np.float64)
        high = np.asarray(env.action_space.high, np.float64)
        self._scale = ((high - low) / 2.0).astype(np.float32)
        self._offset = ((high + low) / 2.0).astype(np.float32)
        self._renderers: dict[tuple[int, int], Any] = {}
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode (new object/goal positions), then take ``reset_steps`` zero actions.

        Args:
            seed: reseeds the environment's RNG first (``None`` continues the current stream).

        Returns:
            the first observation, float32 ``[39]``.
        """
        if seed is not None:
            self.env.seed(int(seed) % 2**32)
        obs, _ = self.env.reset()
        for _ in range(self.reset_steps):
            obs, *_ = self.env.step(np.zeros(self.action_dim, np.float32))
        self._needs_reset = False
        return np.asarray(obs, np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]``) for ``action_repeat`` simulator steps.

        Returns:
            ``(observation, summed reward, {"success": float})``.
        """
        if self._needs_reset:
            raise RuntimeError("MetaWorldRawTask.step() called before reset()")
        act = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0) * self._scale + self._offset
        env = self.env
        reward = 0.0
        info: dict = {}
        obs = None
        for _ in range(self.action_repeat):
            if env.curr_path_length >= env.max_path_length:
                # Meta-World refuses to step past its limit; MMBench episodes are fixed-length
                env.max_path_length = env.curr_path_length + 1000
            obs, r, _terminated, _truncated, info = env.step(act)
            reward += float(r)
        return np.asarray(obs, np.float32), reward, {"success": float(info.get("success", 0.0))}

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """Render the ``corner2`` camera as ``uint8 [height, width, 3]`` (offscreen, headless)."""
        import mujoco

        model, data = self.env.model, self.env.data
        key = (int(height), int(width))
        renderer = self._renderers.get(key)
        if renderer is None:
            model.vis.global_.offwidth = max(model.vis.global_.offwidth, key[1])
            model.vis.global_.offheight = max(model.vis.global_.offheight, key[0])
            renderer = self._renderers[key] = mujoco.Renderer(model, height=key[0], width=key[1])
        renderer.update_scene(data, camera=self.camera)
        frame = np.asarray(renderer.render(), dtype=np.uint8)
        # Meta-World's corner cameras are mounted upside down; flip rows as mujoco-py's bottom-up
        # readout did for Meta-World v2 users (the frame then shows the robot upright).
        return frame[::-1].copy() if self.flip else frame.copy()

    def close(self) -> None:
        """Release the renderers and the environment."""
        for renderer in self._renderers.values():
            try:
                renderer.close()
            except Exception:  # pragma: no cover - best effort at teardown
                logger.debug("failed to close a MuJoCo renderer", exc_info=True)
        self._renderers.clear()
        env = getattr(self, "env", None)
        if env is not None:
            try:
                env.close()
            except Exception:  # pragma: no cover
                logger.debug("failed to close Meta-World env", exc_info=True)
            self.env = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={type(self.env).__name__}, obs_dim={self.obs_dim}, "
            f"action_dim={self.action_dim}, action_repeat={self.action_repeat})"
        )


def make_metaworld_task(spec: TaskSpec, *, seed: int | None = None) -> MetaWorldRawTask:
    """Build an MMBench Meta-World task on the v3 environments (the ``"metaworld"`` domain builder).

    Args:
        spec: the task spec; ``spec.source["env_name"]`` is the v2 goal-observable name.
        seed: seed of the environment's RNG (object/goal positions of every episode).

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_metaworld_task(get_task("mw-door-open"), seed=1)
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (39, 4, 2)
        >>> raw.close()
    """
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

    source = spec.source
    if "env_name" not in source:
        raise ValueError(f"task {spec.name!r} has no Meta-World env_name in its source facts: {dict(source)}")
    name = v3_env_name(str(source["env_name"]))
    try:
        cls = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[name]
    except KeyError:
        raise ValueError(f"task {spec.name!r}: Meta-World 3 has no environment {name!r}") from None
    env = cls(seed=None if seed is None else int(seed) % 2**32)
    return MetaWorldRawTask(env, action_repeat=int(source.get("action_repeat", spec.action_repeat)))


register_domain("metaworld", make_metaworld_task, extra="metaworld", requires=("metaworld",))
