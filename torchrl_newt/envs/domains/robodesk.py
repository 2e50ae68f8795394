"""RoboDesk tasks (``rd-*``) as :class:`~torchrl_newt.envs.registry.RawTask` objects.

The tasks follow Newt's definitions (nicklashansen/newt, commit 75def92, ``tdmpc2/envs/robodesk.py``),
which build ``robodesk.RoboDesk(task, reward="dense", action_repeat=10, episode_length=1001)``:

* observation: all non-image entries of RoboDesk's observation dict, flattened in the order of its
  gym ``Dict`` observation space, i.e. sorted by key: ``end_effector (3), qpos_objects (26),
  qpos_robot (9), qvel_objects (26), qvel_robot (9)`` = 73 (:data:`OBS_KEYS`).
  (RoboDesk 1.0.0 fills ``qpos_objects`` with the object *velocities*; kept as is, as in Newt.)
* action: 5-d in ``[-1, 1]``, passed to RoboDesk as float32 (Newt passes the agent's float32
  array: RoboDesk's end-effector arithmetic then runs in float32); each agent step runs RoboDesk's
  internal repeat of 10 control steps and returns the summed dense reward;
* every reset is followed by one zero-action step (Newt's wrapper does it);
* ``info["success"]``: RoboDesk's ``reward_functions[task]("success")`` after the step;
* RoboDesk ends its episodes after 1001 sub-steps (reset step + 100 agent steps); that ``done`` is
  ignored here (the transform stack truncates at 100 agent steps);
* frames: Newt's view of the desk (camera distance 1.4, azimuth 90, elevation -60, looking at
  ``(0, 0.535, 1.1)``), rendered square at the requested size.

Two fixes keep it fast and working with current libraries, without touching site-packages:

* RoboDesk renders a 64x64 image inside *every* observation (~5x slower stepping). We subclass it
  and build state-only observations; :meth:`RoboDeskRawTask.render` renders on demand.
* Pillow >= 10 removed ``PIL.Image.ANTIALIAS`` that RoboDesk's renderer uses; we alias it to
  ``PIL.Image.LANCZOS`` (the same filter) at import time of this module.

RoboDesk samples its initial state from NumPy's *global* RNG; :class:`RoboDeskRawTask` runs resets
inside its own ``RandomState`` (swapped in and out of the global one), so ``reset(seed)`` is
reproducible and the caller's global RNG is left untouched.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from torchrl_newt.envs.domains._gym import resize_frame
from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["RoboDeskRawTask", "make_robodesk_task", "patch_pillow"]

logger = logging.getLogger(__name__)

# Newt's free camera for RoboDesk frames
_VIEW = {"distance": 1.4, "azimuth": 90.0, "elevation": -60.0, "lookat": (0.0, 0.535, 1.1)}

# RoboDesk's observation entries (image left out) in the order of its gym ``Dict`` space: sorted keys
OBS_KEYS = ("end_effector", "qpos_objects", "qpos_robot", "qvel_objects", "qvel_robot")


def patch_pillow() -> None:
    """Alias ``PIL.Image.ANTIALIAS`` to ``LANCZOS`` where Pillow no longer defines it (>= 10).

    Examples:
        >>> patch_pillow()
        >>> import PIL.Image
        >>> PIL.Image.ANTIALIAS == PIL.Image.LANCZOS
        True
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - robodesk depends on Pillow
        return
    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.LANCZOS  # type: ignore[attr-defined]


@contextlib.contextmanager
def _global_rng(rng: np.random.RandomState) -> Iterator[None]:
    """Run a block with NumPy's global RNG replaced by ``rng`` (its state is advanced in place)."""
    saved = np.random.get_state()
    np.random.set_state(rng.get_state())
    try:
        yield
    finally:
        rng.set_state(np.random.get_state())
        np.random.set_state(saved)


_STATE_CLASS: type | None = None


def _state_robodesk_class() -> type:
    """A RoboDesk subclass whose observations skip the per-step image render."""
    global _STATE_CLASS
    if _STATE_CLASS is None:
        patch_pillow()
        import dm_control.mujoco  # noqa: F401  (before the redirect: absl binds its handler to stderr)
        from dm_control.utils import inverse_kinematics  # noqa: F401

        with contextlib.redirect_stderr(io.StringIO()):  # gym 0.26 prints an "unmaintained" notice
            import gym  # noqa: F401
        from robodesk import RoboDesk

        class StateRoboDesk(RoboDesk):
            def _get_obs(self) -> dict:
                data = self.physics.data
                n = self.num_joints
                return {
                    "qpos_robot": data.qpos[:n].copy(),
                    "qvel_robot": data.qvel[:n].copy(),
                    "end_effector": self.physics.named.data.site_xpos["end_effector"].copy(),
                    # RoboDesk 1.0.0 reports velocities under "qpos_objects"; kept for fidelity
                    "qpos_objects": data.qvel[n:].copy(),
                    "qvel_objects": data.qvel[n:].copy(),
                }

        _STATE_CLASS = StateRoboDesk
    return _STATE_CLASS


