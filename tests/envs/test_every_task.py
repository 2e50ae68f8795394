"""Every one of the 200 MMBench tasks, each in a test of its own (the task name is the test id).

Each test builds the task once, as the single lane of a :class:`~torchrl_newt.envs.MultitaskVecEnv`
whose spec is the task's own with the episode shortened to :data:`STEPS` steps (the simulator is
the real one; only the truncation point moves). It then resets, takes random steps to the
shortened episode end, and checks the lane's contract: padded shapes and masks, finite values,
truncation exactly at the shortened end, and the ``score`` entry equal to the task's
:class:`~torchrl_newt.envs.ScoreRule` applied to the summed rewards and the final success flag.

Full-length episodes stay in the per-domain files (marked ``slow``). A task whose simulator is not
installed skips naming the pip extra; ManiSkill tasks whose asset pack is not downloaded skip
naming the download command.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from torchrl_newt.envs import MultitaskVecEnv, get_domain, get_task, list_tasks

logger = logging.getLogger(__name__)

STEPS = 3
"""Length of the shortened episodes."""

TASKS = list_tasks()


def _skip_if_unavailable(spec) -> None:
    """Skip (naming what to install or download) where this machine cannot build the task."""
    info = get_domain(spec.builder_domain)
    missing = info.missing()
    if missing:
        pytest.skip(f"{spec.name}: needs {', '.join(missing)} (pip install torchrl_newt[{info.extra}])")
    if spec.builder_domain == "maniskill":
        from torchrl_newt.envs.domains import maniskill as ms

        packs = ms.missing_assets(spec)
        if packs:
            cmds = " && ".join(f"python -m mani_skill.utils.download_asset {p}" for p in packs)
            pytest.skip(f"{spec.name}: ManiSkill asset pack(s) {', '.join(packs)} not downloaded; run `{cmds}`")


def test_every_mmbench_task_is_listed():
    assert len(TASKS) == 200 and len(set(TASKS)) == 200


@pytest.mark.parametrize("task", TASKS)
def test_task_builds_steps_and_scores(task: str) -> None:
    spec = get_task(task)
    _skip_if_unavailable(spec)
    short = dataclasses.replace(spec, episode_length=STEPS)
    try:
        env = MultitaskVecEnv([short])
    except RuntimeError as err:
        if "rendering device" in str(err):  # SAPIEN without a Vulkan driver
            pytest.skip(f"{task}: ManiSkill has no Vulkan device (run scripts/setup_vulkan.sh): {err}")
        raise
    try:
        env.set_seed(0)
        torch.manual_seed(0)
        td = env.rollout(STEPS + 5)  # stops at the first done: the shortened episode end
    finally:
        env.close()

    assert td.batch_size == (1, STEPS)
    assert td["observation"].shape == (1, STEPS, 128)
    if spec.obs_dim is not None:
        assert not td["observation"][..., spec.obs_dim :].any(), "padding must be zero"
    assert td["action_mask"][0, 0].sum().item() == spec.action_dim
    for key in ("observation", ("next", "observation"), ("next", "reward")):
        assert torch.isfinite(td[key]).all(), f"{task}: non-finite {key}"
    truncated = td["next", "truncated"][0, :, 0]
    assert truncated[-1] and not truncated[:-1].any()
    assert not td["next", "terminated"].any()

    episode_return = td["next", "reward"][0].sum().item()
    success = bool(td["next", "success"][0, -1].item())
    expected = spec.score(episode_return, success)
    assert td["next", "score"][0, -1].item() == pytest.approx(expected, rel=1e-4, abs=1e-4)
    if spec.score.kind != "return":
        assert 0.0 <= td["next", "score"][0, -1].item() <= 1.0
