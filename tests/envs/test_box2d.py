"""The eight Box2D tasks (domain ``"box2d"``): walker terrains and lunar lander variants."""

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

pytest.importorskip("gymnasium")
pytest.importorskip("Box2D")
pytest.importorskip("pygame")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks  # noqa: E402
from torchrl_newt.envs import make_env, make_lane_env  # noqa: E402
from torchrl_newt.envs.domains.box2d_tasks import (  # noqa: E402
    TERRAINS,
    LunarLanderHover,
    LunarLanderTakeoff,
    TerrainBipedalWalker,
    terrain_profile,
)

pytestmark = pytest.mark.box2d

BOX2D_TASKS = list_tasks("box2d")
WALKERS = [t for t in BOX2D_TASKS if t.startswith("bipedal-walker")]


def _run(raw, policy, seed, steps):
    obs = raw.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        obs, reward, _ = raw.step(policy(obs))
        total += reward
    return total


def test_domain_lists_eight_tasks():
    assert WALKERS == [f"bipedal-walker-{t}" for t in TERRAINS]
    assert BOX2D_TASKS[5:] == ["lunarlander-land", "lunarlander-hover", "lunarlander-takeoff"]


@pytest.mark.parametrize("task", BOX2D_TASKS)
def test_raw_task_dims_and_step(task):
    spec = get_task(task)
    raw = build_raw_task(task)
    try:
        assert (raw.obs_dim, raw.action_dim, raw.action_repeat) == (spec.obs_dim, spec.action_dim, 2)
        obs = raw.reset(seed=0)
        assert obs.dtype == np.float32 and obs.shape == (spec.obs_dim,)
        obs, reward, info = raw.step(np.ones(spec.action_dim, np.float32))
        assert obs.shape == (spec.obs_dim,) and isinstance(reward, float) and info == {}
    finally:
        raw.close()


def test_full_stack_check_env_specs_all_tasks():
    env = make_env(BOX2D_TASKS, seed=0)
    try:
        check_env_specs(env)
        td = env.rollout(3)
        assert td["action_mask"][:, 0].sum(-1).tolist() == [4] * 5 + [2] * 3
        for i, t in enumerate(BOX2D_TASKS):
            assert (td["observation"][i, :, get_task(t).obs_dim :] == 0).all()
    finally:
        env.close()


# -- terrains --------------------------------------------------------------------------------
def test_terrains_are_seeded_bounded_and_distinct():
    profiles = {}
    for terrain in TERRAINS:
        ys, polys = terrain_profile(terrain, np.random.default_rng(0))
        again, _ = terrain_profile(terrain, np.random.default_rng(0))
        assert ys == again and len(ys) == 200
        assert 1.0 <= min(ys) and max(ys) <= 5.5
        assert (len(polys) > 0) == (terrain == "obstacles")
        profiles[terrain] = np.asarray(ys)
    assert np.ptp(profiles["flat"]) == 0.0
    assert np.abs(np.diff(profiles["rugged"])).mean() > np.abs(np.diff(profiles["uneven"])).mean()
    assert np.ptp(profiles["hills"]) > 0.5
    with pytest.raises(ValueError, match="unknown terrain"):
        TerrainBipedalWalker("moon")


def test_walker_reset_seed_rebuilds_the_same_terrain():
    env = TerrainBipedalWalker("obstacles")
    env.reset(seed=5)
    first = list(env.terrain_y)
    env.reset(seed=6)
    assert list(env.terrain_y) != first
    env.reset(seed=5)
    assert list(env.terrain_y) == first
    env.close()


def test_hills_come_from_the_global_generator_stand_in():
    """Newt draws the hills from NumPy's global generator after four sky/cloud colour draws:
    seed s reproduces np.random.seed(s)'s hills, and NumPy's own global state is left alone."""
    env = TerrainBipedalWalker("hills")
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    env.reset(seed=7)
    assert np.random.random() == expected_next
    rng = np.random.RandomState(7)
    rng.randint(-7, 7, size=3), rng.randint(-7, 7, size=1), rng.randint(-4, 4, size=3), rng.randint(-4, 4, size=1)
    base = 400 / 30 / 4 + rng.uniform(-1, -0.8)
    amp, length = rng.uniform(0.4, 0.8), rng.uniform(7, 14)
    x = np.arange(200) * (14 / 30)
    expected = np.clip(base + amp * np.sin(2 * np.pi * x / length), 1.0, 5.5)
    np.testing.assert_allclose(env.terrain_y, expected, rtol=1e-12)
    env.close()


