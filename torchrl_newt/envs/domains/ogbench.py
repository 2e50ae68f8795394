"""OGBench locomotion tasks (``og-*``) as :class:`~torchrl_newt.envs.registry.RawTask` objects.

Only OGBench's *environments* are used (the equivalent of ``ogbench.make_env_and_datasets(...,
env_only=True)``): no dataset is ever downloaded. Three families, following Newt's wrapper:

``og-ant`` (``online-ant-v0`` + ``GymXYWrapper(resample_interval=100)``)
    Run along a random unit direction ``z`` (re-drawn every 100 steps): reward = displacement along
    ``z``; observation = ant state (27) + ``z`` (2); no success; score ``clip(R, 0, 250) / 250``.
``og-antball`` (``online-antball-v0``)
    Dribble a ball to a goal; after each reset the goal is moved to ``uniform(-3, 3)^2`` and the 42-d
    observation recomputed; OGBench's reward and ``success`` (ball within 0.5 of the goal).
``og-{point,ant}-{arena,maze,bottleneck,circle,spiral}`` and held-out ``og-point-var{1,2}``
    OGBench's locomaze with action repeat 4 (point) / 2 (ant). Per agent step: success =
    ``||xy - goal|| <= goal_tol`` (1.0 point, 0.5 ant); reward = ``success - (0.5 L1 + 0.5 L2 +
    vel_penalty) / 20`` with ``vel_penalty = 0.025 |dxy|`` (point, last sub-step) or
    ``0.001 |qvel|`` (ant); observation (all divided by 20) = point: ``[xy, dxy, goal, xy - goal,
    |xy - goal|]`` (9), ant: ``[ant state (29), xy, goal, xy - goal, |xy - goal|]`` (36). Reaching
    the goal does not end the episode. ``arena`` tasks draw start/goal cells from ``[2, 4]^2`` at
    Manhattan distance >= 2; ``maze`` (OGBench's ``medium``) gets Newt's edited task list.

The tasks follow Newt's definitions (nicklashansen/newt, commit 75def92, ``tdmpc2/envs/ogbench.py``
and ``tdmpc2/envs/tasks/ogbench_maze.py``). OGBench ships ``arena`` and ``medium``; the
``bottleneck``, ``circle``, ``spiral`` and held-out ``var1``/``var2`` layouts are Newt's, kept in
:data:`CUSTOM_MAZES` (maps and start/goal task lists: every ordered pair of a layout's listed cells
at Manhattan distance >= 3), built on OGBench's own maze class (same cell size, walls, goal
tolerance, reset and step).

Newt limits each maze episode to 400 *simulator* steps (:data:`MAZE_SIM_STEP_LIMIT`) and its
action-repeat loop stops at a truncated sub-step; past the limit every agent step is a single
simulator step. This only shows beyond the benchmark's episode length (100 point / 200 ant agent
steps) and is reproduced for fidelity.

OGBench draws starts, goals and directions from NumPy's *global* RNG; :class:`OGBenchRawTask` runs
``reset``/``step`` inside its own ``RandomState`` (swapped in and out of the global one), so
``reset(seed)`` is reproducible and the caller's global RNG is untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from torchrl_newt.envs.domains._gym import resize_frame
from torchrl_newt.envs.registry import TaskSpec, register_domain

__all__ = ["CUSTOM_MAZES", "MAZE_SIM_STEP_LIMIT", "OGBenchRawTask", "make_maze", "make_ogbench_task"]

logger = logging.getLogger(__name__)

# Newt's layouts for the maze names OGBench does not ship (nicklashansen/newt, commit 75def92,
# ``tdmpc2/envs/tasks/ogbench_maze.py``): 1 = wall, 0 = free, 4 m cells like OGBench's 8x8 mazes.
# Each layout's tasks are all ordered pairs of its start/goal cells at Manhattan distance >= 3.
_CORNER_CELLS = (
    (1, 1), (1, 2), (2, 1), (2, 2),
    (5, 5), (5, 6), (6, 5), (6, 6),
    (1, 5), (2, 5), (1, 6), (2, 6),
    (5, 1), (6, 1), (5, 2), (6, 2),
    (3, 3), (3, 4), (4, 3), (4, 4),
)
_RING_CELLS = (
    (2, 1), (1, 2), (2, 2), (3, 1), (1, 3),
    (4, 1), (5, 1), (5, 2), (6, 2), (6, 3),
    (6, 4), (6, 5), (5, 5), (5, 6), (4, 6),
    (1, 4), (1, 5), (2, 5), (2, 6), (3, 6),
)
_SPIRAL_CELLS = (
    (1, 1), (1, 2), (2, 1),
    (1, 6), (2, 6), (1, 5),
    (6, 1), (6, 2), (5, 1),
    (6, 6), (5, 6), (6, 5),
    (3, 3), (3, 4), (4, 3),
    (4, 4),
)
_MIN_TASK_DISTANCE = 3


def _cell_pairs(cells: tuple[tuple[int, int], ...], min_distance: int = _MIN_TASK_DISTANCE) -> list[list[tuple[int, int]]]:
    """All ordered ``[init, goal]`` pairs of ``cells`` at Manhattan distance >= ``min_distance``.

    Examples:
        >>> _cell_pairs(((1, 1), (1, 2), (4, 4)))
        [[(1, 1), (4, 4)], [(1, 2), (4, 4)], [(4, 4), (1, 1)], [(4, 4), (1, 2)]]
    """
    return [
        [a, b] for a in cells for b in cells if abs(a[0] - b[0]) + abs(a[1] - b[1]) >= min_distance
    ]


CUSTOM_MAZES: dict[str, dict[str, Any]] = {
    "bottleneck": {
        "map": [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 1, 1, 1, 1, 1, 1, 1],
        ],
        "tasks": _cell_pairs(_CORNER_CELLS),
    },
    "circle": {
        "map": [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 0, 0, 0, 0, 1, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 0, 1, 1, 1, 1, 0, 1],
            [1, 0, 1, 1, 1, 1, 0, 1],
            [1, 0, 0, 1, 1, 0, 0, 1],
            [1, 1, 0, 0, 0, 0, 1, 1],
            [1, 1, 1, 1, 1, 1, 1, 1],
        ],
        "tasks": _cell_pairs(_RING_CELLS),
    },
    "spiral": {
        "map": [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [1, 0, 1, 0, 1, 1, 0, 1],
            [1, 0, 1, 0, 0, 0, 0, 1],
            [1, 0, 0, 0, 0, 1, 0, 1],
            [1, 0, 1, 1, 0, 1, 0, 1],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [1, 1, 1, 1, 1, 1, 1, 1],
        ],
        "tasks": _cell_pairs(_SPIRAL_CELLS),
    },
    # held-out layouts (their outer rows and columns have openings onto the floor beyond)
    "var1": {
        "map": [
            [1, 1, 1, 1, 0, 0, 1, 1],
            [1, 1, 0, 0, 0, 0, 1, 1],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 1, 1, 0, 1, 0, 0],
            [0, 0, 1, 0, 0, 1, 0, 1],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 1, 1],
            [1, 1, 0, 1, 1, 1, 1, 1],
        ],
        "tasks": _cell_pairs(_RING_CELLS),
    },
    "var2": {
        "map": [
            [0, 0, 1, 1, 0, 0, 1, 1],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [1, 0, 0, 1, 1, 0, 0, 0],
            [1, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 1, 1, 0, 0, 0],
            [1, 0, 0, 1, 0, 0, 0, 1],
            [1, 1, 0, 1, 0, 0, 1, 1],
        ],
        "tasks": _cell_pairs(_CORNER_CELLS),
    },
}

# Newt wraps every maze in a 400-step time limit counted in *simulator* steps, and its action-repeat
# loop stops at the first truncated sub-step: past that limit an agent step is one simulator step.
MAZE_SIM_STEP_LIMIT = 400

_MAZE_CLASSES: dict[tuple[str, str], type] = {}


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


def _maze_class(loco: str, layout: str) -> type:
    """An OGBench maze class using one of :data:`CUSTOM_MAZES` (built once per loco/layout)."""
    key = (loco, layout)
    if key in _MAZE_CLASSES:
        return _MAZE_CLASSES[key]
    from ogbench.locomaze.maze import make_maze_env

    # OGBench defines its maze class inside a factory: take it from a throw-away (cheap) arena
    probe = make_maze_env(loco, "maze", maze_type="arena")
    base = type(probe)
    probe.close()
    facts = CUSTOM_MAZES[layout]

    class CustomMaze(base):  # type: ignore[misc, valid-type]
        _custom_map = np.array(facts["map"])
        _custom_tasks = tuple(tuple(map(tuple, t)) for t in facts["tasks"])
        _layout = layout

        def __init__(self, **kwargs: Any) -> None:
            kwargs["maze_type"] = "arena"  # any stock name passes OGBench's check; the map is ours
            super().__init__(**kwargs)
            self._maze_type = self._layout

        def update_tree(self, tree: Any) -> None:
            self.maze_map = self._custom_map.copy()
            super().update_tree(tree)

        def set_tasks(self) -> None:
            self.task_infos = [
                {
                    "task_name": f"task{i + 1}",
                    "init_ij": init,
                    "init_xy": self.ij_to_xy(init),
                    "goal_ij": goal,
                    "goal_xy": self.ij_to_xy(goal),
                }
                for i, (init, goal) in enumerate(self._custom_tasks)
            ]
            if self._reward_task_id == 0:
                self._reward_task_id = 1

    CustomMaze.__name__ = CustomMaze.__qualname__ = f"{loco.capitalize()}{layout.capitalize()}Maze"
    _MAZE_CLASSES[key] = CustomMaze
    return CustomMaze


def _task_info(env: Any, init: tuple[int, int], goal: tuple[int, int], i: int) -> dict:
    return {"task_name": f"task{i}", "init_ij": init, "init_xy": env.ij_to_xy(init), "goal_ij": goal, "goal_xy": env.ij_to_xy(goal)}


def _edit_tasks(env: Any, maze_type: str) -> None:
    """Newt's start/goal edits: all arena pairs in ``[2, 4]^2``; medium maze tasks moved/extended."""
    if maze_type == "arena":
        cells = [(i, j) for i in range(2, 5) for j in range(2, 5)]
        pairs = [(a, b) for a in cells for b in cells if abs(a[0] - b[0]) + abs(a[1] - b[1]) >= 2]
        env.task_infos = [_task_info(env, a, b, k + 1) for k, (a, b) in enumerate(pairs)]
    elif maze_type == "medium":
        infos = env.task_infos
        infos[2].update(goal_ij=(2, 4), goal_xy=env.ij_to_xy((2, 4)))
        infos[3].update(init_ij=(2, 2), init_xy=env.ij_to_xy((2, 2)))
        extra = [((2, 1), (4, 5)), ((6, 5), (4, 6)), ((2, 2), (4, 4)), ((6, 1), (2, 1)), ((6, 3), (3, 3))]
        infos.extend(_task_info(env, a, b, len(infos) + k + 1) for k, (a, b) in enumerate(extra))
    env.num_tasks = len(env.task_infos)


