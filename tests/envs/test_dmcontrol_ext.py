"""The 16 DMControl-extended MMBench tasks (our own dm_control tasks and MJCF models).

Besides the environment contract (specs, truncation, scores, seeding, rendering), every task is
checked for a sensible reward: a small documented scripted policy must earn more than zero actions
over a short horizon. The variants of stock bodies (and their held-out siblings) follow Newt's
definitions (nicklashansen/newt at 75def92, ``tdmpc2/envs/tasks/``): their rewards and models are
checked at hand-built states whose values are worked out by hand from the model geometry (the
golden trajectories of ``test_golden.py`` check them step by step).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from torchrl.envs.utils import check_env_specs

pytest.importorskip("dm_control")

from torchrl_newt.envs import build_raw_task, get_task, list_tasks, make_lane_env
from torchrl_newt.envs.domains.dmcontrol_ext import list_task_fns, load
from torchrl_newt.envs.domains.dmcontrol_ext import reacher as reacher_mod

pytestmark = pytest.mark.dmc_ext

EXT_TASKS = [
    "walker-walk-backward",
    "walker-run-backward",
    "cheetah-run-backward",
    "cheetah-run-front",
    "cheetah-run-back",
    "cheetah-jump",
    "hopper-hop-backward",
    "reacher-three-easy",
    "reacher-three-hard",
    "cup-spin",
    "pendulum-spin",
    "jumper-jump",
    "spinner-spin",
    "spinner-spin-backward",
    "spinner-jump",
    "giraffe-run",
]
HELD_OUT_EXT = [t for t in list_tasks("held-out") if get_task(t).base_domain == "dmcontrol-ext"]

Policy = Callable[[int, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------
# Scripted policies. Each maps (agent step t, raw observation) to an action in [-1, 1].
# --------------------------------------------------------------------------------------------
def zeros(action_dim: int) -> Policy:
    """Zero actions (the baseline every scripted policy must beat)."""
    return lambda t, obs: np.zeros(action_dim)


def pump(action_dim: int, period: int, sign: float = 1.0) -> Policy:
    """Whole-body pumping: every joint at ``+sign`` for half a period, then at ``-sign``.

    On the walker it kicks the legs instead of collapsing; on the cheetah it is a bounding motion
    that throws the body up (jump) and rears it onto one leg (run-front/back).
    """
    return lambda t, obs: sign * np.ones(action_dim) * (1.0 if (t % period) < period // 2 else -1.0)


def travelling_wave(action_dim: int, freq: float, lag: float, dt: float, mirror_legs: bool = False) -> Policy:
    """Open-loop gait: joint ``k`` follows ``sin(2 pi freq t dt + k lag)``.

    With ``mirror_legs`` the action is split in two legs of three joints, the second in
    antiphase (a planar two-legged gallop). A positive ``lag`` sends the wave from the foot to the
    hip, which pushes the cheetah backward.
    """

    def policy(t: int, obs: np.ndarray) -> np.ndarray:
        w = 2 * np.pi * freq * t * dt
        if mirror_legs:
            leg = np.array([np.sin(w + k * lag) for k in range(3)])
            other = np.array([np.sin(w + np.pi + k * lag) for k in range(3)])
            return np.concatenate([leg, other])
        return np.array([np.sin(w + k * lag) for k in range(action_dim)])

    return policy


def bang_bang_pendulum(t: int, obs: np.ndarray) -> np.ndarray:
    """Pump energy into the pendulum: full torque along its angular velocity (``obs[2]``)."""
    return np.array([1.0 if obs[2] >= 0 else -1.0])


def circle_cup(freq: float = 2.0, dt: float = 0.04) -> Policy:
    """Move the cup on a circle at ``freq`` Hz so that the ball whirls around it."""
    return lambda t, obs: np.array([np.cos(2 * np.pi * freq * t * dt), np.sin(2 * np.pi * freq * t * dt)])


def jacobian_transpose_reacher(kp: float = 20.0, kd: float = 0.05) -> Policy:
    """Operational-space reaching: torques ``J^T (target - finger) kp - kd dq`` from the observation.

    The observation is ``[q (3), target - finger (2), dq (3)]``; ``J`` is the finger's planar
    Jacobian for the model's link lengths.
    """
    lengths = np.asarray(reacher_mod.LINK_LENGTHS)

    def policy(t: int, obs: np.ndarray) -> np.ndarray:
        q, err, dq = obs[:3], obs[3:5], obs[5:8]
        phi = np.cumsum(q)
        # d finger / d q_j = sum_{k >= j} l_k (-sin phi_k, cos phi_k)
        columns = np.stack([lengths * -np.sin(phi), lengths * np.cos(phi)])  # [2, 3]
        jac = np.cumsum(columns[:, ::-1], axis=1)[:, ::-1]
        return np.clip(kp * jac.T @ err - kd * dq, -1.0, 1.0)

    return policy


def periodic_jump(period: int = 10, push: int = 3) -> Policy:
    """Jumper: kick the two hinged legs apart (opposite torques) for ``push`` steps, then back
    together for the rest of the period (Newt's jumper has hinged legs, not telescopic ones)."""
    return lambda t, obs: np.array([1.0, -1.0]) * (1.0 if (t % period) < push else -1.0)


def _arm_angles(obs: np.ndarray, n_arms: int) -> np.ndarray:
    """World angle of each spinner arm from straight down, in ``[-pi, pi)``.

    ``obs = [rootz, rooty, q_0..q_{n-1}, velocities]``; arm ``i`` is mounted at ``i * 360 / n``.
    """
    phi = obs[1] + np.deg2rad(360.0 / n_arms) * np.arange(n_arms) + obs[2 : 2 + n_arms]
    return (phi + np.pi) % (2 * np.pi) - np.pi


def spinner_roll(forward: bool = True, n_arms: int = 5, contact_deg: float = 75.0) -> Policy:
    """Roll the spinner like a wheel: arms near the ground push one way, the others swing ahead."""
    sign = 1.0 if forward else -1.0

    def policy(t: int, obs: np.ndarray) -> np.ndarray:
        low = np.abs(_arm_angles(obs, n_arms)) < np.deg2rad(contact_deg)
        return np.where(low, -sign, sign)

    return policy


def spinner_hop(period: int = 50, crouch: int = 40, n_arms: int = 5) -> Policy:
    """Spinner jump: spread the arms near the ground (crouch), then snap them towards vertical."""

    def policy(t: int, obs: np.ndarray) -> np.ndarray:
        phi = _arm_angles(obs, n_arms)
        snap = np.where(np.abs(phi) < np.deg2rad(80.0), -np.sign(phi), 0.0)
        return -snap if (t % period) < crouch else snap

    return policy


def giraffe_gallop(t: int, obs: np.ndarray) -> np.ndarray:
    """3 Hz open-loop gallop of both legs (in phase down each leg) with the neck raised."""
    w = 2 * np.pi * 3.0 * t * 0.02
    leg = np.array([np.sin(w), np.sin(w + 1.0), np.sin(w + 2.0)])
    return np.concatenate([leg, leg, [-0.5]])


# task -> (scripted policy, seeds, agent steps)
SCRIPTED: dict[str, tuple[Policy, tuple[int, ...], int]] = {
    "walker-walk-backward": (pump(6, period=30), (0, 1, 2), 60),
    "walker-run-backward": (pump(6, period=30), (0, 1, 2), 60),
    "cheetah-run-backward": (travelling_wave(6, 4.0, np.pi / 2, 0.02, mirror_legs=True), (0, 1, 2), 100),
    "cheetah-run-front": (pump(6, period=20, sign=-1.0), (0, 1, 2), 100),
    "cheetah-run-back": (pump(6, period=20, sign=-1.0), (0, 1, 2), 100),
    "cheetah-jump": (pump(6, period=20, sign=-1.0), (0, 1, 2), 100),
    # the stock hopper starts at a random orientation (often lying down): seed 0 starts upright
    "hopper-hop-backward": (travelling_wave(4, 2.0, -np.pi / 2, 0.02), (0,), 100),
    # seeds whose targets are not in a folded-arm local minimum of the Jacobian-transpose law
    "reacher-three-easy": (jacobian_transpose_reacher(), (2, 3), 100),
    "reacher-three-hard": (jacobian_transpose_reacher(), (2, 3), 100),
    "cup-spin": (circle_cup(), (1, 2, 3), 100),
    "pendulum-spin": (bang_bang_pendulum, (0, 1), 100),
    "jumper-jump": (periodic_jump(), (0, 1), 100),
    "spinner-spin": (spinner_roll(forward=True), (0, 1), 100),
    "spinner-spin-backward": (spinner_roll(forward=False), (0, 1), 100),
    "spinner-jump": (spinner_hop(), (0, 1), 150),
    "giraffe-run": (giraffe_gallop, (0, 1), 100),
}


def _mean_return(task: str, policy: Policy, seeds: tuple[int, ...], steps: int) -> float:
    raw = build_raw_task(task, seed=0)
    try:
        returns = []
        for seed in seeds:
            obs = raw.reset(seed=seed)
            total = 0.0
            for t in range(steps):
                obs, reward, _ = raw.step(policy(t, obs))
                assert 0.0 <= reward <= get_task(task).action_repeat + 1e-6
                total += reward
            returns.append(total)
        return float(np.mean(returns))
    finally:
        raw.close()


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------
def test_registry_lists_the_16_tasks():
    assert list_tasks("dmcontrol-ext") == EXT_TASKS
    for name in EXT_TASKS:
        source = get_task(name).source
        assert (source["domain"], source["task"]) in list_task_fns()
    assert set(SCRIPTED) == set(EXT_TASKS)


def test_unknown_pair_lists_known_ones():
    with pytest.raises(KeyError, match="spinner/spin"):
        load("spinner", "fly")


@pytest.mark.parametrize("task", EXT_TASKS)
def test_full_stack_specs(task):
    spec = get_task(task)
    env = make_lane_env(task, seed=0)
    try:
        check_env_specs(env)
        assert env.base_env.obs_dim == spec.obs_dim and env.base_env.action_dim == spec.action_dim
        td = env.rollout(3)
        assert td["action_mask"][0].sum().item() == spec.action_dim
        assert (td["observation"][:, spec.obs_dim :] == 0).all()
        assert spec.action_repeat == 2 and spec.episode_length == 500
    finally:
        env.close()


@pytest.mark.parametrize("task", EXT_TASKS)
def test_same_seed_same_rollout_and_render(task):
    rng = np.random.default_rng(0)
    spec = get_task(task)
    actions = rng.uniform(-1, 1, (5, spec.action_dim))
    runs = []
    for _ in range(2):
        raw = build_raw_task(task, seed=123)
        obs = [raw.reset(seed=7)]
        rewards = []
        for a in actions:
            o, r, info = raw.step(a)
            obs.append(o)
            rewards.append(r)
            assert info == {}
        runs.append((np.stack(obs), np.array(rewards)))
        frame = raw.render(width=224, height=224)
        raw.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0].dtype == np.float32 and np.isfinite(runs[0][0]).all()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8 and frame.std() > 0
    other = build_raw_task(task, seed=0)
    assert not np.array_equal(other.reset(seed=8), runs[0][0][0]), "different seeds gave the same initial state"
    other.close()