def test_walker_velocity_observation_uses_newts_view():
    """Newt's walker ran with a 224-pixel view at 15 pixels per unit: vx * 0.3 * (224 / 15) / 50."""
    env = TerrainBipedalWalker("flat")
    env.reset(seed=0)
    obs, *_ = env.step(np.array([1.0, -1.0, 0.5, 0.0], np.float32))
    vel = env.hull.linearVelocity
    assert obs[2] == np.float32(vel.x * 0.3 * 224 / 15 / 50)
    assert obs[3] == np.float32(vel.y * 0.3 * 224 / 15 / 50)
    env.close()


def test_walker_progress_reward_is_doubled():
    """With the same seed and actions, the benchmark reward adds one more 130 * dx / 30 term."""
    action = np.array([0.3, -0.2, 0.1, 0.4], np.float32)
    plain = TerrainBipedalWalker("flat", forward_reward_scale=1.0)
    bench = TerrainBipedalWalker("flat")
    plain.reset(seed=0)
    bench.reset(seed=0)
    for _ in range(5):
        x0 = bench.hull.position[0]
        _, r1, *_ = plain.step(action)
        _, r2, *_ = bench.step(action)
        dx = bench.hull.position[0] - x0
        assert r2 - r1 == pytest.approx(130.0 * dx / 30.0, abs=1e-4)
    plain.close()
    bench.close()


def test_walker_reward_is_clipped_per_substep():
    raw = build_raw_task("bipedal-walker-flat")
    rewards = [_run(raw, lambda o: np.zeros(4, np.float32), 0, 1)]
    rewards += [raw.step(np.zeros(4, np.float32))[1] for _ in range(150)]
    assert min(rewards) >= -2.0 and max(rewards) <= 20.0
    assert rewards[-1] == -2.0  # fallen (game over): -100 per sub-step, clipped to -1, twice
    raw.close()


# -- lunar lander ----------------------------------------------------------------------------
def test_hover_goal_offset_observation():
    env = LunarLanderHover()
    obs, _ = env.reset(seed=2)
    pos = env.lander.position
    half = 400 / 30 / 2
    np.testing.assert_allclose(obs[8:], [(env.goal[0] - pos.x) / half, (env.goal[1] - pos.y) / half], atol=1e-5)
    centre = np.array([(env.helipad_x1 + env.helipad_x2) / 2, 2 * env.helipad_y])
    assert np.all(np.abs(env.goal - centre) <= 1.0)
    env.close()


def test_takeoff_starts_on_the_pad_below_its_goal():
    env = LunarLanderTakeoff()
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert obs[6] == 1.0 and obs[7] == 1.0  # both legs on the ground
        assert env.helipad_x1 < env.lander.position.x < env.helipad_x2
        assert obs[9] > 0.5  # goal high above
        _, reward, *_ = env.step(np.zeros(2, np.float32))
        assert reward == 0.0  # resting on the ground earns nothing
    env.close()


def test_lander_start_state_uses_newts_push():
    """Start 0.8 * 400 px high, jittered by U(0.95, 1.05), and a push of U(-600, 600) each way
    (Gymnasium's lander pushes up to 1000), drawn in this order from the env's generator."""
    from gymnasium.utils import seeding

    from torchrl_newt.envs.domains.box2d_tasks.lunar_lander import INITIAL_RANDOM, LunarLanderLand

    assert INITIAL_RANDOM == 600.0
    env = LunarLanderLand()
    env.reset(seed=0)
    env.np_random, _ = seeding.np_random(11)
    x, y, push = env._start_state()
    ref, _ = seeding.np_random(11)
    y_noise, x_noise = ref.uniform(0.95, 1.05), ref.uniform(0.95, 1.05)
    assert y == pytest.approx(320 * y_noise / 30, rel=1e-15)
    assert x == pytest.approx(200 * x_noise / 30, rel=1e-15)
    assert push == pytest.approx((ref.uniform(-600, 600), ref.uniform(-600, 600)), rel=1e-15)
    env.close()


