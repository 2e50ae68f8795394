"""Evaluation shared by every runner, and the evaluation CLI of a trained checkpoint.

Every runner (the main job, evaluation, baselines) ends with :func:`format_table` and writes
:func:`write_final_scores` into its output folder, so runs compare through one file format::

    {"tasks": {"walker-walk": {"score": 0.91, "return": 910.2, "success": 0.0}, ...},
     "domains": {"dmcontrol": 0.91, ...}, "mmbench_score": 0.91, ...extra run facts...}

The MMBench score of a run is the mean of its domain means.

Command line (see ``docs/evaluation.md``)::

    python -m torchrl_newt.evaluate --checkpoint runs/newt/checkpoint.pt --tasks walker-walk,cheetah-run \
        --episodes 10 [--video videos/] [--open-loop 1,2,4,8] [--output-dir runs/eval] [--device cuda]

builds the world model from the checkpoint (ours or Newt's), the planner with the checkpoint's
planner settings (ours) or Newt's defaults, runs deterministic episodes on every task, prints the
score table and writes ``OUTPUT_DIR/final_scores.json``; ``--video`` writes one video per task
(first episode) and ``--open-loop K`` scores the agent when it observes only every ``K`` steps
(:class:`~torchrl_newt.modules.open_loop.OpenLoopPlanner`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_newt.envs import get_task

__all__ = [
    "FINAL_SCORES_FILE",
    "NEWT_PLANNER_DEFAULTS",
    "VideoRecorder",
    "build_parser",
    "check_tasks_fit",
    "domain_scores",
    "evaluate",
    "eval_world_model",
    "format_open_loop_table",
    "format_final_report",
    "format_table",
    "main",
    "mmbench_score",
    "planner_settings",
    "resolve_device",
    "resolve_tasks",
    "check_writable_dir",
    "run_episodes",
    "video_backend",
    "write_final_scores",
    "learning_summary",
]

logger = logging.getLogger(__name__)

#: the file every runner writes into its output folder
FINAL_SCORES_FILE = "final_scores.json"

Results = Mapping[str, Mapping[str, float]]


@torch.no_grad()
def evaluate(env, policy, tasks: Sequence[str], episodes: int) -> dict[str, dict[str, float]]:
    """Run ``episodes`` complete deterministic episodes on every lane of a multitask env.

    Args:
        env: a batched env with one lane per task (e.g. :func:`torchrl_newt.envs.make_env`),
            writing ``("next", "score"|"success"|"episode_reward"|"done")``.
        policy: the policy (e.g. a :class:`~torchrl_newt.modules.TDMPC2Planner`), run under
            :class:`~torchrl.envs.utils.ExplorationType` ``DETERMINISTIC``; ``None`` for the
            env's random actions (uniform in the action spec; the simulators ignore the padded
            dims a task does not have).
        tasks: the lanes' task names, in lane order.
        episodes: episodes per task (lanes run for ``episodes`` times the longest episode).

    Returns:
        ``{task: {"score", "return", "success"}}`` averaged over the episodes.

    Examples:
        >>> from torchrl_newt.envs import make_env
        >>> env = make_env(["cartpole-balance"], seed=0)
        >>> r = evaluate(env, None, ["cartpole-balance"], episodes=1)
        >>> sorted(r["cartpole-balance"]), 0 <= r["cartpole-balance"]["score"] <= 1
        (['return', 'score', 'success'], True)
        >>> env.close()
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    steps = max(get_task(t).episode_length for t in tasks) * episodes
    kind = ExplorationType.DETERMINISTIC if policy is not None else ExplorationType.RANDOM
    with set_exploration_type(kind):
        td = env.rollout(steps, policy, break_when_any_done=False, auto_cast_to_device=policy is not None)
    done = td["next", "done"].squeeze(-1).cpu()
    score = td["next", "score"].squeeze(-1).cpu()
    success = td["next", "success"].squeeze(-1).cpu()
    ret = td["next", "episode_reward"].squeeze(-1).cpu()
    results = {}
    for i, task in enumerate(tasks):
        idx = done[i].nonzero().squeeze(-1)[:episodes]
        results[task] = {
            "score": float(score[i, idx].mean()),
            "return": float(ret[i, idx].mean()),
            "success": float(success[i, idx].mean()),
        }
    return results


def domain_scores(results: Results) -> dict[str, float]:
    """Mean score per domain, in order of first appearance.

    Examples:
        >>> domain_scores({"walker-walk": {"score": 0.5}, "cheetah-run": {"score": 0.7}, "pygame-pong": {"score": 1.0}})
        {'dmcontrol': 0.6, 'pygame': 1.0}
    """
    per_domain = defaultdict(list)
    for task, r in results.items():
        per_domain[get_task(task).domain].append(r["score"])
    return {d: round(sum(v) / len(v), 12) for d, v in per_domain.items()}


def mmbench_score(results: Results) -> float:
    """The MMBench score: mean of the domain means.

    Examples:
        >>> mmbench_score({"walker-walk": {"score": 0.5}, "cheetah-run": {"score": 0.7}, "pygame-pong": {"score": 1.0}})
        0.8
    """
    doms = domain_scores(results)
    return round(sum(doms.values()) / len(doms), 12) if doms else math.nan