def _random_episode(task: str) -> None:
    spec = get_task(task)
    env = make_lane_env(task, seed=3)
    try:
        td = env.rollout(spec.episode_length + 10)  # stops at the first done
        assert td.shape == (spec.episode_length,)
        truncated = td["next", "truncated"][:, 0]
        assert truncated[-1].item() and not truncated[:-1].any()
        assert not td["next", "terminated"].any()
        rewards = td["next", "reward"][:, 0]
        assert (rewards >= 0).all() and (rewards <= spec.action_repeat + 1e-5).all()
        score = td["next", "score"][-1].item()
        assert 0.0 <= score <= 1.0
        assert score == pytest.approx(rewards.sum().item() / spec.score.high, rel=1e-4, abs=1e-5)
    finally:
        env.close()


def test_random_episode_truncates_and_scores():
    _random_episode("jumper-jump")


@pytest.mark.slow
@pytest.mark.parametrize("task", EXT_TASKS)
def test_random_episode_truncates_and_scores_all(task):
    _random_episode(task)


@pytest.mark.parametrize("task", EXT_TASKS)
def test_scripted_policy_beats_zero_actions(task):
    policy, seeds, steps = SCRIPTED[task]
    spec = get_task(task)
    scripted = _mean_return(task, policy, seeds, steps)
    baseline = _mean_return(task, zeros(spec.action_dim), seeds, steps)
    assert scripted > baseline + 1.0, f"{task}: scripted {scripted:.2f} vs zero actions {baseline:.2f}"


