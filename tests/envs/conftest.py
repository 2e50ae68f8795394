"""Checks shared by the per-domain environment tests (exposed as fixtures)."""

import pytest
import torch

from torchrl_newt.envs import get_task, make_lane_env


def _random_episode(task: str, seed: int = 0, *, exact_score: bool = True):
    """One random episode through the full lane stack: it must truncate exactly at the task's
    episode length, never terminate, and end with a score in [0, 1] that follows the task's rule."""
    spec = get_task(task)
    env = make_lane_env(task, seed=seed)
    try:
        td = env.rollout(spec.episode_length + 10)  # stops at the first done
    finally:
        env.close()
    assert td.shape == (spec.episode_length,)
    assert td["next", "truncated"][-1].item() and not td["next", "done"][:-1].any()
    assert not td["next", "terminated"].any()
    score = td["next", "score"][-1].item()
    assert 0.0 <= score <= 1.0
    if exact_score:
        success = bool(td["next", "success"][-1].item())
        assert score == pytest.approx(spec.score(td["next", "reward"].sum().item(), success), abs=1e-4)
    return td


def _same_seed_same_episode(task: str, steps: int = 5, seeds: tuple = (3, 3, 4), compare_first_only: bool = False):
    """Same seed -> same observations and rewards; a different seed (a third entry of ``seeds``,
    when given) -> different observations."""

    def run(seed):
        env = make_lane_env(task, seed=seed)
        try:
            torch.manual_seed(0)
            return env.rollout(steps)
        finally:
            env.close()

    a, b = run(seeds[0]), run(seeds[1])
    torch.testing.assert_close(a["observation"], b["observation"])
    torch.testing.assert_close(a["next", "reward"], b["next", "reward"])
    if len(seeds) < 3:
        return
    c = run(seeds[2])
    if compare_first_only:
        assert not torch.equal(a["observation"][0], c["observation"][0])
    else:
        assert not torch.equal(a["observation"], c["observation"])


@pytest.fixture
def random_episode():
    return _random_episode


@pytest.fixture
def same_seed_same_episode():
    return _same_seed_same_episode