def format_table(results: Results, baseline: Results | None = None, baseline_name: str = "random") -> str:
    """The per-task and per-domain score table every runner prints at the end.

    Args:
        results: ``{task: {"score", "return", "success"}}``.
        baseline: optional scores of a reference policy on the same tasks, shown in a column
            named ``baseline_name``.

    Examples:
        >>> print(format_table({"walker-walk": {"score": 0.5, "return": 500.0, "success": 0.0}}))
        task                        domain             score    return  success
        -----------------------------------------------------------------------
        walker-walk                 dmcontrol          0.500     500.0        -
        -----------------------------------------------------------------------
        domain mean                 dmcontrol          0.500
        MMBench score (mean of domain means)           0.500
    """
    extra = baseline is not None
    header = f"{'task':<28}{'domain':<16}{'score':>8}" + (f"{baseline_name:>9}" if extra else "") + f"{'return':>10}{'success':>9}"
    rows = [header, "-" * len(header)]
    for task, r in results.items():
        spec = get_task(task)
        success = f"{r['success']:>9.2f}" if spec.success_defined else f"{'-':>9}"
        base = f"{baseline[task]['score']:>9.3f}" if extra else ""
        rows.append(f"{task:<28}{spec.domain:<16}{r['score']:>8.3f}{base}{r['return']:>10.1f}{success}")
    rows.append("-" * len(header))
    doms = domain_scores(results)
    base_doms = domain_scores(baseline) if extra else {}
    for d, s in doms.items():
        base = f"{base_doms[d]:>9.3f}" if extra else ""
        rows.append(f"{'domain mean':<28}{d:<16}{s:>8.3f}{base}")
    base = f"{mmbench_score(baseline):>9.3f}" if extra else ""
    rows.append(f"{'MMBench score (mean of domain means)':<44}{mmbench_score(results):>8.3f}{base}")
    return "\n".join(rows)


def learning_summary(results: Results, baseline: Results, baseline_name: str = "random") -> str:
    """One line saying whether a run beat a baseline: tasks above it, and the MMBench score ratio.

    Examples:
        >>> learned = {"walker-walk": {"score": 0.6}, "cartpole-swingup": {"score": 0.1}}
        >>> rand = {"walker-walk": {"score": 0.2}, "cartpole-swingup": {"score": 0.1}}
        >>> print(learning_summary(learned, rand))
        1 of 2 tasks above random (not cartpole-swingup); MMBench score 0.350 vs 0.150 random (2.33x)
    """
    below = [t for t in results if not results[t]["score"] > baseline[t]["score"]]
    ours, theirs = mmbench_score(results), mmbench_score(baseline)
    ratio = f"{ours / theirs:.2f}x" if theirs > 0 else ("inf" if ours > 0 else "-")
    text = f"{len(results) - len(below)} of {len(results)} tasks above {baseline_name}"
    if below:
        text += f" (not {', '.join(below)})"
    return f"{text}; MMBench score {ours:.3f} vs {theirs:.3f} {baseline_name} ({ratio})"


def format_final_report(
    results: Results,
    baseline: Results | None = None,
    *,
    title: str,
    files: Mapping[str, Any] | None = None,
    baseline_name: str = "random",
) -> str:
    """The closing block every runner prints: a title, the score table beside the baseline, the
    learning summary (with a baseline) and where the run's files are.

    The main job (:func:`torchrl_newt.recipe.final_report`) and the baselines
    (:class:`torchrl_newt.baselines.common.BaselineRun`) print it, so their ends read alike.

    Examples:
        >>> ours = {"walker-walk": {"score": 0.6, "return": 600.0, "success": 0.0}}
        >>> rand = {"walker-walk": {"score": 0.2, "return": 200.0, "success": 0.0}}
        >>> print(format_final_report(ours, rand, title="Final evaluation:", files={"final scores": "run/final_scores.json"}))
        Final evaluation:
        <BLANKLINE>
        task                        domain             score   random    return  success
        --------------------------------------------------------------------------------
        walker-walk                 dmcontrol          0.600    0.200     600.0        -
        --------------------------------------------------------------------------------
        domain mean                 dmcontrol          0.600    0.200
        MMBench score (mean of domain means)           0.600    0.200
        <BLANKLINE>
        1 of 1 tasks above random; MMBench score 0.600 vs 0.200 random (3.00x)
        <BLANKLINE>
        final scores:   run/final_scores.json
    """
    lines = [title, "", format_table(results, baseline=baseline, baseline_name=baseline_name)]
    if baseline is not None:
        lines += ["", learning_summary(results, baseline, baseline_name)]
    if files:
        lines.append("")
        lines += [f"{name + ':':<16}{path}" for name, path in files.items()]
    return "\n".join(lines)