def test_held_out_ext_tasks_are_registered():
    assert len(HELD_OUT_EXT) == 12
    for name in HELD_OUT_EXT:
        source = get_task(name).source
        assert (source["domain"], source["task"]) in list_task_fns()


@pytest.mark.slow
@pytest.mark.parametrize("task", HELD_OUT_EXT)
def test_held_out_ext_tasks_build(task):
    spec = get_task(task)
    raw = build_raw_task(task, seed=0)
    obs = raw.reset(seed=0)
    assert obs.shape == (spec.obs_dim,)
    _, reward, _ = raw.step(np.zeros(spec.action_dim))
    assert 0.0 <= reward <= spec.action_repeat
    raw.close()


# --------------------------------------------------------------------------------------------
# Reward definitions of Newt (nicklashansen/newt at 75def92, tdmpc2/envs/tasks/), checked at
# hand-built physics states whose rewards are worked out from the model's geometry by hand.
# --------------------------------------------------------------------------------------------
def _set_state(env, qpos: dict[str, float] | None = None, qvel: dict[str, float] | None = None) -> None:
    physics = env.physics
    with physics.reset_context():
        physics.data.qpos[:] = 0.0
        physics.data.qvel[:] = 0.0
        for name, value in (qpos or {}).items():
            physics.named.data.qpos[name] = value
        for name, value in (qvel or {}).items():
            physics.named.data.qvel[name] = value


