"""ManiSkill3 tasks (``ms-*``) as :class:`~torchrl_newt.envs.registry.RawTask` objects.

Each task is one CPU ManiSkill3 environment (``num_envs=1``, ``obs_mode="state"``, the task's control
mode, ManiSkill's default ``normalized_dense`` reward) behind :class:`ManiSkillRawTask`, which applies
the MMBench action repeat (2 simulator steps per agent step) and ignores ManiSkill terminations.

Six MMBench environments are not part of ManiSkill and are defined here (registered lazily under a
``newt-`` prefix so they cannot collide with other registrations): ``Reach-v1`` / ``ReachxArm6-v1``
(move the TCP to a green goal sphere), ``PickCubexArm6-v1`` (PickCube with the xArm6 + Robotiq arm),
``MS-Cartpole{Balance,SwingUp}Sparse-v1`` (reward 1 while the pole is near upright) and the held-out
``PushYCB-v1`` (PushCube with a YCB object).

Rendering needs a Vulkan driver. On machines without a GPU run ``bash scripts/setup_vulkan.sh`` once:
it unpacks Mesa's lavapipe into ``~/.local/share/torchrl_newt/vulkan`` (or
``$TORCHRL_NEWT_VULKAN_DIR``), and :func:`configure_vulkan` (called when this module is imported)
points ``VK_ICD_FILENAMES`` at it when no NVIDIA driver is present.

Tasks built on YCB objects (``ms-pick-apple``... and the held-out ``ms-push-*``/``ms-pick-*``
variants) and on the xArm6 / ANYmal-C robots need ManiSkill asset packs that the wheel does not ship;
building them without the pack raises :class:`ManiSkillAssetError` naming the download command
(``python -m mani_skill.utils.download_asset ycb|xarm6|anymal_c``) instead of ManiSkill's interactive
prompt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_newt.envs.domains._gym import resize_frame
from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = [
    "ManiSkillAssetError",
    "ManiSkillRawTask",
    "configure_vulkan",
    "make_maniskill_task",
    "maniskill_asset_dir",
    "missing_assets",
    "required_assets",
    "vulkan_driver_dir",
]

logger = logging.getLogger(__name__)

_DEFAULT_VULKAN_DIR = Path.home() / ".local" / "share" / "torchrl_newt" / "vulkan"
# ManiSkill ids of the environments defined in this module (MMBench id -> our registered id)
_CUSTOM_ENV_IDS = {
    "Reach-v1": "newt-Reach-v1",
    "ReachxArm6-v1": "newt-ReachxArm6-v1",
    "PickCubexArm6-v1": "newt-PickCubexArm6-v1",
    "MS-CartpoleBalanceSparse-v1": "newt-MS-CartpoleBalanceSparse-v1",
    "MS-CartpoleSwingUpSparse-v1": "newt-MS-CartpoleSwingUpSparse-v1",
    "PushYCB-v1": "newt-PushYCB-v1",
}


class ManiSkillAssetError(FileNotFoundError):
    """Raised when a ManiSkill task needs an asset pack (YCB objects, xArm6, ANYmal-C) that is not downloaded."""


# --------------------------------------------------------------------------------------------
# Vulkan (CPU rendering)
# --------------------------------------------------------------------------------------------
def vulkan_driver_dir() -> Path:
    """Folder where ``scripts/setup_vulkan.sh`` unpacks the private lavapipe driver.

    ``$TORCHRL_NEWT_VULKAN_DIR`` when set, else ``~/.local/share/torchrl_newt/vulkan``.

    Examples:
        >>> vulkan_driver_dir().name
        'vulkan'
    """
    return Path(os.environ.get("TORCHRL_NEWT_VULKAN_DIR", str(_DEFAULT_VULKAN_DIR))).expanduser()


def _gpu_vulkan_driver_present() -> bool:
    """Whether an NVIDIA driver (kernel module or Vulkan ICD) is installed system-wide."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    for folder in ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"):
        if any(Path(folder).glob("nvidia*.json")):
            return True
    return False


def configure_vulkan() -> str | None:
    """Point ``VK_ICD_FILENAMES`` at the private lavapipe driver when it is needed and available.

    Does nothing when ``VK_ICD_FILENAMES`` is already set, when an NVIDIA driver is present, or when
    ``scripts/setup_vulkan.sh`` has not been run (then ManiSkill rendering may fail on a CPU-only
    machine with "failed to find a rendering device").

    Returns:
        the ICD file now in ``VK_ICD_FILENAMES`` (``None`` when nothing was set here).

    Examples:
        >>> import os
        >>> configure_vulkan() in (None, os.environ.get("VK_ICD_FILENAMES"))
        True
    """
    if os.environ.get("VK_ICD_FILENAMES"):
        return None
    icd = vulkan_driver_dir() / "lvp_icd.json"
    if not icd.exists() or _gpu_vulkan_driver_present():
        return None
    os.environ["VK_ICD_FILENAMES"] = str(icd)
    logger.debug("VK_ICD_FILENAMES=%s (private Mesa lavapipe driver)", icd)
    return str(icd)


