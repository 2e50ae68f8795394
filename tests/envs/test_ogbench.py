"""The 12 OGBench MMBench tasks (+ 2 held-out mazes) through the raw-task API and the full stack."""

from collections import deque

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

pytest.importorskip("ogbench")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains.ogbench import CUSTOM_MAZES, make_maze

pytestmark = pytest.mark.ogbench

OG_TASKS = list_tasks("ogbench")
OG_HELD_OUT = [t for t in list_tasks("held-out") if get_task(t).base_domain == "ogbench"]


def test_task_list():
    assert len(OG_TASKS) == 12 and OG_HELD_OUT == ["og-point-var1", "og-point-var2"]


def test_all_tasks_build_with_registry_dims():
    for task in OG_TASKS + OG_HELD_OUT:
        spec = get_task(task)
        raw = build_raw_task(task, seed=0)  # checks obs_dim/action_dim against the registry
        obs = raw.reset()
        assert obs.shape == (spec.obs_dim,) and obs.dtype == np.float32
        obs, reward, info = raw.step(np.random.uniform(-1, 1, spec.action_dim))
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert ("success" in info) == spec.success_defined
        raw.close()


def _free_component(grid, start):
    free = {tuple(c) for c in np.argwhere(grid == 0)}
    seen, queue = {start}, deque([start])
    while queue:
        i, j = queue.popleft()
        for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if n in free and n not in seen:
                seen.add(n)
                queue.append(n)
    return free, seen


@pytest.mark.parametrize("layout", sorted(CUSTOM_MAZES))
def test_newt_layouts_and_task_lists(layout):
    """Newt's layouts: every task joins two free, connected cells at Manhattan distance >= 3, and
    the list holds every such ordered pair of the layout's start/goal cells."""
    grid = np.array(CUSTOM_MAZES[layout]["map"])
    tasks = [tuple(map(tuple, t)) for t in CUSTOM_MAZES[layout]["tasks"]]
    assert grid.shape == (8, 8) and len(set(tasks)) == len(tasks)
    cells = sorted({c for t in tasks for c in t})
    free, reachable = _free_component(grid, cells[0])
    assert set(cells) <= reachable <= free
    expected = {(a, b) for a in cells for b in cells if abs(a[0] - b[0]) + abs(a[1] - b[1]) >= 3}
    assert set(tasks) == expected
    env = make_maze("point", layout)
    np.testing.assert_array_equal(env.maze_map, grid)
    assert env.num_tasks == len(tasks) and env.task_infos[0]["init_ij"] == tasks[0][0]
    env.close()