def make_maze(loco: str, maze_type: str, **kwargs: Any) -> Any:
    """Build an OGBench locomaze (stock ``arena``/``medium``/... or one of :data:`CUSTOM_MAZES`).

    Args:
        loco: ``"point"`` or ``"ant"``.
        maze_type: OGBench maze name or a key of :data:`CUSTOM_MAZES`.
        **kwargs: keyword arguments of OGBench's maze environment (``render_mode``, ``width``...).

    Examples:
        >>> env = make_maze("point", "spiral")
        >>> env.maze_map.shape, env.num_tasks
        ((8, 8), 204)
        >>> env.close()
    """
    if maze_type in CUSTOM_MAZES:
        return _maze_class(loco, maze_type)(**kwargs)
    from ogbench.locomaze.maze import make_maze_env

    return make_maze_env(loco, "maze", maze_type=maze_type, **kwargs)


class OGBenchRawTask:
    """An OGBench environment with Newt's task logic behind the numpy :class:`~torchrl_newt.envs.RawTask` API.

    Args:
        env: the OGBench environment (``AntEnv`` wrapped in ``GymXYWrapper``, ``AntBallEnv`` or a
            locomaze), built with ``render_mode="rgb_array"``.
        kind: ``"ant"``, ``"antball"`` or ``"maze"``.
        loco: ``"point"`` or ``"ant"`` (mazes only).
        action_repeat: simulator steps per agent step (4 point / 2 ant mazes, 1 otherwise).
        seed: seed of the private RNG standing in for NumPy's global RNG.
        sim_step_limit: simulator steps after which each agent step is a single simulator step
            (Newt's time limit inside its action-repeat loop); ``None`` (default): no limit.

    Examples:
        >>> env = make_maze("point", "medium", render_mode="rgb_array", width=64, height=64)
        >>> raw = OGBenchRawTask(env, kind="maze", loco="point", action_repeat=4, seed=0)
        >>> raw.obs_dim, raw.action_dim
        (9, 2)
        >>> obs = raw.reset(seed=0)
        >>> obs, reward, info = raw.step(np.zeros(2, np.float32))
        >>> sorted(info), reward < 0.0
        (['success'], True)
        >>> raw.close()
    """

    def __init__(
        self,
        env: Any,
        *,
        kind: str,
        loco: str = "ant",
        action_repeat: int = 1,
        seed: int | None = None,
        sim_step_limit: int | None = None,
    ) -> None:
        if kind not in ("ant", "antball", "maze"):
            raise ValueError(f"unknown OGBench task kind {kind!r}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.env = env
        self.kind = kind
        self.loco = loco
        self.action_repeat = int(action_repeat)
        self._rng = np.random.RandomState(None if seed is None else int(seed) % 2**32)
        self._base = env.unwrapped
        self.action_dim = int(np.prod(env.action_space.shape))
        low = np.asarray(env.action_space.low, np.float64)
        high = np.asarray(env.action_space.high, np.float64)
        self._scale = (high - low) / 2.0
        self._offset = (high + low) / 2.0
        if kind == "maze":
            self.obs_dim = 9 if loco == "point" else int(np.prod(env.observation_space.shape)) + 7
        else:
            self.obs_dim = int(np.prod(env.observation_space.shape))
        self.sim_step_limit = None if sim_step_limit is None else int(sim_step_limit)
        self._sim_steps = 0
        self._needs_reset = True

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode (a new start/goal or direction).

        Args:
            seed: reseeds the environment's RNG and the private global-RNG stand-in first.

        Returns:
            the first observation, float32 ``[obs_dim]``.
        """
        kwargs: dict[str, Any] = {}
        if seed is not None:
            self._rng.seed(int(seed) % 2**32)
            kwargs["seed"] = int(seed) % 2**31
        with _global_rng(self._rng):
            obs, info = self.env.reset(**kwargs)
            if self.kind == "antball":
                obs = self._move_antball_goal()
        self._needs_reset = False
        self._sim_steps = 0
        return self._observation(obs, info)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]:
        """Apply ``action`` (in ``[-1, 1]``) for ``action_repeat`` simulator steps.

        Returns:
            ``(observation, reward, info)``; ``info["success"]`` except for ``og-ant``.
        """
        if self._needs_reset:
            raise RuntimeError("OGBenchRawTask.step() called before reset()")
        act = np.clip(np.asarray(action, np.float64).reshape(-1), -1.0, 1.0) * self._scale + self._offset
        reward = 0.0
        obs, info = None, {}
        for _ in range(self.action_repeat):
            if self._step_draws_random():
                with _global_rng(self._rng):
                    obs, r, _terminated, _truncated, info = self.env.step(act)
            else:
                obs, r, _terminated, _truncated, info = self.env.step(act)
            reward += float(r)
            self._sim_steps += 1
            if self.sim_step_limit is not None and self._sim_steps >= self.sim_step_limit:
                break  # Newt's time limit truncates the sub-step loop
        out: dict = {}
        if self.kind == "maze":
            success = self._maze_success()
            reward = self._maze_reward(info, success)
            out["success"] = success
        elif self.kind == "antball":
            out["success"] = float(info.get("success", 0.0))
        return self._observation(obs, info), reward, out

    def render(self, width: int = 224, height: int = 224) -> np.ndarray:
        """Render OGBench's default view as ``uint8 [height, width, 3]`` (resized if needed)."""
        # gymnasium's offscreen viewer (ant, antball) renders into whichever GL context is current:
        # make its own current first, other tasks in this process may have switched it
        viewers = getattr(getattr(self._base, "mujoco_renderer", None), "_viewers", None) or {}
        viewer = viewers.get("rgb_array")
        if viewer is not None and hasattr(viewer, "make_context_current"):
            viewer.make_context_current()
        frame = np.asarray(self.env.render(), np.uint8)[..., :3]
        return np.ascontiguousarray(resize_frame(frame, height, width))

    def close(self) -> None:
        """Close the environment and its renderers."""
        env = getattr(self, "env", None)
        if env is not None:
            try:
                env.close()
            except Exception:  # pragma: no cover - best effort at teardown
                logger.debug("failed to close OGBench env", exc_info=True)
            self.env = None

    def _step_draws_random(self) -> bool:
        """Whether the next simulator step uses NumPy's global RNG (swapping it costs ~0.2 ms).

        Only ``GymXYWrapper`` does, when it re-draws its direction; mazes and the ball task draw
        only at reset (OGBench's teleport maze, not used by MMBench, would also draw in steps).
        """
        if self.kind == "ant":
            return (self.env.num_steps + 1) % self.env.resample_interval == 0
        return self.kind == "maze" and getattr(self._base, "_teleport_info", None) is not None

    # -- Newt's task logic ------------------------------------------------------------------
    def _move_antball_goal(self) -> np.ndarray:
        base = self._base
        base.set_goal(np.random.uniform(low=-3.0, high=3.0, size=2))
        return base._get_obs()

    def _goal_delta(self) -> tuple[np.ndarray, np.ndarray]:
        xy = np.asarray(self._base.get_xy(), np.float64)
        goal = np.asarray(self._base.get_oracle_rep(), np.float64)
        return xy, goal

    def _maze_success(self) -> float:
        xy, goal = self._goal_delta()
        return float(np.linalg.norm(xy - goal) <= self._base._goal_tol)

    def _maze_reward(self, info: dict, success: float) -> float:
        xy = np.asarray(info["xy"], np.float64)
        goal = np.asarray(self._base.get_oracle_rep(), np.float64)
        l1 = 0.5 * np.abs(xy - goal).sum()
        l2 = 0.5 * np.linalg.norm(xy - goal)
        if self.loco == "point":
            penalty = 0.025 * np.linalg.norm(xy - np.asarray(info["prev_qpos"], np.float64)[:2])
        else:
            penalty = 0.001 * np.linalg.norm(np.asarray(info["qvel"], np.float64))
        return float(success - (l1 + l2 + penalty) / 20.0)

    def _observation(self, obs: Any, info: dict) -> np.ndarray:
        if self.kind != "maze":
            return np.asarray(obs, np.float32).reshape(-1)
        xy, goal = self._goal_delta()
        tail = [xy, goal, xy - goal, np.array([np.linalg.norm(xy - goal)])]
        if self.loco == "point":
            prev = np.asarray(info.get("prev_qpos", xy), np.float64)[:2]
            parts = [xy, xy - prev, *tail[1:]]
        else:
            parts = [np.asarray(obs, np.float64).reshape(-1), *tail]
        return (np.concatenate(parts) / 20.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, obs_dim={self.obs_dim}, action_dim={self.action_dim})"


def make_ogbench_task(spec: TaskSpec, *, seed: int | None = None, render_size: int = 224) -> OGBenchRawTask:
    """Build an MMBench OGBench task (the ``"ogbench"`` domain builder).

    Args:
        spec: the task spec; ``spec.source`` holds the ``env_id`` and, for mazes, the ``maze`` facts.
        seed: seed of the task's RNGs (first reset, starts/goals/directions).
        render_size: side of the square frames of :meth:`~OGBenchRawTask.render`.

    Examples:
        >>> from torchrl_newt.envs import get_task
        >>> raw = make_ogbench_task(get_task("og-point-bottleneck"), seed=0)
        >>> raw.obs_dim, raw.action_dim, raw.action_repeat
        (9, 2, 4)
        >>> raw.close()
    """
    source = spec.source
    env_id = str(source.get("env_id", ""))
    repeat = int(source.get("action_repeat", spec.action_repeat))
    render = {"render_mode": "rgb_array", "width": int(render_size), "height": int(render_size)}
    rng = np.random.RandomState(None if seed is None else int(seed) % 2**32)
    with _global_rng(rng):
        if env_id == "online-ant-v0":
            from ogbench.online_locomotion.ant import AntEnv
            from ogbench.online_locomotion.wrappers import GymXYWrapper

            env, kind, loco = GymXYWrapper(AntEnv(**render), resample_interval=100), "ant", "ant"
        elif env_id == "online-antball-v0":
            from ogbench.online_locomotion.ant_ball import AntBallEnv

            env, kind, loco = AntBallEnv(**render), "antball", "ant"
            env.mujoco_renderer.viewer.cam.distance = 8  # Newt: camera closer to the ant
        elif "maze" in source:
            maze = source["maze"]
            loco, maze_type = str(maze["loco_env_type"]), str(maze["maze_type"])
            env, kind = make_maze(loco, maze_type, **render), "maze"
            _edit_tasks(env.unwrapped, maze_type)
        else:
            raise ValueError(f"task {spec.name!r}: unsupported OGBench source facts {dict(source)}")
    raw = OGBenchRawTask(
        env, kind=kind, loco=loco, action_repeat=repeat, sim_step_limit=MAZE_SIM_STEP_LIMIT if kind == "maze" else None
    )
    raw._rng = rng
    if seed is not None:
        raw.reset(seed=seed)
    return raw


register_domain("ogbench", make_ogbench_task, extra="ogbench", requires=("ogbench",))