configure_vulkan()


# --------------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------------
# ManiSkill asset packs (``python -m mani_skill.utils.download_asset <id>``) and where they land
# under ManiSkill's asset folder; the wheel ships Panda/SO100/Ant/Hopper/Cartpole but not these.
_ASSET_PATHS = {
    "ycb": "assets/mani_skill2_ycb",
    "xarm6": "robots/xarm6",
    "anymal_c": "robots/anymal_c",
}
_ENV_ASSETS = {
    "PickSingleYCB-v1": ("ycb",),
    "PushYCB-v1": ("ycb",),
    "PickCubexArm6-v1": ("xarm6",),
    "ReachxArm6-v1": ("xarm6",),
    "AnymalC-Reach-v1": ("anymal_c",),
}


def maniskill_asset_dir() -> Path:
    """ManiSkill's asset folder: ``$MS_ASSET_DIR/data`` (default ``~/.maniskill/data``).

    Examples:
        >>> maniskill_asset_dir().name
        'data'
    """
    return Path(os.environ.get("MS_ASSET_DIR", str(Path.home() / ".maniskill"))).expanduser() / "data"


def required_assets(task: str | TaskSpec) -> tuple[str, ...]:
    """ManiSkill asset packs a task needs beyond those shipped in the wheel (``()`` for most).

    Examples:
        >>> required_assets("ms-pick-apple"), required_assets("ms-anymal-reach"), required_assets("ms-pick-cube")
        (('ycb',), ('anymal_c',), ())
    """
    from torchrl_newt.envs.registry import get_task

    return _ENV_ASSETS.get(str(get_task(task).source.get("env_id", "")), ())


def missing_assets(task: str | TaskSpec) -> list[str]:
    """The asset packs of :func:`required_assets` that are not downloaded.

    Examples:
        >>> missing_assets("ms-push-cube")
        []
    """
    root = maniskill_asset_dir()
    return [a for a in required_assets(task) if not (root / _ASSET_PATHS[a]).is_dir()]


def _check_assets(spec: TaskSpec) -> None:
    missing = missing_assets(spec)
    if missing:
        cmds = " && ".join(f"python -m mani_skill.utils.download_asset {a}" for a in missing)
        raise ManiSkillAssetError(
            f"task {spec.name!r} needs ManiSkill asset pack(s) {', '.join(missing)}, which are not downloaded "
            f"in {maniskill_asset_dir()}. Download them once with `{cmds}` (set MS_ASSET_DIR to choose the "
            "folder; ManiSkill would otherwise prompt for the download, which fails non-interactively)."
        )


# --------------------------------------------------------------------------------------------
# MMBench environments that ManiSkill does not ship
# --------------------------------------------------------------------------------------------
_CUSTOM_REGISTERED = False