def test_lander_goal_precision_and_colour_draws():
    """Hover's goal is a float32 centre plus float64 noise (stays float64); takeoff's is float32.
    Colours come from the global-generator stand-in, NumPy's global state is untouched."""
    np.random.seed(5)
    expected_next = np.random.random()
    np.random.seed(5)
    hover, takeoff = LunarLanderHover(), LunarLanderTakeoff()
    hover.reset(seed=1)
    takeoff.reset(seed=1)
    assert np.random.random() == expected_next
    assert hover.goal.dtype == np.float64 and takeoff.goal.dtype == np.float32
    rng = np.random.RandomState(1)  # sky colour: (20, 10, 15) + one shared and three channel offsets
    sky = np.clip(np.array([20, 10, 15]) + rng.randint(-10, 10) + rng.randint(-5, 5, size=(3,)), 0, 255)
    assert hover.sky_color == sky.tolist()
    hover.close()
    takeoff.close()


@pytest.mark.parametrize("task, low, high", [("lunarlander-land", -0.5, 1.0), ("lunarlander-hover", 0.0, 2.0)])
def test_lander_rewards_per_step_in_range(task, low, high):
    raw = build_raw_task(task)
    raw.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = [raw.step(rng.uniform(-1, 1, 2).astype(np.float32))[1] for _ in range(120)]
    assert low <= min(rewards) and max(rewards) <= high
    raw.close()


# -- episodes, seeds, frames -----------------------------------------------------------------
def test_random_episode_truncates_with_score(random_episode):
    random_episode("lunarlander-hover", seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("task", BOX2D_TASKS)
def test_random_episode_all_tasks(task, random_episode):
    random_episode(task, seed=0)


@pytest.mark.parametrize("task", ["bipedal-walker-obstacles", "lunarlander-takeoff"])
def test_same_seed_same_episode(task, same_seed_same_episode):
    same_seed_same_episode(task, compare_first_only=False)


@pytest.mark.parametrize("task", ["bipedal-walker-hills", "lunarlander-hover"])
def test_render_headless_frame(task):
    env = make_lane_env(task, seed=0, from_pixels=True)
    frame = env.reset()["pixels"]
    assert frame.shape == (224, 224, 3) and frame.dtype == torch.uint8
    assert frame.float().std() > 1.0
    env.close()


# -- scripted behaviour beats doing nothing --------------------------------------------------
def _stance(obs, k=1.0, d=0.3, hip=0.6, knee=0.9):
    """PD control of hips and knees to a wide, bent stance: the walker stays upright."""
    target = np.array([hip, knee, -hip, knee])
    angles = obs[[4, 6, 9, 11]]
    speeds = obs[[5, 7, 10, 12]]
    return np.clip(k * (target - angles) - d * speeds, -1, 1).astype(np.float32)


def _fly_to_goal(obs):
    """PD pilot: tilt towards the goal's side, throttle towards its height."""
    dx, dy = obs[8], obs[9]
    angle_target = np.clip(-0.5 * dx + obs[2], -0.4, 0.4)
    turn = 0.5 * (angle_target - obs[4]) - obs[5]
    lift = 0.5 * dy - 0.5 * obs[3]
    return np.clip([20 * lift - 1, -20 * turn], -1, 1).astype(np.float32)


@pytest.mark.parametrize("task", WALKERS)
def test_walker_standing_beats_zero_actions(task):
    raw = build_raw_task(task)
    scripted = _run(raw, _stance, 0, 250)
    idle = _run(raw, lambda o: np.zeros(4, np.float32), 0, 250)
    assert scripted > idle + 40.0, (scripted, idle)
    raw.close()


@pytest.mark.parametrize("task", ["lunarlander-hover", "lunarlander-takeoff"])
def test_pilot_beats_zero_actions(task):
    raw = build_raw_task(task)
    scripted = _run(raw, _fly_to_goal, 0, 250)
    idle = _run(raw, lambda o: np.zeros(2, np.float32), 0, 250)
    assert scripted > 250.0 and scripted > idle + 200.0, (scripted, idle)
    assert get_task(task).score(scripted) > 0.5
    raw.close()