class RoboDeskRawTask:
    """A state-observation RoboDesk environment behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    Args:
        task: RoboDesk task name (``"open_slide"``, ``"push_red"``...).
        action_repeat: RoboDesk's internal repeat (control steps per agent step). Defaults to 10.
        reward: RoboDesk reward type. Defaults to ``"dense"``.
        episode_length: RoboDesk's own episode length in sub-steps (only affects its ignored ``done``).
        reset_steps: zero-action agent steps taken after each reset. Defaults to 1 (Newt).
        seed: seed of the private RNG used for resets.

    Examples:
        >>> raw = RoboDeskRawTask("open_drawer", seed=0)
        >>> raw.obs_dim, raw.action_dim
        (73, 5)
        >>> obs = raw.reset(seed=0)
        >>> obs, reward, info = raw.step(np.zeros(5, np.float32))
        >>> obs.dtype, sorted(info)
        (dtype('float32'), ['success'])
        >>> raw.close()
    """

    def __init__(
        self,
        task: str,
        *,
        action_repeat: int = 10,
        reward: str = "dense",
        episode_length: int = 1001,
        reset_steps: int = 1,
        seed: int | None = None,
    ) -> None:
        cls = _state_robodesk_class()
        self.env = cls(task=task, reward=reward, action_repeat=int(action_repeat), episode_length=episode_length, image_size=1)
        if task not in self.env.reward_functions:
            raise ValueError(f"unknown RoboDesk task {task!r}; known: {sorted(self.env.reward_functions)}")
        self.task = task
        self.action_repeat = int(action_repeat)
        self.reset_steps = int(reset_steps)
        self.action_dim = int(self.env.action_dim)
        self._rng = np.random.RandomState(None if seed is None else int(seed) % 2**32)
        self.obs_dim = int(sum(np.size(v) for k, v in self.env._get_obs().items() if k in OBS_KEYS))
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode, then take ``reset_steps`` zero actions.

        Args:
            seed: reseeds the task's private RNG first (``None`` continues its stream).

        Returns:
            the first observation, float32 ``[73]``.
        """
        if seed is not None:
            self._rng.seed(int(seed) % 2**32)
        with _global_rng(self._rng):
            obs = self.env.reset()
        for _ in range(self.reset_steps):
            obs, *_ = self.env.step(np.zeros(self.action_dim, np.float32))
        self._needs_reset = False
        return self._flat(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]``) for RoboDesk's ``action_repeat`` control steps.

        Returns:
            ``(observation, summed dense reward, {"success": float})``.
        """
        if self._needs_reset:
            raise RuntimeError("RoboDeskRawTask.step() called before reset()")
        act = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0)
        obs, reward, _done, _info = self.env.step(act)
        success = float(np.asarray(self.env.reward_functions[self.task]("success")).reshape(-1)[0])
        return self._flat(obs), float(reward), {"success": success}

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """Render Newt's view of the desk as ``uint8 [height, width, 3]``.

        Newt renders a square frame of its ``render_size``; other aspect ratios are resized from
        a square render of the larger side.
        """
        from dm_control import mujoco

        size = max(int(width), int(height))
        camera = mujoco.Camera(physics=self.env.physics, height=size, width=size, camera_id=-1)
        try:
            view = camera._render_camera  # noqa: SLF001 - dm_control exposes no setter for a free camera
            view.distance, view.azimuth, view.elevation = _VIEW["distance"], _VIEW["azimuth"], _VIEW["elevation"]
            view.lookat[:] = _VIEW["lookat"]
            frame = camera.render(depth=False, segmentation=False)
        finally:
            camera._scene.free()  # noqa: SLF001
        return np.ascontiguousarray(resize_frame(np.asarray(frame, np.uint8), int(height), int(width)))

    def close(self) -> None:
        """Release the physics."""
        env = getattr(self, "env", None)
        if env is not None:
            for physics in (getattr(env, "physics", None), getattr(env, "physics_copy", None)):
                if physics is not None:
                    try:
                        physics.free()
                    except Exception:  # pragma: no cover - best effort at teardown
                        logger.debug("failed to free RoboDesk physics", exc_info=True)
            self.env = None

    @staticmethod
    def _flat(obs: dict) -> np.ndarray:
        return np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k in OBS_KEYS])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, obs_dim={self.obs_dim}, action_dim={self.action_dim})"


def make_robodesk_task(spec: TaskSpec, *, seed: int | None = None) -> RoboDeskRawTask:
    """Build an MMBench RoboDesk task (the ``"robodesk"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` names the RoboDesk ``task`` and its ``kwargs``.
        seed: seed of the task's private reset RNG.

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_robodesk_task(get_task("rd-push-red"), seed=0)
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (73, 5, 10)
        >>> raw.close()
    """
    source = spec.source
    if "task" not in source:
        raise ValueError(f"task {spec.name!r} has no RoboDesk task in its source facts: {dict(source)}")
    kwargs = dict(source.get("kwargs") or {})
    return RoboDeskRawTask(
        str(source["task"]),
        action_repeat=int(kwargs.get("action_repeat", source.get("action_repeat", spec.action_repeat))),
        reward=str(kwargs.get("reward", "dense")),
        episode_length=int(kwargs.get("episode_length", 1001)),
        seed=seed,
    )


register_domain("robodesk", make_robodesk_task, extra="robodesk", requires=("robodesk", "dm_control"))