def _register_custom_envs() -> None:
    """Register the MMBench-specific ManiSkill environments (once, on first build)."""
    global _CUSTOM_REGISTERED
    if _CUSTOM_REGISTERED:
        return
    import sapien
    import torch
    from mani_skill.envs.tasks.control.cartpole import (
        CartpoleBalanceEnv,
        CartpoleSwingUpEnv,
    )
    from mani_skill.envs.tasks.tabletop.pick_cube import PickCubeEnv
    from mani_skill.envs.tasks.tabletop.push_cube import PushCubeEnv
    from mani_skill.utils.building import actors
    from mani_skill.utils.registration import REGISTERED_ENVS, register_env
    from mani_skill.utils.scene_builder.table import TableSceneBuilder
    from mani_skill.utils.structs.actor import Actor
    from mani_skill.utils.structs.pose import Pose

    class _PickCubeXArm6(PickCubeEnv):
        """PickCube-v1 with the xArm6 + Robotiq gripper (MMBench ``PickCubexArm6-v1``)."""

        def __init__(self, *args: Any, robot_uids: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, robot_uids="xarm6_robotiq", **kwargs)

    class _Reach(PickCubeEnv):
        """Move the tool centre point into a green goal sphere (MMBench ``Reach-v1``).

        The PickCube table scene without the cube; the goal is sampled over the cube's spawn area at
        a height in ``[0, max_goal_height]``. Success: TCP within ``goal_thresh`` of the goal. Dense
        reward ``5 * (1 + success - tanh(5 d))`` (normalised: divided by 5, as in PickCube).
        Observation extras: TCP pose (7), goal position (3), TCP-to-goal vector (3).
        """

        def _load_scene(self, options: dict) -> None:
            self.table_scene = TableSceneBuilder(self, robot_init_qpos_noise=self.robot_init_qpos_noise)
            self.table_scene.build()
            self.goal_site = actors.build_sphere(
                self.scene,
                radius=self.goal_thresh,
                color=[0, 1, 0, 1],
                name="goal_site",
                body_type="kinematic",
                add_collision=False,
                initial_pose=sapien.Pose(),
            )
            self._hidden_objects.append(self.goal_site)

        def _initialize_episode(self, env_idx: torch.Tensor, options: dict) -> None:
            with torch.device(self.device):
                n = len(env_idx)
                self.table_scene.initialize(env_idx)
                half = self.cube_spawn_half_size
                goal = torch.zeros((n, 3))
                goal[:, 0] = (torch.rand(n) * 2 - 1) * half + self.cube_spawn_center[0]
                goal[:, 1] = (torch.rand(n) * 2 - 1) * half + self.cube_spawn_center[1]
                goal[:, 2] = torch.rand(n) * self.max_goal_height
                self.goal_site.set_pose(Pose.create_from_pq(goal))

        def _tcp_to_goal(self) -> torch.Tensor:
            return self.goal_site.pose.p - self.agent.tcp_pose.p

        def _get_obs_extra(self, info: dict) -> dict:
            extra = {"tcp_pose": self.agent.tcp_pose.raw_pose, "goal_pos": self.goal_site.pose.p}
            if "state" in self.obs_mode:
                extra["tcp_to_goal_pos"] = self._tcp_to_goal()
            return extra

        def evaluate(self) -> dict:
            return {"success": torch.linalg.norm(self._tcp_to_goal(), axis=1) <= self.goal_thresh}

        def compute_dense_reward(self, obs: Any, action: torch.Tensor, info: dict) -> torch.Tensor:
            dist = torch.linalg.norm(self._tcp_to_goal(), axis=1)
            return 5.0 * (1.0 + info["success"].float() - torch.tanh(5.0 * dist))

    class _ReachXArm6(_Reach):
        """``Reach-v1`` with the xArm6 + Robotiq gripper (MMBench ``ReachxArm6-v1``)."""

        def __init__(self, *args: Any, robot_uids: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, robot_uids="xarm6_robotiq", **kwargs)

    def _sparse_upright(env: Any) -> torch.Tensor:
        return ((env.pole_angle_cosine + 1.0) / 2.0 > 0.85).float()

    class _CartpoleBalanceSparse(CartpoleBalanceEnv):
        """MS-CartpoleBalance-v1 with reward 1 when ``(cos(angle) + 1) / 2 > 0.85``, else 0."""

        def compute_dense_reward(self, obs: Any, action: Any, info: dict) -> torch.Tensor:
            return _sparse_upright(self)

    class _CartpoleSwingUpSparse(CartpoleSwingUpEnv):
        """MS-CartpoleSwingUp-v1 with reward 1 when ``(cos(angle) + 1) / 2 > 0.85``, else 0."""

        def compute_dense_reward(self, obs: Any, action: Any, info: dict) -> torch.Tensor:
            return _sparse_upright(self)

    class _PushYCB(PushCubeEnv):
        """PushCube-v1 with a YCB object (``model_id``) instead of the cube (MMBench ``PushYCB-v1``).

        Everything but the pushed object is PushCube's (spawn, goal, reward, the ``z`` test of
        success, which uses ``cube_half_size = 0.04``). Set ``model_id`` and reset with
        ``options={"reconfigure": True}`` to change the object.
        """

        cube_half_size = 0.04
        model_id = "037_scissors"

        def _load_scene(self, options: dict) -> None:
            self.table_scene = TableSceneBuilder(env=self, robot_init_qpos_noise=self.robot_init_qpos_noise)
            self.table_scene.build()
            builder = actors.get_actor_builder(self.scene, id=f"ycb:{self.model_id}")
            builder.initial_pose = sapien.Pose(p=[0, 0, 0])
            builder.set_scene_idxs([0])
            part = builder.build(name=f"{self.model_id}-0")
            self.remove_from_state_dict_registry(part)
            self.obj = Actor.merge([part], name="cube")
            self.add_to_state_dict_registry(self.obj)
            self.goal_region = actors.build_red_white_target(
                self.scene,
                radius=self.goal_radius,
                thickness=1e-5,
                name="goal_region",
                add_collision=False,
                body_type="kinematic",
                initial_pose=sapien.Pose(p=[0, 0, 1e-3]),
            )

    for mm_id, cls, steps in (
        ("PushYCB-v1", _PushYCB, 50),
        ("PickCubexArm6-v1", _PickCubeXArm6, 50),
        ("Reach-v1", _Reach, 50),
        ("ReachxArm6-v1", _ReachXArm6, 50),
        ("MS-CartpoleBalanceSparse-v1", _CartpoleBalanceSparse, 1000),
        ("MS-CartpoleSwingUpSparse-v1", _CartpoleSwingUpSparse, 1000),
    ):
        our_id = _CUSTOM_ENV_IDS[mm_id]
        if our_id not in REGISTERED_ENVS:
            register_env(our_id, max_episode_steps=steps)(cls)
    _CUSTOM_REGISTERED = True


