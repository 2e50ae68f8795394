"""Every MMBench task with a golden trajectory behaves exactly as Newt's own environment code.

``../shared/mmbench/golden/`` holds, per task, what the reference implementation (nicklashansen/newt
at commit 75def92) produced for seed 1 under 200 uniform random actions: the observations in the
env's own order, the rewards (action repeat included), the running episode score, the score rule on
a grid of returns and, for dm_control tasks, the observation and reward at 64 probe physics states.
These are independent figures: the test replays the same actions through our raw simulators
(:func:`torchrl_newt.envs.registry.build_raw_task`, no padding) and compares step by step, to 1e-5
relative. The folder is found next to the repository (or at ``$TORCHRL_NEWT_SHARED``); the whole
module skips when it is absent. A golden file whose task is not registered fails by name.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from torchrl_newt.envs import get_task
from torchrl_newt.envs.registry import MissingDependencyError, UnknownTaskError, build_raw_task, require_installed

_SHARED = Path(os.environ.get("TORCHRL_NEWT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
GOLDEN = _SHARED / "mmbench" / "golden"
GOLDEN_TASKS = sorted(p.stem for p in GOLDEN.glob("*.json")) if GOLDEN.is_dir() else []

# Returns at which the golden ``score_grid`` evaluates each task's score rule (its README).
SCORE_GRID_RETURNS = [-1e4, -1000, -250, -100, -50, -20, -15, -10, -5, -3, -1, 0, 0.5, 1, 3, 5, 10, 16,
                      20, 25, 50, 60, 100, 150, 200, 250, 400, 500, 600, 1000, 2000, 5000, 15000, 20000, 1e5]
RTOL, ATOL = 1e-5, 1e-6


# Tasks whose golden trajectory we know we cannot reproduce yet, and why. Strict: a task that
# starts to match fails here until it is removed from this table.
_NO_XML = (
    "Newt's MJCF model for this body (tdmpc2/envs/tasks/*.xml) is not available to us; our model is "
    "reconstructed from the golden data (masses, lever arms, heights) but contact geometry, springs and "
    "gears are not identifiable, so the rollout drifts"
)
KNOWN_TRAJECTORY_DIFFERENCES = {
    **{t: _NO_XML for t in ("jumper-jump", "giraffe-run", "spinner-spin", "spinner-spin-backward", "spinner-jump",
                            "spinner-spin-four", "spinner-spin-backward-four", "spinner-jump-four")},
    **{t: "the incline angle is fitted (7.9530085508 deg) rather than read from Newt's walker_incline.xml; "
          "matches to float precision until step ~94, then the chaotic walker diverges"
       for t in ("walker-stand-incline", "walker-walk-incline", "walker-run-incline")},
    "rd-open-slide": "the golden file was recorded with other MuJoCo/dm_control builds: Newt's own RoboDesk "
                     "wrapper run here is bit-identical to ours, both drift ~1e-2 from the recording after step 1",
    "rd-push-red": "as rd-open-slide",
    "pygame-spaceship": "Newt's constructor resets once with an unseeded generator and the asteroid it draws "
                        "survives the seeded reset; the recorded asteroid cannot be derived from the seed",
}
KNOWN_PROBE_DIFFERENCES = {"giraffe-run": _NO_XML}


def _known(table: dict[str, str], tasks: list[str]) -> list:
    return [
        pytest.param(t, marks=pytest.mark.xfail(strict=True, reason=table[t])) if t in table else t for t in tasks
    ]


def _has_probes(task: str) -> bool:
    with np.load(GOLDEN / f"{task}.npz") as arrays:
        return "probe_reward" in arrays.files


PROBE_TASKS = [t for t in GOLDEN_TASKS if _has_probes(t)]  # the dm_control tasks

pytestmark = pytest.mark.skipif(not GOLDEN_TASKS, reason=f"golden trajectories not found at {GOLDEN}")


def _load(task: str):
    meta = json.loads((GOLDEN / f"{task}.json").read_text())
    arrays = dict(np.load(GOLDEN / f"{task}.npz"))
    return meta, arrays


def _spec_or_fail(task: str):
    try:
        return get_task(task)
    except UnknownTaskError as err:
        pytest.fail(f"golden file {task}.json names a task that is not registered: {err}")


def _build(task: str):
    spec = _spec_or_fail(task)
    try:
        require_installed([spec])
    except MissingDependencyError as err:
        pytest.skip(str(err))
    np.random.seed(1)  # some of Newt's envs draw from NumPy's global generator (golden README)
    raw = build_raw_task(spec, seed=1)
    return spec, raw


def _close(actual, expected, what: str, step: int | None = None) -> None:
    where = f" at step {step}" if step is not None else ""
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=RTOL, atol=ATOL,
        err_msg=f"{what}{where} differs from Newt's",
    )


@pytest.mark.parametrize("task", GOLDEN_TASKS)
def test_score_rule_matches_newt(task):
    """The task's score rule agrees with Newt's at 35 returns, with and without success."""
    meta, g = _load(task)
    spec = _spec_or_fail(task)
    if "score_grid" not in g:
        pytest.skip(f"{task}: the golden file has no score_grid (its score rule was not recorded)")
    grid = g["score_grid"]
    assert grid.shape == (len(SCORE_GRID_RETURNS), 2)
    ours = np.array([[spec.score(r, False), spec.score(r, True)] for r in SCORE_GRID_RETURNS])
    _close(ours, grid, f"{task}: score rule")


@pytest.mark.parametrize("task", _known(KNOWN_TRAJECTORY_DIFFERENCES, GOLDEN_TASKS))
def test_trajectory_matches_newt(task):
    """Seed 1, the golden actions: same observations, rewards and running score at every step."""
    meta, g = _load(task)
    spec, raw = _build(task)
    try:
        assert raw.obs_dim == meta["obs_dim"] and raw.action_dim == meta["action_dim"]
        np.random.seed(1)
        obs = raw.reset(seed=1)
        _close(obs, g["obs"][0], f"{task}: observation", 0)
        ret = 0.0
        success = g["success"]
        for t, action in enumerate(g["actions"]):
            obs, reward, info = raw.step(action)
            _close(obs, g["obs"][t + 1], f"{task}: observation", t + 1)
            _close(reward, g["reward"][t], f"{task}: reward", t + 1)
            ret += float(reward)
            if not np.isnan(success[t + 1]):
                assert float(info.get("success", 0.0)) == float(success[t + 1]), f"{task}: success at step {t + 1}"
            ours = spec.score(ret, bool(info.get("success", False)))
            _close(ours, g["score"][t + 1], f"{task}: running score", t + 1)
    finally:
        raw.close()


def _dm_control_env(raw):
    env = getattr(raw, "env", None)
    return env if env is not None and hasattr(env, "physics") and hasattr(env, "task") else None


@pytest.mark.parametrize("task", _known(KNOWN_PROBE_DIFFERENCES, PROBE_TASKS))
def test_probe_rewards_match_newt(task):
    """dm_control tasks: observation and reward at 64 random physics states (qpos0 + N(0, 0.5),
    qvel N(0, 2), from ``default_rng([1, crc32(task), 7])``: the 64 qpos draws first, then the 64
    qvel draws): a check of the reward function that does not depend on the rollout."""
    meta, g = _load(task)
    spec, raw = _build(task)
    try:
        env = _dm_control_env(raw)
        assert env is not None, f"{task}: golden has probe states but our simulator is not dm_control"
        physics, dm_task = env.physics, env.task
        raw.reset(seed=1)
        rng = np.random.default_rng([1, zlib.crc32(task.encode()), 7])
        nq, nv = physics.model.nq, physics.model.nv
        n = len(g["probe_reward"])
        qpos_all = np.array(physics.model.qpos0) + rng.normal(0.0, 0.5, size=(n, nq))
        qvel_all = rng.normal(0.0, 2.0, size=(n, nv))
        for i, (qpos, qvel) in enumerate(zip(qpos_all, qvel_all)):
            with physics.reset_context():
                physics.data.qpos[:] = qpos
                physics.data.qvel[:] = qvel
            obs = dm_task.get_observation(physics)
            flat = np.concatenate([np.ravel(v) for v in obs.values()])
            _close(flat, g["probe_obs"][i], f"{task}: probe observation", i)
            _close(dm_task.get_reward(physics), g["probe_reward"][i], f"{task}: probe reward", i)
    finally:
        raw.close()
