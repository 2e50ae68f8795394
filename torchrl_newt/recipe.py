"""The main job's building blocks: what ``examples/newt_mmbench.py`` composes.

``examples/newt_mmbench.py`` (shipped in the package as :mod:`torchrl_newt.train`, the entry
point of ``python -m torchrl_newt.train`` and of the Slurm launchers) reads top to bottom as the
composition of env, collector, replay, losses and trainer. What it needs besides the library's
components lives here, so that other scripts and launchers can use it too:

* the command line (:func:`build_parser`, :func:`parse_args`, :data:`DEFAULT_TASKS`);
* :func:`start_run` (threads, ``torch.distributed``, device, output folder, seeds) and
  :func:`segment_seed` (fresh env seeds for every resumed segment and evaluation);
* :class:`Agent`, the container of the run's modules whose ``state_dict`` is the checkpoint layout;
* :class:`RunCheckpointer`: atomic checkpoints of modules, trainer, counters, every rank's
  collector and RNG state (and the replay with ``--save-replay``), taken at an episode boundary
  when the tasks share an episode length, so a resumed run continues exactly;
* :func:`pretrain`, :func:`log_train_scores`, :func:`evaluate_and_record`, :func:`final_report`;
* loading: :func:`load_start_checkpoint` (``--init-from``/``--finetune``),
  :func:`load_vision_backbone` (``--obs rgb``), :func:`task_table`, :func:`expand_demo_paths`;
* logging: :func:`make_logger` (CSV logs cut back to a resumed state), :func:`plot_curve`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchrl.record.loggers import get_logger
from tqdm import tqdm

from torchrl_newt.checkpoint import (
    CheckpointError,
    atomic_save,
    compact_replay_state,
    expand_replay_state,
    load_checkpoint,
    remove_stale_temp_files,
    rng_state,
    set_rng_state,
)
from torchrl_newt.envs import TaskSet, get_task, make_env
from torchrl_newt.evaluate import (
    domain_scores,
    evaluate,
    format_final_report,
    mmbench_score,
    resolve_device,
    resolve_tasks,
    write_final_scores,
)
from torchrl_newt.launch import (
    DistributedContext,
    cleanup,
    gather_objects,
    gather_results,
    init_distributed,
    is_distributed,
    make_shard_env,
    read_launch_env,
)
from torchrl_newt.modules import MODEL_SIZES, NewtWorldModel, TDMPC2Planner
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss

__all__ = [
    "Agent",
    "CHECKPOINT",
    "DEFAULT_TASKS",
    "PLANNER_DEFAULTS",
    "Run",
    "RunCheckpointer",
    "STEPS_PER_BATCH",
    "build_env",
    "build_parser",
    "log_metrics",
    "random_baseline",
    "evaluate_and_record",
    "expand_demo_paths",
    "final_report",
    "load_start_checkpoint",
    "load_vision_backbone",
    "log_train_scores",
    "make_logger",
    "parse_args",
    "plot_curve",
    "pretrain",
    "resolve_device",
    "resolve_planner_args",
    "resolve_tasks",
    "segment_seed",
    "start_run",
    "task_table",
]

log = logging.getLogger("newt")

#: The embedded default soup: DMControl tasks with 1, 2, 2 and 6 action dimensions.
DEFAULT_TASKS = ("cartpole-swingup", "reacher-easy", "mujoco-reacher", "walker-stand")
#: env steps per lane in each collector batch
STEPS_PER_BATCH = 10
#: planner settings (iterations, samples, elites, prior trajectories) when not given on the command line
PLANNER_DEFAULTS = {"cuda": (6, 512, 64, 24), "cpu": (2, 96, 12, 6)}
CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------- config
def _positive(kind=int):
    def parse(text: str):
        value = kind(text.replace("_", ""))
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main` (``python -m torchrl_newt.train --help``)."""
    p = argparse.ArgumentParser(prog="newt-train", description="Train a Newt (massively multitask TD-MPC2) agent on MMBench tasks.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("tasks and run")
    g.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help="comma-separated task names (held-out tasks too), 'mmbench' (all 200), or 'domain:NAME'")
    g.add_argument("--frames", type=_positive(), default=8_000, help="total env steps (all lanes together)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--device", default="auto", help="training device: auto, cpu, cuda, cuda:1...")
    g.add_argument("--parallel-envs", action="store_true", help="step lanes in worker processes")
    g.add_argument("--distributed", default="auto", choices=["auto", "off"],
                   help="auto: data-parallel when launched with several processes (torchrun, Slurm/submitit)")
    g.add_argument("--output-dir", default="runs/newt", help="metrics, plot and checkpoints go here")
    g.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from a checkpoint file, or from OUTPUT_DIR/checkpoint.pt when given alone")
    g = p.add_argument_group("model")
    g.add_argument("--size", default="S", choices=list(MODEL_SIZES))
    g.add_argument("--obs", default="state", choices=["state", "rgb"],
                   help="rgb: every lane also renders 224x224 frames, a frozen DINOv2 encodes them and the world "
                        "model sees the state together with the 768-d image features (as Newt does)")
    g.add_argument("--vision-model", default=None, metavar="PATH_OR_ID",
                   help="DINOv2 weights for --obs rgb: a local folder or a Hugging Face id already in the cache "
                        "(default: $TORCHRL_NEWT_DINOV2_PATH, else facebook/dinov2-base; never downloaded)")
    g.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from the weights of a checkpoint: Newt's official format or ours (size must match)")
    g.add_argument("--finetune", default=None, metavar="CKPT",
                   help="Newt's finetuning: the pretrained weights of CKPT (Newt's or ours) on the given tasks, "
                        "held-out ones included; planning from the first step (no random seeding episodes)")
    g.add_argument("--task-embeddings", default=None,
                   help="precomputed task-text table (python -m torchrl_newt.embed); default: Newt's shipped CLIP "
                        "vectors / CLIP from a local path or HF cache, else learnable task embeddings")
    g.add_argument("--clip-model", default="openai/clip-vit-base-patch32",
                   help="CLIP text model id or local path used when no table file is given")
    g.add_argument("--no-language", action="store_true", help="always use learnable task embeddings")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=_positive(), default=256, help="Newt uses 1024")
    g.add_argument("--horizon", type=_positive(), default=3)
    g.add_argument("--lr", type=_positive(float), default=3e-4)
    g.add_argument("--enc-lr-scale", type=float, default=0.3)
    g.add_argument("--grad-clip", type=_positive(float), default=20.0)
    g.add_argument("--tau", type=float, default=0.01)
    g.add_argument("--utd", type=float, default=0.15, help="updates per env step (Newt: 0.075)")
    g.add_argument("--seed-episodes", type=int, default=1, help="random-action episodes per task (Newt: 5)")
    g.add_argument("--replay-capacity", type=_positive(), default=1_000_000)
    g.add_argument("--sampling", default="uniform", choices=["uniform", "balanced", "prioritized"])
    g.add_argument("--entropy-coef", type=float, default=1e-4)
    g.add_argument("--pi-bc-coef", type=float, default=1.0,
                   help="weight of the policy prior's BC term on replay actions (Newt: 1; 0 gives TD-MPC2's prior)")
    g = p.add_argument_group("planner (defaults: Newt's 6 x 512 / 64 elites / 24 prior trajectories on GPU; "
                             "a lighter 2 x 96 / 12 / 6 on CPU so the embedded default fits in ~12 min)")
    g.add_argument("--plan-iterations", type=_positive(), default=None)
    g.add_argument("--plan-samples", type=_positive(), default=None)
    g.add_argument("--plan-elites", type=_positive(), default=None)
    g.add_argument("--plan-pi-trajs", type=int, default=None)
    g.add_argument("--constrained-planning", default="auto", choices=["auto", "on", "off"],
                   help="start MPPI from the policy prior's statistics (Newt's constrained planning); "
                        "auto: on after demo pretraining, off without demos (benchmarks/results/constrained_planning_cpu.md)")
    g.add_argument("--constraint-start", type=int, default=2_000_000,
                   help="constrained planning: weight 1 until this many frames (Newt's constraint_start_step)")
    g.add_argument("--constraint-final", type=int, default=10_000_000,
                   help="constrained planning: then 1 - (frames - start) / this, floored at 0 (constraint_final_step)")
    g = p.add_argument_group("demonstrations")
    g.add_argument("--demos", nargs="*", default=None, help="demo files or folders (see torchrl_newt.data.demos)")
    g.add_argument("--pretrain-updates", type=int, default=0, help="BC + world-model updates on demos before RL")
    g.add_argument("--warmup-updates", type=int, default=5_000, help="linear LR warm-up of pretraining")
    g = p.add_argument_group("evaluation, logging, checkpoints")
    g.add_argument("--eval-every", type=_positive(), default=2_000, help="frames between evaluations")
    g.add_argument("--eval-episodes", type=_positive(), default=2, help="deterministic episodes per task")
    g.add_argument("--random-episodes", type=int, default=10,
                   help="episodes per task of uniform random actions, on the final evaluation's seeds, for the "
                        "table's 'random' column (0: no random column)")
    g.add_argument("--checkpoint-every", type=_positive(), default=1, help="evaluations between checkpoints")
    g.add_argument("--save-replay", action="store_true",
                   help="also checkpoint the replay buffer (needed for an exact resume)")
    g.add_argument("--logger", default="csv", choices=["csv", "wandb", "tensorboard", "none"])
    g.add_argument("--wandb-mode", default="offline", choices=["offline", "online", "disabled"])
    g.add_argument("--exp-name", default="newt")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the planner, and on CUDA the update (eager updates are faster on CPU)")
    g.add_argument("--cudagraphs", action="store_true", help="with --compile on CUDA: mode='reduce-overhead'")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (one clear error per bad flag).

    Examples:
        >>> parse_args(["--frames", "100", "--tasks", "walker-walk"]).frames
        100
        >>> try:
        ...     parse_args(["--init-from", "a.pt", "--finetune", "b.pt"])
        ... except SystemExit as err:
        ...     err.code
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init_from and args.finetune:
        parser.error("--init-from and --finetune both give the starting weights: use one")
    if args.seed_episodes < 0 or args.pretrain_updates < 0 or args.warmup_updates < 0:
        parser.error("--seed-episodes, --pretrain-updates and --warmup-updates cannot be negative")
    if args.pretrain_updates and not args.demos:
        parser.error("--pretrain-updates needs --demos")
    return args


