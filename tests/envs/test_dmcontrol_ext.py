"""The 16 DMControl-extended MMBench tasks (our own dm_control tasks and MJCF models).

Besides the environment contract (specs, truncation, scores, seeding, rendering), every task is
checked for a sensible reward: a small documented scripted policy must earn more than zero actions
over a short horizon.
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


def periodic_jump(period: int = 30, push: int = 8) -> Policy:
    """Jumper: extend both legs fully for ``push`` steps, retract them for the rest of the period."""
    return lambda t, obs: np.ones(2) * (1.0 if (t % period) < push else -1.0)


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