def write_final_scores(
    output_dir: str | os.PathLike, results: Results, baseline: Results | None = None, **extra: Any
) -> Path:
    """Write ``OUTPUT_DIR/final_scores.json`` atomically and return its path.

    Args:
        output_dir: the run's output folder (created if missing).
        results: ``{task: {"score", "return", "success"}}``.
        baseline: optional ``{task: {"score", ...}}`` of uniform random actions; its score is
            stored per task as ``"random"``.
        **extra: run facts stored at the top level (``frames``, ``updates``, ``wall_s``...).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = write_final_scores(d, {"walker-walk": {"score": 0.5, "return": 500.0, "success": 0.0}}, frames=10)
        ...     data = json.loads(p.read_text())
        >>> data["tasks"]["walker-walk"]["score"], data["mmbench_score"], data["frames"]
        (0.5, 0.5, 10)
    """
    tasks = {}
    for task, r in results.items():
        row = {"score": float(r["score"]), "return": float(r["return"]), "success": float(r["success"])}
        if baseline is not None:
            row["random"] = float(baseline[task]["score"])
        tasks[task] = row
    data = {"tasks": tasks, "domains": domain_scores(results), "mmbench_score": mmbench_score(results), **extra}
    from torchrl_newt.checkpoint import atomic_write_text

    return atomic_write_text(json.dumps(data, indent=1) + "\n", Path(output_dir) / FINAL_SCORES_FILE)