def resolve_planner_args(args, device: torch.device) -> None:
    """Fill unset planner options with the device's defaults (Newt's on GPU, lighter on CPU)."""
    defaults = PLANNER_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    for name, value in zip(("plan_iterations", "plan_samples", "plan_elites", "plan_pi_trajs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)


def task_table(args, tasks: list[str], device: torch.device) -> torch.Tensor | None:
    """Frozen CLIP task embeddings if available (file or local weights), else None (learnable)."""
    if args.no_language:
        return None
    from torchrl_newt.modules import language

    if args.task_embeddings:
        return language.load_task_table(args.task_embeddings, tasks)
    return language.task_embeddings_or_none(tasks, args.clip_model, device=device)


def segment_seed(seed: int, frames: int, rank: int = 0, purpose: int = 0) -> int:
    """The env seed of a run segment starting at ``frames`` (0: ``seed`` itself, as ever).

    Later segments (after a resume, or a reset at an episode-aligned checkpoint) and every
    evaluation (``purpose=1``) get seeds hashed from ``(seed, frames, rank)``: deterministic, and
    fresh, so no segment replays initial states an earlier one used.

    Examples:
        >>> segment_seed(1, 0), segment_seed(1, 400) == segment_seed(1, 400) != segment_seed(1, 800)
        (1, True)
    """
    if frames == 0 and purpose == 0:
        return seed + 100_000 * rank
    return int(np.random.SeedSequence([seed, purpose, frames, rank]).generate_state(1)[0] & 0x7FFFFFFF)


# ---------------------------------------------------------------------------------------- agent
class Agent(torch.nn.Module):
    """The run's modules in one container, for checkpoints (the trainer holds the optimisers).

    Its ``state_dict`` keys (``world_model.*``, ``wm_loss.*``, ``actor_loss.*``, ``planner.*``) are
    the checkpoint layout that ``python -m torchrl_newt.evaluate``, ``--init-from`` and
    ``--finetune`` read.

    Examples:
        >>> from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner
        >>> from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss
        >>> wm = NewtWorldModel(8, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, num_tasks=1)
        >>> agent = Agent(wm, TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm), TDMPC2Planner(wm, horizon=2))
        >>> sorted({k.split(".")[0] for k in agent.state_dict()})
        ['actor_loss', 'planner', 'wm_loss', 'world_model']
    """

    def __init__(self, world_model: NewtWorldModel, wm_loss: TDMPC2WorldModelLoss, actor_loss: TDMPC2ActorLoss,
                 planner: TDMPC2Planner) -> None:
        super().__init__()
        self.world_model, self.wm_loss, self.actor_loss, self.planner = world_model, wm_loss, actor_loss, planner


def load_start_checkpoint(path: str, args, tasks: list[str], device: torch.device, feature_dim: int = 0):
    """``--init-from``/``--finetune``: the pretrained model (Newt's format or ours) and its
    (state observation, action) padding, checked against ``tasks`` and ``--size``. With image
    features (``feature_dim``), the model's observation is the padded state followed by them."""
    from torchrl_newt.interop import load_world_model

    loaded = load_world_model(path, size=args.size, map_location=device)
    arch = loaded.architecture
    obs_pad, action_pad = (arch.obs_dim - feature_dim, arch.action_dim) if arch is not None else (128, 16)
    if obs_pad <= 0:
        raise CheckpointError(f"{path} takes {arch.obs_dim}-d observations, fewer than the {feature_dim} image "
                              "features of --obs rgb: it was not trained on images")
    for name in tasks:
        spec = get_task(name)
        if (spec.obs_dim or 0) > obs_pad or spec.action_dim > action_pad:
            raise CheckpointError(
                f"{path} pads observations to {obs_pad} and actions to {action_pad} dims: task {name} "
                f"({spec.obs_dim} observation, {spec.action_dim} action dims) does not fit"
            )
    return loaded, obs_pad, action_pad


def load_resume_checkpoint(path: Path, tasks: list[str], args, device: torch.device) -> dict:
    """Read and check a checkpoint of this program for ``--resume``."""
    ckpt = load_checkpoint(path, map_location=device, required=("agent", "state", "tasks"))
    if ckpt["tasks"] != tasks:
        raise CheckpointError(f"checkpoint {path} was trained on other tasks: {ckpt['tasks']}")
    size = (ckpt.get("args") or {}).get("size")
    if size is not None and size != args.size:
        raise CheckpointError(f"checkpoint {path} holds a size-{size} model; this run uses --size {args.size}")
    if "trainer" not in ckpt:  # the first checkpoint layout: optimisers at the top level
        ckpt["trainer"] = {"model_optim": ckpt["model_optim"], "pi_optim": ckpt["pi_optim"], **ckpt["state"]}
    return ckpt


# ---------------------------------------------------------------------------------------- logging
def trim_csv_logs(folder: Path, frames: int, pretrain_updates: int) -> None:
    """Drop the CSV rows logged after the state a run (re)starts from, so no step is logged twice."""
    for csv in folder.glob("scalars/**/*.csv"):
        limit = pretrain_updates if csv.relative_to(folder / "scalars").parts[0] == "pretrain" else frames
        lines = csv.read_text().splitlines(keepends=True)
        keep = [ln for ln in lines if ln.strip() and float(ln.split(",", 1)[0]) <= limit]
        if len(keep) != len(lines):
            tmp = csv.with_suffix(".csv.trim")
            tmp.write_text("".join(keep))
            os.replace(tmp, csv)


def make_logger(args, out_dir: Path, frames: int, pretrain_updates: int):
    if args.logger == "none":
        return None
    kw: dict[str, Any] = {}
    if args.logger == "csv":
        trim_csv_logs(out_dir / "logs" / args.exp_name, frames, pretrain_updates)
    if args.logger == "wandb":
        if importlib.util.find_spec("wandb") is None:
            raise ModuleNotFoundError("--logger wandb needs wandb: pip install -e .[wandb]")
        kw["wandb_kwargs"] = {"mode": args.wandb_mode, "project": "torchrl_newt", "offline": args.wandb_mode == "offline"}
    return get_logger(args.logger, logger_name=str(out_dir / "logs"), experiment_name=args.exp_name, **kw)


def plot_curve(history: list[dict], path: Path, random_mean: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    frames = [h["frames"] for h in history]
    for task in history[0]["results"]:
        ax.plot(frames, [h["results"][task]["score"] for h in history], marker="o", lw=1, alpha=0.6, label=task)
    ax.plot(frames, [h["mean_score"] for h in history], color="k", lw=2.5, marker="s", label="mean")
    if random_mean is not None:
        ax.axhline(random_mean, color="k", ls="--", lw=1.2, label="mean of random actions")
    ax.set(xlabel="env steps (all tasks)", ylabel="score", ylim=(-0.02, 1.02), title="Newt (TD-MPC2) on MMBench tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- distributed
def setup_distributed(args) -> DistributedContext:
    """Initialise torch.distributed when launched with several processes (``--distributed auto``)."""
    if args.distributed == "off" or read_launch_env().world_size == 1:
        return DistributedContext()
    return init_distributed(device=args.device)


def build_env(tasks: TaskSet, ctx: DistributedContext, seed: int, parallel: bool, features=None, **kw):
    """All tasks in one process; with several ranks, this rank's tasks carrying their global task ids.

    ``features`` (a frozen DINOv2, ``--obs rgb``): the lanes render frames and a
    :class:`~torchrl_newt.envs.DINOv2Features` transform appends their CLS features to the observation.
    """
    if features is not None:
        kw["from_pixels"] = True
    if ctx.world_size == 1:
        env = make_env(tasks, seed=seed, parallel=parallel, **kw)
    else:
        env = make_shard_env(tasks, ctx.rank, ctx.world_size, seed=seed, parallel=parallel, **kw)
    if features is not None:
        from torchrl_newt.envs import DINOv2Features

        env.append_transform(DINOv2Features(features, in_key="pixels", out_key="observation", append=True))
    return env


def load_vision_backbone(args, device: torch.device):
    """The frozen DINOv2 of ``--obs rgb`` (``None`` for state observations); never downloads.
    The default id honours ``$TORCHRL_NEWT_DINOV2_PATH`` (:func:`~torchrl_newt.modules.vision.load_dinov2`)."""
    if args.obs != "rgb":
        return None
    from torchrl_newt.modules.vision import DEFAULT_DINOV2_MODEL, load_dinov2

    backbone = load_dinov2(args.vision_model or DEFAULT_DINOV2_MODEL, device=device)
    log.info("--obs rgb: frozen DINOv2 (%d-d CLS features)", backbone.config.hidden_size)
    return backbone


def expand_demo_paths(paths: list[str]) -> list[str]:
    """Demo files, with folders expanded to the ``*.pt`` files in them.

    Raises:
        FileNotFoundError: no file was found.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.pt", "a.pt", "notes.txt"):
        ...     (folder / name).touch()
        >>> [Path(f).name for f in expand_demo_paths([str(folder)])]
        ['a.pt', 'b.pt']
    """
    out = []
    for p in paths:
        path = Path(p)
        out += sorted(str(f) for f in path.glob("*.pt")) if path.is_dir() else [str(path)]
    if not out:
        raise FileNotFoundError(f"no demonstration files found in {paths}")
    return out




# ---------------------------------------------------------------------------------------- run set-up
@dataclass
class Run:
    """Where and how this process trains: returned by :func:`start_run`."""

    ctx: DistributedContext
    device: torch.device
    out_dir: Path
    owns_group: bool  # the process group was started here (destroy it at the end)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT

    def close(self) -> None:
        """Leave ``torch.distributed`` if this run joined it."""
        if self.owns_group:
            cleanup()


def start_run(args: argparse.Namespace) -> Run:
    """Threads, ``torch.distributed`` (under ``torchrun``/Slurm), the device and its planner
    defaults, the output folder (stale temporary files of a killed run removed) and the seeds."""
    if args.threads:
        torch.set_num_threads(args.threads)
    owns_group = not is_distributed()
    ctx = setup_distributed(args)
    device = ctx.device if ctx.initialized else resolve_device(args.device)
    resolve_planner_args(args, device)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        remove_stale_temp_files(out_dir, (CHECKPOINT, "final_scores.json", "result.json"))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if ctx.initialized:
        log.info("data-parallel rank %d/%d (%s)", ctx.rank, ctx.world_size, ctx.backend)
        args.quiet = args.quiet or not ctx.is_main
    return Run(ctx, device, out_dir, owns_group and ctx.initialized)


# ---------------------------------------------------------------------------------------- checkpoints
class RunCheckpointer:
    """The run's checkpoint: written atomically, restored exactly.

    A checkpoint holds the :class:`Agent`'s ``state_dict``, the trainer's (optimisers, counters,
    schedules), the run ``state`` (frames, evaluation history), every rank's collector counters
    and RNG state, and with ``save_replay`` the online replay (compacted to the data stored).

    After :meth:`request`, :meth:`after_batch` waits (a few batches at most) until every lane
    ends an episode when the tasks share an episode length, restarts the lanes with the seeds a
    resumed run uses (:func:`segment_seed`) and writes: a run resumed from there continues exactly
    where the uninterrupted one does (docs/training.md).

    Args:
        path: the checkpoint file.
        agent, trainer, replay: what is saved (``replay``: the online buffer).
        state: the run's counters and history (a dict, updated in place by :meth:`restore`).
        args: the parsed command line (stored, and ``seed``/``frames``/``save_replay`` read).
        tasks: the run's task names (a resumed run must have the same).
        ctx: the distributed context (every rank takes part; rank 0 writes).
        episode_lengths: the tasks' episode lengths.
        steps_per_batch: env steps per lane in a collector batch.

    Examples:
        >>> RunCheckpointer.boundary_wait([1000, 1000], 10), RunCheckpointer.boundary_wait([50, 1000], 10)
        (100, 0)
    """

    def __init__(self, path: Path, *, agent: torch.nn.Module, trainer: Any, replay: Any, state: dict,
                 args: argparse.Namespace, tasks: list[str], ctx: DistributedContext,
                 episode_lengths: list[int], steps_per_batch: int = STEPS_PER_BATCH) -> None:
        self.path, self.agent, self.trainer, self.replay, self.state = Path(path), agent, trainer, replay, state
        self.args, self.tasks, self.ctx = args, tasks, ctx
        self.max_wait = self.boundary_wait(episode_lengths, steps_per_batch)
        self.collector = self.env = None
        self.pending: int | None = None
        self._collector_state: dict = {}
        self._restored: dict | None = None  # the checkpoint read by restore(), until attach() uses it

    @staticmethod
    def boundary_wait(episode_lengths: list[int], steps_per_batch: int) -> int:
        """Batches to wait for every lane to end an episode (0 when the lengths differ)."""
        lengths = set(int(n) for n in episode_lengths)
        return math.lcm(steps_per_batch, lengths.pop()) // steps_per_batch if len(lengths) == 1 else 0

    def restore(self, path: Path, device: torch.device) -> dict:
        """Load a checkpoint of this program into the agent, trainer, state and (rank 0) replay."""
        ckpt = load_resume_checkpoint(path, self.tasks, self.args, device)
        try:
            self.agent.load_state_dict(ckpt["agent"])
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint {path} does not fit this model: {str(err)[:300]}") from err
        self.trainer.load_state_dict(ckpt["trainer"])
        self.state.update({k: v for k, v in ckpt["state"].items() if k in self.state})
        every = self.args.eval_every
        self.state["last_eval"] = ckpt["state"].get("last_eval", (self.state["frames"] // every) * every)
        if "replay" in ckpt and self.ctx.is_main:  # other ranks' replay is not saved: they refill theirs
            self.replay.load_state_dict(expand_replay_state(ckpt["replay"]))
        log.info("resumed from %s at %d frames, %d updates", path, self.state["frames"], self.trainer.updates)
        self._restored = ckpt
        return ckpt

    def attach(self, collector: Any, env: Any, global_frames_per_batch: int, frames_per_batch: int) -> None:
        """Give the checkpointer the collector and training env; after :meth:`restore`, continue
        their frame counters, trajectory ids and RNG state (each rank its own).

        Args:
            collector: the training collector; env: its env (restarted at episode boundaries).
            global_frames_per_batch: env steps of one batch over all ranks; frames_per_batch:
                this rank's.
        """
        self.collector, self.env = collector, env
        ckpt, self._restored = self._restored, None
        if ckpt is None:
            return
        ctx, frames = self.ctx, self.state["frames"]
        collectors = ckpt.get("collector_ranks") or ([ckpt.get("collector")] if ckpt.get("collector") else None)
        if collectors is not None and len(collectors) == ctx.world_size:
            collector.load_state_dict(collectors[ctx.rank], strict=False)
        else:  # the first checkpoint layout, or another world size: count the frames of this rank's lanes
            collector.load_state_dict({"frames": frames // global_frames_per_batch * frames_per_batch,
                                       "iter": frames // global_frames_per_batch}, strict=False)
        rngs = ckpt.get("rng_ranks")
        set_rng_state(rngs[ctx.rank] if rngs and len(rngs) == ctx.world_size else ckpt["rng"])

    def request(self) -> None:
        """Checkpoint at the next episode boundary (or after :attr:`max_wait` batches)."""
        self.pending = 0

    def after_batch(self, batch: Any, last: bool) -> None:
        """Write a requested checkpoint once every lane has ended an episode, or it waited enough."""
        if self.pending is None:
            return
        done = bool(batch["next", "done"][:, -1].all())
        boundary = all(gather_objects(done)) if self.ctx.initialized else done
        if boundary or self.pending >= self.max_wait or last:
            self.save(at_boundary=boundary)
            self.pending = None
        else:
            self.pending += 1

    def save(self, at_boundary: bool = False) -> None:
        """Write the checkpoint now (every rank must call it; rank 0 writes)."""
        try:
            sd = self.collector.state_dict() if self.collector is not None else {}
        except AttributeError:  # the collector was shut down (the final checkpoint): its counters are final
            sd = self._collector_state
        self._collector_state = dict(sd)
        collector_state = {k: sd[k] for k in ("frames", "iter", "traj_pool") if k in sd}
        args, ctx, state = self.args, self.ctx, self.state
        if at_boundary and state["frames"] < args.frames:  # restart every lane with the seeds a resumed run uses
            self.env.set_seed(segment_seed(args.seed, state["frames"], ctx.rank))
            self.collector.reset()
        rngs = gather_objects(rng_state())  # every rank takes part; rank 0 writes
        collectors = gather_objects(collector_state)
        state["checkpoint_frames"] = state["frames"]
        if not ctx.is_main:
            return
        ckpt = {"agent": self.agent.state_dict(), "trainer": self.trainer.state_dict(), "state": state,
                "rng": rngs[0], "collector": collector_state, "tasks": self.tasks, "args": vars(args), "format": 2}
        if ctx.initialized:
            ckpt["rng_ranks"], ckpt["collector_ranks"] = rngs, collectors
        if args.save_replay:
            ckpt["replay"] = compact_replay_state(self.replay.state_dict())
        atomic_save(ckpt, self.path)
        log.info("checkpoint written to %s", self.path)


# ---------------------------------------------------------------------------------------- loop stages
def log_metrics(logger: Any, metrics: dict, step: int) -> None:
    """Log scalars (``logger`` ``None``: nothing, as on ranks other than 0).

    Examples:
        >>> class Printer:
        ...     def log_scalar(self, name, value, step):
        ...         print(name, value, step)
        >>> log_metrics(Printer(), {"loss": torch.tensor(0.5)}, step=3)
        loss 0.5 3
        >>> log_metrics(None, {"loss": 1.0}, step=3)
    """
    if logger is not None:
        for k, v in metrics.items():
            logger.log_scalar(k, float(v), step=step)


def pretrain(trainer: Any, demo_buffer: Any, updates: int, batch_size: int, logger: Any = None,
             quiet: bool = False) -> None:
    """Newt's pretraining on demonstrations: ``trainer.pretrain_step`` until ``updates`` (counting
    those of a resumed run), then ``trainer.end_pretraining()``."""
    bar = tqdm(total=updates, initial=trainer.pretrain_updates, desc="pretrain", disable=quiet,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    while trainer.pretrain_updates < updates:
        metrics = trainer.pretrain_step(demo_buffer.sample(batch_size))
        bar.update(1)
        if trainer.pretrain_updates % 100 == 0:
            log_metrics(logger, {f"pretrain/{k}": v for k, v in metrics.items()}, trainer.pretrain_updates)
    bar.close()
    trainer.end_pretraining()


def log_train_scores(batch: Any, state: dict, tasks: list[str], logger: Any) -> None:
    """Log the score of every training episode that ended in ``batch`` (and each task's latest).

    Examples:
        >>> from tensordict import TensorDict
        >>> batch = TensorDict({"task": torch.tensor([0, 1]), ("next", "done"): torch.tensor([[True], [False]]),
        ...                     ("next", "score"): torch.tensor([[0.5], [0.0]])}, [2])
        >>> state = {"frames": 20, "last_scores": {}}
        >>> log_train_scores(batch, state, ["walker-walk", "cheetah-run"], logger=None)
        >>> state["last_scores"]
        {0: 0.5}
    """
    done = batch["next", "done"].squeeze(-1)
    if not done.any():
        return
    scores = batch["next", "score"].squeeze(-1)[done]
    for lane, s in zip(batch["task"][done].tolist(), scores.tolist()):
        state["last_scores"][lane] = s
    log_metrics(logger, {f"train/score/{tasks[i]}": s for i, s in state["last_scores"].items()}, state["frames"])
    log_metrics(logger, {"train/mean_score": float(scores.mean())}, state["frames"])


def evaluate_and_record(eval_env: Any, policy: Any, state: dict, *, tasks: list[str], local_tasks: list[str],
                        episodes: int, seed: int, rank: int = 0, logger: Any = None,
                        plot: Path | None = None, elapsed_s: float | None = None) -> dict:
    """Evaluate every task on fresh seeds for this point (:func:`segment_seed`), gather the ranks'
    results, append them to ``state["history"]``, log and plot; returns the history entry."""
    frames = state["frames"]
    eval_env.set_seed(segment_seed(seed, frames, rank, purpose=1))
    results = gather_results(evaluate(eval_env, policy, local_tasks, episodes), order=tasks)
    domains = domain_scores(results)
    entry = {"frames": frames, "results": results, "mean_score": float(np.mean(list(domains.values())))}
    state["history"].append(entry)
    state["last_eval"] = frames
    log_metrics(logger, {f"eval/score/{t}": r["score"] for t, r in results.items()}, frames)
    log_metrics(logger, {f"eval/domain/{d}": s for d, s in domains.items()}, frames)
    log_metrics(logger, {"eval/mmbench_score": entry["mean_score"],
                         **({"time/elapsed_s": elapsed_s} if elapsed_s is not None else {})}, frames)
    if plot is not None:
        plot_curve(state["history"], plot)
    return entry


def random_baseline(eval_env: Any, state: dict, *, tasks: list[str], local_tasks: list[str], episodes: int,
                    seed: int, rank: int = 0) -> dict | None:
    """Uniform random actions on the final evaluation's seeds (``episodes`` per task), or ``None``.

    The actions (drawn on the CPU, where the env lives) come from the CPU generator seeded from the
    same ``(seed, frames, rank)`` as the env, inside :func:`torch.random.fork_rng`: the ``random``
    column is the same for every run that ends at the same step count, whatever the training
    consumed of the global RNG, and the training's RNG streams (CPU and CUDA) are left as they were.
    """
    if episodes <= 0:
        return None
    env_seed = segment_seed(seed, state["history"][-1]["frames"], rank, purpose=1)
    eval_env.set_seed(env_seed)
    with torch.random.fork_rng(devices=[]):  # restores the CPU generator; CUDA's is never touched
        torch.random.default_generator.manual_seed(env_seed)  # not torch.manual_seed: that reseeds CUDA too
        return gather_results(evaluate(eval_env, None, local_tasks, episodes), order=tasks)


def final_report(out_dir: Path, state: dict, random_results: dict | None, *, updates: int, wall_s: float,
                 device: torch.device, args: argparse.Namespace) -> Path:
    """Print the final score table (beside random actions), the learning summary and where the
    run's files are; write ``final_scores.json`` (atomically) and return its path."""
    final = state["history"][-1]
    if random_results is not None:
        plot_curve(state["history"], out_dir / "learning_curve.png", mmbench_score(random_results))
    path = write_final_scores(out_dir, final["results"], baseline=random_results, frames=state["frames"],
                              updates=updates, wall_s=round(wall_s, 1), device=str(device),
                              eval_episodes=args.eval_episodes, random_episodes=args.random_episodes)
    logs = out_dir / "logs" / args.exp_name if args.logger != "none" else "(logging disabled)"
    title = f"Final evaluation after {state['frames']:,} env steps and {updates:,} updates ({wall_s:.0f} s on {device}):"
    files = {"metrics": logs, "learning curve": out_dir / "learning_curve.png", "checkpoint": out_dir / CHECKPOINT,
             "final scores": path}
    print("\n" + format_final_report(final["results"], random_results, title=title, files=files))
    return path