def _reward_at(domain: str, task: str, qpos=None, qvel=None) -> float:
    env = load(domain, task, random=0)
    env.reset()
    _set_state(env, qpos, qvel)
    return float(env.task.get_reward(env.physics))


@pytest.mark.parametrize(
    ("speed", "expected"),
    # lifted 2 m, the torso and both feet are far above 1.2 m: both stance heights are 1, and
    # the stillness term is linear in |v| from 1 (|v| <= 0.5) to 0 (|v| >= 1)
    [(0.0, 1.0), (0.75, (5 + 0.5) / 6), (-0.75, (5 + 0.5) / 6), (1.0, 5 / 6), (3.0, 5 / 6)],
)
def test_cheetah_jump_reward_is_mean_of_two_stances(speed, expected):
    assert _reward_at("cheetah", "jump", {"rootz": 2.0}, {"rootx": speed}) == pytest.approx(expected, abs=1e-9)


def test_cheetah_jump_reward_at_rest():
    # zero joint angles: torso at 0.7 m, back foot frame at 0.7 - 0.25 - 0.14 = 0.31 m, front foot
    # frame at 0.7 - 0.24 - 0.18 = 0.28 m; each stance height term is the gaussian tolerance of
    # the torso/foot mean height, 0.1 ** (d ** 2) at d margins (0.6 m) below 1.2 m
    def stance(foot_z: float) -> float:
        d = (1.2 - (0.7 + foot_z) / 2) / 0.6
        return (5 * 0.1 ** (d**2) + 1) / 6

    expected = (stance(0.31) + stance(0.28)) / 2  # ~0.202
    assert _reward_at("cheetah", "jump") == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("speed", "expected"),
    # upright at zero joint angles the torso is 0.9 m above the foot (standing term 1); the hop
    # term is 1 from 1 m/s backward, 0.5 at 0.5 m/s, 0 from standing still on (linear)
    [(-2.0, 1.0), (-1.0, 1.0), (-0.75, 0.75), (-0.5, 0.5), (0.0, 0.0), (1.0, 0.0)],
)
def test_hopper_hop_backward_reward(speed, expected):
    assert _reward_at("hopper", "hop_backward", qvel={"rootx": speed}) == pytest.approx(expected, abs=1e-9)


