"""Generate demonstrations with a trained world model: ``python -m torchrl_newt.demos generate``.

Newt pretrains on demonstrations that a strong single-task agent produced. This module produces
them the same way from any checkpoint this package can load (ours or Newt's): it plans with the
checkpoint's world model (MPPI, :class:`~torchrl.envs.utils.ExplorationType` ``DETERMINISTIC``)
on ``2 * N`` parallel lanes of one task, and keeps running such batches until ``N`` episodes
pass Newt's acceptance rule:

* after each batch, the return threshold is raised (never lowered) from the batch's median
  return ``m`` (``torch.median``: the lower middle value for an even count):
  ``threshold = max(threshold, 0.75 * m)`` when ``m > 0``, else ``max(threshold, 1.25 * m)``
  (the first batch starts from ``-inf``), see :func:`acceptance_threshold`;
* then each episode of that batch is accepted when its return is strictly above the updated
  threshold and, for Meta-World (``mw-``), RoboDesk (``rd-``) and ManiSkill (``ms-``) tasks,
  when it also succeeded (except ``ms-cartpole*``, ``ms-hopper*`` and ``ms-ant*``), see
  :func:`requires_success` and :func:`accept`. Accepted episodes are taken in lane order until
  ``N`` are collected.

Command line (see ``docs/demos.md``)::

    python -m torchrl_newt.demos generate --checkpoint CKPT --task TASK --num-demos N --out DIR \
        [--video DIR] [--seed S] [--device D] [--max-attempts M]

writes ``DIR/TASK.pt`` in Newt's demo file format (:func:`torchrl_newt.data.demos.save_demos`
with ``format="newt"``: one flat TensorDict of whole episodes, ``T + 1`` rows each, the first
row's action and reward NaN, an ``episode`` id per row), which
:func:`~torchrl_newt.data.demos.load_demos` and ``examples/newt_mmbench.py --demos DIR`` read.
Observations are the task's unpadded state and actions its ``action_dim`` real dims, as Newt
stores them. The file is written atomically, only once all ``N`` demos are accepted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_newt.envs import get_task

__all__ = [
    "DemoAcceptanceError",
    "DemoGenerationError",
    "DemoReport",
    "SUCCESS_EXEMPT_PREFIXES",
    "SUCCESS_REQUIRED_PREFIXES",
    "accept",
    "acceptance_threshold",
    "build_parser",
    "check_checkpoint_task",
    "generate_demos",
    "main",
    "requires_success",
]

logger = logging.getLogger(__name__)

#: task name prefixes whose demos must also succeed (Meta-World, RoboDesk, ManiSkill)
SUCCESS_REQUIRED_PREFIXES: tuple[str, ...] = ("mw-", "rd-", "ms-")
#: ManiSkill locomotion/control tasks exempt from the success requirement
SUCCESS_EXEMPT_PREFIXES: tuple[str, ...] = ("ms-cartpole", "ms-hopper", "ms-ant")


class DemoGenerationError(ValueError):
    """Base class of the demonstration-generation errors (bad options or inputs)."""


class DemoAcceptanceError(DemoGenerationError):
    """Too few episodes passed the acceptance rule within the allowed attempts.

    Attributes:
        task: the task name.
        num_demos: demonstrations requested.
        accepted: demonstrations accepted.
        attempted: episodes run.
        threshold: the final return threshold.
    """

    def __init__(self, task: str, num_demos: int, accepted: int, attempted: int, threshold: float, max_attempts: int):
        self.task, self.num_demos, self.accepted = task, num_demos, accepted
        self.attempted, self.threshold, self.max_attempts = attempted, threshold, max_attempts
        why = " (it must also succeed: a Meta-World, RoboDesk or ManiSkill task)" if requires_success(task) else ""
        super().__init__(
            f"{task}: only {accepted} of {num_demos} demonstrations accepted after {attempted} episodes "
            f"(--max-attempts {max_attempts}); final return threshold {threshold:.4g}. An episode is accepted "
            f"when its return exceeds the threshold{why}; a stronger checkpoint or more attempts may help."
        )


@dataclass
class DemoReport:
    """What a generation run did.

    Attributes:
        task: the task name.
        accepted: demonstrations accepted (the episodes returned).
        attempted: episodes run (a multiple of the batch size).
        batches: batches of ``2 * num_demos`` parallel episodes run.
        threshold: the final return threshold.
    """

    task: str
    accepted: int
    attempted: int
    batches: int
    threshold: float


# ============================================================================ acceptance rule
def acceptance_threshold(previous: float, returns: Sequence[float] | torch.Tensor) -> float:
    """Newt's return threshold after one batch of episodes; it never decreases.

    With ``m`` the batch's median return (``torch.median``: the lower middle value for an even
    count), the threshold becomes ``max(previous, 0.75 * m)`` when ``m > 0`` and
    ``max(previous, 1.25 * m)`` otherwise; a run starts from ``previous = -inf``.

    Args:
        previous: the threshold before this batch (``float("-inf")`` for the first one).
        returns: the returns of the batch's episodes.

    Returns:
        The updated threshold.

    Examples:
        >>> acceptance_threshold(float("-inf"), [10.0, 20.0, 30.0])
        15.0
        >>> acceptance_threshold(float("-inf"), [-40.0, -20.0, -10.0, 0.0])  # median -20 (lower middle)
        -25.0
        >>> acceptance_threshold(15.0, [4.0, 8.0, 12.0])  # 0.75 * 8 = 6 < 15: unchanged
        15.0
    """
    values = torch.as_tensor(returns, dtype=torch.float64).reshape(-1)
    if not values.numel():
        raise ValueError("acceptance_threshold needs at least one return")
    median = float(values.median())
    return max(float(previous), (0.75 if median > 0 else 1.25) * median)


def requires_success(task: str) -> bool:
    """Whether a task's demos must succeed: Meta-World, RoboDesk and ManiSkill tasks, except
    ManiSkill's cartpole, hopper and ant.

    Examples:
        >>> [requires_success(t) for t in ("mw-assembly", "rd-open-slide", "ms-pick-cube", "walker-walk")]
        [True, True, True, False]
        >>> [requires_success(t) for t in ("ms-cartpole-balance", "ms-hopper-hop", "ms-ant-walk")]
        [False, False, False]
    """
    return task.startswith(SUCCESS_REQUIRED_PREFIXES) and not task.startswith(SUCCESS_EXEMPT_PREFIXES)


def accept(
    returns: Sequence[float] | torch.Tensor,
    successes: Sequence[float] | torch.Tensor,
    threshold: float,
    task: str,
) -> torch.Tensor:
    """Which episodes pass the acceptance rule: return above ``threshold`` (strictly) and, where
    :func:`requires_success`, a success flag of ``1``.

    Args:
        returns: episode returns ``[B]``.
        successes: episode success flags ``[B]`` (the last step's, ``0``/``1``).
        threshold: the return threshold (already updated with this batch, see
            :func:`acceptance_threshold`).
        task: the task name.

    Returns:
        A bool tensor ``[B]``.

    Examples:
        >>> accept([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], 1.5, "walker-walk").tolist()
        [False, True, True]
        >>> accept([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], 1.5, "mw-assembly").tolist()
        [False, False, True]
    """
    ret = torch.as_tensor(returns, dtype=torch.float64).reshape(-1)
    ok = ret > float(threshold)
    if requires_success(task):
        ok &= torch.as_tensor(successes, dtype=torch.float64).reshape(-1) == 1.0
    return ok


# ============================================================================ model, env, planner
def _load(world_model_or_checkpoint: Any):
    """A :class:`~torchrl_newt.interop.LoadedWorldModel` and a name for messages."""
    from torchrl_newt.interop import LoadedWorldModel, load_world_model
    from torchrl_newt.modules import NewtWorldModel

    if isinstance(world_model_or_checkpoint, LoadedWorldModel):
        return world_model_or_checkpoint, "the world model"
    if isinstance(world_model_or_checkpoint, NewtWorldModel):
        return LoadedWorldModel(world_model_or_checkpoint, format="torchrl_newt"), "the world model"
    return load_world_model(world_model_or_checkpoint, map_location="cpu"), str(world_model_or_checkpoint)


def check_checkpoint_task(loaded, task: str, where: str = "the checkpoint"):
    """The loaded model ready for ``task``, or a clear error when the checkpoint is for another task.

    A single-task model must list ``task`` among its stored task names (when it stores any) and,
    for Newt's files, its action mask must have the task's number of action dims; every model
    must be able to hold the task's observation and action sizes; a multitask model's task table
    is matched by name (:func:`~torchrl_newt.evaluate.eval_world_model`; a frozen instruction
    table gives an unseen task its own CLIP row).

    Raises:
        CheckpointMismatchError: the checkpoint cannot act on ``task``.

    Examples:
        >>> from torchrl_newt.interop import LoadedWorldModel
        >>> from torchrl_newt.modules import NewtWorldModel
        >>> wm = NewtWorldModel(16, 4, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
        >>> _ = check_checkpoint_task(LoadedWorldModel(wm, tasks=["pygame-landing"], format="torchrl_newt"), "pygame-landing")
        >>> try:
        ...     check_checkpoint_task(LoadedWorldModel(wm, tasks=["pygame-landing"], format="torchrl_newt"),
        ...                           "mujoco-reacher", "x.pt")
        ... except ValueError as err:
        ...     print(err)
        x.pt is a single-task checkpoint for pygame-landing, not for mujoco-reacher
    """
    from torchrl_newt.evaluate import eval_world_model
    from torchrl_newt.interop import CheckpointMismatchError

    spec = get_task(task)
    wm = loaded.world_model
    if not wm.task_dim:
        known = list(loaded.tasks or [])
        if known and task not in known:
            raise CheckpointMismatchError(
                f"{where} is a single-task checkpoint for {', '.join(known)}, not for {task}"
            )
        masks = loaded.action_masks
        if masks is not None and masks.numel():
            dims = int(masks.reshape(-1, masks.shape[-1])[0].sum())
            if dims and dims != spec.action_dim:
                raise CheckpointMismatchError(
                    f"{where} is a single-task checkpoint for a task with {dims} action dims; "
                    f"{task} has {spec.action_dim}"
                )
    world_model, unseen = eval_world_model(loaded, [task], where)
    if unseen:
        logger.warning("%s was not trained on %s: acting zero-shot from its instruction embedding", where, task)
    return world_model


def _make_lanes(task: str, lanes: int, *, seed: int, obs_pad: int, action_pad: int, from_pixels: bool, device):
    """``lanes`` copies of one task, batched (``make_env`` lists every task once, so the lanes
    are :func:`~torchrl_newt.envs.make_lane_env` stacks in a :class:`~torchrl.envs.SerialEnv`)."""
    from torchrl.envs import InitTracker, SerialEnv, TransformedEnv

    from torchrl_newt.envs import make_lane_env

    kwargs = dict(task=task, task_index=0, num_tasks=1, obs_pad=obs_pad, action_pad=action_pad, from_pixels=from_pixels)
    env = TransformedEnv(SerialEnv(lanes, make_lane_env, create_env_kwargs=[dict(kwargs) for _ in range(lanes)],
                                   device=device), InitTracker())
    env.set_seed(seed)
    return env


def _obs_dim(task: str) -> int:
    spec = get_task(task)
    if spec.obs_dim is not None:
        return int(spec.obs_dim)
    from torchrl_newt.envs import build_raw_task

    raw = build_raw_task(spec)  # a few tasks only know their size once built
    try:
        return int(raw.obs_dim)
    finally:
        raw.close()


# ============================================================================ generation
@torch.no_grad()
def _run_batch(env, policy, td, lanes: int, length: int, obs_dim: int, action_dim: int, video=None):
    """One episode on every lane (tasks never end early): the unpadded trajectories."""
    obs = torch.zeros(lanes, length + 1, obs_dim)
    act = torch.zeros(lanes, length, action_dim)
    rew = torch.zeros(lanes, length)
    obs[:, 0] = td["observation"][:, :obs_dim].cpu()
    if video is not None:
        video.add(td["pixels"], range(lanes))
    nxt = None
    for t in range(length):
        td = policy(td)
        act[:, t] = td["action"][:, :action_dim].cpu()  # PadAction hands these dims to the simulator
        td, td_next = env.step_and_maybe_reset(td)
        nxt = td["next"]
        obs[:, t + 1] = nxt["observation"][:, :obs_dim].cpu()
        rew[:, t] = nxt["reward"].reshape(lanes).cpu()
        if video is not None:
            video.add(nxt["pixels"], range(lanes))
        td = td_next
    done = nxt["done"].reshape(lanes).cpu()
    if not bool(done.all()):  # every lane runs one task, truncated at its episode length
        raise RuntimeError(f"lanes {(~done).nonzero().squeeze(-1).tolist()} did not finish after {length} steps")
    returns = nxt["episode_reward"].reshape(lanes).cpu().double()
    success = nxt["success"].reshape(lanes).cpu().double()
    return obs, act, rew, returns, success, td


def _generate(
    world_model_or_checkpoint: Any,
    task: str,
    num_demos: int,
    *,
    seed: int = 1,
    device: str | torch.device = "cpu",
    max_attempts: int | None = None,
    planner_overrides: Mapping[str, Any] | None = None,
    video: str | os.PathLike | None = None,
    video_fps: int = 30,
    progress: bool = False,
) -> tuple[TensorDict, DemoReport]:
    from tqdm.auto import tqdm

    from torchrl_newt.envs import task_tensors
    from torchrl_newt.evaluate import VideoRecorder, planner_settings, video_backend
    from torchrl_newt.modules.planner import TDMPC2Planner

    spec = get_task(task)
    if num_demos < 1:
        raise DemoGenerationError(f"--num-demos must be >= 1, got {num_demos}")
    lanes = 2 * num_demos
    max_attempts = 20 * num_demos if max_attempts is None else int(max_attempts)
    if max_attempts < lanes:
        raise DemoGenerationError(
            f"--max-attempts must allow at least one batch of 2 * num_demos = {lanes} episodes, got {max_attempts}"
        )
    video_fmt = video_backend() if video is not None else None
    device = torch.device(device)
    loaded, where = _load(world_model_or_checkpoint)
    world_model = check_checkpoint_task(loaded, task, where).to(device).eval()
    settings, source = planner_settings(loaded, planner_overrides)
    planner = TDMPC2Planner(world_model, discount=task_tensors([task])["discount"],
                            env_chunk_size=4 if device.type == "cpu" else None, **settings).to(device)
    logger.info("planner (%s): %s", source, ", ".join(f"{k}={v}" for k, v in settings.items()))
    obs_dim, action_dim, length = _obs_dim(task), spec.action_dim, spec.episode_length

    episodes: dict[str, list[torch.Tensor]] = {"observation": [], "action": [], "reward": [], "return": [], "success": []}
    threshold, attempted, batches = float("-inf"), 0, 0
    video_tmp = None
    if video is not None:
        Path(video).mkdir(parents=True, exist_ok=True)
        video_tmp = Path(tempfile.mkdtemp(prefix=".demo-videos-", dir=video))
    video_paths: list[Path] = []
    torch.manual_seed(seed)
    env = _make_lanes(task, lanes, seed=seed, obs_pad=world_model.obs_dim, action_pad=world_model.action_dim,
                      from_pixels=video is not None, device=device)
    bar = tqdm(total=num_demos, desc=f"demos {task}", unit="demo", disable=not progress, dynamic_ncols=True)
    try:
        env.append_transform(planner.make_primer())
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            td = env.reset()
            while len(episodes["return"]) < num_demos and attempted + lanes <= max_attempts:
                recorder = None
                if video_tmp is not None:
                    recorder = VideoRecorder(video_tmp, [f"b{batches}-lane{i}" for i in range(lanes)],
                                             fps=video_fps, fmt=video_fmt)
                obs, act, rew, returns, success, td = _run_batch(env, planner, td, lanes, length, obs_dim,
                                                                 action_dim, recorder)
                lane_videos = recorder.close() if recorder is not None else []
                attempted += lanes
                batches += 1
                threshold = acceptance_threshold(threshold, returns)
                ok = accept(returns, success, threshold, task)
                kept = []
                for i in ok.nonzero().squeeze(-1).tolist():
                    if len(episodes["return"]) >= num_demos:
                        break
                    kept.append(i)
                    for key, value in zip(episodes, (obs[i], act[i], rew[i], returns[i], success[i])):
                        episodes[key].append(value)
                    if lane_videos:
                        dest = Path(video) / f"{task}-demo{len(episodes['return']) - 1}.{video_fmt}"
                        os.replace(lane_videos[i], dest)
                        video_paths.append(dest)
                for path in lane_videos:
                    if path.exists():
                        path.unlink()
                logger.info(
                    "batch %d: median return %.4g, threshold %.4g, %d of %d episodes pass (%s), %d kept; "
                    "%d/%d demos after %d episodes",
                    batches, float(returns.median()), threshold, int(ok.sum()), lanes,
                    f"success rate {float(success.mean()):.2f}" if spec.success_defined else "no success flag",
                    len(kept), len(episodes["return"]), num_demos, attempted,
                )
                bar.update(len(kept))
                bar.set_postfix_str(f"attempted {attempted}, threshold {threshold:.4g}")
    except BaseException:  # an interrupted run leaves no videos of its accepted demos
        for path in video_paths:
            path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        env.close()
        if video_tmp is not None:
            shutil.rmtree(video_tmp, ignore_errors=True)
    accepted = len(episodes["return"])
    if accepted < num_demos:
        for path in video_paths:
            path.unlink(missing_ok=True)
        raise DemoAcceptanceError(task, num_demos, accepted, attempted, threshold, max_attempts)
    demos = TensorDict(
        {
            "observation": torch.stack(episodes["observation"]),
            "action": torch.stack(episodes["action"]),
            "reward": torch.stack(episodes["reward"]),
            "action_mask": torch.ones(num_demos, action_dim, dtype=torch.bool),
            "task": torch.zeros(num_demos, dtype=torch.long),
            "length": torch.full((num_demos,), length, dtype=torch.long),
            "episode_reward": torch.stack(episodes["return"]).float(),
            "success": torch.stack(episodes["success"]).float(),
        },
        batch_size=[num_demos],
    )
    return demos, DemoReport(task, accepted, attempted, batches, threshold)


def generate_demos(
    world_model_or_checkpoint: Any,
    task: str,
    num_demos: int,
    *,
    seed: int = 1,
    device: str | torch.device = "cpu",
    max_attempts: int | None = None,
    planner_overrides: Mapping[str, Any] | None = None,
    video: str | os.PathLike | None = None,
    video_fps: int = 30,
    progress: bool = False,
) -> TensorDict:
    """Plan deterministic episodes of ``task`` until ``num_demos`` pass Newt's acceptance rule.

    Each batch runs ``2 * num_demos`` lanes of the task for one episode with the
    :class:`~torchrl_newt.modules.TDMPC2Planner` built from the checkpoint (its planner settings,
    or Newt's defaults for Newt's files, see :func:`~torchrl_newt.evaluate.planner_settings`);
    after each batch the threshold is updated (:func:`acceptance_threshold`) and the batch's
    episodes are filtered (:func:`accept`). Batches continue until ``num_demos`` are accepted or
    ``max_attempts`` episodes would be exceeded.

    Args:
        world_model_or_checkpoint: a checkpoint path (ours or Newt's, read by
            :func:`~torchrl_newt.interop.load_world_model`), a
            :class:`~torchrl_newt.interop.LoadedWorldModel` or a
            :class:`~torchrl_newt.modules.NewtWorldModel`.
        task: the task name.
        num_demos: demonstrations to collect (``>= 1``).
        seed: seeds the lanes and the planner's random numbers.
        device: where the model, planner and env tensors live.
        max_attempts: most episodes to run (default ``20 * num_demos``; at least one batch of
            ``2 * num_demos``); only whole batches run.
        planner_overrides: ``TDMPC2Planner`` arguments that win over the checkpoint's (``None``
            values are ignored).
        video: a folder that receives one video per accepted demo, ``TASK-demo{i}.mp4`` (or
            ``.gif``); every lane is rendered.
        video_fps: frames per second of the videos.
        progress: show a ``tqdm`` bar of accepted demos (with attempted episodes).

    Returns:
        A ``TensorDict`` ``[num_demos]`` in the episode layout of
        :mod:`torchrl_newt.data.demos`, unpadded: ``"observation"`` ``[N, T + 1, obs_dim]``
        (``o_0 .. o_T``), ``"action"`` ``[N, T, action_dim]`` (what the simulator received),
        ``"reward"`` ``[N, T]``, ``"action_mask"`` (all ``True``), ``"task"`` (``0``),
        ``"length"`` (``T``), plus ``"episode_reward"`` and ``"success"`` ``[N]``. Save it with
        ``save_demos(DIR, demos, [task], format="newt")``.

    Raises:
        UnknownTaskError: ``task`` is not registered.
        CheckpointMismatchError: the checkpoint is for another task or cannot hold this one.
        DemoGenerationError: ``num_demos < 1`` or ``max_attempts < 2 * num_demos``.
        DemoAcceptanceError: fewer than ``num_demos`` episodes were accepted in
            ``max_attempts`` (the message gives the counts and the final threshold).

    Examples:
        >>> from torchrl_newt.modules import NewtWorldModel
        >>> _ = torch.manual_seed(0)
        >>> wm = NewtWorldModel(16, 4, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
        >>> tiny = {"horizon": 2, "iterations": 1, "num_samples": 8, "num_elites": 2, "num_pi_trajs": 1}
        >>> demos = generate_demos(wm, "mujoco-reacher", 1, planner_overrides=tiny)
        >>> demos["observation"].shape, demos["action"].shape, demos["reward"].shape
        (torch.Size([1, 51, 11]), torch.Size([1, 50, 2]), torch.Size([1, 50]))
    """
    demos, report = _generate(
        world_model_or_checkpoint, task, num_demos, seed=seed, device=device, max_attempts=max_attempts,
        planner_overrides=planner_overrides, video=video, video_fps=video_fps, progress=progress,
    )
    logger.info("%s: %d demos accepted of %d episodes (%d batches), final threshold %.4g",
                task, report.accepted, report.attempted, report.batches, report.threshold)
    return demos


# ============================================================================ CLI
def build_parser() -> argparse.ArgumentParser:
    """The ``python -m torchrl_newt.demos`` options."""
    p = argparse.ArgumentParser(prog="python -m torchrl_newt.demos",
                                description="Demonstration files for Newt-style pretraining.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="plan episodes with a checkpoint and keep those that pass Newt's rule",
                       description="Plan deterministic episodes of one task with a checkpoint (ours or Newt's) "
                                   "and write the accepted ones to DIR/TASK.pt in Newt's demo format.")
    g.add_argument("--checkpoint", required=True, help="our checkpoint.pt or one of Newt's .pt files")
    g.add_argument("--task", required=True, help="the task name")
    g.add_argument("--num-demos", type=int, required=True, help="demonstrations to collect (2N episodes per batch)")
    g.add_argument("--out", required=True, metavar="DIR", help="folder of the demo file DIR/TASK.pt")
    g.add_argument("--video", default=None, metavar="DIR", help="one video per accepted demo: DIR/TASK-demoI.mp4")
    g.add_argument("--video-fps", type=int, default=30)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    g.add_argument("--max-attempts", type=int, default=None, metavar="M",
                   help="most episodes to run before giving up (default 20 * num-demos)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    o = g.add_argument_group("planner overrides (default: the checkpoint's settings, or Newt's for Newt files)")
    o.add_argument("--horizon", type=int, default=None)
    o.add_argument("--plan-iterations", type=int, default=None)
    o.add_argument("--plan-samples", type=int, default=None)
    o.add_argument("--plan-elites", type=int, default=None)
    o.add_argument("--plan-pi-trajs", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the CLI (see the module docstring); returns what it wrote.

    Returns:
        ``{"path": DIR/TASK.pt, "demos": the episodes, "report": DemoReport, "summary": the printed line}``.

    Raises:
        UnknownTaskError: an unknown task; ``FileNotFoundError``: no checkpoint file;
        CheckpointFormatError: not a checkpoint of ours or Newt's; CheckpointMismatchError: a
        checkpoint for another task; DemoGenerationError: ``--num-demos`` < 1, too small
        ``--max-attempts``; DemoAcceptanceError: too few episodes accepted; ``ValueError``: an
        unwritable ``--out`` or ``--video`` folder (all checked before any episode runs, except
        the acceptance).
    """
    from torchrl_newt.data.demos import save_demos
    from torchrl_newt.envs import require_installed
    from torchrl_newt.evaluate import check_writable_dir, resolve_device, video_backend

    args = build_parser().parse_args(None if argv is None else list(argv))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.num_demos < 1:
        raise DemoGenerationError(f"--num-demos must be >= 1, got {args.num_demos}")
    if args.max_attempts is not None and args.max_attempts < 2 * args.num_demos:
        raise DemoGenerationError(
            f"--max-attempts must allow at least one batch of 2 * num-demos = {2 * args.num_demos} episodes, "
            f"got {args.max_attempts}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    get_task(args.task)  # UnknownTaskError with close matches
    out = check_writable_dir(args.out, "--out")
    if args.video:
        video_backend()
        check_writable_dir(args.video, "--video")
    require_installed([args.task])
    device = resolve_device(args.device)
    path = out / f"{args.task}.pt"
    if path.exists():
        logger.warning("%s exists and will be replaced once the new demos are accepted", path)
    t0 = time.time()
    demos, report = _generate(
        args.checkpoint, args.task, args.num_demos, seed=args.seed, device=device, max_attempts=args.max_attempts,
        planner_overrides={"horizon": args.horizon, "iterations": args.plan_iterations,
                           "num_samples": args.plan_samples, "num_elites": args.plan_elites,
                           "num_pi_trajs": args.plan_pi_trajs},
        video=args.video, video_fps=args.video_fps, progress=not args.quiet,
    )
    (written,) = save_demos(out, demos, [args.task], format="newt")
    ret = demos["episode_reward"]
    summary = (
        f"{args.task}: {report.accepted} demos accepted of {report.attempted} episodes ({report.batches} batch(es)), "
        f"return {float(ret.mean()):.4g} (min {float(ret.min()):.4g}), threshold {report.threshold:.4g}, "
        f"{time.time() - t0:.0f}s -> {written}"
    )
    print(summary)
    return {"path": written, "demos": demos, "report": report, "summary": summary}


def _cli() -> None:  # pragma: no cover - exercised through main() in the tests
    try:
        main(sys.argv[1:])
    except (ValueError, KeyError, FileNotFoundError, ImportError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: no demo file written", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    _cli()
