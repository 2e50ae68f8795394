"""The runner pieces the baselines share with the main job: command line, env, evaluation, checkpoints.

A baseline script reads top to bottom as::

    args = build_parser("ppo", __doc__).parse_args(argv)      # the main job's flags + the script's own
    run = BaselineRun.start("ppo", args)                      # tasks checked, device, logger, eval env
    ... build modules, loss, collector; train, calling run.log(...) and run.maybe_evaluate(...)
    return run.finish(policy, frames=..., updates=..., checkpoint={...})   # table + final_scores.json

:meth:`BaselineRun.finish` evaluates the policy with :func:`torchrl_newt.evaluate.run_episodes`
(deterministic episodes on a separately seeded eval env, one lane per task) and uniform random actions
on the same env, prints :func:`torchrl_newt.evaluate.format_final_report` (the table with the
random column and the learning summary, as the main job does), writes
``OUTPUT_DIR/final_scores.json`` (:func:`torchrl_newt.evaluate.write_final_scores`, the file every
runner of this project writes, so baselines compare with Newt's runs file to file) and an atomic
checkpoint (:func:`torchrl_newt.checkpoint.atomic_save`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import torch
from torchrl.envs import ParallelEnv, SerialEnv

from torchrl_newt.checkpoint import atomic_save, remove_stale_temp_files
from torchrl_newt.envs import make_env, require_installed
from torchrl_newt.evaluate import domain_scores, format_final_report, mmbench_score, run_episodes, write_final_scores
from torchrl_newt.recipe import DEFAULT_TASKS, make_logger, resolve_device, resolve_tasks

__all__ = [
    "CHECKPOINT",
    "BaselineRun",
    "batches_for",
    "build_parser",
    "check_tasks",
    "cli",
    "make_train_env",
    "num_cells",
    "positive",
    "task_table",
]

log = logging.getLogger("newt.baselines")

CHECKPOINT = "checkpoint.pt"


def positive(kind: type = int):
    """An argparse type accepting only positive numbers (``1_000`` spellings allowed).

    Examples:
        >>> positive()("1_000")
        1000
        >>> try:
        ...     positive()("0")
        ... except argparse.ArgumentTypeError as err:
        ...     print(err)
        must be positive, got 0
    """

    def parse(text: str):
        try:
            value = kind(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def num_cells(text: str) -> tuple[int, ...]:
    """Hidden sizes from ``"256,256"``.

    Examples:
        >>> num_cells("512, 256")
        (512, 256)
    """
    cells = tuple(positive()(c.strip()) for c in text.split(",") if c.strip())
    if not cells:
        raise argparse.ArgumentTypeError("give at least one hidden size, e.g. 256,256")
    return cells


def build_parser(name: str, description: str | None = None, *, frames: int = 100_000) -> argparse.ArgumentParser:
    """The flags every baseline shares with the main job (``torchrl_newt.train``); scripts add their own.

    Args:
        name: the baseline's name (``"bc"``, ``"ppo"``, ``"td3"``): default output folder and experiment name.
        description: the ``--help`` description.
        frames: default of ``--frames``.

    Examples:
        >>> args = build_parser("ppo").parse_args(["--tasks", "walker-walk", "--frames", "2_000"])
        >>> args.tasks, args.frames, args.output_dir, args.logger
        ('walker-walk', 2000, 'runs/ppo', 'csv')
    """
    p = argparse.ArgumentParser(prog=f"newt-{name}", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("tasks and run (as the main job)")
    g.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help="comma-separated task names, 'mmbench' (all 200), or 'domain:NAME'")
    g.add_argument("--frames", type=positive(), default=frames, help="total env steps (all lanes together)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--device", default="auto", help="training device: auto, cpu, cuda, cuda:1...")
    g.add_argument("--parallel-envs", action="store_true", help="step lanes in worker processes")
    g.add_argument("--output-dir", default=f"runs/{name}", help="metrics, checkpoint and final_scores.json go here")
    g.add_argument("--threads", type=positive(), default=None, help="torch CPU threads (default: all cores)")
    g = p.add_argument_group("networks")
    g.add_argument("--num-cells", type=num_cells, default=(256, 256), help="hidden sizes, e.g. 256,256")
    g.add_argument("--task-dim", type=positive(), default=64, help="size of the task vector fed to every network")
    g.add_argument("--no-language", action="store_true",
                   help="learnable task embeddings instead of the tasks' frozen CLIP instruction embeddings")
    g = p.add_argument_group("evaluation, logging, checkpoints")
    g.add_argument("--eval-episodes", type=positive(), default=1, help="deterministic episodes per task")
    g.add_argument("--eval-every", type=int, default=0,
                   help="frames between intermediate evaluations + checkpoints (0: only at the end)")
    g.add_argument("--logger", default="csv", choices=["csv", "wandb", "tensorboard", "none"])
    g.add_argument("--wandb-mode", default="offline", choices=["offline", "online", "disabled"])
    g.add_argument("--exp-name", default=name)
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def check_tasks(spec: str) -> list[str]:
    """The tasks of a ``--tasks`` value, checked: registered, listed once, simulators installed.

    Raises:
        UnknownTaskError: a task is not registered (with close matches).
        MissingDependencyError: a task's simulator is not installed (names the pip extra).
        ValueError: ``--tasks`` is empty or lists a task twice.

    Examples:
        >>> check_tasks("pygame-landing, mujoco-reacher")
        ['pygame-landing', 'mujoco-reacher']
    """
    tasks = resolve_tasks(spec)
    require_installed(tasks)
    return tasks


def task_table(tasks: Sequence[str], no_language: bool = False) -> torch.Tensor | None:
    """The tasks' frozen instruction embeddings (Newt's shipped CLIP rows offline), or ``None``.

    ``None`` (learnable task embeddings) with ``no_language`` or when some task needs a CLIP model
    that is not available (:func:`torchrl_newt.modules.task_embeddings_or_none` warns once).

    Examples:
        >>> task_table(["walker-walk", "cheetah-run"]).shape
        torch.Size([2, 512])
        >>> task_table(["walker-walk"], no_language=True) is None
        True
    """
    if no_language:
        return None
    from torchrl_newt.modules import task_embeddings_or_none

    return task_embeddings_or_none(list(tasks))


def make_train_env(
    tasks: Sequence[str], *, seed: int, lanes_per_task: int = 1, parallel: bool = False, **kwargs: Any
):
    """The training env: :func:`~torchrl_newt.envs.make_env` (one lane per task), or ``lanes_per_task`` copies.

    :func:`~torchrl_newt.envs.make_env` gives every task one lane (it refuses a task listed twice), so
    with ``lanes_per_task > 1`` the copies are batched by :class:`~torchrl.envs.SerialEnv` (or
    :class:`~torchrl.envs.ParallelEnv` with ``parallel``, one worker per copy): batch size
    ``[lanes_per_task, num_tasks]``, each copy seeded with its own derived seed, ``"task"`` the
    same task ids in every copy.

    Examples:
        >>> env = make_train_env(["pygame-landing"], seed=0, lanes_per_task=2)
        >>> td = env.rollout(3)
        >>> td.batch_size, td["task"].unique().tolist()
        (torch.Size([2, 1, 3]), [0])
        >>> env.close()
    """
    if lanes_per_task < 1:
        raise ValueError(f"lanes_per_task must be >= 1, got {lanes_per_task}")
    tasks = list(tasks)
    if lanes_per_task == 1:
        return make_env(tasks, seed=seed, parallel=parallel, **kwargs)
    create = [dict(tasks=tasks, **kwargs) for _ in range(lanes_per_task)]
    batched = (ParallelEnv if parallel else SerialEnv)(lanes_per_task, make_env, create_env_kwargs=create)
    batched.set_seed(seed)
    return batched


@dataclasses.dataclass
class BaselineRun:
    """One baseline run: its tasks, device, output folder, logger and eval env, and the shared endings.

    Build it with :meth:`start`; call :meth:`log` while training, :meth:`maybe_evaluate` after each
    batch (intermediate evaluations and checkpoints every ``--eval-every`` frames) and :meth:`finish`
    at the end.
    """

    name: str
    args: argparse.Namespace
    tasks: list[str]
    device: torch.device
    out_dir: Path
    logger: Any
    eval_env: Any
    t0: float
    history: list = dataclasses.field(default_factory=list)
    last_eval: int = 0
    last_results: dict | None = None

    @classmethod
    def start(cls, name: str, args: argparse.Namespace) -> "BaselineRun":
        """Check the tasks (unknown ones, missing simulators) before anything trains, then set up.

        Raises:
            UnknownTaskError: a task is not registered (with close matches).
            MissingDependencyError: a task's simulator is not installed (names the pip extra).
            ValueError: ``--tasks`` is empty or lists a task twice.
        """
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        tasks = check_tasks(args.tasks)
        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out_dir, (CHECKPOINT, "final_scores.json"))
        logger = make_logger(args, out_dir, 0, 0)
        # on the training device: run_episodes hands the env's tensors straight to the policy
        eval_env = make_env(tasks, seed=args.seed + 10_000, parallel=args.parallel_envs, device=device)
        log.info("%s on %d tasks (%s) on %s", name, len(tasks), ", ".join(tasks[:8]) + (" ..." if len(tasks) > 8 else ""),
                 device)
        return cls(name, args, tasks, device, out_dir, logger, eval_env, time.time())

    # ------------------------------------------------------------------ logging
    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log scalars (no-op with ``--logger none``)."""
        if self.logger is None:
            return
        for k, v in metrics.items():
            self.logger.log_scalar(k, float(v.detach()) if torch.is_tensor(v) else float(v), step=step)

    def log_episodes(self, batch, step: int) -> None:
        """Log the score of every episode that ended in a collected batch (``train/score/TASK``)."""
        done = batch["next", "done"].squeeze(-1)
        if not bool(done.any()):
            return
        scores = batch["next", "score"].squeeze(-1)[done]
        tasks = batch["task"][done].reshape(-1).tolist()
        per_task: dict[str, list[float]] = {}
        for t, s in zip(tasks, scores.reshape(-1).tolist()):
            per_task.setdefault(self.tasks[t], []).append(s)
        self.log({f"train/score/{t}": sum(v) / len(v) for t, v in per_task.items()}, step)
        self.log({"train/mean_score": float(scores.mean())}, step)

    def bar(self, total: int, desc: str = "train", unit: str = "step"):
        """A tqdm progress bar (disabled with ``--quiet``)."""
        from tqdm import tqdm

        return tqdm(total=total, desc=f"{self.name} {desc}", unit=unit, disable=self.args.quiet,
                    mininterval=1.0 if sys.stderr.isatty() else 30.0)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, policy, *, seed_offset: int = 0) -> dict[str, dict[str, float]]:
        """Deterministic episodes of ``policy`` (``None``: uniform random actions) on every task."""
        self.eval_env.set_seed(self.args.seed + 10_000 + seed_offset)
        was_training = getattr(policy, "training", False)
        if policy is not None:
            policy.eval()
        try:
            return run_episodes(self.eval_env, policy, self.tasks, self.args.eval_episodes,
                                progress=not self.args.quiet, desc=f"{self.name} eval")
        finally:
            if was_training:
                policy.train()

    def maybe_evaluate(self, policy, frames: int, updates: int, checkpoint: dict[str, Any]) -> None:
        """Every ``--eval-every`` frames: evaluate, log ``eval/*`` and checkpoint."""
        every = self.args.eval_every
        if every <= 0 or frames - self.last_eval < every:
            return
        self.last_eval = frames
        self.last_results = self.evaluate(policy)
        self._record(self.last_results, frames, updates)
        self.save_checkpoint(checkpoint, frames=frames, updates=updates)

    def _record(self, results: dict, frames: int, updates: int) -> None:
        mean = mmbench_score(results)
        self.history.append({"frames": frames, "updates": updates, "mmbench_score": mean})
        self.log({f"eval/score/{t}": r["score"] for t, r in results.items()}, frames)
        self.log({f"eval/domain/{d}": s for d, s in domain_scores(results).items()}, frames)
        self.log({"eval/mmbench_score": mean, "time/elapsed_s": time.time() - self.t0}, frames)
        log.info("%s eval at %d frames (%d updates): MMBench score %.3f", self.name, frames, updates, mean)

    # ------------------------------------------------------------------ checkpoints and the end
    def save_checkpoint(self, payload: dict[str, Any], *, frames: int, updates: int) -> Path:
        """Write ``OUTPUT_DIR/checkpoint.pt`` atomically.

        ``payload`` maps names to modules/optimisers (saved as their ``state_dict()``) or plain
        values; the checkpoint adds the run's counters, tasks and arguments.
        """
        state = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in payload.items()}
        ckpt = {
            "baseline": self.name,
            "tasks": self.tasks,
            "args": vars(self.args),
            "state": {"frames": frames, "updates": updates, "history": list(self.history)},
            **state,
        }
        path = atomic_save(ckpt, self.out_dir / CHECKPOINT)
        log.info("checkpoint written to %s", path)
        return path

    def finish(
        self, policy, *, frames: int, updates: int, checkpoint: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        """Final evaluation (policy and random actions), table, ``final_scores.json`` and checkpoint.

        Returns:
            ``{"results": {task: {"score", "return", "success"}}, "random": ..., "state": {...}}``.
        """
        wall_s = round(time.time() - self.t0, 1)
        if self.last_results is not None and self.last_eval == frames:  # evaluated at these frames already
            results = self.last_results
        else:
            results = self.evaluate(policy)
            self._record(results, frames, updates)
        random_results = self.evaluate(None, seed_offset=1)
        ckpt_path = self.save_checkpoint(checkpoint, frames=frames, updates=updates)
        scores_path = write_final_scores(
            self.out_dir, results, baseline=random_results, method=self.name, frames=frames, updates=updates,
            wall_s=wall_s, device=str(self.device), seed=self.args.seed, **extra,
        )
        self.eval_env.close()
        logs = self.out_dir / "logs" / self.args.exp_name if self.args.logger != "none" else "(logging disabled)"
        title = (f"{self.name}: final evaluation after {frames:,} frames and {updates:,} updates "
                 f"({wall_s:.0f} s on {self.device}):")
        files = {"metrics": logs, "checkpoint": ckpt_path, "final scores": scores_path}
        print("\n" + format_final_report(results, random_results, title=title, files=files))
        state = {"frames": frames, "updates": updates, "wall_s": wall_s, "history": self.history, **extra}
        return {"results": results, "random": random_results, "state": state}


def cli(main: Callable[[list[str] | None], dict], name: str, argv: list[str] | None = None) -> int:
    """Console entry of a baseline script: bad input (unknown task, missing simulator or demos) as one line.

    ``main`` itself raises (so tests and callers see the exception types); this prints
    ``newt-NAME: error: MESSAGE`` on stderr and returns ``2`` instead of a traceback.

    Examples:
        >>> def main(argv):
        ...     raise FileNotFoundError("--demos: demos/ does not exist")
        >>> cli(main, "bc", [])
        2
    """
    from torchrl_newt.data import DemoTaskError
    from torchrl_newt.envs import MissingDependencyError, UnknownTaskError

    try:
        main(sys.argv[1:] if argv is None else argv)
    except (UnknownTaskError, DemoTaskError, MissingDependencyError, ValueError, FileNotFoundError) as err:
        print(f"newt-{name}: error: {err}", file=sys.stderr)
        return 2
    return 0


def batches_for(frames: int, frames_per_batch: int) -> int:
    """Collector batches needed to reach ``frames`` (rounded up).

    Examples:
        >>> batches_for(250, 100)
        3
    """
    return math.ceil(frames / frames_per_batch)