def test_cup_spin_reward():
    # zero joint positions: the ball (radius 0.025) rests 0.35 m below the cup's target box
    # centre at (0, 0.55); place it 0.25 m to the side of that centre instead
    side = {"ball_x": 0.25, "ball_z": 0.35}
    # distance 0.25 (one margin below 0.5: 0.5); speed 3 (one margin below 6: 0.5)
    assert _reward_at("ball_in_cup", "spin", side, {"ball_x": 3.0}) == pytest.approx(0.5, abs=1e-9)
    # speed 6 or more: the speed term is 1, so (0.5 + 2) / 3
    assert _reward_at("ball_in_cup", "spin", side, {"ball_z": -8.0}) == pytest.approx(2.5 / 3, abs=1e-9)
    # in the cup nothing is paid, however fast the ball moves
    assert _reward_at("ball_in_cup", "spin", {"ball_z": 0.35}, {"ball_x": 10.0}) == 0.0


def test_cup_spin_ball_starts_in_the_cup_nine_times_in_ten():
    env = load("ball_in_cup", "spin", random=0)
    inside = 0
    for _ in range(200):
        env.reset()
        inside += int(env.physics.in_target())
    assert 160 <= inside <= 199  # binomial(200, ~0.9): mean 180, sd 4.2


def test_reacher_three_arm_geometry():
    env = load("reacher", "three_easy", random=0)
    physics = env.physics
    assert sum(reacher_mod.LINK_LENGTHS) == pytest.approx(0.27)
    _set_state(env)
    assert physics.named.data.geom_xpos["finger", "x"] == pytest.approx(0.27)
    np.testing.assert_allclose(np.degrees(physics.named.model.jnt_range[["shoulder1", "wrist"]]), [[-80, 80]] * 2)
    np.testing.assert_allclose(physics.model.actuator_gear[:, 0], [0.05] * 3)


def test_cartpole_long_pole():
    env = load("cartpole", "balance_long_sparse", random=0)
    model = env.physics.named.model
    assert model.body_mass["pole_1"] == pytest.approx(0.2)
    assert model.geom_size["pole_1", 1] == pytest.approx(0.75)  # capsule half-length: a 1.5 m pole


def test_walker_incline_slope_and_absolute_height_reward():
    env = load("walker", "stand_incline", random=0)
    normal = env.physics.named.data.geom_xmat["floor"].reshape(3, 3)[:, 2]
    assert np.degrees(np.arctan2(-normal[0], normal[2])) == pytest.approx(7.95, abs=0.01)
    assert normal[1] == 0.0
    # upright with the torso at 1.3 m above z = 0 but 5 m up the slope (ground at ~0.7 m there):
    # the stock reward measures the torso height from z = 0, so standing pays 1
    _set_state(env, {"rootx": 5.0})
    assert env.task.get_reward(env.physics) == pytest.approx(1.0)


# Walker at zero joint angles: torso at 1.3 m, thighs (hip frames) at 1.0 m, feet at 0.05 m.
# Lying flat (rooty = pi / 2, rootz = -1.25): torso, thighs and feet at 0.05 m, upright = 0.
# Upside down (rooty = pi): thighs at 1.6 m, feet at 2.55 m, upright = -1.
# Gaussian terms 1.9 margins off their bound (0.05 vs 1 / 1.1) are ~3e-4: counted as 0 here.
UPRIGHT, LYING, UPSIDE_DOWN = {}, {"rooty": np.pi / 2, "rootz": -1.25}, {"rooty": np.pi}


@pytest.mark.parametrize(
    ("pose", "state", "expected"),
    [
        ("arabesque", UPRIGHT, (3 + 1 + 0 + 0) / 6),  # standing, left foot down, right foot low
        ("arabesque", LYING, (0 + 1 + 0 + 0.5) / 6),
        ("lie_down", UPRIGHT, 0.0),
        ("lie_down", LYING, (3 + 1 + 0.5) / 5),
        ("legs_up", UPRIGHT, 0.0),
        ("legs_up", LYING, (3 + 0 + 1 + 0.5) / 7),  # lying, but the feet are not up
        ("headstand", UPRIGHT, (0 + 2) / 5),  # thighs at 1 m already, feet down
        ("headstand", UPSIDE_DOWN, 1.0),
    ],
)
def test_walker_pose_rewards(pose, state, expected):
    assert _reward_at("walker", pose, state) == pytest.approx(expected, abs=2e-3)
