"""The Newt-defined DMControl-extended bodies (jumper, spinner, giraffe) against hand-worked values.

Every expected number here is worked out by hand from Newt's task definitions
(nicklashansen/newt at commit 75def92, ``tdmpc2/envs/tasks/{jumper,spinner,giraffe}.py``) or read
off Newt's recorded runs, not obtained by running our implementation: body counts and masses, the
torso's initial height, reward values at constructed physics states.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from torchrl_newt.envs.domains.dmcontrol_ext import load

# Gaussian tolerance at distance d below the bound, margin m, value 0.1 at the margin.
_GAUSS = lambda d, m: math.exp(math.log(0.1) * (d / m) ** 2)  # noqa: E731


def _set(env, qpos=None, qvel=None):
    physics = env.physics
    with physics.reset_context():
        physics.data.qpos[:] = 0.0 if qpos is None else qpos
        physics.data.qvel[:] = 0.0 if qvel is None else qvel
    return env.task.get_reward(physics)


@pytest.mark.parametrize(
    "domain,task,njnt,nu",
    [("jumper", "jump", 5, 2), ("spinner", "spin", 8, 5), ("spinner", "spin_four", 7, 4), ("giraffe", "run", 10, 7)],
)
def test_joint_and_actuator_counts(domain, task, njnt, nu):
    """Three planar root joints plus one hinge per actuated part (Newt's embodiment texts:
    2 legs, 5 or 4 arms, 7 giraffe joints)."""
    env = load(domain, task, random=0)
    model = env.physics.model
    assert (model.njnt, model.nq, model.nv, model.nu) == (njnt, njnt, njnt, nu)
    assert list(model.jnt_type[:3]) == [2, 2, 3]  # slide x, slide z, hinge y


@pytest.mark.parametrize("domain,task", [("jumper", "jump"), ("spinner", "spin"), ("spinner", "spin_four")])
def test_total_mass_is_two_kilograms(domain, task):
    env = load(domain, task, random=0)
    assert env.physics.model.body_subtreemass[1] == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("domain,task", [("jumper", "jump"), ("spinner", "jump"), ("spinner", "jump_four")])
def test_jump_reward_is_torso_height_tolerance(domain, task):
    """Torso frame 0.9 m up at qpos0 (Newt's probes); bound 1.5 m, gaussian margin 0.75 m."""
    env = load(domain, task, random=0)
    assert _set(env) == pytest.approx(_GAUSS(0.6, 0.75), rel=1e-9)
    nq = env.physics.model.nq
    up = np.zeros(nq)
    up[1] = 0.6  # torso at 1.5 m
    assert _set(env, up) == pytest.approx(1.0)
    up[1] = -0.15  # torso at 0.75 m: exactly at the margin
    assert _set(env, up) == pytest.approx(0.1, rel=1e-9)


@pytest.mark.parametrize("task,sign", [("spin", 1.0), ("spin_backward", -1.0), ("spin_four", 1.0)])
def test_spin_reward_at_pure_translation(task, sign):
    """Pure horizontal translation: no angular momentum, centre-of-mass speed = root speed, so the
    reward is 3/5 of the linear speed term (bound 8 m/s)."""
    env = load("spinner", task, random=0)
    nv = env.physics.model.nv
    qvel = np.zeros(nv)
    qvel[0] = 4.0 * sign
    assert _set(env, qvel=qvel) == pytest.approx(3.0 / 5.0 * 0.5, abs=1e-9)
    qvel[0] = 16.0 * sign
    assert _set(env, qvel=qvel) == pytest.approx(3.0 / 5.0, abs=1e-9)
    qvel[0] = -4.0 * sign
    assert _set(env, qvel=qvel) == pytest.approx(0.0, abs=1e-9)


def test_spinner_centre_of_mass_lever_matches_newt():
    """Newt's probe rewards fix each arm's mass-weighted lever (arm mass / total mass times the
    distance of its centre of mass from the hinge) at 0.032367 for the five-armed spinner: swinging
    only the upward arm at 1 rad/s moves the centre of mass forward at that speed."""
    env = load("spinner", "spin", random=0)
    qvel = np.zeros(env.physics.model.nv)
    qvel[3] = 1.0
    _set(env, qvel=qvel)
    assert env.physics.speed() == pytest.approx(0.032367, abs=2e-6)


def test_four_armed_spinner_arms_at_72_degrees():
    """The four-armed spinner is the five-armed one without its last arm: arms at 0, 72, 144, 216
    degrees about ``+y`` (read off Newt's probe rewards)."""
    env = load("spinner", "spin_four", random=0)
    physics = env.physics
    for i, deg in enumerate((0, 72, 144, 216)):
        half = math.radians(deg) / 2
        quat = physics.named.model.body_quat[f"arm{i}"]
        assert np.allclose(quat, [math.cos(half), 0, math.sin(half), 0], atol=1e-9) or np.allclose(
            quat, [-math.cos(half), 0, -math.sin(half), 0], atol=1e-9
        )


@pytest.mark.parametrize("domain,task", [("jumper", "jump"), ("spinner", "spin")])
def test_rest_height_matches_newt(domain, task):
    """After the 200 settling steps the root height coordinate is about -0.367, as in Newt's
    recorded first states (-0.3674 jumper, -0.3677 spinner)."""
    env = load(domain, task, random=1)
    env.reset()
    assert env.physics.data.qpos[1] == pytest.approx(-0.367, abs=0.02)


def test_giraffe_reward_terms():
    """Head up (its frame above 0.5 m) and at rest pays 1/4; moving at 5 m/s pays (3 * 0.5 + 1)/4;
    with the head 0.25 m below the bound the head term is 0.1."""
    env = load("giraffe", "run", random=0)
    physics = env.physics
    nv = physics.model.nv
    assert _set(env) == pytest.approx(0.25)
    qvel = np.zeros(nv)
    qvel[0] = 5.0
    assert _set(env, qvel=qvel) == pytest.approx(0.625)
    head_z = physics.named.data.xpos["head", "z"]
    qpos = np.zeros(physics.model.nq)
    qpos[1] = 0.25 - head_z  # head frame at 0.25 m
    assert _set(env, qpos) == pytest.approx(0.1 * 0.25, rel=1e-9)
