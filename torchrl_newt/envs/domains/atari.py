"""Atari 2600 games (``atari-*``) as :class:`~torchrl_newt.envs.registry.RawTask` objects.

MMBench plays 27 ALE games with a *continuous* 3-d action and the console RAM as observation:

* ``gymnasium.make("ALE/<Game>-v5", obs_type="ram", continuous=True, repeat_action_probability=0)``
  (ALE v5 frame skip 4; ``ale-py`` ships the ROMs);
* observation: the 128 RAM bytes divided by 255 (float32 in ``[0, 1]``);
* action ``a`` in ``[-1, 1]^3`` is mapped affinely onto ALE's continuous action box
  ``(radius in [0, 1], theta in [-pi, pi], fire in [0, 1])``:
  ``low + (a + 1) / 2 * (high - low)``; ALE turns it into joystick/fire events (threshold 0.5);
* no action repeat beyond the frame skip; game over is ignored (the episode is fixed at 1000 agent
  steps; ALE keeps returning zero reward after the game ends);
* score: ``clip((R - min_return) / (max_return - min_return), 0, 1)`` with the per-game range of
  the facts (the registry's ``return_clip`` rule; applied by the transform stack, not here).

Rendering pastes the 210x160 game frame centred on a black canvas (as Newt does for 224x224).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["AtariRawTask", "make_atari_task", "map_action"]

logger = logging.getLogger(__name__)

# ALE's continuous action box: radius, theta, fire
ALE_CONTINUOUS_LOW = np.array([0.0, -np.pi, 0.0], np.float32)
ALE_CONTINUOUS_HIGH = np.array([1.0, np.pi, 1.0], np.float32)


def map_action(action: np.ndarray, low: np.ndarray = ALE_CONTINUOUS_LOW, high: np.ndarray = ALE_CONTINUOUS_HIGH) -> np.ndarray:
    """Map an agent action in ``[-1, 1]^3`` affinely onto ALE's continuous action box.

    Examples:
        >>> [round(float(x), 4) for x in map_action(np.array([-1.0, 0.0, 1.0]))]
        [0.0, 0.0, 1.0]
        >>> [round(float(x), 4) for x in map_action(np.array([1.0, 1.0, -1.0]))]
        [1.0, 3.1416, 0.0]
    """
    a = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0)
    return (low + (a + 1.0) * 0.5 * (high - low)).astype(np.float32)


class AtariRawTask:
    """An ALE game in continuous-action mode behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    Args:
        env: an ``ale_py.env.AtariEnv`` made with ``obs_type="ram"`` and ``continuous=True``.
        action_repeat: agent-level repeats of each action (on top of ALE's frame skip). Defaults to 1.

    Examples:
        >>> import gymnasium as gym, ale_py
        >>> gym.register_envs(ale_py)
        >>> env = gym.make("ALE/Pong-v5", obs_type="ram", continuous=True,
        ...                repeat_action_probability=0.0, disable_env_checker=True).unwrapped
        >>> raw = AtariRawTask(env)
        >>> raw.obs_dim, raw.action_dim
        (128, 3)
        >>> obs = raw.reset(seed=0)
        >>> float(obs.min()) >= 0.0 and float(obs.max()) <= 1.0
        True
        >>> obs, reward, info = raw.step(np.zeros(3, np.float32))
        >>> info
        {}
        >>> raw.close()
    """

    def __init__(self, env: Any, action_repeat: int = 1) -> None:
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        if not getattr(env, "continuous", False):
            raise ValueError("AtariRawTask needs an ALE env made with continuous=True")
        self.env = env
        self.action_repeat = int(action_repeat)
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self.action_dim = int(np.prod(env.action_space.shape))
        self._low = np.asarray(env.action_space.low, np.float32)
        self._high = np.asarray(env.action_space.high, np.float32)
        self._canvas: np.ndarray | None = None
        self._needs_reset = True

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new game (with ``seed``, ALE's RNG is reseeded first).

        Returns:
            the RAM / 255, float32 ``[128]``.
        """
        obs, _ = self.env.reset(seed=None if seed is None else int(seed) % 2**31)
        self._needs_reset = False
        return self._obs(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]^3``) for ``action_repeat`` ALE steps (4 frames each).

        Returns:
            ``(observation, summed reward, {})``; game over is not reported.
        """
        if self._needs_reset:
            raise RuntimeError("AtariRawTask.step() called before reset()")
        act = map_action(action, self._low, self._high)
        reward = 0.0
        obs = None
        for _ in range(self.action_repeat):
            obs, r, _terminated, _truncated, _info = self.env.step(act)
            reward += float(r)
        return self._obs(obs), reward, {}

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """The game frame centred on a black ``uint8 [height, width, 3]`` canvas (cropped if smaller)."""
        frame = np.asarray(self.env.ale.getScreenRGB(), np.uint8)
        canvas = np.zeros((height, width, 3), np.uint8)
        fh, fw = frame.shape[:2]
        h, w = min(fh, height), min(fw, width)
        top, left = (height - h) // 2, (width - w) // 2
        ftop, fleft = (fh - h) // 2, (fw - w) // 2
        canvas[top : top + h, left : left + w] = frame[ftop : ftop + h, fleft : fleft + w]
        return canvas

    def close(self) -> None:
        """Close the ALE environment."""
        env = getattr(self, "env", None)
        if env is not None:
            env.close()
            self.env = None

    @staticmethod
    def _obs(ram: Any) -> np.ndarray:
        return np.asarray(ram, np.float32).reshape(-1) / np.float32(255.0)

    def __repr__(self) -> str:
        game = getattr(self.env, "_game", "?")
        return f"{type(self).__name__}(game={game}, obs_dim={self.obs_dim}, action_dim={self.action_dim})"


def make_atari_task(spec: TaskSpec, *, seed: int | None = None, **make_kwargs: Any) -> AtariRawTask:
    """Build an MMBench Atari task (the ``"atari"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` holds the ALE ``env_id`` and its ``kwargs``.
        seed: seed of the first reset (later resets continue ALE's RNG unless given a seed).
        **make_kwargs: overrides of ``gymnasium.make`` keyword arguments.

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_atari_task(get_task("atari-pong"), seed=0)
        >>> raw.obs_dim, raw.action_dim
        (128, 3)
        >>> raw.close()
    """
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    source = spec.source
    env_id = source.get("env_id")
    if not env_id:
        raise ValueError(f"task {spec.name!r} has no ALE env_id in its source facts: {dict(source)}")
    kwargs: dict[str, Any] = dict(source.get("kwargs") or {})
    kwargs.pop("render_mode", None)  # frames come from ale.getScreenRGB(); no per-step rendering
    kwargs.update(obs_type="ram", continuous=True)
    kwargs.setdefault("repeat_action_probability", 0.0)
    kwargs.update(make_kwargs)
    env = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    raw = AtariRawTask(env, action_repeat=int(source.get("action_repeat", spec.action_repeat)))
    if seed is not None:
        raw.reset(seed=seed)
    return raw


register_domain("atari", make_atari_task, extra="atari", requires=("ale_py", "gymnasium"))