# ============================================================================ episodes
@torch.no_grad()
def run_episodes(
    env,
    policy,
    tasks: Sequence[str],
    episodes: int,
    *,
    progress: bool = False,
    desc: str = "eval",
    video: "VideoRecorder | None" = None,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` as an explicit step loop, with a progress bar and video frames.

    Steps exactly like ``env.rollout(..., break_when_any_done=False)`` (policy, then
    ``step_and_maybe_reset``), so with the same seeds it returns the same numbers as
    :func:`evaluate`, but keeps only the per-episode results in memory (no trajectory), stops as
    soon as every lane has finished ``episodes`` episodes, and can hand the first episode's frames
    (the env's ``"pixels"``, so build it with ``from_pixels=True``) to a :class:`VideoRecorder`.

    Args:
        env: a batched env with one lane per task (see :func:`evaluate`).
        policy: a TensorDict policy run under ``ExplorationType.DETERMINISTIC``; ``None`` for the
            env's random actions.
        tasks: the lanes' task names, in lane order.
        episodes: episodes per task.
        progress: show a ``tqdm`` progress bar (env steps).
        desc: the bar's label.
        video: receives every lane's frames until the end of its first episode.

    Returns:
        ``{task: {"score", "return", "success"}}`` averaged over the episodes.

    Examples:
        >>> from torchrl_newt.envs import make_env
        >>> env = make_env(["pygame-landing"], seed=0)
        >>> _ = torch.manual_seed(0)
        >>> a = run_episodes(env, None, ["pygame-landing"], episodes=1)
        >>> _ = env.set_seed(0), torch.manual_seed(0)
        >>> a == run_episodes(env, None, ["pygame-landing"], episodes=1)
        True
        >>> env.close()
    """
    from tqdm.auto import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    n = len(tasks)
    max_steps = max(get_task(t).episode_length for t in tasks) * episodes
    kind = ExplorationType.DETERMINISTIC if policy is not None else ExplorationType.RANDOM
    stats: list[dict[str, list[torch.Tensor]]] = [defaultdict(list) for _ in range(n)]
    recording = [video is not None] * n
    with set_exploration_type(kind):
        td = env.reset()
        if video is not None:
            video.add(td["pixels"], list(range(n)))
        bar = tqdm(total=max_steps, desc=desc, unit="step", disable=not progress, leave=False, dynamic_ncols=True)
        try:
            for _ in range(max_steps):
                td = env.rand_action(td) if policy is None else policy(td)
                td, td_next = env.step_and_maybe_reset(td)
                nxt = td["next"]
                if video is not None and any(recording):
                    video.add(nxt["pixels"], [i for i in range(n) if recording[i]])
                done = nxt["done"].reshape(n).cpu()
                if bool(done.any()):
                    score = nxt["score"].reshape(n).cpu()
                    ret = nxt["episode_reward"].reshape(n).cpu()
                    success = nxt["success"].reshape(n).cpu()
                    for i in done.nonzero().squeeze(-1).tolist():
                        if len(stats[i]["score"]) < episodes:
                            stats[i]["score"].append(score[i])
                            stats[i]["return"].append(ret[i])
                            stats[i]["success"].append(success[i])
                        if recording[i]:
                            recording[i] = False
                            video.finish(i)
                td = td_next
                bar.update(1)
                if all(len(s["score"]) >= episodes for s in stats):
                    break
        finally:
            bar.close()
    missing = [t for t, s in zip(tasks, stats) if len(s["score"]) < episodes]
    if missing:  # tasks never end early, so this means a wrong episode length
        raise RuntimeError(f"tasks {missing} did not finish {episodes} episode(s) in {max_steps} steps")
    return {
        task: {k: float(torch.stack(s[k]).mean()) for k in ("score", "return", "success")}
        for task, s in zip(tasks, stats)
    }


# ============================================================================ videos
#: the pip extra that installs the video writers
VIDEO_EXTRA = "video"


def video_backend() -> str:
    """``"mp4"`` when ``imageio`` and ``imageio-ffmpeg`` import, else ``"gif"`` when Pillow does.

    Raises:
        ModuleNotFoundError: neither is installed (the message names the pip extra).

    Examples:
        >>> video_backend() in ("mp4", "gif")
        True
    """
    if importlib.util.find_spec("imageio") is not None and importlib.util.find_spec("imageio_ffmpeg") is not None:
        return "mp4"
    if importlib.util.find_spec("PIL") is not None:
        return "gif"
    raise ModuleNotFoundError(
        "--video needs imageio with imageio-ffmpeg (MP4) or Pillow (GIF), and neither is installed: "
        f"pip install 'torchrl_newt[{VIDEO_EXTRA}]'",
        name="imageio_ffmpeg",
    )


def check_writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if needed and check a file can be written there, before any long work.

    Raises:
        ValueError: naming the option ``what`` and the folder, when it cannot be written.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     check_writable_dir(f"{d}/videos", "--video").is_dir()
        True
        >>> try:
        ...     check_writable_dir("/proc/no-such-dir", "--out")
        ... except ValueError as err:
        ...     print(str(err).split(":")[0])
        --out '/proc/no-such-dir'
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_"):
            pass
    except OSError as err:
        raise ValueError(f"{what} {str(folder)!r}: cannot write there ({err.strerror or err})") from None
    return path


class VideoRecorder:
    """One video per lane from the env's rendered frames (``"pixels"`` uint8 ``[N, H, W, 3]``).

    MP4 frames are streamed to one ``imageio-ffmpeg`` encoder per lane; GIF frames (the fallback,
    with Pillow) are kept until the lane's video is finished.

    Args:
        folder: destination folder (created; must be writable).
        tasks: lane names (the files are ``FOLDER/<task>.<fmt>``).
        fps: frames per second.
        fmt: ``"mp4"`` or ``"gif"``; default :func:`video_backend`.

    Raises:
        ValueError: the folder cannot be written.
        ModuleNotFoundError: no video writer is installed.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     rec = VideoRecorder(d, ["a", "b"], fmt="gif")
        ...     rec.add(torch.zeros(2, 16, 16, 3, dtype=torch.uint8), [0, 1])
        ...     _ = rec.finish(0)
        ...     paths = rec.close()
        ...     sorted(p.name for p in paths)
        ['a.gif', 'b.gif']
    """

    def __init__(self, folder: str | os.PathLike, tasks: Sequence[str], *, fps: int = 30, fmt: str | None = None):
        fmt = fmt or video_backend()
        if fmt not in ("mp4", "gif"):
            raise ValueError(f"unknown video format {fmt!r}; choose 'mp4' or 'gif'")
        self.folder = check_writable_dir(folder, "--video")
        self.tasks, self.fps, self.fmt = list(tasks), int(fps), fmt
        self._writers: dict[int, Any] = {}
        self._frames: dict[int, list] = defaultdict(list)
        self.paths: dict[int, Path] = {}

    def _path(self, lane: int) -> Path:
        return self.folder / f"{self.tasks[lane]}.{self.fmt}"

    def add(self, frames: torch.Tensor, lanes: Sequence[int]) -> None:
        """Append ``frames[lane]`` to the video of each lane in ``lanes``."""
        frames = frames.detach().to("cpu", torch.uint8).numpy()
        for lane in lanes:
            if lane in self.paths:
                continue  # already finished
            if self.fmt == "gif":
                self._frames[lane].append(frames[lane].copy())
                continue
            if lane not in self._writers:
                import imageio.v2 as imageio

                self._writers[lane] = imageio.get_writer(
                    self._path(lane), fps=self.fps, codec="libx264", macro_block_size=8, ffmpeg_log_level="error"
                )
            self._writers[lane].append_data(frames[lane])

    def finish(self, lane: int) -> Path | None:
        """Write (close) the lane's video; returns its path (``None`` without frames)."""
        if lane in self.paths:
            return self.paths[lane]
        path = self._path(lane)
        if self.fmt == "mp4":
            writer = self._writers.pop(lane, None)
            if writer is None:
                return None
            writer.close()
        else:
            frames = self._frames.pop(lane, [])
            if not frames:
                return None
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / self.fps), loop=0)
        self.paths[lane] = path
        logger.info("video of %s written to %s", self.tasks[lane], path)
        return path

    def close(self) -> list[Path]:
        """Finish every open video and return all paths written, in lane order."""
        for lane in list(self._writers) + list(self._frames):
            self.finish(lane)
        return [self.paths[i] for i in sorted(self.paths)]


# ============================================================================ model and planner
#: Newt's planner settings (``tdmpc2/config.yaml``), used for Newt's own checkpoints
NEWT_PLANNER_DEFAULTS: dict[str, Any] = {
    "horizon": 3,
    "iterations": 6,
    "num_samples": 512,
    "num_elites": 64,
    "num_pi_trajs": 24,
    "temperature": 0.5,
    "min_std": 0.05,
    "max_std": 2.0,
    "prior_weight": 0.0,
}

# our example's option name -> TDMPC2Planner argument
_ARG_TO_PLANNER = {
    "horizon": "horizon",
    "plan_iterations": "iterations",
    "plan_samples": "num_samples",
    "plan_elites": "num_elites",
    "plan_pi_trajs": "num_pi_trajs",
}


def resolve_tasks(spec: str) -> list[str]:
    """Task names of a ``--tasks`` value: ``T1,T2``, ``mmbench`` (the 200) or ``domain:NAME``.

    Raises:
        UnknownTaskError: a name (or domain) is not registered; the message lists close matches.
        ValueError: empty, or a task is listed twice.

    Examples:
        >>> resolve_tasks("walker-walk, cheetah-run")
        ['walker-walk', 'cheetah-run']
        >>> len(resolve_tasks("mmbench")), resolve_tasks("domain:mujoco")[:2]
        (200, ['mujoco-ant', 'mujoco-halfcheetah'])
        >>> try:
        ...     resolve_tasks("walker-walk,walker-walk")
        ... except ValueError as err:
        ...     print(err)
        --tasks lists walker-walk twice
    """
    from torchrl_newt.envs import list_tasks

    if spec == "mmbench":
        return list_tasks()
    if spec.startswith("domain:"):
        names = list_tasks(spec.split(":", 1)[1])
        if not names:
            raise ValueError(f"--tasks {spec}: the domain has no tasks")
        return names
    names = [t.strip() for t in spec.split(",") if t.strip()]
    if not names:
        raise ValueError("--tasks is empty")
    for name in names:
        get_task(name)  # raises UnknownTaskError with close matches
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"--tasks lists {', '.join(twice)} twice")
    return names


def check_tasks_fit(architecture, tasks: Sequence[str], where: str = "the checkpoint") -> None:
    """Raise one error listing every task the checkpoint's padded sizes cannot hold.

    Args:
        architecture: the :class:`~torchrl_newt.interop.NewtArchitecture` of the checkpoint.
        tasks: task names.
        where: the checkpoint's name for the message.

    Raises:
        CheckpointMismatchError: some task's observation or action is larger than the padding.

    Examples:
        >>> from torchrl_newt.interop import NewtArchitecture
        >>> arch = NewtArchitecture(16, 4, 512, 2, 16, 16, 16, 2, 2, 101)
        >>> check_tasks_fit(arch, ["mujoco-reacher"])
        >>> try:
        ...     check_tasks_fit(arch, ["walker-walk", "mujoco-reacher"], "x.pt")
        ... except ValueError as err:
        ...     print(err)
        x.pt cannot hold task(s) walker-walk (obs_dim 24 > 16, action_dim 6 > 4): its world model takes observations padded to 16 and actions padded to 4.
    """
    from torchrl_newt.interop import CheckpointMismatchError

    bad = []
    for name in tasks:
        spec = get_task(name)
        why = []
        if spec.obs_dim is not None and spec.obs_dim > architecture.obs_dim:
            why.append(f"obs_dim {spec.obs_dim} > {architecture.obs_dim}")
        if spec.action_dim > architecture.action_dim:
            why.append(f"action_dim {spec.action_dim} > {architecture.action_dim}")
        if why:
            bad.append(f"{name} ({', '.join(why)})")
    if bad:
        raise CheckpointMismatchError(
            f"{where} cannot hold task(s) {', '.join(bad)}: its world model takes observations padded to "
            f"{architecture.obs_dim} and actions padded to {architecture.action_dim}."
        )


def eval_world_model(loaded, tasks: Sequence[str], where: str = "the checkpoint"):
    """The loaded world model with its task table re-indexed to ``tasks`` (lane order), by name.

    Like :func:`~torchrl_newt.interop.transfer_weights`, rows are matched by task name:

    * a frozen table (CLIP instruction vectors, ours or Newt's) keeps the checkpoint's row for a
      task it holds and gives any other task its own vector from Newt's shipped CLIP table (a
      zero-shot task, as Newt does; only for 512-d tables);
    * a learnable table takes the rows of the same task names (every task must be in the
      checkpoint; a bare state dict without names is assumed to follow ``tasks`` when its
      row count matches);
    * a single-task model is used as is.

    Args:
        loaded: a :class:`~torchrl_newt.interop.LoadedWorldModel`.
        tasks: the evaluation tasks, in lane order.
        where: the checkpoint's name for messages.

    Returns:
        ``(world_model, unseen)``: the model (``loaded.world_model``, modified in place) and the
        tasks evaluated with an instruction vector the checkpoint did not hold.

    Raises:
        CheckpointMismatchError: the padding cannot hold a task (:func:`check_tasks_fit`) or
            the table cannot be matched to ``tasks``.

    Examples:
        >>> from torchrl_newt.interop import LoadedWorldModel
        >>> from torchrl_newt.modules import NewtWorldModel, newt_task_embeddings
        >>> wm = NewtWorldModel(16, 4, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2,
        ...                     task_embeddings=torch.randn(2, 512))
        >>> loaded = LoadedWorldModel(wm, tasks=["mujoco-reacher", "pygame-landing"], format="torchrl_newt")
        >>> row = wm.task_embeddings[1].clone()
        >>> model, unseen = eval_world_model(loaded, ["pygame-landing", "og-point-arena"])
        >>> torch.equal(model.task_embeddings[0], row), unseen
        (True, ['og-point-arena'])
        >>> torch.equal(model.task_embeddings[1], newt_task_embeddings(["og-point-arena"])[0])
        True
    """
    from torch import nn

    from torchrl_newt.interop import CheckpointMismatchError, _inspect_ours

    wm = loaded.world_model
    arch = loaded.architecture or _inspect_ours(wm.state_dict(), where)
    check_tasks_fit(arch, tasks, where)
    tasks = list(tasks)
    known = list(loaded.tasks) if loaded.tasks else None
    if not wm.task_dim:
        if len(tasks) > 1:
            logger.warning("%s holds a single-task world model; evaluating it on %d tasks", where, len(tasks))
        return wm, []
    if wm.task_embedding is not None:  # learnable rows, by name
        weight = wm.task_embedding.weight.detach()
        if known is None:
            if weight.shape[0] != len(tasks):
                raise CheckpointMismatchError(
                    f"{where} has {weight.shape[0]} learned task embeddings without task names; pass the "
                    f"{weight.shape[0]} tasks it was trained on, in training order"
                )
            logger.warning("%s stores no task names: assuming its %d learned embeddings follow --tasks", where, len(tasks))
            known = tasks
        missing = [t for t in tasks if t not in known]
        if missing:
            raise CheckpointMismatchError(
                f"{where} learned task embeddings only for its training tasks {known}; it cannot evaluate "
                f"{missing} (a model with frozen instruction embeddings can)"
            )
        rows = weight[torch.tensor([known.index(t) for t in tasks])]
        wm.task_embedding = nn.Embedding.from_pretrained(rows.clone(), freeze=True)
        wm.num_tasks = len(tasks)
        return wm, []
    table = wm.task_embeddings.detach()
    unseen = [t for t in tasks if known is None or t not in known]
    rows = table.new_zeros(len(tasks), table.shape[1])
    if unseen:
        from torchrl_newt.modules.language import MissingTaskEmbeddingError, newt_task_embeddings

        if table.shape[1] != 512:
            raise CheckpointMismatchError(
                f"{where} has no instruction embedding for task(s) {unseen}, and its {table.shape[1]}-d task table "
                "cannot take Newt's 512-d CLIP vectors; evaluate the tasks it was trained on"
                + (f": {known}" if known else "")
            )
        try:
            clip = newt_task_embeddings(unseen).to(table)
        except MissingTaskEmbeddingError as err:
            raise CheckpointMismatchError(f"{where}: {err.args[0] if err.args else err}") from None
        logger.info("tasks not in %s (evaluated zero-shot from their instruction embedding): %s", where, ", ".join(unseen))
    for i, t in enumerate(tasks):
        rows[i] = clip[unseen.index(t)] if t in unseen else table[known.index(t)]
    wm.task_embeddings = rows
    wm.num_tasks = len(tasks)
    return wm, unseen


def planner_settings(loaded, overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """TDMPC2Planner arguments for a loaded checkpoint, and where they came from.

    Ours store the training options (``"args"``): horizon, MPPI iterations, samples, elites and
    prior trajectories are taken from there, and the constrained-planning weight follows the
    training schedule at the checkpoint's frame count (``0`` when it trained without it). Newt's
    checkpoints use Newt's defaults (:data:`NEWT_PLANNER_DEFAULTS`; its released models are past
    the constrained-planning schedule, so the prior weight is ``0``). ``overrides`` (values
    ``None`` are ignored) win over both.

    Examples:
        >>> from types import SimpleNamespace
        >>> ours = SimpleNamespace(format="torchrl_newt", extra={"args": {"horizon": 5, "plan_samples": 64},
        ...                                                     "state": {"frames": 10}})
        >>> s, source = planner_settings(ours, {"num_elites": 8, "iterations": None})
        >>> s["horizon"], s["num_samples"], s["num_elites"], s["iterations"], source
        (5, 64, 8, 6, 'checkpoint args')
        >>> planner_settings(SimpleNamespace(format="newt", extra={}))[1]
        "Newt's defaults"
    """
    from torchrl_newt.modules.planner import constraint_weight

    settings = dict(NEWT_PLANNER_DEFAULTS)
    source = "Newt's defaults"
    args = loaded.extra.get("args") if loaded.format == "torchrl_newt" else None
    if args is not None and not isinstance(args, Mapping):
        args = vars(args)
    if args:
        source = "checkpoint args"
        for name, key in _ARG_TO_PLANNER.items():
            if args.get(name) is not None:
                settings[key] = int(args[name])
        mode = args.get("constrained_planning", "off")
        if mode == "on" or (mode == "auto" and args.get("demos")):
            state = loaded.extra.get("state") or {}
            settings["prior_weight"] = constraint_weight(
                int(state.get("frames", 0)), int(args.get("constraint_start", 2_000_000)),
                int(args.get("constraint_final", 10_000_000)),
            )
    for key, value in (overrides or {}).items():
        if value is not None:
            settings[key] = value
    return settings, source


# ============================================================================ open-loop table
def format_open_loop_table(by_k: Mapping[int, Results], closed: Results | None = None) -> str:
    """Scores per task (and domain, and MMBench) with one column per open-loop ``K``.

    Args:
        by_k: ``{K: {task: {"score", ...}}}``.
        closed: the closed-loop results, shown first when given.

    Examples:
        >>> r = lambda s: {"walker-walk": {"score": s}, "pygame-pong": {"score": 1.0}}
        >>> print(format_open_loop_table({2: r(0.5), 8: r(0.1)}, closed=r(0.9)))
        task                        domain            closed     K=2     K=8
        --------------------------------------------------------------------
        walker-walk                 dmcontrol          0.900   0.500   0.100
        pygame-pong                 pygame             1.000   1.000   1.000
        --------------------------------------------------------------------
        domain mean                 dmcontrol          0.900   0.500   0.100
        domain mean                 pygame             1.000   1.000   1.000
        MMBench score (mean of domain means)           0.950   0.750   0.550
    """
    columns: list[tuple[str, Results]] = ([("closed", closed)] if closed is not None else [])
    columns += [(f"K={k}", r) for k, r in by_k.items()]
    if not columns:
        raise ValueError("format_open_loop_table needs at least one column")
    tasks = list(columns[0][1])
    header = f"{'task':<28}{'domain':<16}" + "".join(f"{name:>8}" for name, _ in columns)
    rows = [header, "-" * len(header)]
    for task in tasks:
        rows.append(f"{task:<28}{get_task(task).domain:<16}" + "".join(f"{r[task]['score']:>8.3f}" for _, r in columns))
    rows.append("-" * len(header))
    doms = [domain_scores(r) for _, r in columns]
    for d in doms[0]:
        rows.append(f"{'domain mean':<28}{d:<16}" + "".join(f"{ds[d]:>8.3f}" for ds in doms))
    rows.append(f"{'MMBench score (mean of domain means)':<44}" + "".join(f"{mmbench_score(r):>8.3f}" for _, r in columns))
    return "\n".join(rows)


# ============================================================================ CLI
def _open_loop_list(value: str) -> list[int]:
    out = []
    for part in value.split(","):
        part = part.strip()
        try:
            k = int(part)
        except ValueError:
            k = None
        if k is None or k < 1:
            raise argparse.ArgumentTypeError(
                f"--open-loop takes integers >= 1 (steps between observations; 1 = closed loop), got {part!r}"
            )
        if k not in out:
            out.append(k)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m torchrl_newt.evaluate`` options."""
    p = argparse.ArgumentParser(
        prog="python -m torchrl_newt.evaluate",
        description="Evaluate a Newt / torchrl_newt world-model checkpoint with MPPI planning on MMBench tasks.",
    )
    p.add_argument("--checkpoint", required=True, help="our checkpoint.pt or one of Newt's official .pt files")
    p.add_argument("--tasks", required=True, help="T1,T2,... | mmbench | domain:NAME")
    p.add_argument("--episodes", type=int, default=10, help="deterministic episodes per task (default 10)")
    p.add_argument("--video", default=None, metavar="DIR", help="write one video per task (its first episode) here")
    p.add_argument("--video-size", type=int, default=224, help="rendered frame height and width (default 224)")
    p.add_argument("--video-fps", type=int, default=30)
    p.add_argument("--open-loop", type=_open_loop_list, default=None, metavar="K[,K2...]",
                   help="also score open-loop control: observe every K steps, execute the plan in between")
    p.add_argument("--output-dir", default="runs/eval", help="final_scores.json goes here (default runs/eval)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--vision-model", default=None, metavar="PATH_OR_ID",
                   help="DINOv2 weights for a checkpoint trained with --obs rgb (default: the one it was trained "
                        "with, else $TORCHRL_NEWT_DINOV2_PATH, else facebook/dinov2-base; never downloaded)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("planner overrides (default: the checkpoint's settings, or Newt's for Newt files)")
    g.add_argument("--horizon", type=int, default=None)
    g.add_argument("--plan-iterations", type=int, default=None)
    g.add_argument("--plan-samples", type=int, default=None)
    g.add_argument("--plan-elites", type=int, default=None)
    g.add_argument("--plan-pi-trajs", type=int, default=None)
    g.add_argument("--prior-weight", type=float, default=None, help="constrained-planning weight in [0, 1]")
    return p


def resolve_device(name: str) -> torch.device:
    """The ``--device`` option of every runner: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:1"``...

    Raises:
        ValueError: CUDA was requested but is not available.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("auto").type in ("cpu", "cuda")
        True
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but CUDA is not available")
    return device


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the evaluation CLI (see the module docstring); returns what it wrote.

    Returns:
        ``{"results", "open_loop", "final_scores", "videos", "table"}``: closed-loop results,
        ``{K: results}``, the ``final_scores.json`` path, the video paths and the printed table.

    Raises:
        UnknownTaskError: an unknown task; ``FileNotFoundError``: no checkpoint file;
        CheckpointFormatError: the file is not a checkpoint of ours or Newt's;
        CheckpointMismatchError: the checkpoint cannot hold a task; ``ValueError``: an
        unwritable video folder or bad option values; ``ModuleNotFoundError``: ``--video``
        without a video writer. ``--open-loop 0`` exits with an argparse usage error.
    """
    from torchrl_newt.envs import make_env, task_tensors
    from torchrl_newt.interop import load_world_model
    from torchrl_newt.modules.open_loop import OpenLoopPlanner
    from torchrl_newt.modules.planner import TDMPC2Planner

    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.prior_weight is not None and not 0.0 <= args.prior_weight <= 1.0:
        raise ValueError(f"--prior-weight must be in [0, 1], got {args.prior_weight}")
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = resolve_tasks(args.tasks)
    video_fmt = video_backend() if args.video else None
    if args.video:
        check_writable_dir(args.video, "--video")
    device = resolve_device(args.device)
    t0 = time.time()

    loaded = load_world_model(args.checkpoint, map_location="cpu")
    where = str(args.checkpoint)
    world_model, unseen = eval_world_model(loaded, tasks, where)
    world_model.to(device).eval()
    settings, source = planner_settings(loaded, {
        "horizon": args.horizon, "iterations": args.plan_iterations, "num_samples": args.plan_samples,
        "num_elites": args.plan_elites, "num_pi_trajs": args.plan_pi_trajs, "prior_weight": args.prior_weight,
    })
    planner = TDMPC2Planner(
        world_model, discount=task_tensors(tasks)["discount"],
        env_chunk_size=4 if device.type == "cpu" else None, **settings,
    ).to(device)
    logger.info("%s checkpoint %s: %s", loaded.format, where, loaded.architecture.describe() if loaded.architecture else "")
    logger.info("planner (%s): %s", source, ", ".join(f"{k}={v}" for k, v in settings.items()))

    train_args = loaded.extra.get("args") if loaded.format == "torchrl_newt" else None
    train_args = (vars(train_args) if train_args is not None and not isinstance(train_args, Mapping)
                  else train_args or {})
    backbone = None
    if train_args.get("obs") == "rgb":  # the state, then the frozen DINOv2 features of the frames
        from torchrl_newt.modules.vision import DEFAULT_DINOV2_MODEL, load_dinov2

        # the default id honours $TORCHRL_NEWT_DINOV2_PATH (load_dinov2)
        backbone = load_dinov2(args.vision_model or train_args.get("vision_model") or DEFAULT_DINOV2_MODEL,
                               device=device)
    feature_dim = backbone.config.hidden_size if backbone is not None else 0
    size = args.video_size if backbone is None else 224  # the image features are those of 224 px frames
    env_kwargs = {"frame_size": (size, size)} if args.video else {}
    env = make_env(tasks, seed=args.seed, obs_pad=world_model.obs_dim - feature_dim, action_pad=world_model.action_dim,
                   from_pixels=bool(args.video) or backbone is not None, device=device, **env_kwargs)
    if backbone is not None:
        from torchrl_newt.envs import DINOv2Features

        env.append_transform(DINOv2Features(backbone, in_key="pixels", out_key="observation", append=True,
                                            del_frames=not args.video))
    ks = args.open_loop or []
    max_len = max([planner.horizon, *ks])
    env.append_transform(planner.make_primer())
    if ks:
        env.append_transform(OpenLoopPlanner(planner, max(ks), max_len=max_len).make_primer())
    progress = not args.quiet

    def seeded_run(policy, desc, video=None):
        torch.manual_seed(args.seed)
        env.set_seed(args.seed)
        return run_episodes(env, policy, tasks, args.episodes, progress=progress, desc=desc, video=video)

    try:
        video = VideoRecorder(args.video, tasks, fps=args.video_fps, fmt=video_fmt) if args.video else None
        results = seeded_run(planner, "closed loop", video)
        videos = video.close() if video is not None else []
        open_loop: dict[int, dict] = {}
        for k in ks:
            if k == 1:  # OpenLoopPlanner(k=1) replays closed-loop planning exactly (tested)
                open_loop[k] = results
                continue
            open_loop[k] = seeded_run(OpenLoopPlanner(planner, k, max_len=max_len), f"open loop K={k}")
    finally:
        env.close()

    table = format_table(results)
    if ks:
        table += "\n\nOpen-loop scores (observe every K steps):\n" + format_open_loop_table(open_loop, closed=results)
    print(table)
    extra: dict[str, Any] = {
        "checkpoint": os.path.abspath(args.checkpoint),
        "checkpoint_format": loaded.format,
        "model_size": loaded.size,
        "episodes": args.episodes,
        "seed": args.seed,
        "device": str(device),
        "planner": {**settings, "source": source},
        "zero_shot_tasks": unseen,
        "open_loop": {str(k): {t: r["score"] for t, r in res.items()} for k, res in open_loop.items()},
        "open_loop_mmbench_score": {str(k): mmbench_score(res) for k, res in open_loop.items()},
        "videos": [str(p) for p in videos],
        "wall_s": round(time.time() - t0, 1),
    }
    if loaded.format == "torchrl_newt" and isinstance(loaded.extra.get("state"), Mapping):
        extra["frames"] = loaded.extra["state"].get("frames")
    path = write_final_scores(args.output_dir, results, **extra)
    logger.info("final scores written to %s", path)
    return {"results": results, "open_loop": open_loop, "final_scores": path, "videos": videos, "table": table}


def _cli() -> None:  # pragma: no cover - exercised through main() in the tests
    try:
        main(sys.argv[1:])
    except (ValueError, KeyError, FileNotFoundError, ModuleNotFoundError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    _cli()