# --------------------------------------------------------------------------------------------
# Raw task
# --------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class ManiSkillRawTask:
    """A single CPU ManiSkill3 environment behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    * actions in ``[-1, 1]`` are clipped and rescaled linearly to the controller's bounds (the
      identity for ManiSkill's normalised controllers);
    * :meth:`step` applies ``action_repeat`` simulator steps and returns the summed reward;
      ManiSkill terminations and time limits are ignored (the env is made with a time limit longer
      than any MMBench episode);
    * ``info["success"]`` is the float of ManiSkill's ``success`` flag after the last sub-step,
      reported only when ``report_success`` is true.

    Args:
        env: a ManiSkill environment made with ``num_envs=1`` (e.g. by ``gymnasium.make``).
        action_repeat: simulator steps per :meth:`step`. Defaults to ``2`` (MMBench).
        report_success: whether to report ``info["success"]``. Defaults to ``True``.

    Examples:
        >>> import gymnasium as gym  # doctest: +SKIP
        >>> import mani_skill.envs  # doctest: +SKIP
        >>> env = gym.make("PushCube-v1", obs_mode="state", control_mode="pd_ee_delta_pose",
        ...                num_envs=1, render_mode="rgb_array")  # doctest: +SKIP
        >>> raw = ManiSkillRawTask(env)  # doctest: +SKIP
        >>> raw.obs_dim, raw.action_dim  # doctest: +SKIP
        (35, 7)
        >>> obs, reward, info = raw.step(np.zeros(7, np.float32))  # doctest: +SKIP
        >>> sorted(info)  # doctest: +SKIP
        ['success']
        >>> raw.close()  # doctest: +SKIP
    """

    def __init__(self, env: Any, action_repeat: int = 2, report_success: bool = True) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.env = env
        self.action_repeat = int(action_repeat)
        self.report_success = bool(report_success)
        base = env.unwrapped
        act_space = getattr(base, "single_action_space", env.action_space)
        obs_space = getattr(base, "single_observation_space", env.observation_space)
        self.action_dim = int(np.prod(act_space.shape))
        self.obs_dim = int(np.prod(obs_space.shape))
        low = np.asarray(act_space.low, np.float64).reshape(-1)
        high = np.asarray(act_space.high, np.float64).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("ManiSkillRawTask needs a bounded action space to rescale [-1, 1] actions")
        self._scale = ((high - low) / 2.0).astype(np.float32)
        self._offset = ((high + low) / 2.0).astype(np.float32)
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode (ManiSkill reseeds its episode RNG with ``seed``; ``None`` continues).

        Returns:
            the first observation, float32 ``[obs_dim]``.
        """
        obs, _ = self.env.reset(seed=None if seed is None else int(seed) % 2**31)
        self._needs_reset = False
        return self._flat(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]``) for ``action_repeat`` simulator steps.

        Returns:
            ``(observation, summed reward, info)``.
        """
        if self._needs_reset:
            raise RuntimeError("ManiSkillRawTask.step() called before reset()")
        act = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0) * self._scale + self._offset
        act = act[None]  # batch of one environment
        reward = 0.0
        info: dict = {}
        obs = None
        for _ in range(self.action_repeat):
            obs, r, _terminated, _truncated, info = self.env.step(act)
            reward += float(_to_numpy(r).reshape(-1)[0])
        out: dict = {}
        if self.report_success:
            success = info.get("success", False)
            out["success"] = float(_to_numpy(success).reshape(-1)[0])
        return self._flat(obs), reward, out

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """Render ManiSkill's human render camera as ``uint8 [height, width, 3]``."""
        frame = _to_numpy(self.env.render())
        if frame.ndim == 4:
            frame = frame[0]
        frame = frame[..., :3]
        if frame.dtype != np.uint8:
            frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(resize_frame(frame, height, width))

    def close(self) -> None:
        """Close the ManiSkill environment."""
        env = getattr(self, "env", None)
        if env is not None:
            try:
                env.close()
            except Exception:  # pragma: no cover - best effort at teardown
                logger.debug("failed to close ManiSkill env", exc_info=True)
            self.env = None

    def _flat(self, obs: Any) -> np.ndarray:
        return _to_numpy(obs).astype(np.float32, copy=False).reshape(-1)

    def __repr__(self) -> str:
        env_id = getattr(getattr(self.env, "spec", None), "id", "?")
        return (
            f"{type(self).__name__}(env={env_id}, obs_dim={self.obs_dim}, action_dim={self.action_dim}, "
            f"action_repeat={self.action_repeat})"
        )