def test_newt_layout_facts():
    """Spot values of Newt's maps (tdmpc2/envs/tasks/ogbench_maze.py) and task-list sizes."""
    assert CUSTOM_MAZES["bottleneck"]["map"][3] == [1, 0, 0, 0, 0, 0, 0, 1]
    assert CUSTOM_MAZES["bottleneck"]["map"][1] == [1, 0, 0, 1, 1, 0, 0, 1]
    assert CUSTOM_MAZES["circle"]["map"][1] == [1, 1, 0, 0, 0, 0, 1, 1]
    assert CUSTOM_MAZES["spiral"]["map"][2] == [1, 0, 1, 0, 1, 1, 0, 1]
    assert CUSTOM_MAZES["var1"]["map"][0] == [1, 1, 1, 1, 0, 0, 1, 1]
    assert CUSTOM_MAZES["var2"]["map"][4] == [0, 0, 0, 0, 0, 0, 0, 1]
    # spiral: 16 cells in 5 clusters; bottleneck/var2 and circle/var1 share their cell lists
    assert len({c for t in CUSTOM_MAZES["spiral"]["tasks"] for c in t}) == 16
    assert CUSTOM_MAZES["bottleneck"]["tasks"] == CUSTOM_MAZES["var2"]["tasks"]
    assert CUSTOM_MAZES["circle"]["tasks"] == CUSTOM_MAZES["var1"]["tasks"]
    # pairs at distance < 3 among the four cells of one 2x2 corner block: all 12 ordered pairs
    corner = [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert not [t for t in CUSTOM_MAZES["bottleneck"]["tasks"] if t[0] in corner and t[1] in corner]


def test_maze_time_limit_in_simulator_steps():
    """Past 400 simulator steps (100 point agent steps at repeat 4) an agent step is one sub-step."""
    raw = build_raw_task("og-point-arena", seed=0)
    raw.reset(seed=0)
    calls = []
    step = raw.env.step

    def counting_step(action):
        calls.append(1)
        return step(action)

    raw.env.step = counting_step
    for _ in range(102):
        raw.step(np.zeros(2))
    assert len(calls) == 100 * 4 + 2
    raw.reset(seed=0)
    calls.clear()
    raw.step(np.zeros(2))
    assert len(calls) == 4  # reset restarts the count
    raw.close()


def test_maze_reward_success_and_observation():
    raw = build_raw_task("og-point-maze", seed=0)
    obs = raw.reset(seed=0)
    base = raw.env.unwrapped
    goal = np.asarray(base.get_oracle_rep())
    np.testing.assert_allclose(obs[4:6] * 20, goal, rtol=1e-5)  # [xy, vel, goal, xy-goal, dist] / 20
    np.testing.assert_allclose(obs[2:4], 0.0)  # no velocity at reset
    base.set_xy(goal)  # teleport onto the goal
    obs, reward, info = raw.step(np.zeros(2))
    assert info == {"success": 1.0}
    assert 0.9 < reward <= 1.0  # success - small distance terms
    xy = np.asarray(base.get_xy())
    np.testing.assert_allclose(obs[0:2] * 20, xy, rtol=1e-5)
    assert obs[8] * 20 == pytest.approx(np.linalg.norm(xy - goal), rel=1e-4)
    raw.close()


def test_newt_task_edits():
    raw_arena, raw_medium = build_raw_task("og-ant-arena", seed=0), build_raw_task("og-point-maze", seed=0)
    arena, medium = raw_arena.env.unwrapped, raw_medium.env.unwrapped
    assert arena.num_tasks == len(arena.task_infos) == 48  # 81 cell pairs in [2, 4]^2 minus 33 closer than 2
    assert medium.num_tasks == 10 and medium.task_infos[2]["goal_ij"] == (2, 4)
    raw_arena.close()
    raw_medium.close()


def test_antball_goal_moved_close():
    raw = build_raw_task("og-antball", seed=0)
    for seed in range(3):
        raw.reset(seed=seed)
        assert np.abs(raw.env.unwrapped.cur_goal_xy).max() <= 3.0
    raw.close()


def test_global_rng_untouched_and_seeding():
    raw = build_raw_task("og-ant", seed=0)
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    first = raw.reset(seed=5)
    actions = np.random.default_rng(0).uniform(-1, 1, (120, 8))  # crosses the 100-step resample
    traj = [raw.step(a) for a in actions]
    assert np.random.random() == expected  # OGBench's global-RNG draws went to the task's own RNG
    np.testing.assert_array_equal(raw.reset(seed=5), first)
    for a, (obs, reward, _) in zip(actions, traj):
        obs2, reward2, _ = raw.step(a)
        np.testing.assert_array_equal(obs2, obs)
        assert reward2 == reward
    raw.close()


def test_check_env_specs_and_episode():
    env = make_lane_env("og-point-spiral", seed=0)
    check_env_specs(env)
    T = get_task("og-point-spiral").episode_length
    td = env.rollout(T + 10)
    assert td.shape == (T,) and td["next", "truncated"][-1].item()
    assert not td["next", "done"][:-1].any()
    score = td["next", "score"][-1].item()
    assert score in (0.0, 1.0) and score == td["next", "success"][-1].item()
    env.close()


def test_og_ant_return_score():
    env = make_lane_env("og-ant", seed=0)
    td = env.rollout(1005)
    assert td.shape == (1000,)
    ret = td["next", "reward"].sum().item()
    assert td["next", "score"][-1].item() == pytest.approx(min(max(ret, 0.0), 250.0) / 250.0, abs=1e-6)
    env.close()


def test_same_seed_same_episode(same_seed_same_episode):
    same_seed_same_episode("og-ant-maze", steps=5, seeds=(1, 1, 2), compare_first_only=True)


def test_render_several_tasks_in_one_process():
    tasks = [build_raw_task(t, seed=0) for t in ("og-point-arena", "og-antball", "og-ant")]
    for raw in tasks:
        raw.reset()
    for _ in range(2):  # renderers of different kinds must not draw into each other's GL context
        means = [raw.render(64, 64).mean() for raw in tasks]
        assert all(m > 5.0 for m in means)
    for raw in tasks:
        raw.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", OG_TASKS + OG_HELD_OUT)
def test_all_tasks_full_stack(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    check_env_specs(env)
    td = env.rollout(spec.episode_length + 5)
    assert td.shape == (spec.episode_length,)
    assert 0.0 <= td["next", "score"][-1].item() <= 1.0
    env.close()
