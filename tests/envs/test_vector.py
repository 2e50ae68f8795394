"""The fused batched env (MultitaskVecEnv, make_env's default backend)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

from torchrl_newt.envs import (
    MultitaskVecEnv,
    ScoreRule,
    make_env,
    register_domain,
    register_task,
)

pytest.importorskip("dm_control")


def _short_tasks() -> list[str]:
    """Real simulators with short episodes and every score rule, so a test crosses resets."""
    tasks = [
        register_task("vec-cartpole", base="cartpole-balance", episode_length=7, overwrite=True).name,
        register_task(
            "vec-reacher", base="reacher-easy", episode_length=5, score=ScoreRule("return", 0.0, 10.0), overwrite=True
        ).name,
        register_task("vec-walker", base="walker-stand", episode_length=6, overwrite=True).name,
    ]
    try:
        import metaworld  # noqa: F401

        tasks.append(register_task("vec-mw-reach", base="mw-reach", episode_length=9, overwrite=True).name)
    except ImportError:
        pass
    return tasks


def _drive(env, steps: int, seed: int = 0):
    """Step with fixed random actions through step_and_maybe_reset (as collectors do)."""
    gen = torch.Generator().manual_seed(seed)
    td = env.reset()
    out = []
    for _ in range(steps):
        td.set("action", torch.rand(env.batch_size[0], 16, generator=gen) * 2 - 1)
        step, td = env.step_and_maybe_reset(td)
        out.append(step.clone())
    return torch.stack(out, 1)


def _assert_same(a, b):
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in a.keys(True, True):
        x, y = a[key], b[key]
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert torch.equal(x, y), f"{key} differs"


def test_vector_matches_transform_stack():
    tasks = _short_tasks()
    a = make_env(tasks, seed=3, backend="transforms")
    b = make_env(tasks, seed=3)
    try:
        assert isinstance(b.base_env, MultitaskVecEnv)
        ta, tb = _drive(a, 25), _drive(b, 25)
    finally:
        a.close()
        b.close()
    _assert_same(ta, tb)
    # the run crossed episode boundaries on every lane, with scores and resets
    assert (tb["next", "done"].sum(1).squeeze(-1) >= 2).all()
    assert ((tb["next", "score"] >= 0) & (tb["next", "score"] <= 1)).all()


def test_vector_specs_and_keys():
    tasks = _short_tasks()[:3]
    env = make_env(tasks, seed=0)
    try:
        check_env_specs(env)
        assert env.task_names == tasks
        td = env.rollout(3)
    finally:
        env.close()
    assert td["action_mask"][:, 0].sum(-1).tolist() == [1, 2, 6]
    assert td["task"][:, 0].tolist() == [0, 1, 2]
    assert td["observation"].shape == (3, 3, 128)
    assert (td["observation"][0, :, 5:] == 0).all()  # cartpole: 5 real dims


def test_vector_parallel_matches_serial():
    tasks = _short_tasks()
    serial = make_env(tasks, seed=5)
    par = make_env(tasks, seed=5, parallel=True, num_workers=2, mp_start_method="fork")
    procs = list(par.base_env._pool.procs)
    try:
        assert par.base_env.num_workers == 2 and len(procs) == 2
        _assert_same(_drive(serial, 20), _drive(par, 20))
        check_env_specs(par)
    finally:
        serial.close()
        par.close()
    assert not any(p.is_alive() for p in procs)  # close() stops the workers


def test_vector_seed_reproducible_and_distinct():
    tasks = _short_tasks()[:2]

    def first_obs(seed):
        env = make_env(tasks, seed=seed)
        try:
            return env.reset()["observation"]
        finally:
            env.close()

    assert torch.equal(first_obs(1), first_obs(1))
    assert not torch.equal(first_obs(1), first_obs(2))


# -- failures are named ----------------------------------------------------------------------------
class _Flaky:
    """A toy raw task that fails on its fourth step."""

    obs_dim, action_dim = 3, 2

    def __init__(self) -> None:
        self.t = 0

    def reset(self, seed=None):
        self.t = 0
        return np.zeros(3, np.float32)

    def step(self, action):
        self.t += 1
        if self.t > 3:
            raise FloatingPointError("simulator exploded")
        return np.full(3, self.t, np.float32), 1.0, {}

    def render(self, width=224, height=224):
        return np.zeros((height, width, 3), np.uint8)

    def close(self):
        pass


def _flaky_builder(spec, **kwargs):
    return _Flaky()


@pytest.fixture
def flaky_task():
    register_domain("vec-toy", _flaky_builder, extra="toy")
    return register_task(
        "vec-flaky", base="cartpole-balance", domain="vec-toy", base_domain="vec-toy", obs_dim=3, action_dim=2,
        episode_length=50, overwrite=True,
    ).name


@pytest.mark.parametrize("parallel", [False, True])
def test_vector_step_error_names_the_task(flaky_task, parallel):
    kwargs = {"parallel": True, "num_workers": 1, "mp_start_method": "fork"} if parallel else {}
    env = MultitaskVecEnv(["cartpole-balance", flaky_task], **kwargs)
    try:
        env.reset()
        for _ in range(3):
            env.rand_step()
        with pytest.raises(RuntimeError, match="vec-flaky.*simulator exploded"):
            env.rand_step()
    finally:
        env.close()


def test_vector_rejects_bad_input():
    with pytest.raises(KeyError, match="walker-walk"):
        MultitaskVecEnv(["walker-wakl"])
    with pytest.raises(ValueError, match="walker-walk.*obs_pad"):
        MultitaskVecEnv(["walker-walk"], obs_pad=8)
    with pytest.raises(ValueError, match="backend"):
        make_env(["walker-walk"], backend="gym")


def test_vector_pixels_parallel_match_serial():
    # spawn, not fork: a worker forked from a process that already holds an EGL context (earlier
    # tests render in this process) deadlocks in its first render
    tasks = ["cartpole-balance", "reacher-easy"]
    envs = [
        MultitaskVecEnv(tasks, from_pixels=True, frame_size=(48, 64)),
        MultitaskVecEnv(tasks, from_pixels=True, frame_size=(48, 64), parallel=True, num_workers=2, mp_start_method="spawn"),
    ]
    try:
        for env in envs:
            env.set_seed(0)
        outs = [_drive(env, 3) for env in envs]
    finally:
        for env in envs:
            env.close()
    frames = outs[0]["next", "pixels"]
    assert frames.shape == (2, 3, 48, 64, 3) and frames.dtype == torch.uint8
    assert frames.float().std() > 0  # real frames, not an empty buffer
    _assert_same(*outs)