def make_maniskill_task(
    spec: TaskSpec,
    *,
    seed: int | None = None,
    render_size: int = 224,
    sim_backend: str | None = None,
    **make_kwargs: Any,
) -> ManiSkillRawTask:
    """Build an MMBench ManiSkill3 task (the ``"maniskill"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` holds the ManiSkill ``env_id``, ``control_mode``,
            ``make_kwargs`` and, for YCB tasks, the ``model_id``.
        seed: seed of the first :meth:`~ManiSkillRawTask.reset` (later resets continue the
            environment's RNG unless given a seed).
        render_size: side of the square frames of :meth:`~ManiSkillRawTask.render`.
        sim_backend: ManiSkill simulation backend (defaults to the facts' ``"auto"``).
        **make_kwargs: extra keyword arguments of ``gymnasium.make``.

    Raises:
        ManiSkillAssetError: the task needs an asset pack (YCB, xArm6, ANYmal-C) that is not
            downloaded; the message names the download command.
        RuntimeError: no Vulkan device (the message points at ``scripts/setup_vulkan.sh``).

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_maniskill_task(get_task("ms-reach"), seed=0)  # doctest: +SKIP
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat  # doctest: +SKIP
        (31, 4, 2)
        >>> raw.close()  # doctest: +SKIP
    """
    configure_vulkan()
    source = dict(spec.source)
    env_id = source.get("env_id")
    if not env_id:
        raise ValueError(f"task {spec.name!r} has no ManiSkill env_id in its source facts: {source}")
    _check_assets(spec)

    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers ManiSkill's environments)

    if env_id in _CUSTOM_ENV_IDS:
        _register_custom_envs()
        env_id = _CUSTOM_ENV_IDS[env_id]

    repeat = int(source.get("action_repeat", spec.action_repeat))
    kwargs: dict[str, Any] = dict(source.get("make_kwargs") or {})
    kwargs.update(obs_mode="state", num_envs=1, render_mode="rgb_array")
    if sim_backend is not None:
        kwargs["sim_backend"] = sim_backend
    if source.get("control_mode"):
        kwargs["control_mode"] = source["control_mode"]
    cam = {"width": int(render_size), "height": int(render_size)}
    kwargs.setdefault("human_render_camera_configs", cam)
    # a time limit longer than any MMBench episode: terminations/truncations are never acted on
    kwargs.setdefault("max_episode_steps", spec.episode_length * repeat + 100)
    kwargs.update(make_kwargs)
    try:
        env = gym.make(env_id, **kwargs)
    except RuntimeError as err:
        text = str(err).lower()
        if "device" in text and ("physical" in text or "render" in text):
            raise RuntimeError(
                f"ManiSkill could not start a Vulkan device ({err}). On a machine without a GPU run "
                "`bash scripts/setup_vulkan.sh` once (a private Mesa lavapipe driver; torchrl_newt then "
                "sets VK_ICD_FILENAMES itself), or export VK_ICD_FILENAMES to a working Vulkan ICD."
            ) from err
        raise

    model_id = source.get("model_id")
    if model_id is not None:
        base = env.unwrapped
        if source["env_id"] == "PickSingleYCB-v1":
            base.all_model_ids = np.array([model_id])
        else:
            base.model_id = model_id
            if "spawn_height" in source:
                base.spawn_height = source["spawn_height"]
        env.reset(options={"reconfigure": True})

    raw = ManiSkillRawTask(env, action_repeat=repeat, report_success=spec.success_defined)
    if seed is not None:
        raw.reset(seed=seed)
    return raw


register_domain("maniskill", make_maniskill_task, extra="maniskill", requires=("mani_skill", "sapien"))
